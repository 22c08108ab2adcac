//! Checks a `moov` or `moof` box before mp4-atom decodes it, for counts the decoder would
//! trust.
//!
//! mp4-atom 0.17 decodes a version 0 `sgpd` (SampleGroupDescriptionBox, ISO/IEC 14496-12
//! section 8.9.3) of a grouping type it does not know by pushing `entry_count` entries (up
//! to 2^32 - 1, tens of bytes each) whatever the box holds: a 28-byte init segment would
//! make it allocate until the process dies. Found by the `cmaf_scan` fuzz target. Every
//! `Moov`/`Moof` decode of outside input (live uploads, persisted files at recovery, VOD
//! files, recording downloads) calls [`check`] first.
//!
//! Pure: reads bytes only, no allocation.

/// Why a box was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{box_type} at offset {offset}: {reason}")]
pub struct GuardError {
    /// The offending box type.
    pub box_type: String,
    /// Its offset in the checked bytes.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Checks every `sgpd` inside `buf` (a whole `moov` or `moof`, header included): its entry
/// count must fit the bytes it has (each entry at least one byte; with version 1,
/// `default_length` bytes, or a 4-byte length when that is 0).
///
/// mp4-atom decodes child boxes inside sample entries and other leaf-looking boxes too, so
/// the box types are found by their four bytes at any offset, not by walking known
/// containers; a candidate whose size field does not fit is not a box and is skipped.
///
/// Errors: [`GuardError`] naming the box and its offset.
pub fn check(buf: &[u8]) -> Result<(), GuardError> {
    let mut from = 4usize;
    while let Some(i) = buf
        .get(from..)
        .and_then(|rest| rest.windows(4).position(|w| w == b"sgpd"))
    {
        let at = from + i; // the type field; the box starts 4 bytes before
        from = at + 1;
        let start = at - 4;
        let size = u32::from_be_bytes([buf[start], buf[start + 1], buf[start + 2], buf[start + 3]]);
        let (header, end) = match size {
            0 => (8, buf.len()),
            1 => {
                let Some(b) = buf.get(at + 4..at + 12) else {
                    continue;
                };
                let s = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                match usize::try_from(s) {
                    Ok(s) if s >= 16 && s <= buf.len() - start => (16, start + s),
                    _ => continue,
                }
            }
            n if (n as usize) >= 8 && (n as usize) <= buf.len() - start => (8, start + n as usize),
            _ => continue,
        };
        check_sgpd(&buf[start + header..end]).map_err(|reason| GuardError {
            box_type: "sgpd".into(),
            offset: start,
            reason,
        })?;
    }
    Ok(())
}

fn check_sgpd(body: &[u8]) -> Result<(), &'static str> {
    let u32_at = |i: usize| -> Option<u32> {
        body.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    // FullBox: version(8) flags(24), grouping_type(32)
    let Some(&version) = body.first() else {
        return Ok(());
    };
    let mut i = 8;
    let mut min_entry = 1u64;
    if version == 1 {
        let Some(default_length) = u32_at(i) else {
            return Ok(());
        };
        min_entry = if default_length == 0 {
            4
        } else {
            u64::from(default_length)
        };
        i += 4;
    } else if version >= 2 {
        i += 4; // default_sample_description_index
    }
    let Some(count) = u32_at(i) else {
        return Ok(());
    };
    let left = body.len().saturating_sub(i + 4) as u64;
    if u64::from(count).saturating_mul(min_entry) > left {
        return Err("entry_count larger than the box can hold");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn refuses_an_sgpd_count_past_its_bytes() {
        // version 0, grouping type "abcd", entry_count 0xffffffff, no entries.
        let sgpd = boxed(
            b"sgpd",
            &[0, 0, 0, 0, b'a', b'b', b'c', b'd', 0xff, 0xff, 0xff, 0xff],
        );
        let moov = boxed(
            b"moov",
            &boxed(
                b"trak",
                &boxed(b"mdia", &boxed(b"minf", &boxed(b"stbl", &sgpd))),
            ),
        );
        let e = check(&moov).unwrap_err();
        assert_eq!(e.box_type, "sgpd");
        let moof = boxed(b"moof", &boxed(b"traf", &sgpd));
        assert!(check(&moof).is_err());
        // A count the bytes can hold passes.
        let ok = boxed(
            b"sgpd",
            &[0, 0, 0, 0, b'r', b'o', b'l', b'l', 0, 0, 0, 1, 0, 1],
        );
        assert!(check(&boxed(b"moof", &boxed(b"traf", &ok))).is_ok());
        // Version 1 with a default length: count x length must fit.
        let v1 = boxed(
            b"sgpd",
            &[
                1, 0, 0, 0, b'r', b'o', b'l', b'l', 0, 0, 0, 2, 0, 0, 0, 2, 0, 1,
            ],
        );
        assert!(check(&boxed(b"moof", &boxed(b"traf", &v1))).is_err());
    }

    #[test]
    fn finds_an_sgpd_inside_a_sample_entry() {
        // mp4-atom decodes children of a PCM sample entry (`sowt`) as boxes too.
        let sgpd = boxed(
            b"sgpd",
            &[0, 0, 0, 0, b'a', b'b', b'c', b'd', 0x7f, 0xff, 0xff, 0xff],
        );
        let mut sowt_body = vec![0u8; 28];
        sowt_body.extend_from_slice(&sgpd);
        let moov = boxed(b"moov", &boxed(b"sowt", &sowt_body));
        assert!(check(&moov).is_err());
    }

    #[test]
    fn truncated_input_is_left_to_the_decoder() {
        assert!(check(&[0, 0, 0, 40, b'm', b'o', b'o', b'v']).is_ok());
        assert!(check(&[]).is_ok());
        assert!(check(&[0, 0, 0, 1, b'm', b'o', b'o', b'v', 0]).is_ok());
    }
}
