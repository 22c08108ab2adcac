use super::*;

/// A video rendition: `complete` segments of 4 x 0.5 s parts (a sync sample every other
/// part), then one segment in progress with `in_progress` parts; MSNs from 1.
fn video(complete: u64, in_progress: usize) -> Rendition {
    let mut segments = Vec::new();
    let part = |i: usize| Part {
        offset: i as u64 * 1000,
        size: 1000,
        duration_secs: 0.5,
        independent: i % 2 == 0,
    };
    for n in 0..complete {
        segments.push(Segment {
            msn: n + 1,
            uri: format!("chunk-stream0-{:05}.m4s", n + 1),
            start_secs: n as f64 * 2.0,
            chunks: (0..4).map(part).collect(),
            parts: (0..4).map(part).collect(),
            complete: true,
        });
    }
    if in_progress > 0 {
        segments.push(Segment {
            msn: complete + 1,
            uri: format!("chunk-stream0-{:05}.m4s", complete + 1),
            start_secs: complete as f64 * 2.0,
            chunks: (0..in_progress).map(part).collect(),
            parts: (0..in_progress).map(part).collect(),
            complete: false,
        });
    }
    Rendition {
        id: "0".into(),
        init_uri: "init-stream0.m4s".into(),
        segments,
    }
}

const TIMING: Timing = Timing {
    target_duration: 2,
    part_target: 0.512,
    segment_secs: 2.0,
    part_hold_back: 1.536,
};

fn opts(skip: Skip, ended: bool) -> MediaOptions<'static> {
    MediaOptions {
        timing: TIMING,
        epoch_ms: Some(1_795_000_000_123),
        ended,
        vod: false,
        first_msn: None,
        window_secs: 60.0,
        skip,
        reports: &[],
    }
}

fn d(msn: Option<u64>, part: Option<u64>) -> Directives {
    Directives {
        msn,
        part,
        skip: Skip::No,
    }
}

fn parse_media(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

#[test]
fn directives_parse_and_every_bad_form_is_400() {
    assert_eq!(Directives::parse(None).unwrap(), Directives::default());
    let ok = Directives::parse(Some("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&x=1")).unwrap();
    assert_eq!((ok.msn, ok.part, ok.skip), (Some(12), Some(3), Skip::Yes));
    assert_eq!(
        Directives::parse(Some("_HLS_skip=v2")).unwrap().skip,
        Skip::V2
    );
    assert_eq!(
        Directives::parse(Some("_HLS_skip=no")).unwrap().skip,
        Skip::No
    );
    for bad in [
        "_HLS_part=1",
        "_HLS_msn=",
        "_HLS_msn=-1",
        "_HLS_msn=1.5",
        "_HLS_msn=1&_HLS_part=x",
        "_HLS_msn=99999999999999999999",
    ] {
        let e = Directives::parse(Some(bad)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadRequest, "{bad}");
    }
}

#[test]
fn blocking_rules_of_rfc8216bis_6_2_5_2() {
    // Segments 1..=5 complete, segment 6 has 2 parts (last part 6.1).
    let r = video(5, 2);
    let check = |m, p| check_reload(&r, &d(m, p), &TIMING, false);
    assert_eq!(check(None, None), Ok(Reload::Ready));
    assert_eq!(check(Some(5), None), Ok(Reload::Ready));
    assert_eq!(
        check(Some(6), None),
        Ok(Reload::Wait),
        "segment 6 not complete"
    );
    assert_eq!(check(Some(6), Some(1)), Ok(Reload::Ready));
    assert_eq!(check(Some(6), Some(2)), Ok(Reload::Wait), "the hinted part");
    assert_eq!(check(Some(3), Some(0)), Ok(Reload::Ready), "old part");
    // Part index past the end of a complete segment means part 0 of the next one.
    assert_eq!(check(Some(5), Some(4)), Ok(Reload::Ready), "= 6.0, exists");
    assert_eq!(check(Some(5), Some(40)), Ok(Reload::Ready), "= 6.0, exists");
    // MSN more than two past the last segment: 400 at once.
    assert_eq!(check(Some(8), None), Ok(Reload::Wait));
    let e = check(Some(9), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadRequest);
    assert!(matches!(e, LlHlsError::TooFarAhead { last_msn: 6, .. }));
    // Advance Part Limit: 3 / 0.512 = 5.86 parts past 6.1.
    assert!(TIMING.advance_part_limit() > 5.8 && TIMING.advance_part_limit() < 5.9);
    assert_eq!(check(Some(6), Some(6)), Ok(Reload::Wait), "5 parts ahead");
    assert!(check(Some(6), Some(7)).is_err(), "6 parts ahead");
    // Across the boundary: 6.2, 6.3 then 7.0 .. 7.2 = 5 parts ahead.
    assert_eq!(check(Some(7), Some(2)), Ok(Reload::Wait));
    assert!(check(Some(7), Some(3)).is_err());
    assert!(check(Some(8), Some(0)).is_err());
    // An ended playlist ignores every directive.
    assert_eq!(
        check_reload(&r, &d(Some(100), Some(0)), &TIMING, true),
        Ok(Reload::Ready)
    );
    // A part target of 1 s or more: the limit is 3 parts.
    let slow = Timing {
        target_duration: 4,
        part_target: 1.0,
        segment_secs: 4.0,
        part_hold_back: 3.0,
    };
    assert_eq!(slow.advance_part_limit(), 3.0);
    assert_eq!(
        check_reload(&r, &d(Some(6), Some(4)), &slow, false),
        Ok(Reload::Wait)
    );
    assert!(check_reload(&r, &d(Some(6), Some(5)), &slow, false).is_err());
    // Nothing yet: wait for the first part.
    assert_eq!(
        check_reload(&Rendition::default(), &d(Some(1), Some(0)), &TIMING, false),
        Ok(Reload::Wait)
    );
    // The 503 after three target durations is the server's timeout; its error class.
    assert_eq!(TIMING.block_limit_secs(), 6.0);
    let e = LlHlsError::NotReady {
        msn: 7,
        part: Some(0),
        waited_secs: 6.0,
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[test]
fn a_complete_segments_next_part_index_waits_for_the_next_segment() {
    // Segment 5 complete, nothing of 6 yet.
    let r = video(5, 0);
    assert_eq!(
        check_reload(&r, &d(Some(5), Some(4)), &TIMING, false),
        Ok(Reload::Wait)
    );
    assert_eq!(
        check_reload(&r, &d(Some(6), Some(0)), &TIMING, false),
        Ok(Reload::Wait)
    );
    assert!(part_may_come(&r, 6, 0, &TIMING, false));
    assert!(!part_may_come(&r, 5, 4, &TIMING, false), "5 is complete");
    assert!(!part_may_come(&r, 5, 1, &TIMING, false), "exists");
    assert!(!part_may_come(&r, 9, 0, &TIMING, false), "too far");
    assert!(!part_may_come(&r, 6, 0, &TIMING, true), "ended");
}

#[test]
fn media_playlist_parses_back_and_lists_parts_of_the_last_segments() {
    let r = video(5, 2);
    let reports = [("1".to_owned(), 6, Some(1)), ("2".to_owned(), 6, None)];
    let o = MediaOptions {
        reports: &reports,
        ..opts(Skip::No, false)
    };
    let text = media_playlist(&r, &o);
    let p = parse_media(&text);
    assert_eq!(p.target_duration, 2);
    assert_eq!(p.media_sequence, 1);
    assert_eq!(p.segments.len(), 5, "{text}");
    assert_eq!(p.segments[4].uri, "chunk-stream0-00005.m4s");
    assert!(!p.end_list);
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.512\n"));
    assert!(text.contains(
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.536,HOLD-BACK=6.000\n"
    ));
    assert!(text.contains("#EXT-X-MAP:URI=\"init-stream0.m4s\"\n"));
    // Parts only for segments starting within 3 target durations of the end (11 s):
    // segments 4, 5 and the unfinished 6.
    assert!(!text.contains("llhls-part_0_3_"));
    assert!(
        text.contains("#EXT-X-PART:DURATION=0.500,URI=\"llhls-part_0_4_0.m4s\",INDEPENDENT=YES\n")
    );
    assert!(text.contains("#EXT-X-PART:DURATION=0.500,URI=\"llhls-part_0_4_1.m4s\"\n"));
    assert!(text.contains("llhls-part_0_6_1.m4s"));
    assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"llhls-part_0_6_2.m4s\"\n"));
    assert_eq!(text.matches("#EXT-X-PRELOAD-HINT").count(), 1);
    assert!(text.contains("#EXT-X-RENDITION-REPORT:URI=\"llhls_1.m3u8\",LAST-MSN=6,LAST-PART=1\n"));
    assert!(text.contains("#EXT-X-RENDITION-REPORT:URI=\"llhls_2.m3u8\",LAST-MSN=6\n"));
    // PROGRAM-DATE-TIME with milliseconds: epoch + segment start.
    assert!(
        text.contains(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n",
            format_pdt(1_795_000_000_123 + 8000)
        )),
        "{text}"
    );
    assert!(format_pdt(1_795_000_000_123).ends_with(".123Z"));
    // Every part is at most PART-TARGET long.
    for line in text.lines().filter(|l| l.starts_with("#EXT-X-PART:")) {
        let dur: f64 = line["#EXT-X-PART:DURATION=".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(dur <= TIMING.part_target, "{line}");
    }
}

#[test]
fn the_hint_after_a_complete_segment_is_part_0_of_the_next() {
    let text = media_playlist(&video(5, 0), &opts(Skip::No, false));
    assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"llhls-part_0_6_0.m4s\"\n"));
    // A segment whose parts reach its nominal end is about to close: hint the next one,
    // not a fifth part that will never exist.
    let text = media_playlist(&video(5, 4), &opts(Skip::No, false));
    assert!(
        text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"llhls-part_0_7_0.m4s\"\n"),
        "{text}"
    );
    // AAC: 0.512 s parts from 2.048 s; the segment ends with the part crossing 4.0 s.
    let mut audio = video(1, 0);
    let seg0 = &mut audio.segments[0];
    for p in seg0.parts.iter_mut().chain(seg0.chunks.iter_mut()) {
        p.duration_secs = 0.512;
    }
    let mut seg = audio.segments[0].clone();
    seg.msn = 2;
    seg.start_secs = 2.048;
    seg.complete = false;
    seg.parts.truncate(3);
    seg.chunks.truncate(3);
    audio.segments.push(seg.clone());
    let text = media_playlist(&audio, &opts(Skip::No, false));
    assert!(
        text.contains("URI=\"llhls-part_0_2_3.m4s\"\n"),
        "3 parts end at 3.584 s:\n{text}"
    );
    let next = Part {
        offset: 3000,
        ..seg.parts[0]
    };
    audio.segments[1].parts.push(next);
    audio.segments[1].chunks.push(next);
    let text = media_playlist(&audio, &opts(Skip::No, false));
    assert!(
        text.contains("URI=\"llhls-part_0_3_0.m4s\"\n"),
        "4 parts end at 4.096 s:\n{text}"
    );
}

#[test]
fn ended_playlist_is_vod_like() {
    let text = media_playlist(&video(40, 3), &opts(Skip::Yes, true));
    let p = parse_media(&text);
    assert!(p.end_list);
    assert_eq!(p.segments.len(), 40, "every complete segment, no window");
    assert!(!text.contains("#EXT-X-PART:"));
    assert!(!text.contains("PRELOAD-HINT"));
    assert!(!text.contains("EXT-X-SKIP"), "no delta once ended");
    assert!(!text.contains("RENDITION-REPORT"));
}

#[test]
fn live_window_and_delta_skip_boundary() {
    // 60 s of segments + 1 part; window 60 s keeps all.
    let r = video(30, 1);
    let full = media_playlist(&r, &opts(Skip::No, false));
    assert_eq!(parse_media(&full).segments.len(), 30);
    let short = MediaOptions {
        window_secs: 10.0,
        ..opts(Skip::No, false)
    };
    let windowed = media_playlist(&r, &short);
    let p = parse_media(&windowed);
    // Never less than 3 target durations + 1: segments ending within 10 s of the end.
    assert!(
        p.segments.len() >= 4 && p.segments.len() < 30,
        "{}",
        p.segments.len()
    );
    assert_eq!(p.media_sequence, 31 - p.segments.len() as u64 - 1 + 1);

    let delta = media_playlist(&r, &opts(Skip::Yes, false));
    let skipped: usize = delta
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS="))
        .expect("a skip tag")
        .parse()
        .unwrap();
    let p = parse_media(&delta);
    assert_eq!(
        p.media_sequence, 1,
        "the MSN of the first (skipped) segment"
    );
    assert_eq!(skipped + p.segments.len(), 30);
    // What remains covers at least CAN-SKIP-UNTIL (6 x target duration = 12 s).
    let remaining: f64 = p
        .segments
        .iter()
        .map(|s| f64::from(s.duration))
        .sum::<f64>()
        + 0.5;
    assert!(remaining >= TIMING.can_skip_until(), "{remaining}");
    assert!(
        remaining < TIMING.can_skip_until() + 2.0 + 0.5,
        "skips as much as allowed"
    );
    assert_eq!(TIMING.can_skip_until(), 12.0);
    assert!(TIMING.can_skip_until() >= 6.0 * TIMING.target_duration as f64);
    // v2 is the same here (no date ranges); a short playlist skips nothing.
    assert_eq!(media_playlist(&r, &opts(Skip::V2, false)), delta);
    let small = media_playlist(&video(5, 1), &opts(Skip::Yes, false));
    assert!(!small.contains("EXT-X-SKIP"));
}

#[test]
fn timing_is_derived_from_the_chunks() {
    let mut audio = video(1, 0);
    for p in &mut audio.segments[0].chunks {
        p.duration_secs = 0.512;
    }
    let t = Timing::derive([&video(1, 0), &audio], Some(2.0), None).unwrap();
    assert_eq!(t, TIMING);
    assert!(t.part_hold_back() >= 3.0 * t.part_target);
    assert!(t.hold_back() >= 3.0 * t.target_duration as f64);
    let forced = Timing::derive([&video(1, 0)], Some(2.0), Some(1.0)).unwrap();
    assert_eq!(forced.part_target, 1.0);
    assert_eq!(forced.part_hold_back(), 3.0);
    // PART-HOLD-BACK set: kept when at least 2 x PART-TARGET (RFC 8216bis §4.4.3.8),
    // raised to it when lower, unchanged when absent.
    assert_eq!(t.with_part_hold_back(Some(1.2)).part_hold_back(), 1.2);
    assert_eq!(t.with_part_hold_back(Some(0.5)).part_hold_back(), 1.024);
    assert_eq!(t.with_part_hold_back(None), t);
    assert_eq!(t.with_part_hold_back(Some(0.0)), t);
    assert_eq!(Timing::derive([&video(0, 3)], Some(2.0), None), None);
}

#[test]
fn multivariant_parses_back() {
    let v = |id: &str, bw, w, h, c: &str| VariantInfo {
        id: id.into(),
        kind: VariantKind::Video,
        codecs: Some(c.into()),
        bandwidth: Some(bw),
        resolution: Some((w, h)),
        frame_rate: Some(30.0),
    };
    let variants = [
        v("0", 1_500_000, 640, 360, "avc1.64001e"),
        v("1", 400_000, 320, 180, "avc1.64000d"),
        VariantInfo {
            id: "2".into(),
            kind: VariantKind::Audio,
            codecs: Some("mp4a.40.2".into()),
            bandwidth: Some(128_000),
            resolution: None,
            frame_rate: None,
        },
    ];
    let text = multivariant_playlist(&variants);
    let p = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
        other => panic!("{other:?}\n{text}"),
    };
    assert_eq!(p.variants.len(), 2);
    assert_eq!(p.variants[0].uri, "llhls_0.m3u8");
    assert_eq!(p.variants[0].bandwidth, 1_628_000);
    assert_eq!(
        p.variants[0].codecs.as_deref(),
        Some("avc1.64001e,mp4a.40.2")
    );
    assert_eq!(p.variants[0].audio.as_deref(), Some("audio"));
    assert_eq!(p.alternatives.len(), 1);
    assert_eq!(p.alternatives[0].uri.as_deref(), Some("llhls_2.m3u8"));
    assert!(p.alternatives[0].default);
}

#[test]
fn file_names_round_trip() {
    assert_eq!(
        LlHlsFile::from_file_name(&part_uri("0", 12, 3)),
        Some(LlHlsFile::Part {
            rep: "0".into(),
            msn: 12,
            index: 3
        })
    );
    assert_eq!(
        LlHlsFile::from_file_name(&media_uri("v_1")),
        Some(LlHlsFile::Media("v_1".into()))
    );
    assert_eq!(part_uri("a b", 1, 2), "llhls-part_a%20b_1_2.m4s");
    assert_eq!(LlHlsFile::from_file_name("llhls_.m3u8"), None);
    assert_eq!(LlHlsFile::from_file_name("llhls-part__1_2.m4s"), None);
    assert_eq!(LlHlsFile::from_file_name("master.m3u8"), None);
    assert_eq!(
        parse_frame_rate("30000/1001").map(|f| (f * 100.0).round()),
        Some(2997.0)
    );
    assert_eq!(parse_frame_rate("0/1"), None);
}

/// Must fail: a playlist whose PART-TARGET is below a listed part breaks the 85 % / max
/// rule; this guards the checker used above.
#[test]
#[should_panic(expected = "EXT-X-PART")]
fn part_longer_than_the_target_is_caught() {
    let t = Timing {
        target_duration: 2,
        part_target: 0.4,
        segment_secs: 2.0,
        part_hold_back: 1.2,
    };
    let text = media_playlist(
        &video(5, 2),
        &MediaOptions {
            timing: t,
            ..opts(Skip::No, false)
        },
    );
    for line in text.lines().filter(|l| l.starts_with("#EXT-X-PART:")) {
        let dur: f64 = line["#EXT-X-PART:DURATION=".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(dur <= t.part_target, "{line}");
    }
}

/// A rendition of one segment of `n` chunks of `secs` each, a sync sample every `gop`
/// chunks, grouped for PART-TARGET `target`.
fn chunked(n: usize, secs: f64, gop: usize, complete: bool, target: f64) -> Rendition {
    let chunks: Vec<Part> = (0..n)
        .map(|i| Part {
            offset: i as u64 * 100,
            size: 100,
            duration_secs: secs,
            independent: i % gop == 0,
        })
        .collect();
    let mut seg = Segment {
        msn: 1,
        uri: "chunk-stream0-00001.m4s".into(),
        start_secs: 0.0,
        chunks,
        parts: Vec::new(),
        complete,
    };
    seg.regroup(Some(target));
    Rendition {
        id: "0".into(),
        init_uri: "init-stream0.m4s".into(),
        segments: vec![seg],
    }
}

#[test]
fn every_frame_chunks_make_parts_of_about_a_fifth_of_a_second() {
    // ffmpeg -frag_type every_frame: 1/30 s video chunks, 1024/48000 s AAC chunks.
    let v = chunked(60, 512.0 / 15360.0, 30, true, 1.0);
    let a = chunked(94, 1024.0 / 48000.0, 1, true, 1.0);
    let t = Timing::derive([&v, &a], Some(2.0), None).unwrap();
    assert_eq!(
        t.part_target, 0.214,
        "ten AAC frames (0.2133 s); six video frames fit"
    );
    // 29.97 fps: six frames are 0.2002 s, rounded up to the millisecond.
    let ntsc = chunked(60, 1001.0 / 30000.0, 30, true, 1.0);
    assert_eq!(
        Timing::derive([&ntsc], Some(2.0), None)
            .unwrap()
            .part_target,
        0.201
    );
    // Chunks of 0.2 s or more stay one part each; an override is never below a chunk.
    let half = chunked(4, 0.5, 2, true, 1.0);
    assert_eq!(
        Timing::derive([&half], Some(2.0), None)
            .unwrap()
            .part_target,
        0.5
    );
    assert_eq!(
        Timing::derive([&half], Some(2.0), Some(0.1))
            .unwrap()
            .part_target,
        0.5
    );
    assert_eq!(
        Timing::derive([&half], Some(2.0), Some(1.0))
            .unwrap()
            .part_target,
        1.0
    );

    let v = chunked(60, 512.0 / 15360.0, 30, true, t.part_target);
    let parts = &v.segments[0].parts;
    assert_eq!(parts.len(), 10, "six frames a part: seven would be 0.233 s");
    for (i, p) in parts.iter().enumerate() {
        assert!(p.duration_secs <= t.part_target + 1e-9, "{p:?}");
        assert_eq!(
            (p.offset, p.size),
            (i as u64 * 600, 600),
            "six whole chunks, contiguous"
        );
        assert_eq!(
            p.independent,
            i % 5 == 0,
            "part {i} starts with a sync sample or not"
        );
    }
    let a = chunked(94, 1024.0 / 48000.0, 1, true, t.part_target);
    let parts = &a.segments[0].parts;
    assert!(
        parts[..parts.len() - 1]
            .iter()
            .all(|p| p.size == 1000 && p.duration_secs >= 0.2),
        "ten AAC frames a part, each at least 0.2 s"
    );
    assert_eq!(
        parts.iter().map(|p| p.size).sum::<u64>(),
        9400,
        "every chunk in a part"
    );

    // A chunk longer than the target is a part of its own, never split.
    let odd = chunked(3, 0.3, 1, true, 0.2);
    assert_eq!(odd.segments[0].parts.len(), 3);
}

#[test]
fn a_part_is_listed_only_once_whole_and_the_hint_names_the_part_in_progress() {
    let t = Timing {
        target_duration: 2,
        part_target: 0.2,
        segment_secs: 2.0,
        part_hold_back: 0.6,
    };
    let o = MediaOptions {
        timing: t,
        ..opts(Skip::No, false)
    };
    // 8 frames: one whole part (0-5), frames 6-7 in progress.
    let r = chunked(8, 1.0 / 30.0, 30, false, 0.2);
    assert_eq!(r.segments[0].parts.len(), 1);
    let text = media_playlist(&r, &o);
    assert_eq!(text.matches("#EXT-X-PART:").count(), 1, "{text}");
    assert!(
        text.contains("#EXT-X-PART:DURATION=0.200,URI=\"llhls-part_0_1_0.m4s\",INDEPENDENT=YES\n")
    );
    assert!(
        text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"llhls-part_0_1_1.m4s\"\n"),
        "{text}"
    );
    assert_eq!(
        check_reload(
            &r,
            &Directives {
                msn: Some(1),
                part: Some(1),
                skip: Skip::No
            },
            &t,
            false
        ),
        Ok(Reload::Wait)
    );
    assert!(part_may_come(&r, 1, 1, &t, false));
    // The upload ends after 59 frames: the last 5 frames are the last part, shorter.
    let r = chunked(59, 1.0 / 30.0, 30, true, 0.2);
    let last = r.segments[0].parts.last().copied().unwrap();
    assert_eq!((r.segments[0].parts.len(), last.size), (10, 500));
    let text = media_playlist(&r, &o);
    assert!(text.contains("#EXTINF:1.967,"), "{text}");
    assert!(text.contains("URI=\"llhls-part_0_2_0.m4s\"\n"), "{text}");
    // 60 frames, upload not yet ended: the tenth part is whole and reaches the nominal end.
    let r = chunked(60, 1.0 / 30.0, 30, false, 0.2);
    assert_eq!(r.segments[0].parts.len(), 10);
    let text = media_playlist(&r, &o);
    assert!(text.contains("URI=\"llhls-part_0_2_0.m4s\"\n"), "{text}");
}

#[test]
fn a_finished_package_is_a_vod_playlist_without_low_latency_tags() {
    // Six complete segments and one still arriving (never listed).
    let r = video(6, 2);
    let o = MediaOptions {
        vod: true,
        epoch_ms: None,
        ..opts(Skip::No, true)
    };
    let text = media_playlist(&r, &o);
    let p = parse_media(&text);
    assert!(p.end_list);
    assert_eq!(p.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
    assert_eq!(p.segments.len(), 6);
    assert_eq!(p.media_sequence, 1);
    let total: f32 = p.segments.iter().map(|s| s.duration).sum();
    assert!((total - 12.0).abs() < 1e-3, "{total}");
    for tag in [
        "PART",
        "SERVER-CONTROL",
        "PRELOAD-HINT",
        "RENDITION-REPORT",
        "SKIP",
        "PROGRAM-DATE-TIME",
    ] {
        assert!(!text.contains(tag), "{tag} in\n{text}");
    }
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"));
    assert!(text.contains("#EXT-X-MAP:URI=\"init-stream0.m4s\"\n"));
}

#[test]
fn extinf_and_part_durations_sum_to_the_program_date_time_difference() {
    // AAC segments of 94 frames (2.005333 s): rounded one by one they lost 1 ms every four
    // segments against PROGRAM-DATE-TIME, and Shaka placed a segment twice (then skipped it).
    let seg_secs = 94.0 * 1024.0 / 48_000.0;
    let mut r = video(12, 0);
    for (n, s) in r.segments.iter_mut().enumerate() {
        s.start_secs = n as f64 * seg_secs;
        for p in s.parts.iter_mut().chain(s.chunks.iter_mut()) {
            p.duration_secs = seg_secs / 4.0;
        }
    }
    let text = media_playlist(&r, &opts(Skip::No, false));
    let mut pdt = Vec::new();
    let mut extinf_ms = 0i64;
    let mut parts_ms = 0i64;
    let mut with_parts = 0;
    let ms = |v: &str| -> i64 { (v.parse::<f64>().unwrap() * 1000.0).round() as i64 };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .unwrap();
            pdt.push((t.unix_timestamp_nanos() / 1_000_000) as i64);
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = ms(v.trim_end_matches(','));
            extinf_ms += d;
            if parts_ms > 0 {
                // The parts of a segment sum to its EXTINF.
                assert_eq!(parts_ms, d, "{text}");
                with_parts += 1;
            }
            parts_ms = 0;
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            parts_ms += ms(v.split(',').next().unwrap());
        }
    }
    assert_eq!(pdt.len(), 12);
    assert!(with_parts >= 2, "{text}");
    // The first 11 EXTINF end where the 12th segment's PROGRAM-DATE-TIME starts.
    let last_extinf = ms(&span_secs(11.0 * seg_secs, seg_secs));
    assert_eq!(extinf_ms - last_extinf, pdt[11] - pdt[0], "{text}");
}

#[test]
fn every_rendition_can_start_its_window_at_the_same_msn() {
    let mut audio = video(30, 1);
    for (n, s) in audio.segments.iter_mut().enumerate() {
        s.start_secs = n as f64 * 2.005;
        for p in s.parts.iter_mut().chain(s.chunks.iter_mut()) {
            p.duration_secs = 2.005 / 4.0;
        }
    }
    let v = video(30, 1);
    let own = |r: &Rendition| window_first_msn(r, &TIMING, 10.0);
    let first = own(&v).max(own(&audio));
    let o = MediaOptions {
        window_secs: 10.0,
        first_msn: first,
        ..opts(Skip::No, false)
    };
    let a = parse_media(&media_playlist(&audio, &o));
    let b = parse_media(&media_playlist(&v, &o));
    assert_eq!(a.media_sequence, b.media_sequence);
    assert_eq!(Some(a.media_sequence), first);
}
