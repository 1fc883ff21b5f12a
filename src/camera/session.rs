//! One RTSP session with FFmpeg: open with a cancellable deadline, then read access units.
//!
//! libavformat blocks inside `avformat_open_input` and `av_read_frame` for as long as the
//! network lets it. Two guards end that: the RTSP `timeout` option (socket I/O timeout in
//! microseconds: FFmpeg 5.1 dropped `stimeout`), and an interrupt callback that FFmpeg polls at
//! least every 100 ms while waiting on a socket, which returns true once our own deadline passes
//! or a stop is raised. The deadline is re-armed before every read. Against a SIGSTOPped server
//! (field notes): without both the thread blocks forever, shutdown included; with both a stall
//! ends after the I/O timeout and a stop cancels a blocked read. tests/ingest.rs holds us to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg::format::context::Input;
use ffmpeg::packet::Mut as _;
use ffmpeg::{Dictionary, Packet};
use ffmpeg_next as ffmpeg;

use super::status::StreamInfo;
use crate::config::CameraConfig;
use crate::error::CameraFault;
use crate::stop::StopSignal;

/// Why a session could not be opened or ended.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEnd {
    /// A stop was requested; not a fault.
    Stopped,
    Fault(CameraFault, String),
}

/// Deadline shared with the interrupt callback, in nanoseconds since `base`; 0 = none.
///
/// The callback runs on the camera thread itself (inside FFmpeg calls made by that thread), so
/// Relaxed is enough: there is no other thread to synchronise with.
struct Deadline {
    base: Instant,
    at_ns: AtomicU64,
}

impl Deadline {
    fn arm(&self, after: Duration) {
        let at = self.base.elapsed() + after;
        self.at_ns.store(at.as_nanos() as u64, Ordering::Relaxed);
    }

    fn passed(&self) -> bool {
        let at = self.at_ns.load(Ordering::Relaxed);
        at != 0 && self.base.elapsed().as_nanos() as u64 > at
    }
}

pub struct Session {
    input: Input,
    video_index: usize,
    deadline: Arc<Deadline>,
    io_timeout: Duration,
    stop: Arc<StopSignal>,
    pub info: StreamInfo,
}

impl Session {
    /// Connects, reads the SDP and finds the video stream; bounded by the I/O timeout.
    pub fn open(cam: &CameraConfig, stop: &Arc<StopSignal>) -> Result<Session, SessionEnd> {
        let io_timeout = cam.reconnect.io_timeout;
        let deadline = Arc::new(Deadline {
            base: Instant::now(),
            at_ns: AtomicU64::new(0),
        });
        // Opening includes DESCRIBE, SETUP, PLAY and probing the first packets: allow it two
        // I/O timeouts in all, while the socket option still bounds each single wait.
        deadline.arm(io_timeout * 2);

        let mut options = Dictionary::new();
        options.set("rtsp_transport", "tcp");
        options.set("timeout", &io_timeout.as_micros().to_string());
        // Probing waits for frames to guess the frame rate; H.264 parameters come from the SDP
        // and the first key frame, so one second of analysis is plenty and keeps start fast.
        options.set("analyzeduration", "1000000");

        let opening = Instant::now();
        let interrupt = {
            let deadline = deadline.clone();
            let stop = stop.clone();
            move || stop.is_raised() || deadline.passed()
        };
        let input =
            ffmpeg::format::input_with_interrupt_and_dictionary(&cam.url, interrupt, options)
                .map_err(|e| classify(e, stop, "open", io_timeout, opening.elapsed()))?;

        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| {
                SessionEnd::Fault(
                    CameraFault::NoVideo,
                    format!(
                        "the stream has no video track ({} track(s) of other kinds)",
                        input.streams().count()
                    ),
                )
            })?;
        let params = stream.parameters();
        // SAFETY: `params` owns a valid AVCodecParameters for the duration of this block; we
        // only read two plain integer fields ffmpeg-next has no accessor for.
        let (width, height) = unsafe {
            let p = params.as_ptr();
            ((*p).width.max(0) as u32, (*p).height.max(0) as u32)
        };
        let info = StreamInfo {
            codec: format!("{:?}", params.id()).to_lowercase(),
            width,
            height,
        };
        Ok(Session {
            video_index: stream.index(),
            input,
            deadline,
            io_timeout,
            stop: stop.clone(),
            info,
        })
    }

    /// Reads the next packet of the video stream into `packet`; other streams are skipped.
    pub fn read_video(&mut self, packet: &mut Packet) -> Result<(), SessionEnd> {
        loop {
            self.deadline.arm(self.io_timeout);
            let reading = Instant::now();
            // av_read_frame overwrites the packet without releasing what it held; release the
            // previous buffer reference first (consumers hold their own references).
            // SAFETY: the packet is a valid, owned AVPacket; unref leaves it blank and reusable.
            unsafe { ffmpeg::ffi::av_packet_unref(packet.as_mut_ptr()) };
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.video_index => return Ok(()),
                Ok(()) => continue,
                Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN => {
                    if self.stop.is_raised() {
                        return Err(SessionEnd::Stopped);
                    }
                    continue;
                }
                Err(e) => {
                    let waited = reading.elapsed();
                    return Err(classify(e, &self.stop, "read", self.io_timeout, waited));
                }
            }
        }
    }

    pub fn video_stream(&self) -> ffmpeg::format::stream::Stream<'_> {
        self.input
            .stream(self.video_index)
            .expect("the video index came from this input")
    }
}

/// Maps an FFmpeg error to a fault a user can act on. `waited` is how long the failed call
/// ran: the RTSP demuxer reports a socket timeout during DESCRIBE or SETUP as "invalid data"
/// (the reply it waited for has status 0), so a failure after a full I/O timeout is a stall.
fn classify(
    e: ffmpeg::Error,
    stop: &StopSignal,
    phase: &str,
    io_timeout: Duration,
    waited: Duration,
) -> SessionEnd {
    use ffmpeg::Error as E;
    if stop.is_raised() {
        return SessionEnd::Stopped;
    }
    let timed_out = waited >= io_timeout;
    let timeout = match phase {
        "open" => format!("no valid RTSP reply within {} ms", io_timeout.as_millis()),
        _ => format!("no data for {} ms", io_timeout.as_millis()),
    };
    let (fault, detail) = match e {
        // Our interrupt fired without a stop: the deadline passed.
        E::Exit => (CameraFault::Stalled, timeout),
        E::InvalidData if timed_out => (CameraFault::Stalled, timeout),
        E::Other { errno } if errno == libc::ETIMEDOUT => (CameraFault::Stalled, timeout),
        E::Other { errno }
            if [
                libc::ECONNREFUSED,
                libc::EHOSTUNREACH,
                libc::ENETUNREACH,
                libc::ECONNRESET,
            ]
            .contains(&errno) =>
        {
            (CameraFault::Unreachable, format!("{phase}: {e}"))
        }
        E::HttpNotFound => (
            CameraFault::NotFound,
            format!("{phase}: the server has no such stream (404): check the url's path"),
        ),
        E::HttpUnauthorized | E::HttpForbidden => (
            CameraFault::Unauthorized,
            format!("{phase}: the server refused the credentials ({e})"),
        ),
        E::HttpBadRequest | E::HttpOther4xx | E::HttpServerError => (
            CameraFault::Protocol,
            format!("{phase}: the server answered {e}"),
        ),
        E::InvalidData => (
            CameraFault::Protocol,
            format!("{phase}: the peer does not speak RTSP or sent data FFmpeg cannot parse"),
        ),
        E::StreamNotFound => (CameraFault::NoVideo, format!("{phase}: {e}")),
        E::Eof => (
            CameraFault::Ended,
            format!("{phase}: the server ended the stream"),
        ),
        // FFmpeg turns a failed name lookup into EIO.
        E::Other { errno } if errno == libc::EIO => (
            CameraFault::Unreachable,
            format!("{phase}: input/output error (unknown host or connection lost)"),
        ),
        other => (CameraFault::Other, format!("{phase}: {other}")),
    };
    SessionEnd::Fault(fault, detail)
}
