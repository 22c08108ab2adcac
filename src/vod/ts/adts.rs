//! ADTS headers for AAC access units (ISO/IEC 14496-3 1.A.2.2, table 1.A.5).

/// Largest AAC access unit that fits an ADTS frame (13-bit frame_length minus the
/// 7-byte header), in bytes.
pub const MAX_AU_BYTES: usize = 8191 - 7;

/// The 7-byte ADTS header (protection_absent = 1) for an access unit of `au_len` bytes.
///
/// `object_type` is the MPEG-4 audioObjectType; HE-AAC (5) and HE-AACv2 (29) signal their
/// AAC-LC core (profile 1), as players expect. Errors: a reason when the access unit is
/// larger than [`MAX_AU_BYTES`].
pub fn header(
    object_type: u8,
    freq_index: u8,
    channels: u8,
    au_len: usize,
) -> Result<[u8; 7], String> {
    if au_len > MAX_AU_BYTES {
        return Err(format!(
            "AAC access unit of {au_len} bytes does not fit ADTS"
        ));
    }
    let profile = match object_type {
        5 | 29 => 1,
        aot => aot.saturating_sub(1) & 0x03,
    };
    let len = au_len + 7;
    Ok([
        0xFF,
        0xF1, // syncword, MPEG-4, layer 0, protection_absent
        (profile << 6) | ((freq_index & 0x0F) << 2) | ((channels >> 2) & 0x01),
        ((channels & 0x03) << 6) | ((len >> 11) & 0x03) as u8,
        ((len >> 3) & 0xFF) as u8,
        (((len & 0x07) << 5) as u8) | 0x1F, // buffer fullness 0x7FF (VBR)
        0xFC,                               // fullness low bits, 1 raw data block
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_stereo_48k() {
        let h = header(2, 3, 2, 100).unwrap();
        assert_eq!(h[0..2], [0xFF, 0xF1]);
        assert_eq!(h[2] >> 6, 1); // LC
        assert_eq!((h[2] >> 2) & 0x0F, 3);
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!(len, 107);
        assert!(header(2, 3, 2, 9000).is_err());
    }
}
