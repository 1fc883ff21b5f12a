//! NV12 plane sizes for a frame size, and the slot size that holds one frame.

use crate::layout::{MAX_DIMENSION, PAGE_SIZE};

/// Size of one NV12 frame and of its planes.
///
/// Strides are the width rounded up to an even number: the UV plane holds one U/V byte pair
/// per two pixels, so a row of an odd-width frame needs width + 1 bytes, and using the same
/// stride for Y keeps the two planes easy to address. No larger alignment: 1920, 1280 and 640
/// are already multiples of 64, and padding would make numpy views of the planes non-contiguous
/// for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nv12Geometry {
    pub width: u32,
    pub height: u32,
}

impl Nv12Geometry {
    /// `None` when a dimension is 0 or above [`MAX_DIMENSION`].
    pub fn new(width: u32, height: u32) -> Option<Nv12Geometry> {
        let valid = |d: u32| (1..=MAX_DIMENSION).contains(&d);
        (valid(width) && valid(height)).then_some(Nv12Geometry { width, height })
    }

    /// Bytes per row of the Y plane.
    pub fn stride_y(&self) -> u32 {
        self.width + (self.width & 1)
    }

    /// Bytes per row of the UV plane (U and V interleaved, one pair per two pixels).
    pub fn stride_uv(&self) -> u32 {
        self.stride_y()
    }

    /// Rows of the UV plane: half the height, rounded up.
    pub fn chroma_rows(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// Columns of the UV plane in U/V pairs: half the width, rounded up.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    pub fn y_len(&self) -> usize {
        self.stride_y() as usize * self.height as usize
    }

    pub fn uv_len(&self) -> usize {
        self.stride_uv() as usize * self.chroma_rows() as usize
    }

    /// Bytes of one frame: the Y plane followed by the UV plane.
    pub fn frame_len(&self) -> usize {
        self.y_len() + self.uv_len()
    }

    /// Bytes reserved per slot in `frame.data`: the frame rounded up to whole pages, so
    /// every slot starts page-aligned.
    pub fn slot_size(&self) -> u64 {
        (self.frame_len() as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE
    }
}

impl std::fmt::Display for Nv12Geometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_sizes_table() {
        // (width, height) -> (stride, chroma rows, frame bytes, slot bytes)
        let table = [
            ((1920, 1080), (1920, 540, 3_110_400, 3_112_960)),
            ((1280, 720), (1280, 360, 1_382_400, 1_384_448)),
            ((640, 480), (640, 240, 460_800, 462_848)),
            ((2, 2), (2, 1, 6, 4096)),
            ((3, 3), (4, 2, 20, 4096)),
            ((1919, 1081), (1920, 541, 3_114_240, 3_117_056)),
        ];
        for ((w, h), (stride, rows, frame, slot)) in table {
            let g = Nv12Geometry::new(w, h).unwrap();
            assert_eq!(
                (g.stride_y(), g.chroma_rows(), g.frame_len(), g.slot_size()),
                (stride, rows, frame, slot),
                "{w}x{h}"
            );
            assert_eq!(g.slot_size() % PAGE_SIZE, 0);
        }
    }

    #[test]
    fn rejects_empty_and_huge() {
        assert!(Nv12Geometry::new(0, 10).is_none());
        assert!(Nv12Geometry::new(10, 0).is_none());
        assert!(Nv12Geometry::new(MAX_DIMENSION + 1, 10).is_none());
        assert!(Nv12Geometry::new(MAX_DIMENSION, MAX_DIMENSION).is_some());
    }
}
