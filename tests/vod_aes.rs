//! HLS AES-128 (`hls_encryption = "aes-128"`): TS and CMAF segments on the wire are
//! encrypted whole (not MPEG-TS, not ISO-BMFF without the key), decrypt to exactly the
//! clear output, and play in ffmpeg with the key the origin serves; with a wrong key
//! ffmpeg fails. DASH stays clear.

#[path = "vod_common.rs"]
mod common;

use std::path::Path;

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use casterpak::error::ErrorKind;
use casterpak::vod::config::VodConfig;
use casterpak::vod::csmil::Format;
use casterpak::vod::Vod;
use common::*;

const SECRET: &str = "000102030405060708090a0b0c0d0e0f1011121314151617";

fn encrypted_vod(root: &Path) -> Vod {
    let cfg = VodConfig {
        media_root: root.to_string_lossy().into_owned(),
        segment_duration_secs: 4.0,
        hls_encryption: "aes-128".into(),
        hls_encryption_secret: Some(SECRET.into()),
        ..Default::default()
    };
    Vod::new(&cfg).unwrap()
}

async fn body(vod: &Vod, format: Format, path: &str) -> Vec<u8> {
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    vod.respond_as(format, p, q)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .body
        .to_vec()
}

fn decrypt(key: &[u8], iv: u128, data: &[u8]) -> Vec<u8> {
    cbc::Decryptor::<aes::Aes128>::new(key.into(), &iv.to_be_bytes().into())
        .decrypt_padded_vec_mut::<Pkcs7>(data)
        .expect("PKCS#7 padding")
}

/// (key URI, IV) of every `EXT-X-KEY` line, in order.
fn key_lines(playlist: &str) -> Vec<(String, u128)> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-KEY:"))
        .map(|attrs| {
            assert!(attrs.starts_with("METHOD=AES-128,"), "{attrs}");
            let uri = attrs
                .split("URI=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let iv = attrs.split("IV=0x").nth(1).unwrap();
            (uri.to_string(), u128::from_str_radix(iv, 16).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn ts_segments_are_encrypted_and_decrypt_to_the_clear_output() {
    let fx = fixtures();
    let enc = encrypted_vod(fx);
    let clear = vod(fx, 4.0);
    let pl =
        String::from_utf8(body(&enc, Format::Ts, "faststart.mp4/index_0_av.m3u8").await).unwrap();
    let keys = key_lines(&pl);
    let segs: Vec<&str> = pl.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(keys.len(), segs.len(), "{pl}");
    let key = body(&enc, Format::Ts, &format!("faststart.mp4/{}", keys[0].0)).await;
    assert_eq!(key.len(), 16);
    for (n, (seg, (_, iv))) in segs.iter().zip(&keys).enumerate() {
        assert_eq!(*iv, n as u128 + 1, "IV = segment number");
        let wire = body(&enc, Format::Ts, &format!("faststart.mp4/{seg}")).await;
        assert_eq!(wire.len() % 16, 0);
        // Not MPEG-TS: a transport stream has a 0x47 sync byte every 188 bytes; random
        // bytes have one at about 1 in 256 of those places.
        let places = wire.len() / 188;
        let synced = (0..places).filter(|i| wire[i * 188] == 0x47).count();
        assert!(
            synced * 16 < places,
            "segment {seg} on the wire reads as MPEG-TS ({synced} of {places} sync bytes)"
        );
        let want = body(&clear, Format::Ts, &format!("faststart.mp4/{seg}")).await;
        assert_eq!(decrypt(&key, *iv, &wire), want, "segment {seg}");
    }
    // Every file has its own key.
    let other = body(&enc, Format::Ts, "moov_end.mp4/key_0.key").await;
    assert_ne!(other, key);
    // The key of a missing file is a 404, like its playlist.
    let e = enc
        .respond_as(Format::Ts, "nope.mp4/key_0.key", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    // Without encryption there is no key and no EXT-X-KEY.
    let e = clear
        .respond_as(Format::Ts, "faststart.mp4/key_0.key", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let clear_pl =
        String::from_utf8(body(&clear, Format::Ts, "faststart.mp4/index_0_av.m3u8").await).unwrap();
    assert!(!clear_pl.contains("EXT-X-KEY"));
    // No I-frames of encrypted output (they would go out in the clear): not in the master,
    // and their playlist and resources are 404s; the clear origin serves them.
    for (format, resource) in [
        (Format::Ts, "iframe1_0_0.ts"),
        (Format::Cmaf, "iframe1_0_0.m4s"),
    ] {
        let master =
            String::from_utf8(body(&enc, format, "faststart.mp4/master.m3u8").await).unwrap();
        assert!(!master.contains("I-FRAME"), "{master}");
        for p in ["iframes_0.m3u8", resource] {
            let path = format!("faststart.mp4/{p}");
            let e = enc.respond_as(format, &path, None).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{path}");
            assert!(!body(&clear, format, &path).await.is_empty(), "{path}");
        }
    }
}

#[tokio::test]
async fn cmaf_fragments_are_encrypted_and_dash_stays_clear() {
    let fx = fixtures();
    let enc = encrypted_vod(fx);
    let pl =
        String::from_utf8(body(&enc, Format::Cmaf, "faststart.mp4/index_0_v.m3u8").await).unwrap();
    let keys = key_lines(&pl);
    let map_at = pl.find("#EXT-X-MAP").unwrap();
    assert!(
        map_at < pl.find("#EXT-X-KEY").unwrap(),
        "the init is clear: MAP before KEY"
    );
    let key = body(&enc, Format::Cmaf, &format!("faststart.mp4/{}", keys[0].0)).await;
    let wire = body(&enc, Format::Cmaf, "faststart.mp4/segment2_0_v.m4s").await;
    let dash = body(&enc, Format::Dash, "faststart.mp4/segment2_0_v.m4s").await;
    assert_eq!(&dash[4..8], b"styp", "DASH is clear");
    assert_ne!(&wire[4..8], b"styp", "CMAF HLS on the wire is not ISO-BMFF");
    assert_eq!(decrypt(&key, 2, &wire), dash);
    let mpd =
        String::from_utf8(body(&enc, Format::Dash, "faststart.mp4/manifest.mpd").await).unwrap();
    assert!(!mpd.contains("key_"), "{mpd}");
}

/// Fetches an encrypted media playlist, its key(s), init and segments into `out`.
async fn dump(vod: &Vod, format: Format, asset: &str, playlist: &str, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let text = String::from_utf8(body(vod, format, &format!("{asset}/{playlist}")).await).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for l in text.lines() {
        if let Some(at) = l.find("URI=\"") {
            names.insert(l[at + 5..].split('"').next().unwrap().to_string());
        } else if !l.starts_with('#') && !l.is_empty() {
            names.insert(l.to_string());
        }
    }
    for n in names {
        std::fs::write(
            out.join(&n),
            body(vod, format, &format!("{asset}/{n}")).await,
        )
        .unwrap();
    }
    std::fs::write(out.join(playlist), text).unwrap();
}

fn ffmpeg_decode(playlist: &Path) -> (bool, String) {
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "warning",
            "-allowed_extensions",
            "ALL",
            "-i",
            &playlist.to_string_lossy(),
            "-map",
            "0",
            "-f",
            "null",
            "-",
        ],
    );
    (ok, err)
}

#[tokio::test]
async fn ffmpeg_plays_with_the_key_and_fails_without_it() {
    let fx = fixtures();
    let enc = encrypted_vod(fx);
    let out = tempfile::tempdir().unwrap();
    for (format, playlist) in [
        (Format::Ts, "index_0_av.m3u8"),
        (Format::Cmaf, "index_0_v.m3u8"),
        (Format::Cmaf, "index_0_a.m3u8"),
    ] {
        let dir = out.path().join(format!("{format:?}_{playlist}"));
        dump(&enc, format, "faststart.mp4", playlist, &dir).await;
        let (ok, err) = ffmpeg_decode(&dir.join(playlist));
        assert!(ok && err.is_empty(), "{format:?} {playlist}: {err}");
        // Must fail: the wrong key.
        std::fs::write(dir.join("key_0.key"), [0u8; 16]).unwrap();
        let (ok, err) = ffmpeg_decode(&dir.join(playlist));
        assert!(
            !ok || !err.is_empty(),
            "{format:?} {playlist} decoded with a wrong key"
        );
    }
}

#[test]
fn key_source_config() {
    let base = VodConfig {
        hls_encryption: "aes-128".into(),
        ..Default::default()
    };
    assert!(base.validate().is_err(), "aes-128 without a key source");
    let both = VodConfig {
        hls_encryption_secret: Some(SECRET.into()),
        hls_encryption_key_file: Some("/k".into()),
        ..base.clone()
    };
    assert!(both.validate().is_err());
    let short = VodConfig {
        hls_encryption_secret: Some("0011".into()),
        ..base.clone()
    };
    assert!(short.validate().is_err());
    let bad = VodConfig {
        hls_encryption: "sample-aes".into(),
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hls.key");
    std::fs::write(&file, "00112233445566778899aabbccddeeff\n").unwrap();
    let cfg = VodConfig {
        media_root: samples_dir().to_string_lossy().into_owned(),
        hls_encryption_key_file: Some(file.clone()),
        ..base.clone()
    };
    assert!(cfg.validate().is_ok());
    let vod = Vod::new(&cfg).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let key = rt
        .block_on(vod.respond_as(Format::Cmaf, "clip_360p.mp4/key_0.key", None))
        .unwrap();
    assert_eq!(hex::encode(&key.body), "00112233445566778899aabbccddeeff");
    assert_eq!(key.cache_control, "private, no-store");
    std::fs::write(&file, "xyz").unwrap();
    assert!(Vod::new(&cfg).is_err(), "a key file without a key");
}
