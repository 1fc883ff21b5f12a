//! A 4 MiB tmpfs mounted for one test, to fill up on purpose.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallTmpfs {
    path: PathBuf,
}

impl SmallTmpfs {
    /// Mounts a tmpfs of `size` (mount syntax, e.g. "4m") under /tmp, or says why it cannot.
    pub fn mount(name: &str, size: &str) -> Result<SmallTmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root, cannot mount a tmpfs".into());
        }
        let path = PathBuf::from(format!("/tmp/vas-frames-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_dir(&path);
            return Err(format!(
                "mount -t tmpfs failed ({status}): no CAP_SYS_ADMIN here?"
            ));
        }
        Ok(SmallTmpfs { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}
