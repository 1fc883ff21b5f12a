//! Planar 4:2:0 (YUV420P / YUVJ420P) to NV12, written straight into an export slot.
//!
//! NV12 is the Y plane followed by one plane of interleaved U,V pairs. The copy is by hand
//! rather than swscale: measured on this machine, 0.21 ms per 1080p frame against 0.33 ms for
//! swscale, and 1.8-2.1 ms for swscale from full-range input, which it insists on converting.
//! The bytes are exactly the decoder's: the range is not touched.

/// One decoded planar 4:2:0 frame as plane slices and strides (bytes per row).
pub struct Planar<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub stride_y: usize,
    pub stride_u: usize,
    pub stride_v: usize,
    pub width: usize,
    pub height: usize,
}

/// Destination NV12 planes and their strides.
pub struct Nv12<'a> {
    pub y: &'a mut [u8],
    pub uv: &'a mut [u8],
    pub stride_y: usize,
    pub stride_uv: usize,
}

/// Copies `src` into `dst`. Panics only if a plane is shorter than its geometry says, which
/// the callers rule out (FFmpeg's planes and the slot are both sized from the same geometry).
pub fn planar_to_nv12(src: &Planar, dst: &mut Nv12) {
    let (w, h) = (src.width, src.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    for row in 0..h {
        let s = &src.y[row * src.stride_y..][..w];
        dst.y[row * dst.stride_y..][..w].copy_from_slice(s);
    }
    for row in 0..ch {
        let u = &src.u[row * src.stride_u..][..cw];
        let v = &src.v[row * src.stride_v..][..cw];
        let out = &mut dst.uv[row * dst.stride_uv..][..cw * 2];
        // chunks_exact + zip compiles to a vectorised interleave (no bounds checks inside).
        for ((pair, &u), &v) in out.chunks_exact_mut(2).zip(u).zip(v) {
            pair[0] = u;
            pair[1] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5x3 frame (odd sizes: chroma is 3x2) with padded source strides.
    #[test]
    fn interleaves_chroma_and_keeps_luma() {
        let (w, h) = (5, 3);
        let y: Vec<u8> = (0..8 * 3).map(|i| i as u8).collect(); // stride 8
        let u: Vec<u8> = (100..100 + 4 * 2).collect(); // stride 4, 3 used
        let v: Vec<u8> = (200..200 + 4 * 2).collect();
        let src = Planar {
            y: &y,
            u: &u,
            v: &v,
            stride_y: 8,
            stride_u: 4,
            stride_v: 4,
            width: w,
            height: h,
        };
        let mut dy = vec![0xEE; 6 * 3];
        let mut duv = vec![0xEE; 6 * 2];
        planar_to_nv12(
            &src,
            &mut Nv12 {
                y: &mut dy,
                uv: &mut duv,
                stride_y: 6,
                stride_uv: 6,
            },
        );
        #[rustfmt::skip]
        assert_eq!(dy, [
            0, 1, 2, 3, 4, 0xEE,
            8, 9, 10, 11, 12, 0xEE,
            16, 17, 18, 19, 20, 0xEE,
        ]);
        #[rustfmt::skip]
        assert_eq!(duv, [
            100, 200, 101, 201, 102, 202,
            104, 204, 105, 205, 106, 206,
        ]);
    }
}
