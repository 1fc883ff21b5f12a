//! Typed atomic access to the fields of a mapped `frame.meta`.
//!
//! Both processes touch the same bytes at the same time, so every field is accessed as an
//! atomic in place (never through `&[u8]`, which would promise the compiler the bytes do not
//! change). The reader's mapping is read-only: it only ever calls `load(Relaxed)` on these
//! atomics, which the standard library guarantees to be a plain load.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use crate::layout::{header, record, record_offset};

/// A view of a mapped `frame.meta` of `len` bytes, valid for `'m`.
#[derive(Clone, Copy)]
pub(crate) struct MetaView<'m> {
    base: *const u8,
    len: usize,
    _mapping: PhantomData<&'m [u8]>,
}

impl<'m> MetaView<'m> {
    /// # Safety
    /// `base` must point to a live shared mapping of at least `len` bytes that stays mapped
    /// for `'m`, aligned to 8 bytes (mappings are page-aligned). The pointer must not be
    /// derived from a `&[u8]` (use the mapping's raw pointer), since the bytes change under it.
    pub(crate) unsafe fn new(base: *const u8, len: usize) -> MetaView<'m> {
        debug_assert_eq!(base as usize % 8, 0);
        MetaView {
            base,
            len,
            _mapping: PhantomData,
        }
    }

    pub(crate) fn u32_at(&self, offset: usize) -> &'m AtomicU32 {
        assert!(
            offset % 4 == 0 && offset + 4 <= self.len,
            "u32 field at {offset} out of the mapping"
        );
        // SAFETY: in bounds and aligned (checked above; base is page-aligned); the mapping
        // lives for 'm (contract of new); AtomicU32 has the size and alignment of u32.
        unsafe { &*(self.base.add(offset) as *const AtomicU32) }
    }

    pub(crate) fn u64_at(&self, offset: usize) -> &'m AtomicU64 {
        assert!(
            offset % 8 == 0 && offset + 8 <= self.len,
            "u64 field at {offset} out of the mapping"
        );
        // SAFETY: as in u32_at.
        unsafe { &*(self.base.add(offset) as *const AtomicU64) }
    }

    pub(crate) fn i64_at(&self, offset: usize) -> &'m AtomicI64 {
        assert!(
            offset % 8 == 0 && offset + 8 <= self.len,
            "i64 field at {offset} out of the mapping"
        );
        // SAFETY: as in u32_at.
        unsafe { &*(self.base.add(offset) as *const AtomicI64) }
    }

    pub(crate) fn publish_counter(&self) -> &'m AtomicU32 {
        self.u32_at(header::PUBLISH_COUNTER)
    }

    pub(crate) fn latest_slot(&self) -> &'m AtomicU32 {
        self.u32_at(header::LATEST_SLOT)
    }

    pub(crate) fn state(&self) -> &'m AtomicU32 {
        self.u32_at(header::STATE)
    }

    pub(crate) fn generation(&self) -> &'m AtomicU64 {
        self.u64_at(header::GENERATION)
    }

    pub(crate) fn record(&self, slot: u32) -> RecordView<'m> {
        RecordView {
            meta: *self,
            base: record_offset(slot),
        }
    }
}

/// The record fields of one slot, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RawRecord {
    pub frame_id: u64,
    pub pts_ns: i64,
    pub wall_ns: i64,
    pub mono_ns: i64,
    pub width: u32,
    pub height: u32,
    pub stride_y: u32,
    pub stride_uv: u32,
    pub format: u32,
    pub flags: u32,
    pub data_offset: u64,
    pub data_len: u64,
}

/// One slot record inside a [`MetaView`].
#[derive(Clone, Copy)]
pub(crate) struct RecordView<'m> {
    meta: MetaView<'m>,
    base: usize,
}

impl<'m> RecordView<'m> {
    pub(crate) fn sequence(&self) -> &'m AtomicU64 {
        self.meta.u64_at(self.base + record::SEQUENCE)
    }

    /// Reads every field but the sequence. Relaxed: these loads sit between the seqlock's
    /// begin_read and end_read, whose fences give them their ordering; a torn snapshot is
    /// detected by end_read and thrown away.
    pub(crate) fn load_fields(&self) -> RawRecord {
        let u32_at = |f: usize| self.meta.u32_at(self.base + f).load(Ordering::Relaxed);
        let u64_at = |f: usize| self.meta.u64_at(self.base + f).load(Ordering::Relaxed);
        let i64_at = |f: usize| self.meta.i64_at(self.base + f).load(Ordering::Relaxed);
        RawRecord {
            frame_id: u64_at(record::FRAME_ID),
            pts_ns: i64_at(record::PTS_NS),
            wall_ns: i64_at(record::WALL_NS),
            mono_ns: i64_at(record::MONO_NS),
            width: u32_at(record::WIDTH),
            height: u32_at(record::HEIGHT),
            stride_y: u32_at(record::STRIDE_Y),
            stride_uv: u32_at(record::STRIDE_UV),
            format: u32_at(record::FORMAT),
            flags: u32_at(record::FLAGS),
            data_offset: u64_at(record::DATA_OFFSET),
            data_len: u64_at(record::DATA_LEN),
        }
    }

    /// Writes every field but the sequence. Writer only. Relaxed: these stores sit between
    /// the seqlock's begin_write (whose release fence precedes them) and end_write (a release
    /// store that follows them).
    pub(crate) fn store_fields(&self, r: &RawRecord) {
        let u32_at = |f: usize, v: u32| self.meta.u32_at(self.base + f).store(v, Ordering::Relaxed);
        let u64_at = |f: usize, v: u64| self.meta.u64_at(self.base + f).store(v, Ordering::Relaxed);
        let i64_at = |f: usize, v: i64| self.meta.i64_at(self.base + f).store(v, Ordering::Relaxed);
        u64_at(record::FRAME_ID, r.frame_id);
        i64_at(record::PTS_NS, r.pts_ns);
        i64_at(record::WALL_NS, r.wall_ns);
        i64_at(record::MONO_NS, r.mono_ns);
        u32_at(record::WIDTH, r.width);
        u32_at(record::HEIGHT, r.height);
        u32_at(record::STRIDE_Y, r.stride_y);
        u32_at(record::STRIDE_UV, r.stride_uv);
        u32_at(record::FORMAT, r.format);
        u32_at(record::FLAGS, r.flags);
        u64_at(record::DATA_OFFSET, r.data_offset);
        u64_at(record::DATA_LEN, r.data_len);
    }
}
