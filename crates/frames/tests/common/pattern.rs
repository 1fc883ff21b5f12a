//! Frame contents derived from the frame id: every 8 bytes at frame offset `8 * i` hold
//! `mix(frame_id, i)`, so a frame assembled from two different frames (torn) fails
//! `verify` with overwhelming probability, at any offset.

use frames::{FrameInfo, FrameMeta, SlotFill};

/// SplitMix64 finaliser over the frame id and word index.
pub fn mix(frame_id: u64, word: u64) -> u64 {
    let mut z = frame_id
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(word.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The expected bytes of a whole frame (Y plane then UV plane) of `len` bytes.
pub fn frame_bytes(frame_id: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    let mut word = 0;
    while out.len() < len {
        let bytes = mix(frame_id, word).to_le_bytes();
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&bytes[..take]);
        word += 1;
    }
}

/// Writes the pattern of `fill.frame_id()` into both planes. `scratch` avoids an allocation
/// per frame.
pub fn fill(fill: &mut SlotFill<'_>, scratch: &mut Vec<u8>) {
    let id = fill.frame_id();
    let (y, uv) = fill.planes_mut();
    let y_len = y.len();
    frame_bytes(id, y_len + uv.len(), scratch);
    y.copy_from_slice(&scratch[..y_len]);
    uv.copy_from_slice(&scratch[y_len..]);
}

/// The FrameInfo the pattern writers publish for `frame_id`, so metadata is checkable too.
pub fn info(frame_id: u64) -> FrameInfo {
    FrameInfo {
        pts_ns: frame_id as i64 * 1_000,
        wall_ns: frame_id as i64 * 2_000,
        mono_ns: frame_id as i64 * 3_000,
        key_frame: frame_id % 10 == 1,
        discontinuity: frame_id % 7 == 0,
    }
}

/// True when `data` and `meta` are exactly what the writer published for `meta.frame_id`.
pub fn verify(meta: &FrameMeta, data: &[u8]) -> bool {
    let expected = info(meta.frame_id);
    let meta_ok = meta.pts_ns == expected.pts_ns
        && meta.wall_ns == expected.wall_ns
        && meta.mono_ns == expected.mono_ns
        && meta.key_frame == expected.key_frame
        && meta.discontinuity == expected.discontinuity
        && meta.data_len as usize == data.len();
    if !meta_ok {
        return false;
    }
    let mut chunks = data.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        if u64::from_le_bytes(chunk.try_into().unwrap()) != mix(meta.frame_id, i as u64) {
            return false;
        }
    }
    let tail = chunks.remainder();
    let last = mix(meta.frame_id, (data.len() / 8) as u64).to_le_bytes();
    tail == &last[..tail.len()]
}
