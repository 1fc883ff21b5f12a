//! One RTSP session with FFmpeg: open with a cancellable deadline, then read access units.
//!
//! libavformat blocks inside `avformat_open_input` and `av_read_frame` for as long as the
//! network lets it. Two guards end that: the RTSP `timeout` option (socket I/O timeout in
//! microseconds: FFmpeg 5.1 dropped `stimeout`), and an interrupt callback that FFmpeg polls at
//! least every 100 ms while waiting on a socket, which returns true once our own deadline passes
//! or a stop is raised. The deadline runs from the last *video* packet: audio keeps a socket
//! busy, so a camera whose video froze while its audio flows would otherwise never be seen as
//! stalled. Against a SIGSTOPped server (field notes): without both the thread blocks forever,
//! shutdown included; with both a stall ends after the I/O timeout and a stop cancels a
//! blocked read. tests/ingest.rs and tests/cameras.rs hold us to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg::format::context::Input;
use ffmpeg::packet::Mut as _;
use ffmpeg::{Dictionary, Packet};
use ffmpeg_next as ffmpeg;

use super::fanout::Track;
use super::status::StreamInfo;
use crate::config::{CameraConfig, Transport};
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
        self.arm_at(Instant::now() + after);
    }

    fn arm_at(&self, at: Instant) {
        let at = at.saturating_duration_since(self.base);
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
    /// The audio track, when the camera sends one and a consumer takes it.
    audio_index: Option<usize>,
    last_video: Instant,
    deadline: Arc<Deadline>,
    io_timeout: Duration,
    stop: Arc<StopSignal>,
    pub info: StreamInfo,
}

impl Session {
    /// Connects, reads the SDP and finds the video stream (and the audio one when `audio`);
    /// bounded by the I/O timeout.
    pub fn open(
        cam: &CameraConfig,
        audio: bool,
        stop: &Arc<StopSignal>,
    ) -> Result<Session, SessionEnd> {
        let io_timeout = cam.reconnect.io_timeout;
        let deadline = Arc::new(Deadline {
            base: Instant::now(),
            at_ns: AtomicU64::new(0),
        });
        // Opening includes DESCRIBE, SETUP, PLAY and probing the first packets: allow it two
        // I/O timeouts in all, while the socket option still bounds each single wait.
        deadline.arm(io_timeout * 2);

        let mut options = Dictionary::new();
        options.set("rtsp_transport", cam.transport.ffmpeg_name());
        if cam.transport == Transport::Udp || cam.transport == Transport::UdpMulticast {
            // Lost or late datagrams: wait at most 0.5 s to reorder (FFmpeg's default), and a
            // socket buffer that holds a second of a 16 Mbit/s stream against bursts.
            options.set("buffer_size", "2097152");
        }
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
        let input = ffmpeg::format::input_with_interrupt_and_dictionary(
            cam.url.expose(),
            interrupt,
            options,
        )
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
        let audio_stream = input.streams().best(ffmpeg::media::Type::Audio);
        let audio_name = audio_stream.as_ref().map(|a| {
            let p = a.parameters();
            // SAFETY: reading a plain field of a valid AVCodecParameters.
            let rate = unsafe { (*p.as_ptr()).sample_rate };
            format!("{} {rate} Hz", codec_name(p.id()))
        });
        let info = StreamInfo {
            codec: codec_name(params.id()),
            width,
            height,
            audio: audio_name,
            transport: cam.transport.ffmpeg_name(),
        };
        let audio_index = audio_stream.filter(|_| audio).map(|a| a.index());
        Ok(Session {
            audio_index,
            last_video: Instant::now(),
            video_index: stream.index(),
            input,
            deadline,
            io_timeout,
            stop: stop.clone(),
            info,
        })
    }

    /// Reads the next packet of the video (or the audio) track into `packet`; other tracks
    /// are skipped. The session is stalled when no video came for the I/O timeout, whatever
    /// else arrives.
    pub fn read(&mut self, packet: &mut Packet) -> Result<Track, SessionEnd> {
        loop {
            let video_due = self.last_video + self.io_timeout;
            if Instant::now() >= video_due {
                return Err(self.video_stalled());
            }
            self.deadline.arm_at(video_due);
            let reading = Instant::now();
            // av_read_frame overwrites the packet without releasing what it held; release the
            // previous buffer reference first (consumers hold their own references).
            // SAFETY: the packet is a valid, owned AVPacket; unref leaves it blank and reusable.
            unsafe { ffmpeg::ffi::av_packet_unref(packet.as_mut_ptr()) };
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.video_index => {
                    self.last_video = Instant::now();
                    return Ok(Track::Video);
                }
                Ok(()) if Some(packet.stream()) == self.audio_index => return Ok(Track::Audio),
                Ok(()) => continue,
                Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN => {
                    if self.stop.is_raised() {
                        return Err(SessionEnd::Stopped);
                    }
                    continue;
                }
                Err(_) if !self.stop.is_raised() && Instant::now() >= video_due => {
                    return Err(self.video_stalled());
                }
                Err(e) => {
                    let waited = reading.elapsed();
                    return Err(classify(e, &self.stop, "read", self.io_timeout, waited));
                }
            }
        }
    }

    fn video_stalled(&self) -> SessionEnd {
        let detail = match self.audio_index {
            Some(_) => format!(
                "no video for {} ms (audio still flowing: the camera's video encoder froze?)",
                self.io_timeout.as_millis()
            ),
            None => format!("no data for {} ms", self.io_timeout.as_millis()),
        };
        SessionEnd::Fault(CameraFault::Stalled, detail)
    }

    pub fn audio_stream(&self) -> Option<ffmpeg::format::stream::Stream<'_>> {
        self.audio_index.and_then(|i| self.input.stream(i))
    }

    pub fn video_stream(&self) -> ffmpeg::format::stream::Stream<'_> {
        self.input
            .stream(self.video_index)
            .expect("the video index came from this input")
    }
}

/// The name users see for a codec: `h264`, `h265`, `aac`, `pcm_alaw`.
pub fn codec_name(id: ffmpeg::codec::Id) -> String {
    match crate::bitstream::Codec::from_ffmpeg(id) {
        Some(c) => c.name().to_string(),
        None => id.name().to_string(),
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
