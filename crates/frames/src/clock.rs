//! The two clocks a frame record carries, read the way the writer and the tools read them.

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME). Can jump when the clock is set.
pub fn wall_clock_now_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Nanoseconds on CLOCK_MONOTONIC: never jumps, shared by all processes of the host, so a
/// reader can compute a frame's age as `monotonic_now_ns() - mono_ns`.
pub fn monotonic_now_ns() -> i64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; both clocks exist on every Linux kernel, so
    // the call cannot fail.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}
