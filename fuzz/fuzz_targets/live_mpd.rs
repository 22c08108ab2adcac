//! The MPD an encoder uploads: the typed read (`live::mpd::Mpd::parse`, `representations`,
//! `RepresentationInfo::segment_number`), what ingest learns from it (`live::Registry::learn`,
//! `live::timeline::Timeline::on_complete`), the LL-HLS multivariant playlist made from its
//! representations (`live::llhls::parse_frame_rate`, `multivariant_playlist`) and the
//! rewrite applied on every egress (`live::mpd::rewrite`).
//!
//! Input: the MPD bytes as uploaded.
#![no_main]

use casterpak::live::llhls::{self, VariantInfo, VariantKind};
use casterpak::live::mpd::{self, Mpd, Rewrite};
use casterpak::live::timeline::Timeline;
use casterpak::live::Registry;
use casterpak::store::ObjectKey;
use libfuzzer_sys::fuzz_target;
use quick_xml::events::Event;

/// Whether `data` is UTF-8 XML whose elements and attributes all read without error.
/// quick-xml checks attributes only when asked, and the rewrite skips the ones it cannot
/// read, so an input with a broken attribute list can come out broken in another way.
fn attributes_well_formed(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Err(_) => return false,
            Ok(Event::Eof) => return true,
            Ok(Event::Start(e) | Event::Empty(e)) => {
                if e.attributes().any(|a| a.is_err()) {
                    return false;
                }
            }
            Ok(_) => {}
        }
    }
}

/// File names a media template could produce (`$Number$`, `$Number%05d$`, `$Time$`).
fn names(media: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(start) = media.find('$') {
        if let Some(len) = media[start + 1..].find('$') {
            let (prefix, suffix) = (&media[..start], &media[start + 2 + len..]);
            for n in [
                "1",
                "00042",
                "18446744073709551615",
                "99999999999999999999",
                "",
            ] {
                out.push(format!("{prefix}{n}{suffix}"));
            }
        }
    }
    out.push(media.to_owned());
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = Mpd::parse(data) {
        let _ = parsed.is_dynamic();
        let reps = parsed.representations();
        let mut variants = Vec::new();
        for rep in &reps {
            if let Some(media) = rep.media.as_deref() {
                for name in names(media) {
                    let _ = rep.segment_number(&name);
                }
            }
            if let Some(init) = rep.init.as_deref() {
                let _ = rep.segment_number(init);
            }
            if let Some(d) = rep.segment_duration_secs {
                assert!(!d.is_nan(), "NaN segment duration");
            }
            let kind = match rep.content_type.as_str() {
                "video" => VariantKind::Video,
                "audio" => VariantKind::Audio,
                _ => continue,
            };
            variants.push(VariantInfo {
                id: rep.id.clone(),
                kind,
                codecs: rep.codecs.clone(),
                bandwidth: rep.bandwidth,
                resolution: rep.width.zip(rep.height),
                frame_rate: rep.frame_rate.as_deref().and_then(llhls::parse_frame_rate),
            });
        }
        let _ = llhls::multivariant_playlist(&variants);

        // What ingest does with an uploaded MPD, then with a segment named by it.
        let registry = Registry::new();
        let timeline = Timeline::new(None, None);
        let key = ObjectKey::from_decoded("live/x/stream.mpd").unwrap();
        registry.learn(&key, data, None);
        timeline.on_complete(&registry, &key);
        for rep in &reps {
            for name in rep.media.as_deref().map(names).unwrap_or_default() {
                if let Ok(seg) = key.sibling(&name) {
                    let _ = registry.segment_of(&seg);
                    let _ = registry.track_kind(&seg, None);
                }
            }
        }
        timeline.end_recovered(&registry);
    }

    for rw in [
        Rewrite {
            time_url: "http://127.0.0.1:5001/time",
            target_latency_ms: 1500,
            time_shift_buffer_secs: Some(60.0),
        },
        Rewrite {
            time_url: "https://origin.example/time?a=1&b=\"2\"",
            target_latency_ms: 0,
            time_shift_buffer_secs: None,
        },
    ] {
        let out = mpd::rewrite(data, &rw);
        if let (Ok(out), true) = (&out, attributes_well_formed(data)) {
            // The rewrite keeps a well-formed document well-formed: rewriting its output
            // succeeds. (Inputs with broken attribute lists are accepted and can come out
            // broken: see fuzz/README.md, "Findings".)
            assert!(
                mpd::rewrite(out, &rw).is_ok() && attributes_well_formed(out),
                "rewrite output is not well-formed: {}",
                String::from_utf8_lossy(out)
            );
        }
    }
});
