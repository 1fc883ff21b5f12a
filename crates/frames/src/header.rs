//! Writing and validating the `frame.meta` header.

use std::sync::atomic::Ordering;

use crate::geometry::Nv12Geometry;
use crate::layout::{
    header, meta_file_len, FORMAT_NV12, HEADER_SIZE, LAYOUT_VERSION, MAGIC, MAX_DIMENSION,
    MAX_SLOTS, MIN_SLOTS, NO_SLOT, PAGE_SIZE, RECORD_SIZE, STATE_LIVE,
};
use crate::meta_view::{MetaView, RawRecord};

/// The static part of a validated header: what a reader learns when it attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportInfo {
    pub layout_version: u32,
    pub slots: u32,
    pub width: u32,
    pub height: u32,
    pub stride_y: u32,
    pub stride_uv: u32,
    pub format: u32,
    pub slot_size: u64,
    pub data_size: u64,
    pub generation: u64,
    pub writer_pid: u32,
    pub writer_start_wall_ns: i64,
    pub pid_namespace: u64,
}

impl ExportInfo {
    /// Bytes of one frame: Y plane plus UV plane.
    pub fn frame_len(&self) -> u64 {
        self.stride_y as u64 * self.height as u64
            + self.stride_uv as u64 * self.height.div_ceil(2) as u64
    }
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    Corrupt(String),
    NewerVersion(u32),
}

/// Everything the writer puts in a new header.
pub(crate) struct HeaderPlan {
    pub geometry: Nv12Geometry,
    pub slots: u32,
    pub generation: u64,
    pub writer_pid: u32,
    pub writer_start_wall_ns: i64,
    pub pid_namespace: u64,
}

impl HeaderPlan {
    pub(crate) fn data_size(&self) -> u64 {
        self.geometry.slot_size() * self.slots as u64
    }

    /// The record every slot holds before its first publish (sequence 0): geometry and data
    /// location filled in, frame id 0.
    pub(crate) fn empty_record(&self, slot: u32) -> RawRecord {
        let g = &self.geometry;
        RawRecord {
            width: g.width,
            height: g.height,
            stride_y: g.stride_y(),
            stride_uv: g.stride_uv(),
            format: FORMAT_NV12,
            data_offset: slot as u64 * g.slot_size(),
            data_len: g.frame_len() as u64,
            ..RawRecord::default()
        }
    }
}

/// Fills a fresh, zeroed meta mapping: every field and record first, the layout version and
/// the magic last, so no reader can see a valid magic over a half-made header.
pub(crate) fn write_header(meta: &MetaView<'_>, plan: &HeaderPlan) {
    let g = &plan.geometry;
    // Relaxed for all fields: the release store of the magic below orders them for readers.
    let u32s = [
        (header::HEADER_SIZE, HEADER_SIZE as u32),
        (header::RECORD_SIZE, RECORD_SIZE as u32),
        (header::SLOT_COUNT, plan.slots),
        (header::WIDTH, g.width),
        (header::HEIGHT, g.height),
        (header::STRIDE_Y, g.stride_y()),
        (header::STRIDE_UV, g.stride_uv()),
        (header::FORMAT, FORMAT_NV12),
        (header::WRITER_PID, plan.writer_pid),
        (header::PUBLISH_COUNTER, 0),
        (header::LATEST_SLOT, NO_SLOT),
        (header::STATE, STATE_LIVE),
    ];
    for (offset, value) in u32s {
        meta.u32_at(offset).store(value, Ordering::Relaxed);
    }
    let u64s = [
        (header::SLOT_SIZE, g.slot_size()),
        (header::DATA_SIZE, plan.data_size()),
        (header::GENERATION, plan.generation),
        (header::PID_NAMESPACE, plan.pid_namespace),
    ];
    for (offset, value) in u64s {
        meta.u64_at(offset).store(value, Ordering::Relaxed);
    }
    meta.i64_at(header::WRITER_START_WALL_NS)
        .store(plan.writer_start_wall_ns, Ordering::Relaxed);
    for slot in 0..plan.slots {
        let record = meta.record(slot);
        // Relaxed, as above: ordered for readers by the magic's release store.
        record.sequence().store(0, Ordering::Relaxed);
        record.store_fields(&plan.empty_record(slot));
    }
    meta.u32_at(header::LAYOUT_VERSION)
        .store(LAYOUT_VERSION, Ordering::Relaxed);
    // Release: a reader that loads the magic and then issues an acquire fence sees every
    // store above.
    meta.u64_at(header::MAGIC)
        .store(u64::from_le_bytes(MAGIC), Ordering::Release);
}

/// Validates a mapped header against the length of the file it came from. `meta` must span
/// at least `min(meta_len, HEADER_SIZE)` bytes; nothing beyond `meta_len` is touched.
pub(crate) fn read_header(
    meta: &MetaView<'_>,
    meta_len: usize,
) -> Result<ExportInfo, HeaderProblem> {
    let corrupt = |reason: String| Err(HeaderProblem::Corrupt(reason));
    if meta_len < HEADER_SIZE {
        return corrupt(format!(
            "frame.meta is {meta_len} bytes, shorter than the {HEADER_SIZE}-byte header"
        ));
    }
    // Relaxed load then acquire fence: pairs with the release store of the magic in
    // write_header (relaxed because the mapping may be read-only, see seqlock.rs).
    let magic = meta.u64_at(header::MAGIC).load(Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Acquire);
    if magic.to_le_bytes() != MAGIC {
        return corrupt("its first 8 bytes are not the magic VASFRAME".into());
    }
    // Relaxed for everything below: static fields, ordered by the fence above.
    let u32_at = |offset| meta.u32_at(offset).load(Ordering::Relaxed);
    let u64_at = |offset| meta.u64_at(offset).load(Ordering::Relaxed);
    let version = u32_at(header::LAYOUT_VERSION);
    if version > LAYOUT_VERSION {
        return Err(HeaderProblem::NewerVersion(version));
    }
    if version != LAYOUT_VERSION {
        return corrupt(format!("layout version {version} does not exist"));
    }
    let info = ExportInfo {
        layout_version: version,
        slots: u32_at(header::SLOT_COUNT),
        width: u32_at(header::WIDTH),
        height: u32_at(header::HEIGHT),
        stride_y: u32_at(header::STRIDE_Y),
        stride_uv: u32_at(header::STRIDE_UV),
        format: u32_at(header::FORMAT),
        slot_size: u64_at(header::SLOT_SIZE),
        data_size: u64_at(header::DATA_SIZE),
        generation: u64_at(header::GENERATION),
        writer_pid: u32_at(header::WRITER_PID),
        writer_start_wall_ns: meta
            .i64_at(header::WRITER_START_WALL_NS)
            .load(Ordering::Relaxed),
        pid_namespace: u64_at(header::PID_NAMESPACE),
    };
    let header_size = u32_at(header::HEADER_SIZE);
    let record_size = u32_at(header::RECORD_SIZE);
    if header_size as usize != HEADER_SIZE || record_size as usize != RECORD_SIZE {
        return corrupt(format!(
            "header_size {header_size} and record_size {record_size} are not the version 1 \
             values {HEADER_SIZE} and {RECORD_SIZE}"
        ));
    }
    if !(MIN_SLOTS..=MAX_SLOTS).contains(&info.slots) {
        return corrupt(format!(
            "slot_count {} is outside {MIN_SLOTS}..={MAX_SLOTS}",
            info.slots
        ));
    }
    let expected_len = meta_file_len(info.slots);
    if meta_len != expected_len {
        return corrupt(format!(
            "frame.meta is {meta_len} bytes, {} slots need exactly {expected_len}",
            info.slots
        ));
    }
    if info.format != FORMAT_NV12 {
        return corrupt(format!(
            "pixel format {} is not NV12 ({FORMAT_NV12})",
            info.format
        ));
    }
    let dimension_ok = |d: u32| (1..=MAX_DIMENSION).contains(&d);
    if !dimension_ok(info.width) || !dimension_ok(info.height) {
        return corrupt(format!(
            "geometry {}x{} is out of range",
            info.width, info.height
        ));
    }
    let uv_row = 2 * info.width.div_ceil(2);
    if info.stride_y < info.width || info.stride_uv < uv_row {
        return corrupt(format!(
            "strides {}/{} are too small for width {}",
            info.stride_y, info.stride_uv, info.width
        ));
    }
    if info.slot_size % PAGE_SIZE != 0 || info.slot_size < info.frame_len() {
        return corrupt(format!(
            "slot_size {} is not a page multiple holding a {}-byte frame",
            info.slot_size,
            info.frame_len()
        ));
    }
    if Some(info.data_size) != info.slot_size.checked_mul(info.slots as u64) {
        return corrupt(format!(
            "data_size {} is not slot_count * slot_size",
            info.data_size
        ));
    }
    Ok(info)
}
