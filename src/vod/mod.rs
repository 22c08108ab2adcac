//! On-demand packaging of MP4 renditions into HLS MPEG-TS for Akamai-style `/i/` URLs.

pub mod config;
