//! Crashes found by these targets and not yet fixed in `src/`, so that a long run can look
//! past them. Skipped only when `FUZZ_SKIP_KNOWN=1` is set; by default (and in CI) the
//! regression seeds in `fuzz/corpus/` make the target fail until the bug is fixed. Delete a
//! check here once its fix has landed.

use std::sync::OnceLock;

/// Whether known-crash inputs are skipped (`FUZZ_SKIP_KNOWN=1`).
pub fn skip() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("FUZZ_SKIP_KNOWN").is_some_and(|v| v == "1"))
}

/// mp4-atom 0.17 decodes a version 0 `sgpd` of an unknown grouping type by giving the first
/// entry every remaining byte and every further entry none, pushing `entry_count` (up to
/// 2^32 - 1) entries: a 28-byte `moov` or `moof` holding such an `sgpd` anywhere allocates
/// until the process dies. True when `data` holds an `sgpd` (found by its type bytes, at
/// any depth) whose version is 0 and whose entry count exceeds the bytes it has left.
pub fn sgpd_entry_count_oom(data: &[u8]) -> bool {
    let mut from = 4;
    while let Some(i) = data
        .get(from..)
        .and_then(|d| d.windows(4).position(|w| w == b"sgpd"))
    {
        let p = from + i;
        from = p + 1;
        let size = u32::from_be_bytes(data[p - 4..p].try_into().unwrap()) as usize;
        let end = match size {
            0 | 1 => data.len(),
            n => (p - 4).saturating_add(n).min(data.len()),
        };
        let Some(body) = data.get(p + 4..end.max(p + 4)) else {
            continue;
        };
        if body.len() < 12 || body[0] != 0 || &body[4..8] == b"refs" {
            continue;
        }
        let count = u32::from_be_bytes(body[8..12].try_into().unwrap()) as usize;
        if count > body.len() - 12 {
            return true;
        }
    }
    false
}

/// Every known crash of the ISO-BMFF readers.
pub fn isobmff(data: &[u8]) -> bool {
    skip() && sgpd_entry_count_oom(data)
}
