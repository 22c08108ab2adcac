//! Incremental ISO-BMFF box scanning of an upload as it arrives (ISO/IEC 14496-12 §4.2 box
//! headers; ISO/IEC 23000-19 CMAF §7.3 chunks).
//!
//! HTTP chunk boundaries are not CMAF chunk boundaries: ffmpeg splits a 100 KB fragment into
//! 32 KiB HTTP chunks, and a box header may be split anywhere. The scanner is fed every body
//! frame in order and works in two phases like a frame parser: first "is a whole box header
//! here?" (incomplete is not an error, the bytes wait in a 16-byte buffer), then either
//! collect the box (only `moof` and `moov`, small and capped) or skip its payload (`mdat`,
//! everything else) without copying it.
//!
//! A CMAF chunk is `[styp] [prft] [emsg...] moof mdat`; the scanner reports one
//! [`CmafChunk`] per `moof`+`mdat` pair, covering every byte since the end of the previous
//! chunk (so a segment's chunks tile it from byte 0, `styp` included in the first).
//!
//! ```text
//! segment:  styp prft moof mdat | prft moof mdat | prft moof mdat ...
//!           [---- chunk 0 -----][--- chunk 1 ---][--- chunk 2 ---]
//! init:     ftyp moov              -> ScanEvent::Moov(bytes of moov)
//! ```

use bytes::Bytes;
use mp4_atom::{Decode, Moof, TrunSamples};

use crate::error::ErrorKind;

/// Largest `moof` collected, in bytes. A 2 s every-frame fragment of 4K video has a moof of a
/// few KB; 4 MiB leaves room for hostile-but-valid files without letting input size our buffer.
pub const MAX_MOOF_BYTES: u64 = 4 << 20;
/// Largest `moov` collected (init segments are a few hundred bytes to a few KB).
pub const MAX_MOOV_BYTES: u64 = 16 << 20;

/// Bit of `sample_flags` meaning "not a sync sample" (ISO/IEC 14496-12 §8.8.3.1).
const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

/// A malformed box structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A box header declares a size smaller than the header itself.
    #[error("box '{kind}' at offset {offset} declares size {size}, below its header")]
    BadSize {
        kind: String,
        offset: u64,
        size: u64,
    },
    /// A box we must collect is larger than its cap.
    #[error("box '{kind}' at offset {offset} is {size} bytes, over the {cap}-byte cap")]
    TooLarge {
        kind: String,
        offset: u64,
        size: u64,
        cap: u64,
    },
    /// A `moof` could not be decoded.
    #[error("moof at offset {offset}: {reason}")]
    BadMoof { offset: u64, reason: String },
    /// The body ended inside a box.
    #[error("body ended inside box '{kind}' at offset {offset} ({missing} bytes missing)")]
    Truncated {
        kind: String,
        offset: u64,
        missing: u64,
    },
}

impl ScanError {
    /// Always [`ErrorKind::Corrupt`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Corrupt
    }
}

/// One complete CMAF chunk (`[styp] [prft] moof mdat`) of an upload.
///
/// Offsets and sizes are in bytes from the start of the object; times are in the track's
/// timescale ticks (the `mdhd` timescale of the init segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmafChunk {
    /// Offset of the first byte of the chunk.
    pub offset: u64,
    /// Size in bytes, up to and including the `mdat`.
    pub size: u64,
    /// `tfhd.track_ID` of the first `traf`.
    pub track_id: u32,
    /// `tfdt.baseMediaDecodeTime`, in timescale ticks (0 when the traf has no tfdt).
    pub decode_time: u64,
    /// Sum of the sample durations of the first `traf`, in timescale ticks. Samples whose
    /// duration is only in the init segment's `trex` are counted in
    /// [`CmafChunk::samples_without_duration`] instead.
    pub duration: u64,
    /// Number of samples in the first `traf`.
    pub sample_count: u32,
    /// Samples whose duration was given neither in `trun` nor in `tfhd`.
    pub samples_without_duration: u32,
    /// Whether the first sample is a sync sample by its flags (`trun` first-sample flags,
    /// per-sample flags, or `tfhd` default). `None` when no flags are given in the `moof`
    /// (then the `trex` default decides; audio is always sync).
    pub starts_with_sync: Option<bool>,
}

impl CmafChunk {
    /// Offset one past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// What the scanner found in the bytes fed so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEvent {
    /// A complete `moov` box (header included): the upload is an init segment.
    Moov(Bytes),
    /// A complete CMAF chunk.
    Chunk(CmafChunk),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a box header into `hdr`.
    Header,
    /// Copying a box (moof/moov) into `collect`; `remaining` bytes still to come.
    Collect { remaining: u64 },
    /// Skipping `remaining` payload bytes of a box; `None` means "to the end of the body".
    Skip { remaining: Option<u64> },
    /// A structural error was found; everything after is ignored.
    Failed,
}

/// Incremental scanner over one upload. Feed every body frame in order with
/// [`BoxScanner::feed`], then call [`BoxScanner::finish`] at the end of the body.
#[derive(Debug)]
pub struct BoxScanner {
    state: State,
    /// Absolute offset of the next byte to be fed.
    offset: u64,
    hdr: [u8; 16],
    hdr_len: usize,
    /// The box being collected or skipped: type and start offset.
    cur_kind: [u8; 4],
    cur_start: u64,
    collect: Vec<u8>,
    /// Where the current (not yet complete) chunk began.
    chunk_start: u64,
    /// The last decoded moof, waiting for its mdat.
    pending: Option<CmafChunk>,
}

impl Default for BoxScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl BoxScanner {
    /// A scanner positioned at offset 0 of a new body.
    pub fn new() -> Self {
        BoxScanner {
            state: State::Header,
            offset: 0,
            hdr: [0; 16],
            hdr_len: 0,
            cur_kind: [0; 4],
            cur_start: 0,
            collect: Vec::new(),
            chunk_start: 0,
            pending: None,
        }
    }

    /// Bytes fed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feeds the next body bytes; appends what became complete to `out`.
    ///
    /// Errors: [`ScanError`] on a malformed structure; the scanner then ignores the rest
    /// (the bytes are still stored, they just carry no chunk index).
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<ScanEvent>) -> Result<(), ScanError> {
        while !data.is_empty() {
            match self.state {
                State::Failed => {
                    self.offset += data.len() as u64;
                    return Ok(());
                }
                State::Header => {
                    let need = self.header_need();
                    let take = (need - self.hdr_len).min(data.len());
                    self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
                    self.hdr_len += take;
                    self.offset += take as u64;
                    data = &data[take..];
                    if self.hdr_len == self.header_need() {
                        if let Err(e) = self.start_box(out) {
                            self.state = State::Failed;
                            return Err(e);
                        }
                    }
                }
                State::Collect { remaining } => {
                    let take = remaining.min(data.len() as u64) as usize;
                    self.collect.extend_from_slice(&data[..take]);
                    self.offset += take as u64;
                    data = &data[take..];
                    let remaining = remaining - take as u64;
                    self.state = State::Collect { remaining };
                    if remaining == 0 {
                        if let Err(e) = self.end_collect(out) {
                            self.state = State::Failed;
                            return Err(e);
                        }
                    }
                }
                State::Skip { remaining: None } => {
                    self.offset += data.len() as u64;
                    return Ok(());
                }
                State::Skip {
                    remaining: Some(remaining),
                } => {
                    let take = remaining.min(data.len() as u64);
                    self.offset += take;
                    data = &data[take as usize..];
                    let remaining = remaining - take;
                    self.state = State::Skip {
                        remaining: Some(remaining),
                    };
                    if remaining == 0 {
                        self.end_box(out);
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that the body ended on a box boundary and closes a to-the-end `mdat`.
    ///
    /// Errors: [`ScanError::Truncated`] when the body ended inside a box.
    pub fn finish(&mut self, out: &mut Vec<ScanEvent>) -> Result<(), ScanError> {
        match self.state {
            State::Header if self.hdr_len == 0 => Ok(()),
            State::Skip { remaining: None } => {
                self.end_box(out);
                Ok(())
            }
            State::Failed => Ok(()),
            State::Header => Err(self.truncated(self.header_need() as u64 - self.hdr_len as u64)),
            State::Collect { remaining }
            | State::Skip {
                remaining: Some(remaining),
            } => Err(self.truncated(remaining)),
        }
    }

    fn truncated(&self, missing: u64) -> ScanError {
        ScanError::Truncated {
            kind: fourcc(&self.cur_kind),
            offset: self.cur_start,
            missing,
        }
    }

    /// Bytes of header needed: 8, or 16 once a 64-bit `largesize` is announced.
    fn header_need(&self) -> usize {
        if self.hdr_len >= 8 && u32::from_be_bytes(self.hdr[0..4].try_into().unwrap()) == 1 {
            16
        } else {
            8
        }
    }

    fn start_box(&mut self, out: &mut Vec<ScanEvent>) -> Result<(), ScanError> {
        let header_len = self.hdr_len as u64;
        let size32 = u32::from_be_bytes(self.hdr[0..4].try_into().unwrap());
        self.cur_kind.copy_from_slice(&self.hdr[4..8]);
        self.cur_start = self.offset - header_len;
        self.hdr_len = 0;
        let size = match size32 {
            0 => None,
            1 => Some(u64::from_be_bytes(self.hdr[8..16].try_into().unwrap())),
            n => Some(u64::from(n)),
        };
        if let Some(size) = size {
            if size < header_len {
                return Err(ScanError::BadSize {
                    kind: fourcc(&self.cur_kind),
                    offset: self.cur_start,
                    size,
                });
            }
        }
        let cap = match &self.cur_kind {
            b"moof" => Some(MAX_MOOF_BYTES),
            b"moov" => Some(MAX_MOOV_BYTES),
            _ => None,
        };
        match (cap, size) {
            (Some(cap), Some(size)) if size > cap => Err(ScanError::TooLarge {
                kind: fourcc(&self.cur_kind),
                offset: self.cur_start,
                size,
                cap,
            }),
            (Some(_), None) => Err(ScanError::BadSize {
                kind: fourcc(&self.cur_kind),
                offset: self.cur_start,
                size: 0,
            }),
            (Some(_), Some(size)) => {
                // Checked against the cap above, so this allocation is bounded.
                self.collect.clear();
                self.collect.reserve(size as usize);
                self.collect
                    .extend_from_slice(&self.hdr[..header_len as usize]);
                let remaining = size - header_len;
                self.state = State::Collect { remaining };
                if remaining == 0 {
                    self.end_collect(out)?;
                }
                Ok(())
            }
            (None, size) => {
                let remaining = size.map(|s| s - header_len);
                self.state = State::Skip { remaining };
                if remaining == Some(0) {
                    self.end_box(out);
                }
                Ok(())
            }
        }
    }

    fn end_collect(&mut self, out: &mut Vec<ScanEvent>) -> Result<(), ScanError> {
        let bytes = std::mem::take(&mut self.collect);
        match &self.cur_kind {
            b"moov" => out.push(ScanEvent::Moov(Bytes::from(bytes))),
            b"moof" => {
                let chunk = parse_moof(&bytes, self.cur_start)?;
                self.pending = Some(CmafChunk {
                    offset: self.chunk_start,
                    ..chunk
                });
            }
            _ => {}
        }
        self.end_box(out);
        Ok(())
    }

    /// A box ended at `self.offset`.
    fn end_box(&mut self, out: &mut Vec<ScanEvent>) {
        self.state = State::Header;
        match &self.cur_kind {
            b"mdat" => {
                if let Some(mut chunk) = self.pending.take() {
                    chunk.size = self.offset - chunk.offset;
                    out.push(ScanEvent::Chunk(chunk));
                }
                self.chunk_start = self.offset;
            }
            b"moov" | b"ftyp" | b"mfra" | b"sidx" if self.pending.is_none() => {
                self.chunk_start = self.offset;
            }
            _ => {}
        }
    }
}

/// Reads timing and sync facts from a complete `moof` box (ISO/IEC 14496-12 §8.8.4-8.8.8).
///
/// `offset` is only for the error message. Errors: [`ScanError::BadMoof`].
pub fn parse_moof(bytes: &[u8], offset: u64) -> Result<CmafChunk, ScanError> {
    super::guard::check(bytes).map_err(|e| ScanError::BadMoof {
        offset,
        reason: e.to_string(),
    })?;
    let moof = Moof::decode(&mut &bytes[..]).map_err(|e| ScanError::BadMoof {
        offset,
        reason: e.to_string(),
    })?;
    let traf = moof.traf.first().ok_or_else(|| ScanError::BadMoof {
        offset,
        reason: "no traf".into(),
    })?;
    let tfhd = &traf.tfhd;
    let mut duration = 0u64;
    let mut sample_count = 0u32;
    let mut without = 0u32;
    let mut first_flags: Option<u32> = None;
    for (run_index, trun) in traf.trun.iter().enumerate() {
        // A run without per-sample fields is only a count (up to 2^32 - 1 from a few
        // bytes): sum it without visiting every sample.
        if let TrunSamples::Inherited {
            count,
            first_flags: first,
        } = &trun.samples
        {
            sample_count = sample_count.saturating_add(*count);
            match tfhd.default_sample_duration {
                Some(d) => duration = duration.saturating_add(u64::from(d) * u64::from(*count)),
                None => without = without.saturating_add(*count),
            }
            if run_index == 0 && *count > 0 {
                first_flags = first.or(tfhd.default_sample_flags);
            }
            continue;
        }
        for (i, entry) in trun.samples.iter().enumerate() {
            sample_count = sample_count.saturating_add(1);
            match entry.duration.or(tfhd.default_sample_duration) {
                Some(d) => duration = duration.saturating_add(u64::from(d)),
                None => without = without.saturating_add(1),
            }
            if run_index == 0 && i == 0 {
                first_flags = entry.flags.or(tfhd.default_sample_flags);
            }
        }
    }
    Ok(CmafChunk {
        offset: 0,
        size: 0,
        track_id: tfhd.track_id,
        decode_time: traf.tfdt.as_ref().map_or(0, |t| t.base_media_decode_time),
        duration,
        sample_count,
        samples_without_duration: without,
        starts_with_sync: first_flags.map(|f| f & SAMPLE_IS_NON_SYNC == 0),
    })
}

fn fourcc(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Encode, Mfhd, Tfdt, Tfhd, Traf, Trun, TrunEntry, TrunSamples};

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    fn moof(seq: u32, decode_time: u64, sync: bool) -> Vec<u8> {
        let flags = if sync { 0x0200_0000 } else { 0x0101_0000 };
        let moof = Moof {
            mfhd: Mfhd {
                sequence_number: seq,
            },
            traf: vec![Traf {
                tfhd: Tfhd {
                    track_id: 1,
                    default_sample_duration: Some(512),
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(0),
                    samples: TrunSamples::Explicit(
                        (0..15)
                            .map(|i| TrunEntry {
                                size: Some(100),
                                flags: (i == 0).then_some(flags),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            }],
        };
        let mut buf = Vec::new();
        moof.encode(&mut buf).unwrap();
        buf
    }

    /// styp + 3 x (prft moof mdat), the shape ffmpeg uploads.
    fn segment() -> (Vec<u8>, Vec<(u64, u64)>) {
        let mut seg = boxed(b"styp", b"msdhmsix");
        let mut ranges = Vec::new();
        let mut start = 0u64;
        for i in 0..3u32 {
            seg.extend(boxed(b"prft", &[0; 20]));
            seg.extend(moof(i + 1, u64::from(i) * 7680, i % 2 == 0));
            seg.extend(boxed(b"mdat", &vec![i as u8; 1500 + i as usize * 333]));
            ranges.push((start, seg.len() as u64));
            start = seg.len() as u64;
        }
        (seg, ranges)
    }

    fn scan_in_pieces(data: &[u8], sizes: &mut dyn Iterator<Item = usize>) -> Vec<ScanEvent> {
        let mut s = BoxScanner::new();
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
            s.feed(&rest[..n], &mut out).unwrap();
            rest = &rest[n..];
        }
        s.finish(&mut out).unwrap();
        out
    }

    fn chunks(events: &[ScanEvent]) -> Vec<CmafChunk> {
        events
            .iter()
            .filter_map(|e| match e {
                ScanEvent::Chunk(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn chunks_tile_the_segment_whatever_the_split() {
        let (seg, ranges) = segment();
        let whole = chunks(&scan_in_pieces(&seg, &mut std::iter::empty()));
        let bytewise = chunks(&scan_in_pieces(&seg, &mut std::iter::repeat(1)));
        let odd = chunks(&scan_in_pieces(
            &seg,
            &mut [7usize, 3, 1, 4093, 2, 9].into_iter().cycle(),
        ));
        assert_eq!(whole, bytewise);
        assert_eq!(whole, odd);
        let got: Vec<(u64, u64)> = whole.iter().map(|c| (c.offset, c.end())).collect();
        assert_eq!(got, ranges);
        assert_eq!(whole[0].offset, 0, "first chunk includes styp");
        assert_eq!(whole[1].decode_time, 7680);
        assert_eq!(whole[1].duration, 15 * 512);
        assert_eq!(whole[1].sample_count, 15);
        assert_eq!(whole[0].starts_with_sync, Some(true));
        assert_eq!(whole[1].starts_with_sync, Some(false));
    }

    #[test]
    fn no_chunk_before_its_mdat_ends() {
        let (seg, ranges) = segment();
        let mut s = BoxScanner::new();
        let mut out = Vec::new();
        s.feed(&seg[..ranges[0].1 as usize - 1], &mut out).unwrap();
        assert!(chunks(&out).is_empty());
        s.feed(
            &seg[ranges[0].1 as usize - 1..ranges[0].1 as usize],
            &mut out,
        )
        .unwrap();
        assert_eq!(chunks(&out).len(), 1);
    }

    #[test]
    fn init_segment_yields_moov() {
        let mut init = boxed(b"ftyp", b"iso6\0\0\0\0iso6cmfc");
        let moov = boxed(b"moov", &boxed(b"mvhd", &[0; 100]));
        init.extend(&moov);
        let events = scan_in_pieces(&init, &mut std::iter::repeat(3));
        assert_eq!(events, vec![ScanEvent::Moov(Bytes::from(moov))]);
    }

    #[test]
    fn largesize_and_size_zero_boxes() {
        let mut data = vec![0, 0, 0, 1];
        data.extend_from_slice(b"free");
        data.extend_from_slice(&(16u64 + 4).to_be_bytes());
        data.extend_from_slice(&[9; 4]);
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend_from_slice(b"mdat");
        data.extend_from_slice(&[1; 50]);
        let mut s = BoxScanner::new();
        let mut out = Vec::new();
        for b in data.chunks(5) {
            s.feed(b, &mut out).unwrap();
        }
        s.finish(&mut out).unwrap();
        assert_eq!(s.offset(), data.len() as u64);
    }

    #[test]
    fn hostile_sizes_are_errors_not_allocations() {
        let mut s = BoxScanner::new();
        let mut out = Vec::new();
        let mut bad = 0xFFFF_FFF0u32.to_be_bytes().to_vec();
        bad.extend_from_slice(b"moof");
        assert!(matches!(
            s.feed(&bad, &mut out),
            Err(ScanError::TooLarge { .. })
        ));
        let mut s = BoxScanner::new();
        let mut tiny = 4u32.to_be_bytes().to_vec();
        tiny.extend_from_slice(b"mdat");
        assert!(matches!(
            s.feed(&tiny, &mut out),
            Err(ScanError::BadSize { .. })
        ));
        // After an error the rest is ignored, not re-parsed.
        assert!(s.feed(&[0xAB; 100], &mut out).is_ok());
    }

    #[test]
    fn truncated_body_is_reported() {
        let (seg, _) = segment();
        let mut s = BoxScanner::new();
        let mut out = Vec::new();
        s.feed(&seg[..seg.len() - 10], &mut out).unwrap();
        assert!(matches!(
            s.finish(&mut out),
            Err(ScanError::Truncated { missing: 10, .. })
        ));
    }

    #[test]
    fn garbage_moof_is_an_error() {
        let data = boxed(b"moof", &[0xFF; 40]);
        let mut s = BoxScanner::new();
        let mut out = Vec::new();
        assert!(matches!(
            s.feed(&data, &mut out),
            Err(ScanError::BadMoof { .. })
        ));
    }

    #[test]
    fn a_sample_count_without_per_sample_fields_is_summed_not_walked() {
        // 2^32 - 1 samples in a few bytes (found by fuzzing: walking them took seconds
        // per trun).
        let moof = Moof {
            mfhd: Mfhd { sequence_number: 1 },
            traf: vec![Traf {
                tfhd: Tfhd {
                    track_id: 1,
                    default_sample_duration: Some(1024),
                    ..Default::default()
                },
                trun: vec![
                    Trun {
                        data_offset: Some(0),
                        samples: TrunSamples::Inherited {
                            count: u32::MAX,
                            first_flags: Some(0x0200_0000),
                        },
                    };
                    64
                ],
                ..Default::default()
            }],
        };
        let mut buf = Vec::new();
        moof.encode(&mut buf).unwrap();
        let chunk = parse_moof(&buf, 0).unwrap();
        assert_eq!(chunk.sample_count, u32::MAX);
        assert_eq!(chunk.duration, 64 * 1024 * u64::from(u32::MAX));
        assert_eq!(chunk.samples_without_duration, 0);
        assert_eq!(chunk.starts_with_sync, Some(true));
    }
}
