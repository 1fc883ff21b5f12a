//! The writer: vasd's side of the export, one per exported camera.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::camera_id::validate_camera_id;
use crate::clock::{monotonic_now_ns, wall_clock_now_ns};
use crate::error::{human_bytes, FramesError};
use crate::export_files::{ExportFiles, StagedFiles};
use crate::file_id::FileId;
use crate::futex;
use crate::geometry::Nv12Geometry;
use crate::header::HeaderPlan;
use crate::layout::{
    DATA_FILE_NAME, FLAG_DISCONTINUITY, FLAG_KEY_FRAME, MAX_DIMENSION, MAX_SLOTS, META_FILE_NAME,
    MIN_SLOTS, STATE_CLOSED,
};
use crate::leftover::retire_leftovers;
use crate::liveness::own_pid_namespace;
use crate::meta_view::RawRecord;
use crate::seqlock;

/// Mode of the camera directory (and of the root, when the writer creates it): readers in the
/// export group may enter and list it.
const DIR_MODE: u32 = 0o750;

/// How to size and share one camera's export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Slots in the ring, 2 to 64. More slots give a slow reader more time before its frame
    /// is overwritten (slots / fps seconds), at slot_size bytes of /dev/shm each.
    pub slots: u32,
    pub width: u32,
    pub height: u32,
    /// Group id given to the directory and files (mode 0750 and 0640), so readers in that
    /// group can attach. `None` keeps the writer's primary group.
    pub group: Option<u32>,
}

impl WriterOptions {
    /// Default slot count: with 4 slots at 30 fps a reader has about 100 ms to copy a frame
    /// before it is overwritten, at 12 MiB of /dev/shm per 1080p camera.
    pub const DEFAULT_SLOTS: u32 = 4;

    pub fn new(width: u32, height: u32) -> WriterOptions {
        WriterOptions {
            slots: WriterOptions::DEFAULT_SLOTS,
            width,
            height,
            group: None,
        }
    }
}

/// What the caller knows about a frame when it publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameInfo {
    /// Stream presentation timestamp in ns.
    pub pts_ns: i64,
    /// Capture time, ns since the Unix epoch.
    pub wall_ns: i64,
    /// Capture time on CLOCK_MONOTONIC, ns.
    pub mono_ns: i64,
    pub key_frame: bool,
    /// First frame after a reconnect or a timestamp jump.
    pub discontinuity: bool,
}

impl FrameInfo {
    /// A frame captured now, with both clocks read at this call.
    pub fn captured_now(pts_ns: i64) -> FrameInfo {
        FrameInfo {
            pts_ns,
            wall_ns: wall_clock_now_ns(),
            mono_ns: monotonic_now_ns(),
            ..FrameInfo::default()
        }
    }
}

/// Sole writer of one camera's `frame.meta` and `frame.data`.
///
/// Never blocks: [`SlotWriter::begin`] and [`SlotFill::publish`] touch only memory and end with
/// one FUTEX_WAKE system call; readers can neither slow it down nor make it wait.
pub struct SlotWriter {
    root: PathBuf,
    dir: PathBuf,
    camera_id: String,
    group: Option<u32>,
    slots: u32,
    geometry: Nv12Geometry,
    files: ExportFiles,
    generation: u64,
    writer_start_wall_ns: i64,
    next_slot: u32,
    next_frame_id: u64,
}

impl SlotWriter {
    /// Creates `<root>/<camera_id>/frame.meta` and `frame.data`, replacing files an earlier
    /// writer left there (attached readers of those see them closed).
    ///
    /// Fails with kind `ShmFull` when the filesystem cannot hold the files; the export of this
    /// camera is then impossible but nothing else is affected.
    pub fn create(
        root: &Path,
        camera_id: &str,
        opts: &WriterOptions,
    ) -> Result<SlotWriter, FramesError> {
        validate_camera_id(camera_id)?;
        check_slots(camera_id, opts.slots)?;
        let geometry = checked_geometry(camera_id, opts.width, opts.height)?;
        let dir = root.join(camera_id);
        ensure_dir(root, opts.group)?;
        ensure_dir(&dir, opts.group)?;
        let leftover = retire_leftovers(&dir, camera_id);
        let writer_start_wall_ns = wall_clock_now_ns();
        let generation = next_generation(leftover.generation);
        let plan = HeaderPlan {
            geometry,
            slots: opts.slots,
            generation,
            writer_pid: std::process::id(),
            writer_start_wall_ns,
            pid_namespace: own_pid_namespace(),
        };
        let files = StagedFiles::build(&dir, camera_id, &plan, opts.group)?.install(&dir)?;
        log::info!(
            "camera '{camera_id}': exporting to {}: {} slots of {geometry} NV12, {}, generation {generation}",
            dir.display(),
            opts.slots,
            human_bytes(plan.data_size())
        );
        Ok(SlotWriter {
            root: root.to_path_buf(),
            dir,
            camera_id: camera_id.to_string(),
            group: opts.group,
            slots: opts.slots,
            geometry,
            files,
            generation,
            writer_start_wall_ns,
            next_slot: 0,
            next_frame_id: leftover.last_frame_id + 1,
        })
    }

    /// Opens the next slot for writing. The slot's sequence is odd from here until
    /// [`SlotFill::publish`]; readers reject it meanwhile. Dropping the `SlotFill` without
    /// publishing leaves the slot odd and the next `begin` reuses it.
    pub fn begin(&mut self) -> SlotFill<'_> {
        let slot = self.next_slot;
        let odd_sequence = seqlock::begin_write(self.files.meta_view().record(slot).sequence());
        SlotFill {
            writer: self,
            slot,
            odd_sequence,
        }
    }

    /// Current frame size (width, height).
    pub fn geometry(&self) -> (u32, u32) {
        (self.geometry.width, self.geometry.height)
    }

    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The frame id the next publish will carry.
    pub fn next_frame_id(&self) -> u64 {
        self.next_frame_id
    }

    /// The camera's export directory, `<root>/<camera_id>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Changes the frame size: builds a new generation's files beside the current ones, then
    /// closes the current generation (readers see it stale and re-attach) and moves the new
    /// files into place. Frame ids carry on. On error the current export is left untouched
    /// and still usable. A call with the current size does nothing.
    pub fn reconfigure(&mut self, width: u32, height: u32) -> Result<(), FramesError> {
        let geometry = checked_geometry(&self.camera_id, width, height)?;
        if geometry == self.geometry {
            return Ok(());
        }
        ensure_dir(&self.root, self.group)?;
        ensure_dir(&self.dir, self.group)?;
        let generation = next_generation(Some(self.generation));
        let plan = HeaderPlan {
            geometry,
            slots: self.slots,
            generation,
            writer_pid: std::process::id(),
            writer_start_wall_ns: self.writer_start_wall_ns,
            pid_namespace: own_pid_namespace(),
        };
        let staged = StagedFiles::build(&self.dir, &self.camera_id, &plan, self.group)?;
        self.mark_closed();
        let files = staged.install(&self.dir)?;
        log::info!(
            "camera '{}': export resized {} -> {geometry}, generation {generation}",
            self.camera_id,
            self.geometry
        );
        // The old mappings are unmapped here; their files were unlinked by the renames.
        self.files = files;
        self.geometry = geometry;
        self.generation = generation;
        self.next_slot = 0;
        Ok(())
    }

    /// Tells attached readers this generation is over: state CLOSED, a counter bump and a
    /// wake, so readers blocked in wait_for_publish return and re-check.
    fn mark_closed(&self) {
        let meta = self.files.meta_view();
        // Release: pairs with the readers' relaxed load + acquire fence of state; nothing
        // written before it needs to be seen, but it must not be seen after the bump below.
        meta.state().store(STATE_CLOSED, Ordering::Release);
        // Release: a reader woken by this bump and loading the counter then the state sees
        // CLOSED.
        meta.publish_counter().fetch_add(1, Ordering::Release);
        futex::wake_all(meta.publish_counter());
    }

    /// Unlinks `name` only if the path still names our file, so a writer that outlived its
    /// replacement never deletes the replacement's files.
    fn remove_if_ours(&self, name: &str, ours: FileId) {
        let path = self.dir.join(name);
        if FileId::of_path(&path).ok() == Some(ours) {
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!(
                    "camera '{}': cannot remove {}: {e}",
                    self.camera_id,
                    path.display()
                );
            }
        }
    }
}

impl Drop for SlotWriter {
    /// Clean shutdown: mark closed, wake waiters, remove both files and the camera directory
    /// if it is empty. Readers that still map the files keep valid (now stale) mappings: the
    /// kernel frees the memory when the last mapping goes.
    fn drop(&mut self) {
        self.mark_closed();
        self.remove_if_ours(META_FILE_NAME, self.files.meta_id);
        self.remove_if_ours(DATA_FILE_NAME, self.files.data_id);
        // Fails harmlessly when a replacement writer already put files there.
        let _ = std::fs::remove_dir(&self.dir);
        log::info!("camera '{}': export closed", self.camera_id);
    }
}

/// One slot opened by [`SlotWriter::begin`]: write the planes, then publish.
pub struct SlotFill<'w> {
    writer: &'w mut SlotWriter,
    slot: u32,
    odd_sequence: u64,
}

impl SlotFill<'_> {
    /// Index of the slot being written.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The frame id [`SlotFill::publish`] will return.
    pub fn frame_id(&self) -> u64 {
        self.writer.next_frame_id
    }

    pub fn width(&self) -> u32 {
        self.writer.geometry.width
    }

    pub fn height(&self) -> u32 {
        self.writer.geometry.height
    }

    /// Bytes per row of the Y plane.
    pub fn stride_y(&self) -> usize {
        self.writer.geometry.stride_y() as usize
    }

    /// Bytes per row of the interleaved UV plane.
    pub fn stride_uv(&self) -> usize {
        self.writer.geometry.stride_uv() as usize
    }

    /// The Y plane: `height` rows of `stride_y` bytes.
    pub fn y_plane_mut(&mut self) -> &mut [u8] {
        self.planes_mut().0
    }

    /// The UV plane: `(height + 1) / 2` rows of `stride_uv` bytes, U and V interleaved.
    pub fn uv_plane_mut(&mut self) -> &mut [u8] {
        self.planes_mut().1
    }

    /// Both planes at once, for a conversion that writes them together.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        let g = self.writer.geometry;
        let start = (self.slot as u64 * g.slot_size()) as usize;
        let frame = &mut self.writer.files.data[start..start + g.frame_len()];
        frame.split_at_mut(g.y_len())
    }

    /// Publishes the frame written into the planes and returns its frame id: record fields,
    /// sequence to even (release), latest slot, publish counter, FUTEX_WAKE.
    pub fn publish(self, info: FrameInfo) -> u64 {
        let writer = self.writer;
        let g = writer.geometry;
        let frame_id = writer.next_frame_id;
        let meta = writer.files.meta_view();
        let record = meta.record(self.slot);
        let flags = if info.key_frame { FLAG_KEY_FRAME } else { 0 }
            | if info.discontinuity {
                FLAG_DISCONTINUITY
            } else {
                0
            };
        record.store_fields(&RawRecord {
            frame_id,
            pts_ns: info.pts_ns,
            wall_ns: info.wall_ns,
            mono_ns: info.mono_ns,
            width: g.width,
            height: g.height,
            stride_y: g.stride_y(),
            stride_uv: g.stride_uv(),
            format: crate::layout::FORMAT_NV12,
            flags,
            data_offset: self.slot as u64 * g.slot_size(),
            data_len: g.frame_len() as u64,
        });
        seqlock::end_write(record.sequence(), self.odd_sequence);
        // Release: a reader that sees this slot index (relaxed load + acquire fence) then reads
        // the slot's sequence sees at least the even value stored above.
        meta.latest_slot().store(self.slot, Ordering::Release);
        // Release: a reader woken by (or polling) the counter sees the new latest slot.
        meta.publish_counter().fetch_add(1, Ordering::Release);
        // Unconditional: readers map read-only and cannot register as waiters, so the writer
        // cannot know whether anyone sleeps. A wake with no waiters costs one system call
        // (about a microsecond), nothing next to the 2.85 ms decode of a 1080p frame.
        futex::wake_all(meta.publish_counter());
        writer.next_slot = (self.slot + 1) % writer.slots;
        writer.next_frame_id += 1;
        frame_id
    }
}

/// Generations only need to differ between successive writers of a camera; they are taken
/// from the wall clock so that a writer started after a clean shutdown (which removed the old
/// files, so there is no old number to add 1 to) still gets a new one.
fn next_generation(previous: Option<u64>) -> u64 {
    let from_clock = u64::try_from(wall_clock_now_ns()).unwrap_or(0);
    from_clock.max(previous.map_or(1, |g| g.wrapping_add(1)))
}

fn check_slots(camera: &str, slots: u32) -> Result<(), FramesError> {
    if (MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
        return Ok(());
    }
    Err(FramesError::InvalidOptions {
        camera: camera.to_string(),
        reason: format!(
            "{slots} slots: set [export] slots between {MIN_SLOTS} and {MAX_SLOTS} (a ring of \
             one slot would be overwritten while readers copy it)"
        ),
    })
}

fn checked_geometry(camera: &str, width: u32, height: u32) -> Result<Nv12Geometry, FramesError> {
    Nv12Geometry::new(width, height).ok_or_else(|| FramesError::InvalidOptions {
        camera: camera.to_string(),
        reason: format!(
            "frame size {width}x{height}: width and height must be between 1 and {MAX_DIMENSION}"
        ),
    })
}

/// Creates `dir` if missing, mode 0750 and the group. An existing directory is left as it is:
/// the root may have been set up by the administrator or the package.
fn ensure_dir(dir: &Path, group: Option<u32>) -> Result<(), FramesError> {
    const HINT: &str = "the writer needs write access to the export root ([export] shm_dir)";
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
                .map_err(|e| FramesError::io("chmod", dir, e, HINT))?;
            if let Some(gid) = group {
                std::os::unix::fs::chown(dir, None, Some(gid))
                    .map_err(|e| FramesError::io("chown", dir, e, HINT))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir.parent().unwrap_or(dir);
            Err(FramesError::io(
                "create the export directory in",
                parent,
                e,
                HINT,
            ))
        }
        Err(e) => Err(FramesError::io("create the export directory", dir, e, HINT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_always_move_forward() {
        let now = u64::try_from(wall_clock_now_ns()).unwrap();
        assert!(next_generation(None) >= now);
        assert_eq!(next_generation(Some(u64::MAX - 1)), u64::MAX);
        assert!(next_generation(Some(5)) > 5);
        let far_future = now + 1_000_000_000_000;
        assert_eq!(next_generation(Some(far_future)), far_future + 1);
    }
}
