//! Annex B byte streams (ITU-T H.264 and H.265 annex B): NAL units delimited by start codes.
//!
//! FFmpeg's RTSP demuxer hands over every H.264 and H.265 access unit in this form, and puts
//! the SDP's parameter sets (`sprop-parameter-sets`, `sprop-vps/sps/pps`) into the stream's
//! extradata in the same form.

/// True when `data` begins with a start code (`00 00 01` or `00 00 00 01`). A length-prefixed
/// unit (MP4 style) starts with its big-endian length, which for any unit under 16 MiB is
/// `00 00 0x yy` with at least one more byte, and is told apart by this test for lengths
/// other than exactly 1.
pub fn is_annex_b(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}

/// The NAL units of an Annex B buffer, without start codes. Bytes before the first start code
/// are ignored; trailing zero bytes of a unit (the `00` of a four-byte start code that follows,
/// or `trailing_zero_8bits`) are trimmed, since a NAL unit never ends in a zero byte.
pub fn units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = match find_start_code(data) {
        Some(at) => &data[at + 3..],
        None => &data[data.len()..],
    };
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (unit, next) = match find_start_code(rest) {
                Some(at) => (&rest[..at], &rest[at + 3..]),
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

/// Joins NAL units into an Annex B buffer with four-byte start codes.
pub fn join<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out
}

/// Position of the first `00 00 01` in `data`. A four-byte start code is the three-byte one
/// preceded by a zero, which the caller trims as a trailing zero.
fn find_start_code(data: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 3 <= data.len() {
        // Skip ahead quickly: a start code needs data[i + 2] == 1 and two zeros before it.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some(i),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
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
            // H.265 two-byte headers: VPS (32), SPS (33), IDR_W_RADL (19)
            (
                &[
                    0, 0, 0, 1, 0x40, 0x01, 5, 0, 0, 1, 0x42, 0x01, 6, 0, 0, 1, 0x26, 0x01, 7,
                ],
                &[&[0x40, 0x01, 5], &[0x42, 0x01, 6], &[0x26, 0x01, 7]],
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
            let got: Vec<&[u8]> = units(input).collect();
            assert_eq!(&got, want, "input {input:02x?}");
            if !want.is_empty() {
                // Joining and splitting again gives the same units.
                let again = join(want.iter().copied());
                assert_eq!(units(&again).collect::<Vec<_>>(), got);
            }
        }
    }

    #[test]
    fn annex_b_or_length_prefixed() {
        let table: &[(&[u8], bool)] = &[
            (&[0, 0, 1, 0x65], true),
            (&[0, 0, 0, 1, 0x65], true),
            (&[0, 0, 0, 2, 0x09, 0x10], false),
            (&[0, 0, 2], false),
            (&[], false),
        ];
        for (input, want) in table {
            assert_eq!(is_annex_b(input), *want, "{input:02x?}");
        }
    }
}
