//! Parameter sets: the VPS (H.265 only), SPS and PPS a decoder, a muxer's sample entry or a
//! viewer joining at a key frame needs. They come from the session's extradata (the SDP) and
//! from the access units themselves (cameras differ in whether they repeat them in band).

use super::{annex_b, Codec, NalKind};

/// The latest parameter sets seen for a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSets {
    pub codec: Codec,
    pub vps: Option<Vec<u8>>,
    pub sps: Option<Vec<u8>>,
    pub pps: Option<Vec<u8>>,
}

impl ParameterSets {
    pub fn new(codec: Codec) -> ParameterSets {
        ParameterSets {
            codec,
            vps: None,
            sps: None,
            pps: None,
        }
    }

    /// Keeps `nal` if it is a parameter set. Returns its kind when it replaced a different
    /// one or filled an empty slot.
    pub fn learn(&mut self, nal: &[u8]) -> Option<NalKind> {
        let kind = self.codec.nal_kind(nal);
        let slot = match kind {
            NalKind::Vps => &mut self.vps,
            NalKind::Sps => &mut self.sps,
            NalKind::Pps => &mut self.pps,
            _ => return None,
        };
        if slot.as_deref() == Some(nal) {
            return None;
        }
        *slot = Some(nal.to_vec());
        Some(kind)
    }

    /// Learns every parameter set of an Annex B access unit. Returns true when an SPS or VPS
    /// changed: those describe size and profile, while cameras that use several PPS ids
    /// alternate between them without changing anything a consumer must act on. The scan
    /// ends at the first slice: parameter sets precede the slices of their access unit
    /// (H.264 7.4.1.2.3, H.265 7.4.2.4.4), so the bulk of a large key frame is never read.
    pub fn learn_access_unit(&mut self, data: &[u8]) -> bool {
        let mut changed = false;
        for nal in annex_b::units(data) {
            match self.learn(nal) {
                Some(NalKind::Sps | NalKind::Vps) => changed = true,
                _ if matches!(self.codec.nal_kind(nal), NalKind::Slice | NalKind::KeySlice) => {
                    break
                }
                _ => {}
            }
        }
        changed
    }

    /// Learns the sets in a stream's extradata: Annex B (what the RTSP demuxer writes from
    /// the SDP) or a decoder configuration record (`avcC`, `hvcC`: what MP4 sources carry).
    pub fn learn_extradata(&mut self, extradata: &[u8]) {
        if annex_b::is_annex_b(extradata) {
            self.learn_access_unit(extradata);
            return;
        }
        let units = match self.codec {
            Codec::H264 => avcc_units(extradata),
            Codec::H265 => hvcc_units(extradata),
        };
        for nal in units {
            self.learn(nal);
        }
    }

    /// Every set the codec needs is known.
    pub fn is_complete(&self) -> bool {
        self.sps.is_some()
            && self.pps.is_some()
            && (self.codec == Codec::H264 || self.vps.is_some())
    }

    /// The known sets in decoding order (VPS, SPS, PPS).
    pub fn units(&self) -> impl Iterator<Item = &[u8]> {
        [&self.vps, &self.sps, &self.pps]
            .into_iter()
            .filter_map(|s| s.as_deref())
    }

    /// The known sets as Annex B, as FFmpeg's muxers accept for extradata.
    pub fn to_annex_b(&self) -> Vec<u8> {
        annex_b::join(self.units())
    }

    /// The SDP `profile-level-id` of an H.264 stream, once its SPS was seen.
    pub fn profile_level_id(&self) -> Option<String> {
        match self.codec {
            Codec::H264 => self.sps.as_deref().and_then(profile_level_id),
            Codec::H265 => None,
        }
    }
}

/// The `profile-level-id` of an H.264 SPS NAL unit (header byte included): profile_idc, the
/// constraint flags byte and level_idc, as six hex digits (RFC 6184 section 8.1). These three
/// bytes follow the header directly, before any field that could hold emulation prevention.
pub fn profile_level_id(sps: &[u8]) -> Option<String> {
    if Codec::H264.nal_kind(sps) != NalKind::Sps || sps.len() < 4 {
        return None;
    }
    Some(format!("{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]))
}

/// Reads a 16-bit length and that many bytes at `*at`; `None` past the end.
fn take<'a>(record: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = u16::from_be_bytes([*record.get(*at)?, *record.get(*at + 1)?]) as usize;
    let unit = record.get(*at + 2..*at + 2 + len)?;
    *at += 2 + len;
    Some(unit)
}

/// Takes `count` length-prefixed units at `*at` into `units`; false at a truncation.
fn take_units<'a>(
    record: &'a [u8],
    at: &mut usize,
    count: usize,
    units: &mut Vec<&'a [u8]>,
) -> bool {
    for _ in 0..count {
        match take(record, at) {
            Some(u) => units.push(u),
            None => return false,
        }
    }
    true
}

/// The SPS and PPS units of an `avcC` record (ISO/IEC 14496-15 5.3.3.1); a truncated record
/// yields the units that are complete.
fn avcc_units(record: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let Some(&count) = record.get(5) else {
        return units;
    };
    let mut at = 6;
    if !take_units(record, &mut at, (count & 0x1f) as usize, &mut units) {
        return units;
    }
    let Some(&pps_count) = record.get(at) else {
        return units;
    };
    at += 1;
    take_units(record, &mut at, pps_count as usize, &mut units);
    units
}

/// The NAL units of an `hvcC` record (ISO/IEC 14496-15 8.3.3.1): 22 bytes of profile and
/// format fields, then arrays of units by type. A truncated record yields what is complete.
fn hvcc_units(record: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let Some(&arrays) = record.get(22) else {
        return units;
    };
    let mut at = 23;
    for _ in 0..arrays {
        // One byte of completeness flag and NAL type, then a 16-bit count.
        let Some(count) = record
            .get(at + 1..at + 3)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
        else {
            return units;
        };
        at += 3;
        if !take_units(record, &mut at, count as usize, &mut units) {
            return units;
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x28, 0xac, 0xd9];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb];
    const H265_VPS: &[u8] = &[0x40, 0x01, 0x0c, 0x01];
    const H265_SPS: &[u8] = &[0x42, 0x01, 0x01, 0x01];
    const H265_PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72];
    const H265_IDR: &[u8] = &[0x26, 0x01, 0xaf, 0x09];

    #[test]
    fn profile_level_ids() {
        // (SPS, profile-level-id)
        let table: &[(&[u8], Option<&str>)] = &[
            (SPS, Some("640028")),
            (&[0x67, 0x4d, 0x40, 0x1f, 0x01], Some("4d401f")),
            (&[0x27, 0x42, 0xe0, 0x1e], Some("42e01e")),
            (&[0x67, 0x64, 0x00], None),
            (PPS, None),
            (&[], None),
        ];
        for (sps, want) in table {
            assert_eq!(profile_level_id(sps).as_deref(), *want, "{sps:02x?}");
        }
    }

    fn avcc() -> Vec<u8> {
        let mut avcc = vec![1, 0x64, 0x00, 0x28, 0xff, 0xe1];
        avcc.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
        avcc.extend_from_slice(SPS);
        avcc.push(1);
        avcc.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        avcc.extend_from_slice(PPS);
        avcc
    }

    fn hvcc() -> Vec<u8> {
        let mut hvcc = vec![1; 22];
        hvcc.push(3);
        for nal in [H265_VPS, H265_SPS, H265_PPS] {
            hvcc.push(0x80 | Codec::H265.nal_type(nal));
            hvcc.extend_from_slice(&1u16.to_be_bytes());
            hvcc.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            hvcc.extend_from_slice(nal);
        }
        hvcc
    }

    #[test]
    fn sets_from_every_source() {
        let h264 = ParameterSets {
            codec: Codec::H264,
            vps: None,
            sps: Some(SPS.to_vec()),
            pps: Some(PPS.to_vec()),
        };
        let h265 = ParameterSets {
            codec: Codec::H265,
            vps: Some(H265_VPS.to_vec()),
            sps: Some(H265_SPS.to_vec()),
            pps: Some(H265_PPS.to_vec()),
        };
        // (codec, extradata, expected sets)
        let table = [
            (Codec::H264, annex_b::join([SPS, PPS]), &h264),
            (Codec::H264, avcc(), &h264),
            (
                Codec::H265,
                annex_b::join([H265_VPS, H265_SPS, H265_PPS]),
                &h265,
            ),
            (Codec::H265, hvcc(), &h265),
        ];
        for (codec, extradata, want) in &table {
            let mut sets = ParameterSets::new(*codec);
            sets.learn_extradata(extradata);
            assert_eq!(&sets, *want, "{extradata:02x?}");
            assert!(sets.is_complete());
            // A truncated record yields what is complete and never panics (a cut Annex B
            // buffer cannot be told from a whole one, so only records are checked).
            for cut in 0..extradata.len() {
                let mut sets = ParameterSets::new(*codec);
                sets.learn_extradata(&extradata[..cut]);
                assert!(annex_b::is_annex_b(extradata) || !sets.is_complete());
            }
        }
        assert_eq!(h264.profile_level_id().as_deref(), Some("640028"));
        assert_eq!(h265.to_annex_b(), table[2].1);
    }

    #[test]
    fn in_band_sets_replace_older_ones() {
        // (codec, access unit, changed, sps afterwards)
        let mut sets = ParameterSets::new(Codec::H265);
        let idr_with_sets = annex_b::join([H265_VPS, H265_SPS, H265_PPS, H265_IDR]);
        let new_sps: &[u8] = &[0x42, 0x01, 0x01, 0x02];
        let table: &[(&[u8], bool, &[u8])] = &[
            (&idr_with_sets, true, H265_SPS),
            // the same sets again: no change
            (&idr_with_sets, false, H265_SPS),
            // a slice only: no change
            (&annex_b::join([H265_IDR]), false, H265_SPS),
            // a new SPS: a change
            (&annex_b::join([new_sps, H265_IDR]), true, new_sps),
            // an H.264 SPS header is not an H.265 parameter set
            (&annex_b::join([SPS]), false, new_sps),
            // the scan ends at the first slice: a set after it is not read
            (&annex_b::join([H265_IDR, H265_SPS]), false, new_sps),
        ];
        for (unit, changed, sps) in table {
            assert_eq!(sets.learn_access_unit(unit), *changed, "{unit:02x?}");
            assert_eq!(sets.sps.as_deref(), Some(*sps));
        }
        assert_eq!(sets.vps.as_deref(), Some(H265_VPS));
        assert_eq!(sets.pps.as_deref(), Some(H265_PPS));
    }
}
