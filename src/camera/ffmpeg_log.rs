//! FFmpeg's own log, routed through ours, and the RTP losses it reports.
//!
//! libavformat says what it lost only in its log: the RTP demuxer writes "RTP: missed N
//! packets" when a sequence gap outlives its reorder queue (UDP transports; TCP never loses).
//! The callback runs on the thread that called into FFmpeg, which for a camera's demuxer is
//! that camera's thread, so losses are added to a thread-local counter the camera thread
//! drains after each read, and lines are logged under the thread's name (`cam-<id>`).

use std::cell::Cell;
use std::ffi::CStr;

use ffmpeg_next::ffi;

thread_local! {
    /// RTP packets FFmpeg reported missing on this thread since the last `take_lost`.
    static LOST: Cell<u64> = const { Cell::new(0) };
}

/// Installs the callback; FFmpeg then reports warnings and errors to it (not to stderr).
pub fn install() {
    // SAFETY: the callback is a plain function with FFmpeg's signature; setting the level and
    // the callback is allowed at any time.
    unsafe {
        ffi::av_log_set_level(ffi::AV_LOG_WARNING);
        ffi::av_log_set_callback(Some(callback));
    }
}

/// RTP packets lost on this thread since the last call.
pub fn take_lost() -> u64 {
    LOST.with(|l| l.replace(0))
}

/// The count in "RTP: missed 12 packets".
fn missed(line: &str) -> Option<u64> {
    line.trim()
        .strip_prefix("RTP: missed ")?
        .strip_suffix(" packets")?
        .parse()
        .ok()
}

unsafe extern "C" fn callback(
    avcl: *mut libc::c_void,
    level: libc::c_int,
    fmt: *const libc::c_char,
    vl: *mut ffi::__va_list_tag,
) {
    if level > ffi::AV_LOG_WARNING {
        return;
    }
    let mut line = [0 as libc::c_char; 512];
    let mut prefix = 0;
    // SAFETY: FFmpeg hands us a valid format and argument list for this call; the buffer is
    // ours and its size is passed, and av_log_format_line2 always NUL-terminates it.
    let text = unsafe {
        ffi::av_log_format_line2(
            avcl,
            level,
            fmt,
            vl,
            line.as_mut_ptr(),
            line.len() as i32,
            &mut prefix,
        );
        CStr::from_ptr(line.as_ptr()).to_string_lossy().into_owned()
    };
    if let Some(n) = missed(text.split("] ").last().unwrap_or(&text)) {
        LOST.with(|l| l.set(l.get() + n));
    }
    // FFmpeg's lines can carry the camera URL with its credentials.
    let text: Vec<String> = text
        .split(' ')
        .map(|w| match w.contains("://") {
            true => super::redact_url(w),
            false => w.to_string(),
        })
        .collect();
    let thread = std::thread::current();
    let target = thread.name().unwrap_or("ffmpeg");
    log::debug!(target: target, "ffmpeg: {}", text.join(" ").trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_read_from_the_rtp_demuxer_line() {
        let table = [
            ("RTP: missed 12 packets\n", Some(12)),
            ("RTP: missed 1 packets", Some(1)),
            ("max delay reached. need to consume packet", None),
            ("RTP: missed many packets", None),
        ];
        for (line, want) in table {
            assert_eq!(missed(line), want, "{line}");
        }
    }
}
