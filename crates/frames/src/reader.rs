//! The reader: attaches to one camera's export read-only and takes frames out of it without
//! ever accepting a torn one.
//!
//! Read-only by construction: both files are opened O_RDONLY and mapped PROT_READ (memmap2's
//! `Mmap`), and the API hands out only shared references. Writing through the mapping would
//! fault, and `mprotect` cannot make it writable because the descriptor was not opened for
//! writing. So a reader, however buggy, cannot corrupt what the writer or other readers see.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::{Mmap, MmapOptions};

use crate::atomic_copy::copy_relaxed;
use crate::camera_id::validate_camera_id;
use crate::error::{FramesError, ReadError};
use crate::file_id::FileId;
use crate::frame_meta::{check_record, FrameMeta, FrameRef, SlotRef};
use crate::futex::{self, FutexWake};
use crate::header::{read_header, ExportInfo, HeaderProblem};
use crate::layout::{
    meta_file_len, DATA_FILE_NAME, HEADER_SIZE, LAYOUT_VERSION, MAX_SLOTS, META_FILE_NAME, NO_SLOT,
    STATE_LIVE,
};
use crate::liveness::{own_pid_namespace, pid_alive};
use crate::meta_view::MetaView;
use crate::seqlock::{self, is_published};

const PERMISSION_HINT: &str =
    "readers must be in the export group ([export] group in vas.toml): add this user to it";

/// How often [`ExportReader::latest`] retries when the latest slot is being overwritten as it
/// reads it. Two laps of the ring during one record read means the reader is starved of CPU;
/// giving up then is right (frames are skipped freely).
const LATEST_ATTEMPTS: usize = 4;

/// What [`ExportReader::wait_for_publish`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The counter moved: at least one frame was published (or the writer closed; check
    /// [`ExportReader::is_stale`] when `latest` gives nothing new).
    Published { counter: u32 },
    /// Nothing was published within the timeout. A writer that crashed looks like this too:
    /// check [`ExportReader::is_stale`].
    TimedOut,
    /// The writer closed this generation: re-attach.
    Closed,
}

/// Why a reader should re-attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// The writer shut down or replaced the files (state CLOSED).
    Closed,
    /// The generation in the mapped header changed.
    GenerationChanged,
    /// The path now names another file (or none): a new writer replaced the export.
    FilesReplaced,
    /// The writer process no longer exists (checked only in the writer's pid namespace).
    WriterGone,
}

/// Counts of this reader's data reads, for diagnostics (`vas-frames stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadStats {
    pub accepted: u64,
    /// Rejected because the writer overwrote the slot during the copy.
    pub torn: u64,
    /// Rejected because the slot had already moved on to a newer frame.
    pub lapped: u64,
}

/// A read-only attachment to one camera's export.
///
/// `Send + Sync`: one reader can serve several threads; every method takes `&self`.
pub struct ExportReader {
    root: PathBuf,
    camera_id: String,
    meta_path: PathBuf,
    meta: Mmap,
    data: Mmap,
    meta_id: FileId,
    info: ExportInfo,
    check_writer_pid: bool,
    accepted: AtomicU64,
    torn: AtomicU64,
    lapped: AtomicU64,
}

impl ExportReader {
    /// Opens `<root>/<camera_id>/frame.meta` and `frame.data` read-only and validates them:
    /// magic, layout version, sizes against the real file lengths (checked before anything
    /// is mapped or read, so a truncated or garbage file is an error, never a crash).
    pub fn attach(root: &Path, camera_id: &str) -> Result<ExportReader, FramesError> {
        validate_camera_id(camera_id)?;
        let dir = root.join(camera_id);
        let meta_path = dir.join(META_FILE_NAME);
        let data_path = dir.join(DATA_FILE_NAME);
        let no_export = || FramesError::NoExport {
            camera: camera_id.to_string(),
            root: root.to_path_buf(),
        };
        let corrupt = |path: &Path, reason: String| FramesError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let closed = || FramesError::WriterClosed {
            camera: camera_id.to_string(),
        };

        let meta_file = open_read_only(&meta_path).map_err(|e| match e {
            Some(e) => e,
            None => no_export(),
        })?;
        let meta_len = file_len(&meta_file, &meta_path)?;
        let largest = meta_file_len(MAX_SLOTS) as u64;
        if meta_len < HEADER_SIZE as u64 || meta_len > largest {
            return Err(corrupt(
                &meta_path,
                format!(
                    "frame.meta is {meta_len} bytes; a valid one is {HEADER_SIZE} to {largest}"
                ),
            ));
        }
        let meta = map_read_only(&meta_file, meta_len, &meta_path)?;
        // SAFETY: the raw pointer of a live, page-aligned mapping of meta_len bytes.
        let view = unsafe { MetaView::new(meta.as_ptr(), meta.len()) };
        let info = read_header(&view, meta_len as usize).map_err(|problem| match problem {
            HeaderProblem::Corrupt(reason) => corrupt(&meta_path, reason),
            HeaderProblem::NewerVersion(found) => FramesError::UnsupportedVersion {
                path: meta_path.clone(),
                found,
                supported: LAYOUT_VERSION,
            },
        })?;
        // Relaxed load + acquire fence: the read-only form of an acquire load (seqlock.rs).
        let live = || {
            let state = view.state().load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            state == STATE_LIVE
        };
        if !live() {
            return Err(closed());
        }
        let data_file = match open_read_only(&data_path) {
            Ok(file) => file,
            Err(_) if !live() => return Err(closed()),
            Err(Some(e)) => return Err(e),
            Err(None) => return Err(corrupt(&data_path, "frame.meta exists without it".into())),
        };
        let data_len = file_len(&data_file, &data_path)?;
        if data_len != info.data_size {
            if !live() {
                return Err(closed());
            }
            return Err(corrupt(
                &data_path,
                format!(
                    "frame.data is {data_len} bytes, the header says {}",
                    info.data_size
                ),
            ));
        }
        let data = map_read_only(&data_file, data_len, &data_path)?;
        // The writer marks the old meta CLOSED before it moves new files into place, so if the
        // data file we opened belongs to a newer generation, this check sees CLOSED.
        if !live() {
            return Err(closed());
        }
        let meta_id = FileId::of_file(&meta_file)
            .map_err(|e| FramesError::io("stat", &meta_path, e, PERMISSION_HINT))?;
        Ok(ExportReader {
            root: root.to_path_buf(),
            camera_id: camera_id.to_string(),
            meta_path,
            meta,
            data,
            meta_id,
            check_writer_pid: info.pid_namespace != 0 && info.pid_namespace == own_pid_namespace(),
            info,
            accepted: AtomicU64::new(0),
            torn: AtomicU64::new(0),
            lapped: AtomicU64::new(0),
        })
    }

    /// The validated header: generation, slot count, geometry, writer pid.
    pub fn info(&self) -> &ExportInfo {
        &self.info
    }

    pub fn generation(&self) -> u64 {
        self.info.generation
    }

    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The publish counter now. Pass it to [`ExportReader::wait_for_publish`].
    pub fn publish_counter(&self) -> u32 {
        // Relaxed load + acquire fence: pairs with the writer's release increment, so the
        // latest slot read after this is at least the one published before the increment.
        let counter = self.view().publish_counter().load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        counter
    }

    /// Blocks (FUTEX_WAIT, no polling) until the publish counter differs from
    /// `last_counter`, the writer closes, or `timeout` passes.
    pub fn wait_for_publish(&self, last_counter: u32, timeout: Duration) -> WaitOutcome {
        // None: a timeout so long it does not fit in an Instant, i.e. wait indefinitely.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let counter = self.publish_counter();
            if self.is_closed() {
                return WaitOutcome::Closed;
            }
            if counter != last_counter {
                return WaitOutcome::Published { counter };
            }
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => timeout,
            };
            if remaining.is_zero() {
                return WaitOutcome::TimedOut;
            }
            // Returns at once if the counter already moved; spurious and EINTR returns loop.
            if futex::wait(self.view().publish_counter(), last_counter, remaining)
                == FutexWake::TimedOut
                && self.publish_counter() == last_counter
            {
                return if self.is_closed() {
                    WaitOutcome::Closed
                } else {
                    WaitOutcome::TimedOut
                };
            }
        }
    }

    /// The most recently published frame, read under the seqlock. `None` before the first
    /// publish, or when the writer overwrote the latest slot on every attempt.
    pub fn latest(&self) -> Option<SlotRef> {
        for _ in 0..LATEST_ATTEMPTS {
            // Relaxed load + acquire fence: pairs with the writer's release store of the
            // latest slot; the slot's sequence read next is at least that publish's.
            let slot = self.view().latest_slot().load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if slot == NO_SLOT || slot >= self.info.slots {
                return None;
            }
            if let Ok(found) = self.slot_ref(slot) {
                return Some(found);
            }
        }
        None
    }

    /// The frame currently in `slot`, read under the seqlock, without its pixels.
    pub fn slot_ref(&self, slot: u32) -> Result<SlotRef, ReadError> {
        self.check_slot(slot)?;
        let record = self.view().record(slot);
        let sequence = seqlock::begin_read(record.sequence());
        if !is_published(sequence) {
            return Err(if sequence == 0 {
                ReadError::InvalidSequence { sequence }
            } else {
                ReadError::Torn
            });
        }
        let fields = record.load_fields();
        seqlock::end_read(record.sequence(), sequence)?;
        check_record(&self.info, slot, &fields)
            .map_err(|reason| ReadError::CorruptRecord { slot, reason })?;
        Ok(SlotRef {
            generation: self.info.generation,
            slot,
            sequence,
            meta: FrameMeta::from_record(&fields),
        })
    }

    /// Copies the frame `expected_sequence` of `slot` into `dst` (replacing its contents) and
    /// returns its record. The copy is validated afterwards: if the writer touched the slot
    /// before or during the copy, the result is `Lapped` or `Torn` and `dst` holds garbage to
    /// ignore, never a frame that looks valid.
    pub fn read_slot_into(
        &self,
        slot: u32,
        expected_sequence: u64,
        dst: &mut Vec<u8>,
    ) -> Result<FrameMeta, ReadError> {
        let result = self.read_validated(slot, expected_sequence, |_, src, len| {
            // SAFETY: src..src+len lies inside the data mapping (check_record bounded it),
            // is page-aligned (slot offsets are multiples of slot_size) and is the mapping's
            // raw pointer; the mapping lives as long as self.
            unsafe { copy_relaxed(src, len, dst) }
        });
        self.tally(result.map(|(meta, ())| meta))
    }

    /// Runs `f` on the frame's bytes in place (no copy), then validates. If validation fails
    /// the result of `f` is dropped and `Torn` or `Lapped` returned: `f` may have seen bytes of
    /// two frames and must not act on them before this returns (no side effects that matter;
    /// compute, then let the caller use the `Ok` value).
    ///
    /// The bytes may change while `f` runs: this is a plain read racing with the writer, the
    /// C-style seqlock read. It is the zero-copy path; `read_slot_into` is the strictly
    /// race-free one.
    pub fn with_slot<R>(
        &self,
        slot: u32,
        expected_sequence: u64,
        f: impl FnOnce(&FrameMeta, &[u8]) -> R,
    ) -> Result<R, ReadError> {
        let result = self.read_validated(slot, expected_sequence, |meta, src, len| {
            // SAFETY: as in read_slot_into: in bounds, inside a mapping that outlives the
            // call. The bytes may change concurrently; the seqlock check after f decides
            // whether the result stands.
            let bytes = unsafe { std::slice::from_raw_parts(src, len) };
            f(meta, bytes)
        });
        self.tally(result.map(|(_, r)| r))
    }

    /// [`ExportReader::read_slot_into`] for a frame named by another process.
    pub fn read_frame_into(
        &self,
        frame: &FrameRef,
        dst: &mut Vec<u8>,
    ) -> Result<FrameMeta, ReadError> {
        self.check_generation(frame)?;
        let meta = self.read_slot_into(frame.slot, frame.sequence, dst)?;
        if meta.frame_id == frame.frame_id {
            Ok(meta)
        } else {
            Err(ReadError::Lapped)
        }
    }

    /// [`ExportReader::with_slot`] for a frame named by another process.
    pub fn with_frame<R>(
        &self,
        frame: &FrameRef,
        f: impl FnOnce(&FrameMeta, &[u8]) -> R,
    ) -> Result<R, ReadError> {
        self.check_generation(frame)?;
        let expected_id = frame.frame_id;
        let (id, r) = self.with_slot(frame.slot, frame.sequence, |meta, bytes| {
            (meta.frame_id, f(meta, bytes))
        })?;
        if id == expected_id {
            Ok(r)
        } else {
            Err(ReadError::Lapped)
        }
    }

    /// True when this attachment is over and the caller should re-attach: see
    /// [`ExportReader::stale_reason`]. Costs one stat() and at most one kill(pid, 0).
    pub fn is_stale(&self) -> bool {
        self.stale_reason().is_some()
    }

    /// Why this attachment is over, if it is.
    pub fn stale_reason(&self) -> Option<StaleReason> {
        let view = self.view();
        // Relaxed: a staleness check is a poll; a late answer is corrected by the next one.
        if view.state().load(Ordering::Relaxed) != STATE_LIVE {
            return Some(StaleReason::Closed);
        }
        // Relaxed, as above.
        if view.generation().load(Ordering::Relaxed) != self.info.generation {
            return Some(StaleReason::GenerationChanged);
        }
        if FileId::of_path(&self.meta_path).ok() != Some(self.meta_id) {
            return Some(StaleReason::FilesReplaced);
        }
        if self.check_writer_pid && !pid_alive(self.info.writer_pid) {
            return Some(StaleReason::WriterGone);
        }
        None
    }

    /// How many data reads this reader accepted and rejected so far.
    pub fn read_stats(&self) -> ReadStats {
        // Relaxed: plain statistics, no other memory depends on them.
        ReadStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            torn: self.torn.load(Ordering::Relaxed),
            lapped: self.lapped.load(Ordering::Relaxed),
        }
    }

    fn view(&self) -> MetaView<'_> {
        // SAFETY: the raw pointer of our live, page-aligned meta mapping and its length.
        unsafe { MetaView::new(self.meta.as_ptr(), self.meta.len()) }
    }

    fn is_closed(&self) -> bool {
        // Relaxed: a poll, as in stale_reason.
        self.view().state().load(Ordering::Relaxed) != STATE_LIVE
    }

    fn check_slot(&self, slot: u32) -> Result<(), ReadError> {
        if slot < self.info.slots {
            Ok(())
        } else {
            Err(ReadError::NoSuchSlot {
                slot,
                slots: self.info.slots,
            })
        }
    }

    fn check_generation(&self, frame: &FrameRef) -> Result<(), ReadError> {
        if frame.generation == self.info.generation {
            Ok(())
        } else {
            Err(ReadError::WrongGeneration {
                reference: frame.generation,
                attached: self.info.generation,
            })
        }
    }

    /// The seqlock read shared by the copy and the borrow paths: check the sequence, snapshot
    /// and bound the record, hand the pixel range to `use_bytes`, re-check the sequence.
    fn read_validated<R>(
        &self,
        slot: u32,
        expected_sequence: u64,
        use_bytes: impl FnOnce(&FrameMeta, *const u8, usize) -> R,
    ) -> Result<(FrameMeta, R), ReadError> {
        self.check_slot(slot)?;
        let record = self.view().record(slot);
        let begun = seqlock::begin_read(record.sequence());
        seqlock::check_expected(begun, expected_sequence)?;
        let fields = record.load_fields();
        // The offsets of a torn snapshot can be anything: bound them before touching memory,
        // and report a bad record as corrupt only if the sequence shows it was not torn.
        if let Err(reason) = check_record(&self.info, slot, &fields) {
            seqlock::end_read(record.sequence(), begun)?;
            return Err(ReadError::CorruptRecord { slot, reason });
        }
        let meta = FrameMeta::from_record(&fields);
        // check_record guarantees data_offset + data_len <= slot_count * slot_size, which is
        // the data mapping's length (checked at attach).
        // SAFETY: the offset is inside the data mapping, per the line above.
        let src = unsafe { self.data.as_ptr().add(fields.data_offset as usize) };
        let out = use_bytes(&meta, src, fields.data_len as usize);
        seqlock::end_read(record.sequence(), begun)?;
        Ok((meta, out))
    }

    fn tally<T>(&self, result: Result<T, ReadError>) -> Result<T, ReadError> {
        // Relaxed: statistics only.
        let counter = match &result {
            Ok(_) => Some(&self.accepted),
            Err(ReadError::Torn) => Some(&self.torn),
            Err(ReadError::Lapped) => Some(&self.lapped),
            Err(_) => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

/// Opens read-only. `Err(None)` means the file does not exist.
fn open_read_only(path: &Path) -> Result<File, Option<FramesError>> {
    File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            None
        } else {
            Some(FramesError::io("open", path, e, PERMISSION_HINT))
        }
    })
}

fn file_len(file: &File, path: &Path) -> Result<u64, FramesError> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| FramesError::io("stat", path, e, PERMISSION_HINT))
}

/// Maps `len` bytes PROT_READ, MAP_SHARED. The caller checked `len` against the file size.
fn map_read_only(file: &File, len: u64, path: &Path) -> Result<Mmap, FramesError> {
    // SAFETY: len was checked against the file's size; the writer allocates its files fully
    // and never truncates them, and only the writer may write them (mode 0640), so the
    // mapping stays backed for its lifetime. The bytes do change under it, which is why all
    // access goes through atomics or the seqlock-validated paths above.
    unsafe { MmapOptions::new().len(len as usize).map(file) }
        .map_err(|e| FramesError::io("map", path, e, PERMISSION_HINT))
}
