//! The H.264 and H.265 bitstreams as far as VAS needs them, in one place for every consumer
//! (record, live, the camera thread's change detection): Annex B splitting, NAL unit types,
//! parameter sets, key frames and pictures.
//!
//! Nothing here decodes a slice; the geometry of a new SPS is read by FFmpeg's own parser
//! (`camera::changes`), which knows every profile's quirks.

pub mod annex_b;
mod params;

pub use self::params::ParameterSets;

/// The codecs whose bitstream VAS reads. Others pass through untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// What a NAL unit is, in the terms consumers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalKind {
    /// A slice of a picture that can be decoded on its own (H.264 IDR, H.265 IRAP).
    KeySlice,
    /// Any other slice.
    Slice,
    Vps,
    Sps,
    Pps,
    /// Access unit delimiter, filler data, end of sequence or stream: nothing a receiver
    /// needs.
    Padding,
    /// SEI and everything else.
    Other,
}

/// H.264 NAL unit types (ITU-T H.264 table 7-1).
pub mod h264 {
    pub const IDR: u8 = 5;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    pub const FILLER: u8 = 12;
}

/// H.265 NAL unit types (ITU-T H.265 table 7-1).
pub mod h265 {
    /// Intra random access points: BLA (16 to 18), IDR (19, 20), CRA (21); 22 and 23 are
    /// reserved IRAP types.
    pub const IRAP_FIRST: u8 = 16;
    pub const IRAP_LAST: u8 = 23;
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
    pub const EOS: u8 = 36;
    pub const EOB: u8 = 37;
    pub const FILLER: u8 = 38;
}

impl Codec {
    pub fn from_ffmpeg(id: ffmpeg_next::codec::Id) -> Option<Codec> {
        match id {
            ffmpeg_next::codec::Id::H264 => Some(Codec::H264),
            ffmpeg_next::codec::Id::HEVC => Some(Codec::H265),
            _ => None,
        }
    }

    /// The name users and status see: `h264`, `h265`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }

    /// The type field of a NAL unit's header: 5 bits of the first byte in H.264, 6 bits
    /// after the forbidden bit in H.265.
    pub fn nal_type(self, nal: &[u8]) -> u8 {
        let Some(&b) = nal.first() else { return 0xff };
        match self {
            Codec::H264 => b & 0x1f,
            Codec::H265 => (b >> 1) & 0x3f,
        }
    }

    pub fn nal_kind(self, nal: &[u8]) -> NalKind {
        let t = self.nal_type(nal);
        match self {
            Codec::H264 => match t {
                h264::IDR => NalKind::KeySlice,
                1..=4 => NalKind::Slice,
                h264::SPS => NalKind::Sps,
                h264::PPS => NalKind::Pps,
                h264::AUD | h264::FILLER | 10 | 11 => NalKind::Padding,
                _ => NalKind::Other,
            },
            Codec::H265 => match t {
                h265::IRAP_FIRST..=h265::IRAP_LAST => NalKind::KeySlice,
                0..=31 => NalKind::Slice,
                h265::VPS => NalKind::Vps,
                h265::SPS => NalKind::Sps,
                h265::PPS => NalKind::Pps,
                h265::AUD | h265::EOS | h265::EOB | h265::FILLER => NalKind::Padding,
                _ => NalKind::Other,
            },
        }
    }

    /// Whether an access unit holds a coded picture (a slice NAL unit). A stream cut
    /// mid-frame (a server that ends the session) leaves a last unit with only an access unit
    /// delimiter; written to a segment it is a sample every decoder reports as "no frame".
    /// Data not in Annex B cannot be told and is taken as a picture. The scan ends at the
    /// first slice: parameter sets, SEI and delimiters come before the slices.
    pub fn carries_picture(self, data: &[u8]) -> bool {
        if !annex_b::is_annex_b(data) {
            return true;
        }
        annex_b::units(data)
            .any(|nal| matches!(self.nal_kind(nal), NalKind::KeySlice | NalKind::Slice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_kinds() {
        use NalKind::*;
        // (codec, NAL header bytes, kind)
        let table: &[(Codec, &[u8], NalKind)] = &[
            (Codec::H264, &[0x65], KeySlice),
            (Codec::H264, &[0x25], KeySlice),
            (Codec::H264, &[0x41], Slice),
            (Codec::H264, &[0x01], Slice),
            (Codec::H264, &[0x67], Sps),
            (Codec::H264, &[0x27], Sps),
            (Codec::H264, &[0x68], Pps),
            (Codec::H264, &[0x09], Padding),
            (Codec::H264, &[0x0c], Padding),
            (Codec::H264, &[0x06], Other),
            (Codec::H264, &[], Other),
            // H.265 headers are two bytes; the type sits in bits 1 to 6 of the first.
            (Codec::H265, &[0x40, 0x01], Vps),
            (Codec::H265, &[0x42, 0x01], Sps),
            (Codec::H265, &[0x44, 0x01], Pps),
            (Codec::H265, &[0x26, 0x01], KeySlice), // IDR_W_RADL
            (Codec::H265, &[0x28, 0x01], KeySlice), // IDR_N_LP
            (Codec::H265, &[0x2a, 0x01], KeySlice), // CRA
            (Codec::H265, &[0x20, 0x01], KeySlice), // BLA_W_LP
            (Codec::H265, &[0x02, 0x01], Slice),    // TRAIL_R
            (Codec::H265, &[0x00, 0x01], Slice),    // TRAIL_N
            (Codec::H265, &[0x46, 0x01], Padding),  // AUD
            (Codec::H265, &[0x4e, 0x01], Other),    // prefix SEI
            // An H.264 PPS header read as H.265 is type 52 (unspecified), not a parameter
            // set: the reason the two must never share one table.
            (Codec::H265, &[0x68], Other),
            // An H.265 IDR header read as H.264 is type 6 (SEI).
            (Codec::H264, &[0x26, 0x01], Other),
        ];
        for (codec, nal, want) in table {
            assert_eq!(codec.nal_kind(nal), *want, "{codec:?} {nal:02x?}");
        }
    }

    #[test]
    fn pictures() {
        // (codec, access unit, carries a picture)
        let table: &[(Codec, &[u8], bool)] = &[
            // H.264: access unit delimiter only (what a cut stream leaves)
            (Codec::H264, &[0, 0, 0, 1, 0x09, 0x10], false),
            // AUD, SPS, PPS, IDR slice
            (
                Codec::H264,
                &[
                    0, 0, 0, 1, 0x09, 0x10, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3,
                ],
                true,
            ),
            (Codec::H264, &[0, 0, 1, 0x41, 0x9a], true),
            // SEI only
            (Codec::H264, &[0, 0, 0, 1, 0x06, 0x05, 0x80], false),
            // H.265: AUD, then AUD and a TRAIL_R slice
            (Codec::H265, &[0, 0, 0, 1, 0x46, 0x01, 0x50], false),
            (
                Codec::H265,
                &[0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x02, 0x01, 0xd0],
                true,
            ),
            // VPS, SPS, PPS without a slice
            (
                Codec::H265,
                &[
                    0, 0, 1, 0x40, 0x01, 1, 0, 0, 1, 0x42, 0x01, 2, 0, 0, 1, 0x44, 0x01, 3,
                ],
                false,
            ),
            // not Annex B (length-prefixed): cannot tell, taken as a picture
            (Codec::H264, &[0, 0, 0, 2, 0x09, 0x10], true),
        ];
        for (codec, unit, want) in table {
            assert_eq!(codec.carries_picture(unit), *want, "{codec:?} {unit:02x?}");
        }
    }
}
