//! Creating the two export files of one generation: sized, allocated, pre-faulted, filled,
//! and only then moved into place under their public names.

use std::fs::{File, OpenOptions, Permissions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use crate::error::FramesError;
use crate::file_id::FileId;
use crate::header::{write_header, HeaderPlan};
use crate::layout::{meta_file_len, DATA_FILE_NAME, META_FILE_NAME, PAGE_SIZE};
use crate::meta_view::MetaView;
use crate::mount_point::mount_point_of;

/// Mode of both files: the writer reads and writes, the export group reads, others nothing.
pub(crate) const FILE_MODE: u32 = 0o640;

const GROUP_HINT: &str =
    "the writer must own the file and be a member of the export group ([export] group in vas.toml)";

/// One generation's files, mapped read-write by the writer.
pub(crate) struct ExportFiles {
    pub meta: MmapMut,
    pub data: MmapMut,
    pub meta_id: FileId,
    pub data_id: FileId,
}

impl ExportFiles {
    /// The header and records, as atomics.
    pub(crate) fn meta_view(&self) -> MetaView<'_> {
        // SAFETY: the pointer is the mapping's own raw pointer (memmap2's as_ptr does not go
        // through a slice), page-aligned, valid for meta.len() bytes while self lives.
        unsafe { MetaView::new(self.meta.as_ptr(), self.meta.len()) }
    }
}

/// Files built under temporary names. Dropped without [`StagedFiles::install`], they are
/// removed.
pub(crate) struct StagedFiles {
    files: Option<ExportFiles>,
    meta_tmp: PathBuf,
    data_tmp: PathBuf,
}

impl StagedFiles {
    /// Builds both files in `dir` under temporary names: checks free space, creates with mode
    /// 0640 and the group, allocates every byte, pre-faults the mappings and writes the header
    /// (magic last).
    pub(crate) fn build(
        dir: &Path,
        camera: &str,
        plan: &HeaderPlan,
        group: Option<u32>,
    ) -> Result<StagedFiles, FramesError> {
        let meta_len = meta_file_len(plan.slots) as u64;
        let data_len = plan.data_size();
        let needed = meta_len.div_ceil(PAGE_SIZE) * PAGE_SIZE + data_len;
        let shm_full = |available_bytes: u64| FramesError::ShmFull {
            mount: mount_point_of(dir),
            camera: camera.to_string(),
            needed_bytes: needed,
            available_bytes,
            slots: plan.slots,
            geometry: plan.geometry.to_string(),
        };
        let available = available_bytes(dir)?;
        if available < needed {
            return Err(shm_full(available));
        }
        let pid = std::process::id();
        let mut staged = StagedFiles {
            files: None,
            meta_tmp: dir.join(format!("{META_FILE_NAME}.tmp-{pid}")),
            data_tmp: dir.join(format!("{DATA_FILE_NAME}.tmp-{pid}")),
        };
        // Data first, so that when the meta file appears its data file is already there.
        let (data_file, mut data) = create_allocated(&staged.data_tmp, data_len, group)
            .map_err(|e| e.or_shm_full(&shm_full, dir))?;
        let (meta_file, mut meta) = create_allocated(&staged.meta_tmp, meta_len, group)
            .map_err(|e| e.or_shm_full(&shm_full, dir))?;
        prefault(&mut data);
        prefault(&mut meta);
        let files = ExportFiles {
            meta_id: FileId::of_file(&meta_file)
                .map_err(|e| FramesError::io("stat", &staged.meta_tmp, e, GROUP_HINT))?,
            data_id: FileId::of_file(&data_file)
                .map_err(|e| FramesError::io("stat", &staged.data_tmp, e, GROUP_HINT))?,
            meta,
            data,
        };
        write_header(&files.meta_view(), plan);
        staged.files = Some(files);
        Ok(staged)
    }

    /// Renames both files to their public names, data first. A reader that attaches in
    /// between sees the old meta file, which the caller has already marked closed.
    pub(crate) fn install(mut self, dir: &Path) -> Result<ExportFiles, FramesError> {
        let data_path = dir.join(DATA_FILE_NAME);
        let meta_path = dir.join(META_FILE_NAME);
        std::fs::rename(&self.data_tmp, &data_path)
            .map_err(|e| FramesError::io("rename into place", &data_path, e, GROUP_HINT))?;
        std::fs::rename(&self.meta_tmp, &meta_path)
            .map_err(|e| FramesError::io("rename into place", &meta_path, e, GROUP_HINT))?;
        Ok(self.files.take().expect("staged files are built"))
    }
}

impl Drop for StagedFiles {
    fn drop(&mut self) {
        // After install the temporary names no longer exist and these fail harmlessly; after
        // a failed build they remove whatever was created.
        let _ = std::fs::remove_file(&self.data_tmp);
        let _ = std::fs::remove_file(&self.meta_tmp);
    }
}

/// Internal failure of [`create_allocated`], so ENOSPC can become the shm-full error.
enum CreateError {
    NoSpace,
    Other(FramesError),
}

impl CreateError {
    fn or_shm_full(self, shm_full: &impl Fn(u64) -> FramesError, dir: &Path) -> FramesError {
        match self {
            CreateError::NoSpace => shm_full(available_bytes(dir).unwrap_or(0)),
            CreateError::Other(e) => e,
        }
    }
}

/// Creates `path` (which must not exist), mode 0640, group `group`, with all `len` bytes
/// allocated, and maps it read-write.
fn create_allocated(
    path: &Path,
    len: u64,
    group: Option<u32>,
) -> Result<(File, MmapMut), CreateError> {
    let other = |action, e| CreateError::Other(FramesError::io(action, path, e, GROUP_HINT));
    // A temporary file of ours left by a crash with the same pid: remove it first.
    let _ = std::fs::remove_file(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| other("create", e))?;
    // The mode given to open() is masked by the umask (0640 & ~027 would still be 0640, but a
    // umask of 077 would drop the group bit); set it explicitly.
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(|e| other("chmod", e))?;
    if let Some(gid) = group {
        std::os::unix::fs::fchown(&file, None, Some(gid)).map_err(|e| other("chown", e))?;
    }
    allocate(&file, len).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            CreateError::NoSpace
        } else {
            other("allocate", e)
        }
    })?;
    // SAFETY: the file was just created by us with O_EXCL and fully allocated; nothing else
    // truncates it (the mode gives others no write access), so the mapping stays backed.
    let map = unsafe { MmapOptions::new().len(len as usize).map_mut(&file) }
        .map_err(|e| other("map", e))?;
    Ok((file, map))
}

/// Reserves every byte of the file. Not ftruncate: that makes a sparse file, and on a full
/// tmpfs the first touch of an unbacked page kills the writer with SIGBUS. fallocate either
/// allocates all pages now or fails with ENOSPC (tmpfs undoes a partial allocation).
pub(crate) fn allocate(file: &File, len: u64) -> std::io::Result<()> {
    let len =
        libc::off_t::try_from(len).map_err(|_| std::io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: a valid open fd; mode 0 allocates and extends the file size.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Bytes an unprivileged writer may still allocate on the filesystem holding `dir`.
pub(crate) fn available_bytes(dir: &Path) -> Result<u64, FramesError> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        FramesError::io(
            "statvfs",
            dir,
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
            GROUP_HINT,
        )
    })?;
    // SAFETY: zeroed statvfs is a valid out-parameter; c_path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(FramesError::io(
            "statvfs",
            dir,
            std::io::Error::last_os_error(),
            GROUP_HINT,
        ));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Touches every page once so the first frames do not pay the page faults: measured here,
/// copying a 1080p frame into a never-touched mapping takes about 2 ms against 0.22 ms hot.
/// The pages are already allocated and zero, so writing a zero changes nothing but the page
/// tables.
fn prefault(map: &mut MmapMut) {
    let base = map.as_mut_ptr();
    for offset in (0..map.len()).step_by(PAGE_SIZE as usize) {
        // SAFETY: offset < len, inside the mapping. Volatile so the store is not removed as
        // a dead write of a value the compiler cannot know is already there.
        unsafe { base.add(offset).write_volatile(0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// fallocate itself reports ENOSPC on a full tmpfs (statvfs is only the first check: two
    /// writers can race for the same space). Needs root to mount a tmpfs; skips otherwise.
    #[test]
    fn fallocate_enospc_is_reported_as_no_space() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("SKIPPED fallocate_enospc_is_reported_as_no_space: not root");
            return;
        }
        let dir = PathBuf::from(format!("/tmp/vas-frames-enospc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let _ = std::fs::remove_dir(&dir);
            println!("SKIPPED fallocate_enospc_is_reported_as_no_space: mount failed");
            return;
        }
        let path = dir.join("big");
        let result = create_allocated(&path, 8 << 20, None);
        let leftover_len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&path);
        let _ = Command::new("umount").arg(&dir).status();
        let _ = std::fs::remove_dir(&dir);
        assert!(matches!(result, Err(CreateError::NoSpace)));
        assert_eq!(
            leftover_len, 0,
            "a failed fallocate must not leave a sized file"
        );
    }
}
