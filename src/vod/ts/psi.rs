//! Program Specific Information: PAT and PMT sections (ISO/IEC 13818-1 2.4.4.3 table 2-30,
//! 2.4.4.8 table 2-33) and their CRC-32/MPEG-2 (Annex A).

/// PID of the Program Map Table.
pub const PMT_PID: u16 = 0x1000;
/// program_number of the single program.
pub const PROGRAM_NUMBER: u16 = 1;

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final xor.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut k = 0;
            while k < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = (crc << 8) ^ TABLE[((crc >> 24) as u8 ^ b) as usize];
    }
    crc
}

/// One elementary stream of the program (a PMT ES loop entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EsEntry {
    /// stream_type (table 2-34): 0x1B AVC, 0x24 HEVC, 0x0F AAC ADTS.
    pub stream_type: u8,
    /// elementary_PID.
    pub pid: u16,
}

/// The PAT section (pointer_field excluded): one program -> [`PMT_PID`].
pub fn pat_section() -> Vec<u8> {
    let mut s = vec![
        0x00, // table_id
        0xB0,
        0x0D, // section_syntax_indicator=1, '0', reserved '11', section_length=13
        0x00,
        0x01, // transport_stream_id
        0xC1, // reserved '11', version 0, current_next 1
        0x00,
        0x00, // section_number, last_section_number
        (PROGRAM_NUMBER >> 8) as u8,
        PROGRAM_NUMBER as u8,
        0xE0 | (PMT_PID >> 8) as u8,
        PMT_PID as u8,
    ];
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// The PMT section (pointer_field excluded) for `streams`, with PCR on `pcr_pid`.
pub fn pmt_section(pcr_pid: u16, streams: &[EsEntry]) -> Vec<u8> {
    let section_length = 13 + 5 * streams.len();
    let mut s = vec![
        0x02,
        0xB0 | (section_length >> 8) as u8,
        section_length as u8,
        (PROGRAM_NUMBER >> 8) as u8,
        PROGRAM_NUMBER as u8,
        0xC1,
        0x00,
        0x00,
        0xE0 | (pcr_pid >> 8) as u8,
        pcr_pid as u8,
        0xF0, // reserved, program_info_length = 0
        0x00,
    ];
    for e in streams {
        s.extend_from_slice(&[
            e.stream_type,
            0xE0 | (e.pid >> 8) as u8,
            e.pid as u8,
            0xF0,
            0x00,
        ]);
    }
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // The CRC-32/MPEG-2 check value of "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        // A section including its CRC has a remainder of 0.
        assert_eq!(crc32_mpeg2(&pat_section()), 0);
        let pmt = pmt_section(
            0x100,
            &[EsEntry {
                stream_type: 0x1B,
                pid: 0x100,
            }],
        );
        assert_eq!(crc32_mpeg2(&pmt), 0);
    }
}
