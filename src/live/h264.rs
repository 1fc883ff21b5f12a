//! The H.264 bitstream as far as the live view needs it: NAL units of an Annex B access unit,
//! the parameter sets (SPS, PPS) a viewer needs before a key frame, and the SDP
//! `profile-level-id` read from the SPS.
//!
//! FFmpeg's RTSP demuxer hands over Annex B access units (start-code delimited NAL units) and
//! puts the SDP's `sprop-parameter-sets` into the stream's extradata, also Annex B. Cameras
//! differ in whether they repeat SPS/PPS in-band before key frames: some do before every IDR,
//! some only in the SDP. Both sources feed [`ParameterSets`], and the sender prepends the sets
//! to every key frame that lacks them, so a viewer joining at any key frame can decode.

/// NAL unit types (ITU-T H.264 table 7-1) the live view treats specially.
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
/// Access unit delimiter and filler data: never sent, WebRTC receivers do not need them.
pub const NAL_AUD: u8 = 9;
pub const NAL_FILLER: u8 = 12;

/// The type of a NAL unit from its header byte.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The NAL units of an Annex B buffer, without start codes. Bytes before the first start code
/// are ignored; trailing zero bytes of a unit (the `00` of a four-byte start code that follows,
/// or `trailing_zero_8bits`) are trimmed, since a NAL unit never ends in a zero byte.
pub fn annex_b_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = match find_start_code(data) {
        Some((at, len)) => &data[at + len..],
        None => &data[data.len()..],
    };
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (unit, next) = match find_start_code(rest) {
                Some((at, len)) => (&rest[..at], &rest[at + len..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = next;
            let end = unit.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end > 0 {
                return Some(&unit[..end]);
            }
        }
        None
    })
}

/// Position and length (3) of the first `00 00 01` in `data`. A four-byte start code is the
/// three-byte one preceded by a zero, which the caller trims as a trailing zero.
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 3 <= data.len() {
        // Skip ahead quickly: a start code needs data[i + 2] == 1 and two zeros before it.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some((i, 3)),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// The `profile-level-id` of an SPS NAL unit (header byte included): profile_idc, the
/// constraint flags byte and level_idc, as six hex digits (RFC 6184 section 8.1). These three
/// bytes follow the header directly, before any field that could hold emulation prevention.
pub fn profile_level_id(sps: &[u8]) -> Option<String> {
    if nal_type(sps) != NAL_SPS || sps.len() < 4 {
        return None;
    }
    Some(format!("{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3]))
}

/// The latest SPS and PPS seen for a stream, from extradata or in-band.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParameterSets {
    pub sps: Option<Vec<u8>>,
    pub pps: Option<Vec<u8>>,
}

impl ParameterSets {
    /// Keeps `nal` if it is an SPS or PPS.
    pub fn learn(&mut self, nal: &[u8]) {
        let slot = match nal_type(nal) {
            NAL_SPS => &mut self.sps,
            NAL_PPS => &mut self.pps,
            _ => return,
        };
        if slot.as_deref() != Some(nal) {
            *slot = Some(nal.to_vec());
        }
    }

    /// Learns the sets in a stream's extradata: Annex B (what the RTSP demuxer writes from
    /// `sprop-parameter-sets`) or an `avcC` record (what MP4 sources carry).
    pub fn learn_extradata(&mut self, extradata: &[u8]) {
        if extradata.first() == Some(&1) {
            for nal in avcc_units(extradata) {
                self.learn(nal);
            }
        } else {
            for nal in annex_b_units(extradata) {
                self.learn(nal);
            }
        }
    }

    pub fn is_complete(&self) -> bool {
        self.sps.is_some() && self.pps.is_some()
    }

    pub fn profile_level_id(&self) -> Option<String> {
        self.sps.as_deref().and_then(profile_level_id)
    }
}

/// The SPS and PPS units of an `avcC` record (ISO/IEC 14496-15 5.3.3.1); a truncated record
/// yields the units that are complete.
fn avcc_units(record: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let Some(&count) = record.get(5) else {
        return units;
    };
    let mut at = 6;
    let take = |at: &mut usize| -> Option<&[u8]> {
        let len = u16::from_be_bytes([*record.get(*at)?, *record.get(*at + 1)?]) as usize;
        let unit = record.get(*at + 2..*at + 2 + len)?;
        *at += 2 + len;
        Some(unit)
    };
    for _ in 0..(count & 0x1f) {
        match take(&mut at) {
            Some(u) => units.push(u),
            None => return units,
        }
    }
    let Some(&pps_count) = record.get(at) else {
        return units;
    };
    at += 1;
    for _ in 0..pps_count {
        match take(&mut at) {
            Some(u) => units.push(u),
            None => return units,
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x28, 0xac, 0xd9];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb];

    fn units(data: &[u8]) -> Vec<Vec<u8>> {
        annex_b_units(data).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn annex_b_split() {
        // (input, expected units)
        let table: &[(&[u8], &[&[u8]])] = &[
            (&[], &[]),
            (&[0, 0, 1], &[]),
            (&[0, 0, 0, 1, 0x65, 1, 2], &[&[0x65, 1, 2]]),
            (
                &[0, 0, 1, 0x67, 9, 0, 0, 1, 0x68, 8],
                &[&[0x67, 9], &[0x68, 8]],
            ),
            // four-byte start codes between units: the extra zero is not part of a unit
            (
                &[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 7],
                &[&[0x09, 0xf0], &[0x65, 7]],
            ),
            // garbage before the first start code is ignored
            (&[7, 7, 0, 0, 1, 0x41, 3], &[&[0x41, 3]]),
            // no start code at all: nothing
            (&[0x65, 1, 2, 3], &[]),
            // emulation prevention (00 00 03) is not a start code
            (&[0, 0, 1, 0x41, 0, 0, 3, 1, 5], &[&[0x41, 0, 0, 3, 1, 5]]),
            // trailing zeros are trimmed, empty units between start codes skipped
            (&[0, 0, 1, 0, 0, 1, 0x41, 9, 0, 0], &[&[0x41, 9]]),
        ];
        for (input, want) in table {
            let want: Vec<Vec<u8>> = want.iter().map(|u| u.to_vec()).collect();
            assert_eq!(units(input), want, "input {input:02x?}");
        }
    }

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

    #[test]
    fn parameter_sets_from_every_source() {
        let mut annex_b = Vec::new();
        for nal in [SPS, PPS] {
            annex_b.extend_from_slice(&[0, 0, 0, 1]);
            annex_b.extend_from_slice(nal);
        }
        let mut avcc = vec![1, 0x64, 0x00, 0x28, 0xff, 0xe1];
        avcc.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
        avcc.extend_from_slice(SPS);
        avcc.push(1);
        avcc.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        avcc.extend_from_slice(PPS);
        let complete = ParameterSets {
            sps: Some(SPS.to_vec()),
            pps: Some(PPS.to_vec()),
        };
        for extradata in [&annex_b, &avcc] {
            let mut sets = ParameterSets::default();
            sets.learn_extradata(extradata);
            assert_eq!(sets, complete, "{extradata:02x?}");
            assert_eq!(sets.profile_level_id().as_deref(), Some("640028"));
        }
        // A truncated avcC yields what is complete and never panics.
        for cut in 0..avcc.len() {
            let mut sets = ParameterSets::default();
            sets.learn_extradata(&avcc[..cut]);
            assert!(!sets.is_complete() || cut == avcc.len());
        }
        // In-band units replace older ones; other units are ignored.
        let mut sets = complete.clone();
        sets.learn(&[0x67, 0x4d, 0x40, 0x1f]);
        sets.learn(&[0x65, 1, 2]);
        assert_eq!(sets.profile_level_id().as_deref(), Some("4d401f"));
        assert_eq!(sets.pps.as_deref(), Some(PPS));
    }
}
