//! The byte layout of `frame.meta` and `frame.data`, layout version 1.
//!
//! This module is the single source of truth for every offset. The man page vas-frames(7)
//! shows the same tables; a unit test below parses the man page and compares it with
//! [`HEADER_FIELDS`] and [`RECORD_FIELDS`], so the two cannot drift apart.
//!
//! All integers are little-endian. Every field is naturally aligned (a u64 at a multiple of 8,
//! a u32 at a multiple of 4), so both sides can access them as atomics in place.

/// The first 8 bytes of `frame.meta`.
pub const MAGIC: [u8; 8] = *b"VASFRAME";

/// The layout version this crate writes and reads. See "VERSIONING" in vas-frames(7) for
/// which changes bump it.
pub const LAYOUT_VERSION: u32 = 1;

/// Size of the header at the start of `frame.meta`. Two 128-byte halves: fields that never
/// change after creation, then the fields the writer updates on every publish, so a reader
/// polling the static half does not share a cache-line pair with the hot counter.
pub const HEADER_SIZE: usize = 256;

/// Size of one slot record. 128 bytes rather than 64: x86 CPUs prefetch cache lines in
/// adjacent pairs, so 128 is the distance that really avoids false sharing between the
/// record the writer is filling and the one a reader is validating (crossbeam's CachePadded
/// uses 128 on x86_64 for the same reason). It also leaves 48 reserved bytes per record.
pub const RECORD_SIZE: usize = 128;

/// Every slot in `frame.data` starts at a multiple of this, and its size is a multiple of it.
pub const PAGE_SIZE: u64 = 4096;

/// `format` value for NV12: a Y plane, then an interleaved U/V plane at half resolution.
pub const FORMAT_NV12: u32 = 1;

/// `latest_slot` before the first publish.
pub const NO_SLOT: u32 = u32::MAX;

/// `state`: the writer is running and publishing.
pub const STATE_LIVE: u32 = 1;
/// `state`: the writer has shut down or replaced these files; re-attach.
pub const STATE_CLOSED: u32 = 2;

/// Record `flags` bit 0: the frame was decoded from a key frame.
pub const FLAG_KEY_FRAME: u32 = 1 << 0;
/// Record `flags` bit 1: first frame after a reconnect or a timestamp jump; FPS gates reset.
pub const FLAG_DISCONTINUITY: u32 = 1 << 1;

/// Name of the metadata file inside `<root>/<camera_id>/`.
pub const META_FILE_NAME: &str = "frame.meta";
/// Name of the pixel file inside `<root>/<camera_id>/`.
pub const DATA_FILE_NAME: &str = "frame.data";

/// Byte offsets of the header fields in `frame.meta`.
pub mod header {
    /// `u8[8]`: [`super::MAGIC`], written last when the file is created.
    pub const MAGIC: usize = 0;
    /// `u32`: [`super::LAYOUT_VERSION`].
    pub const LAYOUT_VERSION: usize = 8;
    /// `u32`: [`super::HEADER_SIZE`].
    pub const HEADER_SIZE: usize = 12;
    /// `u32`: [`super::RECORD_SIZE`].
    pub const RECORD_SIZE: usize = 16;
    /// `u32`: number of slots, 2 to 64.
    pub const SLOT_COUNT: usize = 20;
    /// `u32`: width in pixels of every frame of this generation.
    pub const WIDTH: usize = 24;
    /// `u32`: height in pixels of every frame of this generation.
    pub const HEIGHT: usize = 28;
    /// `u32`: bytes per row of the Y plane.
    pub const STRIDE_Y: usize = 32;
    /// `u32`: bytes per row of the UV plane.
    pub const STRIDE_UV: usize = 36;
    /// `u32`: pixel format code, [`super::FORMAT_NV12`].
    pub const FORMAT: usize = 40;
    /// `u32`: process id of the writer, in the writer's pid namespace.
    pub const WRITER_PID: usize = 44;
    /// `u64`: bytes per slot in `frame.data`, a multiple of 4096.
    pub const SLOT_SIZE: usize = 48;
    /// `u64`: length of `frame.data`, slot_count * slot_size.
    pub const DATA_SIZE: usize = 56;
    /// `u64`: changes every time a writer creates the files for this camera.
    pub const GENERATION: usize = 64;
    /// `i64`: wall-clock time the writer started, ns since the Unix epoch.
    pub const WRITER_START_WALL_NS: usize = 72;
    /// `u64`: inode of the writer's pid namespace (/proc/self/ns/pid), 0 if unknown.
    pub const PID_NAMESPACE: usize = 80;
    /// `u8[40]`: zero.
    pub const RESERVED_STATIC: usize = 88;
    /// `u32`: incremented after every publish and at close; the futex word.
    pub const PUBLISH_COUNTER: usize = 128;
    /// `u32`: index of the most recently published slot, [`super::NO_SLOT`] before the first.
    pub const LATEST_SLOT: usize = 132;
    /// `u32`: [`super::STATE_LIVE`] or [`super::STATE_CLOSED`].
    pub const STATE: usize = 136;
    /// `u8[116]`: zero.
    pub const RESERVED_HOT: usize = 140;
}

/// Byte offsets of the fields inside one slot record. Record `i` starts at
/// `HEADER_SIZE + i * RECORD_SIZE` in `frame.meta`.
pub mod record {
    /// `u64`: seqlock sequence. Even: stable. Odd: being written. 0: never written.
    pub const SEQUENCE: usize = 0;
    /// `u64`: frame id, monotonic per camera, first frame 1.
    pub const FRAME_ID: usize = 8;
    /// `i64`: stream presentation timestamp in ns.
    pub const PTS_NS: usize = 16;
    /// `i64`: capture wall-clock time, ns since the Unix epoch.
    pub const WALL_NS: usize = 24;
    /// `i64`: capture time on CLOCK_MONOTONIC in ns.
    pub const MONO_NS: usize = 32;
    /// `u32`: width in pixels.
    pub const WIDTH: usize = 40;
    /// `u32`: height in pixels.
    pub const HEIGHT: usize = 44;
    /// `u32`: bytes per row of the Y plane.
    pub const STRIDE_Y: usize = 48;
    /// `u32`: bytes per row of the UV plane.
    pub const STRIDE_UV: usize = 52;
    /// `u32`: pixel format code.
    pub const FORMAT: usize = 56;
    /// `u32`: [`super::FLAG_KEY_FRAME`] | [`super::FLAG_DISCONTINUITY`].
    pub const FLAGS: usize = 60;
    /// `u64`: offset of this slot's pixels in `frame.data`.
    pub const DATA_OFFSET: usize = 64;
    /// `u64`: bytes of pixels (Y plane plus UV plane).
    pub const DATA_LEN: usize = 72;
    /// `u8[48]`: zero.
    pub const RESERVED: usize = 80;
}

/// One row of the layout tables: what the man page documents for each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    pub ty: &'static str,
}

const fn field(name: &'static str, offset: usize, size: usize, ty: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        offset,
        size,
        ty,
    }
}

/// Every byte of the header, in order.
pub const HEADER_FIELDS: &[FieldSpec] = &[
    field("magic", header::MAGIC, 8, "u8[8]"),
    field("layout_version", header::LAYOUT_VERSION, 4, "u32"),
    field("header_size", header::HEADER_SIZE, 4, "u32"),
    field("record_size", header::RECORD_SIZE, 4, "u32"),
    field("slot_count", header::SLOT_COUNT, 4, "u32"),
    field("width", header::WIDTH, 4, "u32"),
    field("height", header::HEIGHT, 4, "u32"),
    field("stride_y", header::STRIDE_Y, 4, "u32"),
    field("stride_uv", header::STRIDE_UV, 4, "u32"),
    field("format", header::FORMAT, 4, "u32"),
    field("writer_pid", header::WRITER_PID, 4, "u32"),
    field("slot_size", header::SLOT_SIZE, 8, "u64"),
    field("data_size", header::DATA_SIZE, 8, "u64"),
    field("generation", header::GENERATION, 8, "u64"),
    field(
        "writer_start_wall_ns",
        header::WRITER_START_WALL_NS,
        8,
        "i64",
    ),
    field("pid_namespace", header::PID_NAMESPACE, 8, "u64"),
    field("reserved", header::RESERVED_STATIC, 40, "u8[40]"),
    field("publish_counter", header::PUBLISH_COUNTER, 4, "u32"),
    field("latest_slot", header::LATEST_SLOT, 4, "u32"),
    field("state", header::STATE, 4, "u32"),
    field("reserved", header::RESERVED_HOT, 116, "u8[116]"),
];

/// Every byte of one slot record, in order.
pub const RECORD_FIELDS: &[FieldSpec] = &[
    field("sequence", record::SEQUENCE, 8, "u64"),
    field("frame_id", record::FRAME_ID, 8, "u64"),
    field("pts_ns", record::PTS_NS, 8, "i64"),
    field("wall_ns", record::WALL_NS, 8, "i64"),
    field("mono_ns", record::MONO_NS, 8, "i64"),
    field("width", record::WIDTH, 4, "u32"),
    field("height", record::HEIGHT, 4, "u32"),
    field("stride_y", record::STRIDE_Y, 4, "u32"),
    field("stride_uv", record::STRIDE_UV, 4, "u32"),
    field("format", record::FORMAT, 4, "u32"),
    field("flags", record::FLAGS, 4, "u32"),
    field("data_offset", record::DATA_OFFSET, 8, "u64"),
    field("data_len", record::DATA_LEN, 8, "u64"),
    field("reserved", record::RESERVED, 48, "u8[48]"),
];

/// Smallest and largest slot counts a writer accepts and a reader trusts.
pub const MIN_SLOTS: u32 = 2;
pub const MAX_SLOTS: u32 = 64;

/// Largest width or height accepted (16K video; larger would be a corrupt header).
pub const MAX_DIMENSION: u32 = 16384;

/// Offset of record `slot` in `frame.meta`.
pub const fn record_offset(slot: u32) -> usize {
    HEADER_SIZE + slot as usize * RECORD_SIZE
}

/// Exact length of `frame.meta` for `slots` slots.
pub const fn meta_file_len(slots: u32) -> usize {
    record_offset(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_contiguous(fields: &[FieldSpec], total: usize) {
        let mut next = 0;
        for f in fields {
            assert_eq!(
                f.offset, next,
                "field {} does not follow its predecessor",
                f.name
            );
            let natural = match f.ty {
                "u32" => 4,
                "u64" | "i64" => 8,
                _ => 1,
            };
            assert_eq!(f.offset % natural, 0, "field {} is misaligned", f.name);
            assert!(natural == 1 || f.size == natural, "field {} size", f.name);
            next += f.size;
        }
        assert_eq!(next, total);
    }

    #[test]
    fn tables_cover_every_byte_once_and_are_aligned() {
        assert_contiguous(HEADER_FIELDS, HEADER_SIZE);
        assert_contiguous(RECORD_FIELDS, RECORD_SIZE);
        assert_eq!(
            header::PUBLISH_COUNTER % 4,
            0,
            "futex words must be 4-byte aligned"
        );
        assert_eq!(HEADER_SIZE % 128, 0);
        assert_eq!(RECORD_SIZE % 64, 0);
    }

    /// The rows of the tbl table that follows the `.\" layout-table: NAME` marker in the man
    /// page: lines with at least `columns` tab-separated cells, minus the heading row. The
    /// last cell may open a text block (`T{`) whose lines have no tabs and are skipped.
    fn man_page_rows(page: &str, name: &str, columns: usize) -> Vec<Vec<String>> {
        let marker = format!(".\\\" layout-table: {name}\n");
        let start = page
            .find(&marker)
            .unwrap_or_else(|| panic!("man page has no marker {marker:?}"));
        let rest = &page[start..];
        let table = &rest[rest.find(".TS").expect(".TS")..rest.find(".TE").expect(".TE")];
        // The format section ends with the first line ending in '.'.
        let format_end = table
            .lines()
            .position(|l| l.trim_end().ends_with('.'))
            .expect("tbl format line");
        table
            .lines()
            .skip(format_end + 1)
            .map(|l| {
                l.split('\t')
                    .map(str::trim)
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter(|cells| cells.len() >= columns)
            .skip(1) // the heading row
            .collect()
    }

    #[test]
    fn man_page_tables_match_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../man/vas-frames.7");
        let page = std::fs::read_to_string(path).expect("man/vas-frames.7 is readable");
        for (name, fields) in [("header", HEADER_FIELDS), ("record", RECORD_FIELDS)] {
            let rows: Vec<(String, usize, usize, String)> = man_page_rows(&page, name, 4)
                .into_iter()
                .map(|r| {
                    (
                        r[2].clone(),
                        r[0].parse().unwrap(),
                        r[1].parse().unwrap(),
                        r[3].clone(),
                    )
                })
                .collect();
            let expected: Vec<(String, usize, usize, String)> = fields
                .iter()
                .map(|f| (f.name.to_string(), f.offset, f.size, f.ty.to_string()))
                .collect();
            assert_eq!(
                rows, expected,
                "man page {name} table (name, offset, size, type)"
            );
        }
        let constants: Vec<(String, String)> = man_page_rows(&page, "constants", 3)
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
        let expected: Vec<(String, String)> = [
            ("magic", String::from_utf8_lossy(&MAGIC).into_owned()),
            ("layout_version", LAYOUT_VERSION.to_string()),
            ("header_size", HEADER_SIZE.to_string()),
            ("record_size", RECORD_SIZE.to_string()),
            ("format_nv12", FORMAT_NV12.to_string()),
            ("no_slot", format!("0x{NO_SLOT:08X}")),
            ("state_live", STATE_LIVE.to_string()),
            ("state_closed", STATE_CLOSED.to_string()),
            ("flag_key_frame", FLAG_KEY_FRAME.to_string()),
            ("flag_discontinuity", FLAG_DISCONTINUITY.to_string()),
            ("page_size", PAGE_SIZE.to_string()),
            ("min_slots", MIN_SLOTS.to_string()),
            ("max_slots", MAX_SLOTS.to_string()),
            ("max_dimension", MAX_DIMENSION.to_string()),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        assert_eq!(
            constants, expected,
            "man page constants table (name, value)"
        );
    }
}
