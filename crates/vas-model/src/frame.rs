//! A frame as a model sees it: the request that named it and its validated pixels.

use frames::FrameMeta;

use crate::protocol::FrameRequest;

/// One NV12 frame copied out of the export and validated under the seqlock, so its bytes are
/// exactly what vasd published (never a mix of two frames).
pub struct Frame<'a> {
    request: &'a FrameRequest,
    meta: FrameMeta,
    data: &'a [u8],
    received_mono_ns: i64,
}

impl<'a> Frame<'a> {
    pub(crate) fn new(
        request: &'a FrameRequest,
        meta: FrameMeta,
        data: &'a [u8],
        received_mono_ns: i64,
    ) -> Frame<'a> {
        Frame {
            request,
            meta,
            data,
            received_mono_ns,
        }
    }

    /// The request as Ruth sent it.
    pub fn request(&self) -> &FrameRequest {
        self.request
    }

    /// The frame's record as read from the export.
    pub fn meta(&self) -> &FrameMeta {
        &self.meta
    }

    pub fn camera(&self) -> &str {
        &self.request.camera
    }

    pub fn frame_id(&self) -> u64 {
        self.meta.frame_id
    }

    pub fn pts_ns(&self) -> i64 {
        self.meta.pts_ns
    }

    pub fn width(&self) -> u32 {
        self.meta.width
    }

    pub fn height(&self) -> u32 {
        self.meta.height
    }

    /// Bytes per row of the Y plane (at least the width).
    pub fn stride_y(&self) -> usize {
        self.meta.stride_y as usize
    }

    /// Bytes per row of the UV plane.
    pub fn stride_uv(&self) -> usize {
        self.meta.stride_uv as usize
    }

    /// The Y (luma) plane: `height` rows of `stride_y` bytes.
    pub fn y_plane(&self) -> &'a [u8] {
        self.meta.planes(self.data).0
    }

    /// The UV plane: `(height + 1) / 2` rows of `stride_uv` bytes, U and V interleaved.
    pub fn uv_plane(&self) -> &'a [u8] {
        self.meta.planes(self.data).1
    }

    /// Row `row` of the Y plane without its padding: `width` bytes.
    pub fn y_row(&self, row: u32) -> &'a [u8] {
        let start = row as usize * self.stride_y();
        &self.y_plane()[start..start + self.meta.width as usize]
    }

    /// When the request line was read, on CLOCK_MONOTONIC (the clock of the frame's
    /// `mono_ns`), so `received_mono_ns - meta().mono_ns` is the time from capture to the
    /// model.
    pub fn received_mono_ns(&self) -> i64 {
        self.received_mono_ns
    }
}
