//! Length-prefixed NAL units (ISO/IEC 14496-15) to Annex B byte streams
//! (ITU-T H.264 Annex B, H.265 Annex B) for MPEG-TS.
//!
//! Each access unit becomes: an access unit delimiter (H.264 nal_unit_type 9, HEVC 35),
//! then on keyframes the parameter sets from the sample entry (SPS, PPS; HEVC VPS, SPS,
//! PPS) unless the sample carries its own, then the sample's NAL units with 4-byte start
//! codes. AUDs already in the sample are dropped. NAL payloads are copied as they are
//! (they are already emulation-prevented).

use super::super::codec::Codec;

const START: [u8; 4] = [0, 0, 0, 1];
const AUD_H264: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
const AUD_HEVC: [u8; 7] = [0, 0, 0, 1, 0x46, 0x01, 0x50];

/// Appends the Annex B form of one video sample to `out` as borrowed pieces (start codes,
/// parameter sets, NAL units of `sample`); returns the total length in bytes.
///
/// Errors: a reason (with the byte position) when a NAL length runs past the sample.
pub fn to_annexb_pieces<'a>(
    codec: &'a Codec,
    sample: &'a [u8],
    keyframe: bool,
    out: &mut Vec<&'a [u8]>,
) -> Result<usize, String> {
    let (hevc, length_size, params) = match codec {
        Codec::H264 {
            length_size,
            params,
        } => (false, *length_size, params),
        Codec::Hevc {
            length_size,
            params,
        } => (true, *length_size, params),
        Codec::Aac { .. } => return Err("not a video codec".into()),
    };
    let ls = usize::from(length_size);
    if !(1..=4).contains(&ls) || ls == 3 {
        return Err(format!("NAL length size {ls}"));
    }
    let nal_type = |nal: &[u8]| -> u8 {
        if hevc {
            (nal[0] >> 1) & 0x3F
        } else {
            nal[0] & 0x1F
        }
    };
    // First pass: validate lengths and look for in-band parameter sets and IRAP/IDR.
    let mut has_params = false;
    let mut is_irap = false;
    let mut pos = 0usize;
    while pos < sample.len() {
        if sample.len() - pos < ls {
            return Err(format!("truncated NAL length at byte {pos}"));
        }
        let len = sample[pos..pos + ls]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        pos += ls;
        if len > sample.len() - pos {
            return Err(format!(
                "NAL of {len} bytes at byte {pos} runs past the sample"
            ));
        }
        if len > 0 {
            let t = nal_type(&sample[pos..]);
            if hevc {
                has_params |= t == 33;
                is_irap |= (16..=21).contains(&t);
            } else {
                has_params |= t == 7;
                is_irap |= t == 5;
            }
        }
        pos += len;
    }
    let mut total = 0usize;
    let mut push = |p: &'a [u8], out: &mut Vec<&'a [u8]>| {
        total += p.len();
        out.push(p);
    };
    push(if hevc { &AUD_HEVC[..] } else { &AUD_H264[..] }, out);
    if (keyframe || is_irap) && !has_params {
        for p in params {
            push(&START, out);
            push(p, out);
        }
    }
    let mut pos = 0usize;
    while pos < sample.len() {
        let len = sample[pos..pos + ls]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        pos += ls;
        let nal = &sample[pos..pos + len];
        pos += len;
        if nal.is_empty() {
            continue;
        }
        let t = nal_type(nal);
        if (hevc && t == 35) || (!hevc && t == 9) {
            continue;
        }
        push(&START, out);
        push(nal, out);
    }
    Ok(total)
}

/// Appends the Annex B form of one video sample to `out` (a copying form of
/// [`to_annexb_pieces`]).
pub fn to_annexb(
    codec: &Codec,
    sample: &[u8],
    keyframe: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut pieces = Vec::new();
    to_annexb_pieces(codec, sample, keyframe, &mut pieces)?;
    for p in pieces {
        out.extend_from_slice(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_idr_gets_aud_and_params() {
        let codec = Codec::H264 {
            length_size: 4,
            params: vec![vec![0x67, 1, 2], vec![0x68, 3]],
        };
        let sample = [0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 3, 0x65, 0xAA, 0xBB];
        let mut out = Vec::new();
        to_annexb(&codec, &sample, true, &mut out).unwrap();
        assert_eq!(
            out,
            [
                0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1,
                0x65, 0xAA, 0xBB
            ]
        );
        let mut out = Vec::new();
        assert!(to_annexb(&codec, &[0, 0, 0, 9, 0x41], false, &mut out).is_err());
        assert!(to_annexb(&codec, &[0, 0], false, &mut out).is_err());
    }
}
