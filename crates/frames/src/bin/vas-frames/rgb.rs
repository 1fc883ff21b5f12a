//! NV12 to RGB, BT.601 limited range (Y 16..235, U/V 16..240), the range H.264 cameras send.
//!
//! Integer arithmetic with 8 fractional bits: the BT.601 coefficients 1.164, 1.596, 0.391,
//! 0.813 and 2.018 scaled by 256 and rounded (298, 409, 100, 208, 516), with +128 to round
//! the final shift.

use frames::FrameMeta;

/// One pixel.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (y as i32 - 16);
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

/// The whole frame as packed RGB, `width * height * 3` bytes, rows top to bottom.
pub fn nv12_to_rgb(meta: &FrameMeta, data: &[u8]) -> Vec<u8> {
    let (y_plane, uv_plane) = meta.planes(data);
    let (w, h) = (meta.width as usize, meta.height as usize);
    let (stride_y, stride_uv) = (meta.stride_y as usize, meta.stride_uv as usize);
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        let y_row = &y_plane[row * stride_y..row * stride_y + w];
        let uv_row = &uv_plane[(row / 2) * stride_uv..];
        for (col, &y) in y_row.iter().enumerate() {
            let pair = (col / 2) * 2;
            rgb.extend_from_slice(&yuv_to_rgb(y, uv_row[pair], uv_row[pair + 1]));
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_colours_table() {
        // (Y, U, V) -> RGB, the BT.601 limited-range colour bars
        let table = [
            ((16, 128, 128), [0, 0, 0]),
            ((235, 128, 128), [255, 255, 255]),
            ((126, 128, 128), [128, 128, 128]),
            ((81, 90, 240), [255, 0, 0]),
            ((145, 54, 34), [0, 255, 0]),
            ((41, 240, 110), [0, 0, 255]),
            ((0, 0, 0), [0, 135, 0]),
            ((255, 255, 255), [255, 125, 255]),
        ];
        for ((y, u, v), expected) in table {
            let got = yuv_to_rgb(y, u, v);
            for (g, e) in got.iter().zip(expected) {
                assert!(
                    (*g as i32 - e).abs() <= 1,
                    "{y},{u},{v} -> {got:?}, expected {expected:?}"
                );
            }
        }
    }
}
