//! FUTEX_WAIT / FUTEX_WAKE on the publish counter, across processes.
//!
//! The counter lives in a MAP_SHARED file mapping, so the futex must be the shared kind (no
//! FUTEX_PRIVATE_FLAG): the kernel then keys it by (inode, page, offset) rather than by the
//! virtual address, and a waiter in one process is woken by a wake in another even though the
//! two map the file at different addresses. FUTEX_WAIT only reads the word, so it works on a
//! read-only (PROT_READ) mapping; tests/futex_wake.rs checks exactly that.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Wakes every process and thread blocked in [`wait`] on `word`. Returns how many woke.
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    // SAFETY: the address is a valid, aligned u32 in a live mapping (we hold a reference);
    // FUTEX_WAKE ignores the timeout and second-address arguments.
    let woken = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        )
    };
    woken.max(0) as usize
}

/// Why [`wait`] returned. In every case the caller re-reads the word: wake-ups can be
/// spurious and the word can change between the wake and the re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutexWake {
    /// Woken by FUTEX_WAKE, or the word already differed from `expected` (EAGAIN), or a
    /// signal interrupted the wait (EINTR).
    Woken,
    TimedOut,
}

/// Sleeps while `word` holds `expected`, for at most `timeout`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> FutexWake {
    // FUTEX_WAIT takes a relative timeout on CLOCK_MONOTONIC. Clamp absurd durations so the
    // seconds fit in time_t.
    let secs = timeout.as_secs().min(i32::MAX as u64);
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the word is a valid, aligned u32 in a live mapping; ts outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0,
        )
    };
    if rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        FutexWake::TimedOut
    } else {
        FutexWake::Woken
    }
}
