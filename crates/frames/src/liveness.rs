//! Whether the writer process recorded in a header still exists.

use std::os::unix::fs::MetadataExt;

/// Inode of this process's pid namespace, 0 if /proc is not mounted. The writer records its
/// own; a reader checks the writer pid only when the two match, because a pid from another
/// namespace (a model in a container) means nothing here.
pub(crate) fn own_pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// False only when no process `pid` exists (ESRCH). EPERM means it exists but belongs to
/// another user, which is alive as far as we can tell. A reused pid reads as alive: the other
/// checks (state, file identity) still catch a restarted writer.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission checks, it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_is_alive_and_absurd_pids_are_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
        assert_ne!(own_pid_namespace(), 0);
    }
}
