//! What a reader learns about one published frame, and how it names a frame to another
//! process.

use crate::header::ExportInfo;
use crate::layout::{FLAG_DISCONTINUITY, FLAG_KEY_FRAME, FORMAT_NV12};
use crate::meta_view::RawRecord;

/// The record of one published frame, taken under the seqlock (so never torn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// Monotonic per camera, first frame 1; carried across resolution changes.
    pub frame_id: u64,
    /// Stream presentation timestamp in ns.
    pub pts_ns: i64,
    /// Capture time, ns since the Unix epoch.
    pub wall_ns: i64,
    /// Capture time on CLOCK_MONOTONIC, ns.
    pub mono_ns: i64,
    pub width: u32,
    pub height: u32,
    pub stride_y: u32,
    pub stride_uv: u32,
    /// Pixel format code, [`crate::FORMAT_NV12`] in layout version 1.
    pub format: u32,
    /// Decoded from a key frame.
    pub key_frame: bool,
    /// First frame after a reconnect or a timestamp jump: FPS gates reset here.
    pub discontinuity: bool,
    /// Bytes of pixels: the Y plane followed by the UV plane.
    pub data_len: u64,
}

impl FrameMeta {
    /// Rows of the UV plane.
    pub fn chroma_rows(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// Bytes of the Y plane (`height` rows of `stride_y`).
    pub fn y_len(&self) -> usize {
        self.stride_y as usize * self.height as usize
    }

    /// Bytes of the UV plane (`chroma_rows` rows of `stride_uv`).
    pub fn uv_len(&self) -> usize {
        self.stride_uv as usize * self.chroma_rows() as usize
    }

    /// Splits a frame's bytes (as handed out by a read) into the Y and UV planes.
    pub fn planes<'a>(&self, data: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        let (y, rest) = data.split_at(self.y_len().min(data.len()));
        (y, &rest[..self.uv_len().min(rest.len())])
    }

    pub(crate) fn from_record(r: &RawRecord) -> FrameMeta {
        FrameMeta {
            frame_id: r.frame_id,
            pts_ns: r.pts_ns,
            wall_ns: r.wall_ns,
            mono_ns: r.mono_ns,
            width: r.width,
            height: r.height,
            stride_y: r.stride_y,
            stride_uv: r.stride_uv,
            format: r.format,
            key_frame: r.flags & FLAG_KEY_FRAME != 0,
            discontinuity: r.flags & FLAG_DISCONTINUITY != 0,
            data_len: r.data_len,
        }
    }
}

/// Checks a stable record of `slot` against the header before any byte offset from it is
/// used. In layout version 1 every frame of a generation has the header's geometry and sits
/// at `slot * slot_size`.
pub(crate) fn check_record(
    info: &ExportInfo,
    slot: u32,
    r: &RawRecord,
) -> Result<(), &'static str> {
    if r.format != FORMAT_NV12 {
        return Err("format is not NV12");
    }
    if r.width != info.width || r.height != info.height {
        return Err("geometry differs from the header");
    }
    if r.stride_y != info.stride_y || r.stride_uv != info.stride_uv {
        return Err("strides differ from the header");
    }
    if r.data_offset != slot as u64 * info.slot_size {
        return Err("data_offset is not slot * slot_size");
    }
    if r.data_len != info.frame_len() {
        return Err("data_len does not match the geometry");
    }
    Ok(())
}

/// A published frame found in a slot: what [`crate::ExportReader::latest`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRef {
    pub generation: u64,
    pub slot: u32,
    /// The slot's sequence when the record was read; pass it back to the read calls.
    pub sequence: u64,
    pub meta: FrameMeta,
}

impl SlotRef {
    /// The small, copyable name of this frame that Ruth sends to a model process.
    pub fn frame_ref(&self) -> FrameRef {
        FrameRef {
            generation: self.generation,
            slot: self.slot,
            sequence: self.sequence,
            frame_id: self.meta.frame_id,
        }
    }
}

/// Names one frame across processes: another process that attached to the same camera reads
/// it with [`crate::ExportReader::read_frame_into`] or [`crate::ExportReader::with_frame`],
/// which refuse it once the slot has moved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRef {
    pub generation: u64,
    pub slot: u32,
    pub sequence: u64,
    pub frame_id: u64,
}
