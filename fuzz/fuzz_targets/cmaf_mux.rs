//! The recording download muxer (`cmaf::mux`), which reads stored encoder uploads: merging a
//! video and an audio CMAF header (`merge_inits`), finding and patching the track references
//! of a segment (`tfhd_track_id_offsets`, `retrack_segment`, `patch_track_ids`) and rebasing
//! its decode times (`rebase_decode_times`).
//!
//! Input: two byte strings, `len (u16 big-endian) | first (len bytes) | second`: a video and
//! an audio init for the merge, and each also used as a segment. Beyond not panicking, what
//! the module documents is checked: a merge of two readable headers reads back with tracks
//! 1 and 2; a retracked segment has the same length, the same reference offsets, all set to
//! the new ID, and equals patching it piece by piece; a failed rebase leaves the segment
//! unchanged.
#![no_main]

use casterpak::cmaf::{self, mux};
use libfuzzer_sys::fuzz_target;

fn segment_checks(seg: &[u8]) {
    let Ok(offsets) = mux::tfhd_track_id_offsets(seg) else {
        assert!(mux::retrack_segment(seg, 2).is_err());
        return;
    };
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets not ascending"
    );
    assert!(offsets.iter().all(|&o| o + 4 <= seg.len() as u64));
    let out =
        mux::retrack_segment(seg, mux::AUDIO_TRACK_ID).expect("offsets found, so retrack works");
    assert_eq!(out.len(), seg.len());
    assert_eq!(mux::tfhd_track_id_offsets(&out).as_ref(), Ok(&offsets));
    for &o in &offsets {
        let o = o as usize;
        assert_eq!(out[o..o + 4], mux::AUDIO_TRACK_ID.to_be_bytes());
    }
    // Patching the segment in windows of 3 bytes (fields cut anywhere) gives the same bytes.
    let mut pieces = seg.to_vec();
    for (i, w) in pieces.chunks_mut(3).enumerate() {
        mux::patch_track_ids(w, i as u64 * 3, &offsets, mux::AUDIO_TRACK_ID);
    }
    assert_eq!(&pieces[..], &out[..], "windowed patch differs from retrack");

    let mut rebased = seg.to_vec();
    let minus = seg.len() as u64 * 0x1_0000_0001;
    if mux::rebase_decode_times(&mut rebased, minus).is_err() {
        assert_eq!(rebased, seg, "a failed rebase changed the segment");
    } else {
        assert_eq!(rebased.len(), seg.len());
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let len = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
    let (video, audio) = data[2..].split_at(len);

    // Only when both headers read on their own (`InitInfo` refuses, say, a zero timescale
    // that the merge copies as it is).
    let readable = |init: &[u8]| matches!(cmaf::scan_init(init), Some(Ok(_)));
    let both_readable = readable(video) && readable(audio);
    if let (Ok(merged), true) = (mux::merge_inits(video, audio), both_readable) {
        match cmaf::scan_init(&merged) {
            Some(Ok(info)) => {
                assert!(
                    info.track(mux::VIDEO_TRACK_ID).is_some()
                        && info.track(mux::AUDIO_TRACK_ID).is_some(),
                    "merged init lacks track 1 or 2: {info:?}"
                );
            }
            other => panic!("merged init does not read back: {other:?}"),
        }
    }
    segment_checks(video);
    segment_checks(audio);
});
