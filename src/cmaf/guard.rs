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
//! Pure: reads box headers only, depth-limited, no allocation.

/// Container boxes walked into (their children are boxes).
const CONTAINERS: [&[u8; 4]; 12] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"edts", b"dinf", b"moof", b"traf",
    b"udta", b"mfra",
];

/// Deepest nesting walked; deeper boxes are left to the decoder (which recurses no further
/// than the box types it knows).
const MAX_DEPTH: usize = 16;

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

/// Checks every `sgpd` inside `buf` (one whole box, header included): its entry count must
/// fit the bytes it has (each entry at least one byte; with version 1, `default_length`
/// bytes, or a 4-byte length when that is 0).
///
/// Errors: [`GuardError`] naming the box and its offset.
pub fn check(buf: &[u8]) -> Result<(), GuardError> {
    walk(buf, 0, 0)
}

fn walk(buf: &[u8], base: usize, depth: usize) -> Result<(), GuardError> {
    let mut at = 0usize;
    while at + 8 <= buf.len() {
        let size32 = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let kind: [u8; 4] = [buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]];
        let (header, size) = match size32 {
            0 => (8usize, buf.len() - at),
            1 => {
                if at + 16 > buf.len() {
                    return Ok(());
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[at + 8..at + 16]);
                let s = u64::from_be_bytes(b);
                (16, usize::try_from(s).unwrap_or(usize::MAX))
            }
            n => (8, n as usize),
        };
        if size < header || size > buf.len() - at {
            // The decoder reports a truncated or oversized box itself.
            return Ok(());
        }
        let body = &buf[at + header..at + size];
        if &kind == b"sgpd" {
            check_sgpd(body).map_err(|reason| GuardError {
                box_type: "sgpd".into(),
                offset: base + at,
                reason,
            })?;
        } else if depth < MAX_DEPTH && CONTAINERS.contains(&&kind) {
            walk(body, base + at + header, depth + 1)?;
        }
        at += size;
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
    fn truncated_input_is_left_to_the_decoder() {
        assert!(check(&[0, 0, 0, 40, b'm', b'o', b'o', b'v']).is_ok());
        assert!(check(&[]).is_ok());
        assert!(check(&[0, 0, 0, 1, b'm', b'o', b'o', b'v', 0]).is_ok());
    }
}
