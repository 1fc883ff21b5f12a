//! Files an earlier writer left behind (a crash, a kill -9, or a writer of the same camera
//! that is being replaced): what we learn from them, and how they are retired.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::Ordering;

use memmap2::MmapOptions;

use crate::futex;
use crate::header::read_header;
use crate::layout::{DATA_FILE_NAME, HEADER_SIZE, META_FILE_NAME, STATE_CLOSED};
use crate::liveness::pid_alive;
use crate::meta_view::MetaView;
use crate::seqlock::is_published;

/// What a leftover `frame.meta` tells the next writer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leftover {
    /// The old generation, if the old header was valid.
    pub generation: Option<u64>,
    /// The highest frame id of a published frame in it, 0 if none.
    pub last_frame_id: u64,
}

/// Reads, closes and removes the export files in `dir`, plus any temporary files a crashed
/// writer left. Attached readers of the old files see them closed (state and a futex wake)
/// at once instead of waiting for their own checks. Best effort: a garbage or foreign file is
/// simply removed.
pub(crate) fn retire_leftovers(dir: &Path, camera: &str) -> Leftover {
    let meta_path = dir.join(META_FILE_NAME);
    let mut found = Leftover::default();
    if let Ok(file) = OpenOptions::new().read(true).write(true).open(&meta_path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mapped = (len >= HEADER_SIZE as u64)
            // SAFETY: the length was checked first, so every access below is inside the file;
            // a valid header's record area is checked by read_header against the same length.
            .then(|| unsafe { MmapOptions::new().len(len as usize).map_mut(&file) }.ok())
            .flatten();
        if let Some(map) = mapped {
            // SAFETY: the raw pointer of a live mapping of `len` bytes.
            let meta = unsafe { MetaView::new(map.as_ptr(), map.len()) };
            if let Ok(info) = read_header(&meta, len as usize) {
                found.generation = Some(info.generation);
                for slot in 0..info.slots {
                    let record = meta.record(slot);
                    // Relaxed: the old writer is gone or about to be ignored; a torn value
                    // only makes the next frame id larger than needed, never smaller.
                    if is_published(record.sequence().load(Ordering::Relaxed)) {
                        found.last_frame_id =
                            found.last_frame_id.max(record.load_fields().frame_id);
                    }
                }
                if info.writer_pid != std::process::id() && pid_alive(info.writer_pid) {
                    log::warn!(
                        "camera '{camera}': replacing an export whose writer pid {} still \
                         exists; if another vasd exports this camera, stop one of them",
                        info.writer_pid
                    );
                } else {
                    log::info!(
                        "camera '{camera}': replacing a leftover export (generation {})",
                        info.generation
                    );
                }
                // Release: readers that see CLOSED (relaxed load + acquire fence) need nothing
                // else from us, but the counter bump after it must not be seen first.
                meta.state().store(STATE_CLOSED, Ordering::Release);
                meta.publish_counter().fetch_add(1, Ordering::Release);
                futex::wake_all(meta.publish_counter());
            }
        }
    }
    let _ = std::fs::remove_file(&meta_path);
    let _ = std::fs::remove_file(dir.join(DATA_FILE_NAME));
    remove_temporaries(dir);
    found
}

/// Removes `frame.meta.tmp-*` and `frame.data.tmp-*` left by a writer that died while
/// building its files.
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_temp = [META_FILE_NAME, DATA_FILE_NAME]
            .iter()
            .any(|base| name.starts_with(&format!("{base}.tmp-")));
        if is_temp {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
