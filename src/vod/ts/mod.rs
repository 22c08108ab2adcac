//! Our MPEG-2 transport stream writer for HLS segments (ISO/IEC 13818-1).
//!
//! One segment = PAT, PMT (section 2.4.4), then PES packets (2.4.3.6) of the video and
//! audio access units in DTS order, cut into 188-byte packets (2.4.3.2):
//!
//! - PCR (2.4.3.5) on the first packet of every PES of the PCR PID (video if any, else
//!   audio), `PCR = DTS - PCR_LEAD`, so PCR <= DTS of everything that follows.
//! - `random_access_indicator` on the first packet of keyframe PES.
//! - PTS/DTS: 33-bit 90 kHz values given by the caller (exact integer conversion from the
//!   track timescale happens in `vod::segment`); DTS is written only when it differs.
//! - The last packet of a PES is filled with adaptation-field stuffing, never null packets.
//! - Continuity counters: media PIDs start at 0 in each segment and each PID's packet count
//!   is padded (by spreading the last PES over more packets) to a multiple of 16, so every
//!   segment ends on 15 and consecutive segments read as one continuous stream. PAT and PMT
//!   (one each per segment) use `(segment_number - 1) mod 16`.

pub mod adts;
pub mod annexb;
pub mod psi;

/// Transport packet size in bytes.
pub const PACKET: usize = 188;
/// Video elementary PID.
pub const VIDEO_PID: u16 = 0x100;
/// Audio elementary PID.
pub const AUDIO_PID: u16 = 0x101;
/// PCR lead before the DTS, in 90 kHz ticks (100 ms).
pub const PCR_LEAD: u64 = 9000;
const TS_MASK: u64 = (1 << 33) - 1;

/// Which elementary stream a PES belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Es {
    /// The video stream ([`VIDEO_PID`], stream_id 0xE0).
    Video,
    /// The audio stream ([`AUDIO_PID`], stream_id 0xC0).
    Audio,
}

/// The program of a segment: the stream types present (table 2-34).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    /// Video stream_type (0x1B AVC, 0x24 HEVC) or `None`.
    pub video: Option<u8>,
    /// Audio stream_type (0x0F AAC ADTS) or `None`.
    pub audio: Option<u8>,
}

/// One PES packet to write: an access unit (video) or several ADTS frames (audio).
///
/// The payload is a list of borrowed pieces (start codes, parameter sets, NAL units, ADTS
/// headers and AAC frames) copied once, straight into the transport packets.
#[derive(Debug, Clone)]
pub struct PesUnit<'a> {
    /// Stream.
    pub es: Es,
    /// Presentation time, 90 kHz ticks.
    pub pts: u64,
    /// Decode time, 90 kHz ticks (equal to `pts` for audio).
    pub dts: u64,
    /// Keyframe (sets `random_access_indicator`).
    pub keyframe: bool,
    /// The elementary stream bytes (Annex B access unit or ADTS frames), in pieces.
    pub pieces: Vec<&'a [u8]>,
    /// Total length of `pieces` in bytes.
    pub len: usize,
}

impl Program {
    fn pcr_es(&self) -> Es {
        if self.video.is_some() {
            Es::Video
        } else {
            Es::Audio
        }
    }
}

/// Writes one complete segment: PAT, PMT, then `units` in the given order (the caller
/// sorts them by DTS). `segment_number` is 1-based and sets the PSI continuity counters.
pub fn mux_segment(program: Program, units: &[PesUnit<'_>], segment_number: u32) -> Vec<u8> {
    let payload: usize = units.iter().map(|u| u.len + 19).sum();
    let mut out = Vec::with_capacity((payload / 184 + 4 + units.len()) * PACKET);
    mux_segment_into(program, units, segment_number, &mut out);
    out
}

/// [`mux_segment`] appending to `out` (a recycled buffer).
pub fn mux_segment_into(
    program: Program,
    units: &[PesUnit<'_>],
    segment_number: u32,
    out: &mut Vec<u8>,
) {
    let out_start = out.len();
    let psi_cc = ((segment_number.wrapping_sub(1)) & 0x0F) as u8;
    write_section(out, 0, psi_cc, &psi::pat_section());
    let pcr_pid = pid(program.pcr_es());
    let mut streams = Vec::new();
    if let Some(t) = program.video {
        streams.push(psi::EsEntry {
            stream_type: t,
            pid: VIDEO_PID,
        });
    }
    if let Some(t) = program.audio {
        streams.push(psi::EsEntry {
            stream_type: t,
            pid: AUDIO_PID,
        });
    }
    write_section(
        out,
        psi::PMT_PID,
        psi_cc,
        &psi::pmt_section(pcr_pid, &streams),
    );

    let pcr_es = program.pcr_es();
    let headers: Vec<PesHeader> = units.iter().map(pes_header).collect();
    let shapes: Vec<PesShape> = units
        .iter()
        .zip(&headers)
        .map(|(u, h)| PesShape {
            es: u.es,
            len: h.len + u.len,
            keyframe: u.keyframe,
        })
        .collect();
    let counts = packet_counts(pcr_es, &shapes);
    let mut cc = [0u8; 2];
    for ((u, h), &n) in units.iter().zip(&headers).zip(&counts) {
        let slot = match u.es {
            Es::Video => 0,
            Es::Audio => 1,
        };
        let pcr = (u.es == pcr_es).then(|| u.dts.saturating_sub(PCR_LEAD));
        write_pes(
            out,
            pid(u.es),
            &mut cc[slot],
            pcr,
            u.keyframe,
            h.as_slice(),
            &u.pieces,
            n,
        );
    }
    debug_assert_eq!((out.len() - out_start) % PACKET, 0);
}

const PAYLOAD_CAP: usize = PACKET - 4;

/// The size facts of one PES that decide how many packets it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesShape {
    /// Stream.
    pub es: Es,
    /// PES header + payload length in bytes.
    pub len: usize,
    /// Keyframe (random_access_indicator on the first packet).
    pub keyframe: bool,
}

/// PES header length in bytes: 14 with a PTS only, 19 with PTS and DTS.
pub fn pes_header_len(with_dts: bool) -> usize {
    if with_dts {
        19
    } else {
        14
    }
}

/// Packets per PES: the natural count, then one PES of each PID spread over more packets so
/// the PID's total is a multiple of 16 (continuity counters end on 15, and every segment's
/// start on 0). The PES spread is the PID's last one long enough for its first packet to
/// keep the whole PES header ([`pes_header_len`], at most 19 bytes) and every other packet
/// at least one byte (demuxers such as the `mpeg2ts` crate read the PES header, ISO/IEC
/// 13818-1 2.4.3.6, from the packet that starts it); never the segment's first PES unless
/// it is its PID's only one. No such PES: no spread.
fn packet_counts(pcr_es: Es, shapes: &[PesShape]) -> Vec<usize> {
    let mut counts: Vec<usize> = shapes
        .iter()
        .map(|u| {
            let first_af = if u.es == pcr_es {
                8
            } else if u.keyframe {
                2
            } else {
                0
            };
            natural_packets(u.len, PAYLOAD_CAP - first_af)
        })
        .collect();
    for es in [Es::Video, Es::Audio] {
        let total: usize = shapes
            .iter()
            .zip(&counts)
            .filter(|(u, _)| u.es == es)
            .map(|(_, c)| *c)
            .sum();
        let pad = (16 - total % 16) % 16;
        let Some(last) = shapes.iter().rposition(|u| u.es == es) else {
            continue;
        };
        if pad == 0 {
            continue;
        }
        let room = |i: usize| shapes[i].len >= pes_header_len(true) + counts[i] + pad - 1;
        if let Some(i) = (0..=last)
            .rev()
            .filter(|&i| shapes[i].es == es && (i > 0 || i == last))
            .find(|&i| room(i))
        {
            counts[i] += pad;
        }
    }
    counts
}

/// Exact size in bytes of the segment [`mux_segment`] writes for PES of these shapes.
pub fn segment_size(program: Program, shapes: &[PesShape]) -> usize {
    (2 + packet_counts(program.pcr_es(), shapes)
        .iter()
        .sum::<usize>())
        * PACKET
}

fn pid(es: Es) -> u16 {
    match es {
        Es::Video => VIDEO_PID,
        Es::Audio => AUDIO_PID,
    }
}

fn natural_packets(len: usize, first_cap: usize) -> usize {
    if len <= first_cap {
        1
    } else {
        1 + (len - first_cap).div_ceil(PAYLOAD_CAP)
    }
}

/// A PES header (at most 19 bytes) built on the stack.
#[derive(Clone, Copy)]
struct PesHeader {
    bytes: [u8; 19],
    len: usize,
}

impl PesHeader {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// PES header (2.4.3.6, table 2-21) with PTS, and DTS when it differs.
fn pes_header(u: &PesUnit<'_>) -> PesHeader {
    let with_dts = u.dts != u.pts;
    let hdr_data_len: usize = if with_dts { 10 } else { 5 };
    let total = 3 + hdr_data_len + u.len;
    let pes_len = if total > 0xFFFF { 0 } else { total as u16 };
    let stream_id = match u.es {
        Es::Video => 0xE0,
        Es::Audio => 0xC0,
    };
    let mut h = [0u8; 19];
    let [l0, l1] = pes_len.to_be_bytes();
    h[..9].copy_from_slice(&[
        0,
        0,
        1,
        stream_id,
        l0,
        l1,
        0x84, // '10', not scrambled, no priority, data_alignment_indicator
        if with_dts { 0xC0 } else { 0x80 },
        hdr_data_len as u8,
    ]);
    h[9..14].copy_from_slice(&ts_bytes(if with_dts { 0x3 } else { 0x2 }, u.pts));
    if with_dts {
        h[14..19].copy_from_slice(&ts_bytes(0x1, u.dts));
    }
    PesHeader {
        bytes: h,
        len: 9 + hdr_data_len,
    }
}

/// A 33-bit timestamp in the 5-byte PES form with its 4-bit prefix and marker bits.
fn ts_bytes(prefix: u8, t: u64) -> [u8; 5] {
    let t = t & TS_MASK;
    [
        (prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1,
        (t >> 22) as u8,
        (((t >> 15) as u8) << 1) | 1,
        (t >> 7) as u8,
        ((t as u8) << 1) | 1,
    ]
}

/// Writes a PSI section in one packet (pointer_field 0, 0xFF fill).
fn write_section(out: &mut Vec<u8>, pid: u16, cc: u8, section: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[
        0x47,
        0x40 | (pid >> 8) as u8,
        pid as u8,
        0x10 | (cc & 0x0F),
        0x00,
    ]);
    out.extend_from_slice(section);
    out.resize(start + PACKET, 0xFF);
}

/// Cuts one PES (header + data) into exactly `packets` transport packets.
///
/// Each packet is appended with at most four copies: the 4-byte header (with the
/// adaptation field's fixed part, up to 12 bytes), the stuffing, then the payload, which
/// takes one copy per piece it spans (a single one inside a large NAL unit).
#[allow(clippy::too_many_arguments)]
fn write_pes(
    out: &mut Vec<u8>,
    pid: u16,
    cc: &mut u8,
    pcr: Option<u64>,
    rai: bool,
    header: &[u8],
    pieces: &[&[u8]],
    packets: usize,
) {
    let total = header.len() + pieces.iter().map(|p| p.len()).sum::<usize>();
    out.reserve(packets.saturating_mul(PACKET));
    // Cursor over header ++ pieces: the unsent rest of the current piece, then the others.
    let mut cur: &[u8] = header;
    let mut rest = pieces.iter();
    let mut sent = 0usize;
    let pid_hi = (pid >> 8) as u8;
    let pid_lo = pid as u8;
    for k in 0..packets {
        let first = k == 0;
        let pcr_here = if first { pcr } else { None };
        let rai_here = first && rai;
        let need_af = match (pcr_here, rai_here) {
            (Some(_), _) => 8,
            (None, true) => 2,
            _ => 0,
        };
        let cap = PAYLOAD_CAP - need_af;
        let remaining = total - sent;
        let left_after = packets - k - 1;
        let take = cap
            .min(remaining.saturating_sub(left_after))
            .max(1)
            .min(remaining);
        let af_total = PAYLOAD_CAP - take;
        let b1 = (if first { 0x40 } else { 0 }) | pid_hi;
        if af_total == 0 {
            out.extend_from_slice(&[0x47, b1, pid_lo, 0x10 | (*cc & 0x0F)]);
        } else {
            let af_len = af_total - 1;
            let mut h = [0u8; 12];
            h[..4].copy_from_slice(&[0x47, b1, pid_lo, 0x30 | (*cc & 0x0F)]);
            h[4] = af_len as u8;
            let mut hl = 5;
            if af_len > 0 {
                let mut flags = 0u8;
                if rai_here {
                    flags |= 0x40;
                }
                if pcr_here.is_some() {
                    flags |= 0x10;
                }
                h[5] = flags;
                hl = 6;
                if let Some(p) = pcr_here {
                    let base = p & TS_MASK;
                    h[6..12].copy_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        (((base & 1) as u8) << 7) | 0x7E, // reserved '111111', ext bit 8 = 0
                        0x00,
                    ]);
                    hl = 12;
                }
            }
            out.extend_from_slice(&h[..hl]);
            // Stuffing: the adaptation field is 1 + af_len bytes, hl - 4 of them written.
            let stuffing = af_total - (hl - 4);
            out.resize(out.len() + stuffing, 0xFF);
        }
        *cc = (*cc + 1) & 0x0F;
        // Payload from the virtual concatenation header ++ pieces.
        let mut need = take;
        while need > 0 {
            while cur.is_empty() {
                match rest.next() {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            if cur.is_empty() {
                break;
            }
            let (now, later) = cur.split_at(need.min(cur.len()));
            out.extend_from_slice(now);
            cur = later;
            need -= now.len();
        }
        sent += take;
    }
    debug_assert_eq!(sent, total);
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};

    static DATA: [u8; 8192] = {
        let mut d = [0u8; 8192];
        let mut i = 0;
        while i < 8192 {
            d[i] = (i % 251) as u8;
            i += 1;
        }
        d
    };

    fn unit(es: Es, pts: u64, dts: u64, len: usize, keyframe: bool) -> PesUnit<'static> {
        // Two pieces to exercise the cursor across piece boundaries.
        let cut = len / 3;
        PesUnit {
            es,
            pts,
            dts,
            keyframe,
            pieces: vec![&DATA[..cut], &[], &DATA[cut..len]],
            len,
        }
    }

    /// Re-reads a segment with `mpeg2ts` and checks PSI, PCR, CC and timestamps.
    #[test]
    fn segment_reparses_with_mpeg2ts() {
        let program = Program {
            video: Some(0x1B),
            audio: Some(0x0F),
        };
        let mut units = Vec::new();
        for i in 0..30u64 {
            let t = 900_000 + i * 3600;
            units.push(unit(
                Es::Video,
                t + 7200,
                t,
                1000 + (i as usize * 377) % 5000,
                i == 0,
            ));
            if i % 4 == 0 {
                units.push(unit(Es::Audio, t, t, 2000 + i as usize, false));
            }
        }
        let bytes = mux_segment(program, &units, 3);
        assert_eq!(bytes.len() % PACKET, 0);
        let mut reader = TsPacketReader::new(&bytes[..]);
        let mut n = 0;
        let mut ccs: std::collections::HashMap<u16, Vec<u8>> = Default::default();
        let mut pes_ts = Vec::new();
        let mut first_pcr = None;
        let mut payloads: Vec<(u16, Vec<u8>)> = Vec::new();
        while let Some(p) = reader.read_ts_packet().unwrap() {
            let pid = p.header.pid.as_u16();
            if n == 0 {
                assert!(matches!(p.payload, Some(TsPayload::Pat(_))), "PAT first");
                assert_eq!(p.header.continuity_counter.as_u8(), 2);
            }
            if n == 1 {
                match &p.payload {
                    Some(TsPayload::Pmt(pmt)) => {
                        assert_eq!(pmt.pcr_pid.map(|p| p.as_u16()), Some(VIDEO_PID));
                        assert_eq!(pmt.es_info.len(), 2);
                    }
                    other => panic!("PMT second, got {other:?}"),
                }
            }
            if pid == VIDEO_PID || pid == AUDIO_PID {
                ccs.entry(pid)
                    .or_default()
                    .push(p.header.continuity_counter.as_u8());
            }
            if let Some(af) = &p.adaptation_field {
                if let Some(pcr) = af.pcr {
                    first_pcr.get_or_insert(pcr.as_u64());
                }
            }
            match &p.payload {
                Some(TsPayload::PesStart(pes)) => {
                    pes_ts.push((
                        pid,
                        pes.header.pts.map(|t| t.as_u64()),
                        pes.header.dts.map(|t| t.as_u64()),
                    ));
                    payloads.push((pid, pes.data.to_vec()));
                }
                Some(TsPayload::PesContinuation(b)) => {
                    let last = payloads.iter_mut().rev().find(|x| x.0 == pid).unwrap();
                    last.1.extend_from_slice(b);
                }
                _ => {}
            }
            n += 1;
        }
        // PCR present before the first PES and <= its DTS.
        assert_eq!(first_pcr, Some((900_000 - PCR_LEAD) * 300));
        for (pid, list) in &ccs {
            assert_eq!(list[0], 0, "pid {pid}");
            for w in list.windows(2) {
                assert_eq!((w[0] + 1) & 15, w[1], "pid {pid} continuity");
            }
            assert_eq!(*list.last().unwrap(), 15, "pid {pid} padded to end on 15");
        }
        assert_eq!(pes_ts.len(), units.len());
        // Payloads come back byte for byte.
        for (u, (_, data)) in units.iter().zip(&payloads) {
            assert_eq!(data.len(), u.len);
            assert_eq!(&data[..], &DATA[..u.len]);
        }
        for (u, (pid, pts, dts)) in units.iter().zip(&pes_ts) {
            assert_eq!(*pid, pid_of(u.es));
            assert_eq!(*pts, Some(u.pts));
            assert_eq!(*dts, if u.pts != u.dts { Some(u.dts) } else { None });
        }
    }

    fn pid_of(es: Es) -> u16 {
        pid(es)
    }

    #[test]
    fn tiny_pes_is_stuffed_not_padded_with_nulls() {
        let program = Program {
            video: None,
            audio: Some(0x0F),
        };
        let bytes = mux_segment(program, &[unit(Es::Audio, 90_000, 90_000, 20, true)], 1);
        // PAT, PMT, then the 34-byte PES spread over 16 packets so the CC ends on 15: the
        // first keeps the 14-byte header and 5 more, each other packet one byte.
        assert_eq!(bytes.len(), 18 * PACKET);
        assert_eq!(pes_header_in_first_packet(&bytes), 1);
        for len in [1, 10, 19] {
            // 15 to 33 bytes can not fill 16 packets with the header whole in the first:
            // one packet, stuffed.
            let b = mux_segment(program, &[unit(Es::Audio, 90_000, 90_000, len, true)], 1);
            assert_eq!(b.len(), 3 * PACKET, "{len}-byte payload");
            assert_eq!(b[2 * PACKET + 3] & 0x30, 0x30, "adaptation field + payload");
            assert_eq!(pes_header_in_first_packet(&b), 1);
        }
        assert!(bytes.chunks(PACKET).all(|p| p[0] == 0x47));
        assert!(!bytes.chunks(PACKET).any(|p| p[1] == 0x1F && p[2] == 0xFF));
    }

    /// The PES starts `mpeg2ts` reads from `bytes` (it fails on a PES header cut by a
    /// packet boundary).
    fn pes_header_in_first_packet(bytes: &[u8]) -> usize {
        let mut r = TsPacketReader::new(bytes);
        let mut starts = 0;
        while let Some(p) = r.read_ts_packet().expect("mpeg2ts reads every packet") {
            starts += usize::from(matches!(p.payload, Some(TsPayload::PesStart(_))));
        }
        starts
    }

    /// A stream's last PES too short to keep its header whole over the padded count (the
    /// sync fixture's last audio PES of a segment, 19 bytes of AAC): an earlier PES of the
    /// PID is spread instead, so the continuity counters still end on 15.
    #[test]
    fn a_spread_pes_keeps_its_header_in_its_first_packet() {
        let program = Program {
            video: Some(0x1B),
            audio: Some(0x0F),
        };
        for len in 1..200 {
            let units = [
                unit(Es::Video, 93_600, 90_000, 300, true),
                unit(Es::Audio, 90_000, 90_000, 500, false),
                unit(Es::Video, 97_200, 93_600, 400, false),
                unit(Es::Audio, 91_920, 91_920, len, false),
                unit(Es::Video, 100_800, 97_200, len, false),
            ];
            let b = mux_segment(program, &units, 1);
            assert_eq!(pes_header_in_first_packet(&b), 5, "{len}-byte last PES");
            for pid in [VIDEO_PID, AUDIO_PID] {
                let last_cc = b
                    .chunks(PACKET)
                    .rfind(|p| (u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])) == pid)
                    .map(|p| p[3] & 0x0F);
                assert_eq!(last_cc, Some(15), "{len}: pid {pid:#x} ends on 15");
            }
            let shapes: Vec<PesShape> = units
                .iter()
                .map(|u| PesShape {
                    es: u.es,
                    len: pes_header_len(u.pts != u.dts) + u.len,
                    keyframe: u.keyframe,
                })
                .collect();
            assert_eq!(
                segment_size(program, &shapes),
                b.len(),
                "{len}: size estimate"
            );
        }
    }
}
