//! Codec configuration from MP4 sample entries and RFC 6381 codec strings.
//!
//! - H.264: `avcC` (ISO/IEC 14496-15 5.3.3.1) -> `avc1.PPCCLL` (profile_idc,
//!   constraint flags, level_idc in hex; RFC 6381 section 3.3).
//! - HEVC: `hvcC` (ISO/IEC 14496-15 8.3.3.1) -> `hvc1|hev1.[A-C]P.C.TL.B0...`
//!   (ISO/IEC 14496-15 Annex E.3).
//! - AAC: `esds` DecoderSpecificInfo = AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) ->
//!   `mp4a.40.<audioObjectType>` (RFC 6381 section 3.3).

use mp4_atom::Codec as StsdCodec;

/// Codec and the configuration the TS muxer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// H.264/AVC; samples are NAL units with `length_size`-byte big-endian prefixes.
    H264 {
        /// NAL length prefix size in bytes (1, 2 or 4).
        length_size: u8,
        /// SPS then PPS NAL units from `avcC` (no start codes).
        params: Vec<Vec<u8>>,
    },
    /// H.265/HEVC; samples are length-prefixed NAL units.
    Hevc {
        /// NAL length prefix size in bytes (1, 2 or 4).
        length_size: u8,
        /// VPS, SPS then PPS NAL units from `hvcC` (no start codes).
        params: Vec<Vec<u8>>,
    },
    /// AAC; samples are raw access units (no ADTS).
    Aac {
        /// MPEG-4 audioObjectType (2 = LC, 5 = SBR/HE-AAC, 29 = PS/HE-AACv2).
        object_type: u8,
        /// samplingFrequencyIndex of the AAC core (0..=12).
        freq_index: u8,
        /// channelConfiguration (1..=7).
        channels: u8,
    },
}

/// Reads the codec configuration and RFC 6381 string of a sample entry.
///
/// Errors: a human-readable reason for anything not packaged (encrypted `encv`/`enca`,
/// other codecs, AAC without a usable AudioSpecificConfig).
pub fn from_sample_entry(entry: &StsdCodec) -> Result<(Codec, String), String> {
    match entry {
        StsdCodec::Avc1(a) => Ok(avc(&a.avcc)),
        StsdCodec::Avc3(a) => Ok(avc(&a.avcc)),
        StsdCodec::Hvc1(h) => hevc("hvc1", &h.hvcc),
        StsdCodec::Hev1(h) => hevc("hev1", &h.hvcc),
        StsdCodec::Mp4a(m) => {
            let dc = &m.esds.es_desc.dec_config;
            if dc.object_type_indication != 0x40 {
                return Err(format!(
                    "mp4a object type 0x{:02x} (only AAC, 0x40)",
                    dc.object_type_indication
                ));
            }
            let ds = dc
                .dec_specific
                .as_ref()
                .ok_or("AAC without AudioSpecificConfig")?;
            let aot = ds.profile;
            if !(1..=4).contains(&aot) && aot != 5 && aot != 29 {
                return Err(format!("AAC audioObjectType {aot}"));
            }
            if ds.freq_index > 12 {
                return Err("AAC with an explicit sampling rate (no ADTS index)".into());
            }
            if !(1..=7).contains(&ds.chan_conf) {
                return Err(format!("AAC channelConfiguration {}", ds.chan_conf));
            }
            Ok((
                Codec::Aac {
                    object_type: aot,
                    freq_index: ds.freq_index,
                    channels: ds.chan_conf,
                },
                format!("mp4a.40.{aot}"),
            ))
        }
        StsdCodec::Unknown(fourcc, _) => {
            let f = fourcc.to_string();
            if f == "encv" || f == "enca" {
                Err(format!("encrypted track ({f})"))
            } else {
                Err(format!("codec {f}"))
            }
        }
        other => Err(format!("codec {:?}", fourcc_of(other))),
    }
}

fn fourcc_of(c: &StsdCodec) -> String {
    let dbg = format!("{c:?}");
    dbg.split('(').next().unwrap_or("?").to_lowercase()
}

fn avc(c: &mp4_atom::Avcc) -> (Codec, String) {
    let mut params = c.sequence_parameter_sets.clone();
    params.extend(c.picture_parameter_sets.iter().cloned());
    (
        Codec::H264 {
            length_size: c.length_size,
            params,
        },
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            c.avc_profile_indication, c.profile_compatibility, c.avc_level_indication
        ),
    )
}

fn hevc(prefix: &str, c: &mp4_atom::Hvcc) -> Result<(Codec, String), String> {
    let length_size = c.length_size_minus_one + 1;
    let mut params = Vec::new();
    for nal_type in [32u8, 33, 34] {
        for a in c.arrays.iter().filter(|a| a.nal_unit_type == nal_type) {
            params.extend(a.nalus.iter().cloned());
        }
    }
    Ok((
        Codec::Hevc {
            length_size,
            params,
        },
        hevc_string(prefix, c),
    ))
}

/// `hvc1.1.6.L93.B0` per ISO/IEC 14496-15 E.3: profile space letter + profile_idc,
/// compatibility flags bit-reversed in hex, tier + level, constraint bytes without trailing
/// zero bytes.
pub fn hevc_string(prefix: &str, c: &mp4_atom::Hvcc) -> String {
    let space = match c.general_profile_space {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    let flags = u32::from_be_bytes(c.general_profile_compatibility_flags).reverse_bits();
    let tier = if c.general_tier_flag { 'H' } else { 'L' };
    let mut s = format!(
        "{prefix}.{space}{}.{flags:X}.{tier}{}",
        c.general_profile_idc, c.general_level_idc
    );
    let cons = &c.general_constraint_indicator_flags;
    let last = cons.iter().rposition(|&b| b != 0);
    if let Some(last) = last {
        for b in &cons[..=last] {
            s.push_str(&format!(".{b:X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hevc_main_string() {
        let c = mp4_atom::Hvcc {
            general_profile_idc: 1,
            general_profile_compatibility_flags: [0x60, 0, 0, 0],
            general_level_idc: 93,
            general_constraint_indicator_flags: [0xB0, 0, 0, 0, 0, 0],
            ..Default::default()
        };
        assert_eq!(hevc_string("hvc1", &c), "hvc1.1.6.L93.B0");
    }
}
