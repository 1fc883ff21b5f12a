//! The frame tap: for a camera whose frames are exported, decode each access unit at the
//! decode boundary and publish the raw NV12 frame into the camera's shared-memory ring.
//!
//! It exists only when the export is on for the camera; otherwise the camera thread holds no
//! `FrameTap`, opens no decoder, allocates no frame and creates no file. Decoding runs on the
//! camera thread itself with one decoder thread: FFmpeg's frame threading adds a frame of
//! latency per thread and no throughput across many cameras (measured here), and a second
//! thread per camera would need a queue in between. Publishing never waits for a reader: the
//! ring overwrites its oldest slot.

mod nv12;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ffmpeg::format::Pixel;
use ffmpeg::{Packet, Rational};
use ffmpeg_next as ffmpeg;
use frames::{FrameInfo, SlotWriter, WriterOptions};

use self::nv12::{planar_to_nv12, Nv12, Planar};
use crate::camera::status::{CameraStatus, ExportCounters};
use crate::config::{ExportDecode, ExportTarget};

/// Decoding further behind real time than this is logged (once per episode).
const BEHIND_WARN_MS: u64 = 2_000;

pub struct FrameTap {
    camera: String,
    log: String,
    target: ExportTarget,
    gid: Option<u32>,
    status: Arc<CameraStatus>,
    decoder: Option<ffmpeg::decoder::Video>,
    time_base: Rational,
    frame: ffmpeg::frame::Video,
    writer: Option<SlotWriter>,
    /// Why this session exports nothing (reported once, retried at the next session).
    refused: Option<String>,
    /// The status shows a refusal: cleared at the next frame exported.
    error_shown: bool,
    /// The next published frame starts a new timeline (new session or timestamp jump).
    discontinuity: bool,
    /// Wall time and stream time of the timeline's first decoded frame.
    lag_origin: Option<(Instant, i64)>,
    last_pts_ns: Option<i64>,
    behind_warned: bool,
}

impl FrameTap {
    /// Prepares the tap; nothing is allocated until a session starts.
    /// `log` is the log target of the camera's stream that decodes (`cam-<id>[-sub]`).
    pub fn new(
        camera: &str,
        log: &str,
        target: &ExportTarget,
        status: Arc<CameraStatus>,
    ) -> FrameTap {
        FrameTap {
            camera: camera.to_string(),
            log: log.to_string(),
            target: target.clone(),
            gid: None,
            status,
            decoder: None,
            time_base: Rational::new(1, 90_000),
            frame: ffmpeg::frame::Video::empty(),
            writer: None,
            refused: None,
            error_shown: false,
            discontinuity: true,
            lag_origin: None,
            last_pts_ns: None,
            behind_warned: false,
        }
    }

    /// Opens a decoder for a new session's video stream.
    pub fn start_session(&mut self, stream: &ffmpeg::format::stream::Stream) {
        self.decoder = None;
        self.refused = None;
        self.discontinuity = true;
        self.lag_origin = None;
        if let Err(e) = self.resolve_group() {
            return self.refuse(e);
        }
        let opened =
            ffmpeg::codec::Context::from_parameters(stream.parameters()).and_then(|mut c| {
                // One thread by default (see the module comment); a stream one thread cannot
                // decode in real time (4K) may get frame threads, at a frame of latency each.
                let threads = self.target.threads.max(1) as usize;
                c.set_threading(ffmpeg::codec::threading::Config {
                    kind: match threads {
                        1 => ffmpeg::codec::threading::Type::None,
                        _ => ffmpeg::codec::threading::Type::Frame,
                    },
                    count: threads,
                    ..Default::default()
                });
                if self.target.decode == ExportDecode::KeyFrames {
                    // Belt and braces: only key frames are sent (see `decode`), and the
                    // decoder drops anything else it might be given.
                    // SAFETY: plain field write on a context we own and have not opened.
                    unsafe {
                        (*c.as_mut_ptr()).skip_frame = ffmpeg::ffi::AVDiscard::AVDISCARD_NONKEY
                    };
                }
                // Frames keep the packets' timestamps, which are in the stream's time base.
                // SAFETY: plain field write on a context we own and have not opened yet.
                unsafe { (*c.as_mut_ptr()).pkt_timebase = stream.time_base().into() };
                c.decoder().video()
            });
        match opened {
            Ok(d) => {
                self.decoder = Some(d);
                self.time_base = stream.time_base();
            }
            Err(e) => self.refuse(format!("cannot open a decoder: {e}")),
        }
    }

    /// Drops the session's decoder; the ring and its readers stay.
    pub fn end_session(&mut self) {
        self.decoder = None;
    }

    /// Decodes one access unit and publishes every frame it completes. `discontinuity` is the
    /// camera thread's verdict on the unit's timestamp (`camera::changes`): the next frame
    /// published starts a new timeline.
    pub fn decode(&mut self, packet: &Packet, discontinuity: bool) {
        self.discontinuity |= discontinuity;
        if self.target.decode == ExportDecode::KeyFrames && !packet.is_key() {
            // Never decoded at all: this is where key-frame mode saves its CPU.
            return;
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return;
        };
        if decoder.send_packet(packet).is_err() {
            // A corrupt or truncated unit: the decoder conceals and goes on at the next one.
            self.count(|c| &c.decode_errors);
            return;
        }
        while self
            .decoder
            .as_mut()
            .is_some_and(|d| d.receive_frame(&mut self.frame).is_ok())
        {
            self.count(|c| &c.frames_decoded);
            self.track_lag();
            if self.publish_frame() {
                self.count(|c| &c.frames_exported);
            }
        }
    }

    /// How far decoding runs behind the stream's own clock: wall time since the timeline's
    /// first frame minus the stream time since it. A decoder slower than real time makes it
    /// grow without bound (the socket buffers what waits); network jitter only moves it by
    /// fractions of a second.
    fn track_lag(&mut self) {
        let now = Instant::now();
        let Some(ts) = self.frame.timestamp() else {
            return;
        };
        let pts_ns = crate::camera::changes::to_ns(ts, self.time_base);
        let (start, start_pts) = match self.lag_origin {
            Some(o) if !self.discontinuity => o,
            _ => {
                self.lag_origin = Some((now, pts_ns));
                return;
            }
        };
        let wall = now.duration_since(start).as_nanos() as i64;
        let behind_ms = ((wall - (pts_ns - start_pts)) / 1_000_000).max(0) as u64;
        if let Some(c) = self.status.export.as_ref() {
            // Relaxed: an independent status value.
            c.behind_ms.store(behind_ms, Ordering::Relaxed);
        }
        let behind = behind_ms > BEHIND_WARN_MS;
        if behind && !self.behind_warned {
            log::warn!(
                target: &self.log,
                "export: decoding is {:.1} s behind real time: this stream needs more than one \
                 core's worth of decoding; set export_threads, export_decode = \"key_frames\", \
                 or export a substream",
                behind_ms as f64 / 1000.0
            );
        }
        self.behind_warned = behind;
    }

    fn count(&self, which: impl Fn(&ExportCounters) -> &AtomicU64) {
        if let Some(c) = self.status.export.as_ref() {
            // Relaxed: an independent status counter.
            which(c).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes the decoded frame into the next slot. Returns false if it was not exported.
    fn publish_frame(&mut self) -> bool {
        if self.refused.is_some() {
            return false;
        }
        let (w, h) = (self.frame.width(), self.frame.height());
        match self.frame.format() {
            Pixel::YUV420P | Pixel::YUVJ420P => {}
            Pixel::YUV420P10LE | Pixel::YUV420P10BE => {
                self.refuse(
                    "the camera sends 10-bit video (H.265 Main 10); the export takes 8-bit \
                     4:2:0 only: set the camera's encoder (or the stream that feeds the export) \
                     to H.264 or H.265 Main"
                        .to_string(),
                );
                return false;
            }
            other => {
                self.refuse(format!(
                    "the decoder produces {other:?}; the export takes 8-bit 4:2:0 only"
                ));
                return false;
            }
        }
        if let Err(e) = self.ensure_writer(w, h) {
            self.refuse(e);
            return false;
        }
        let pts_ns = self.pts_ns();
        let discontinuity = std::mem::take(&mut self.discontinuity);
        let key_frame = self.frame.is_key();
        let frame = &self.frame;
        let Some(writer) = self.writer.as_mut() else {
            return false;
        };
        let mut fill = writer.begin();
        let (stride_y, stride_uv) = (fill.stride_y(), fill.stride_uv());
        let src = Planar {
            y: frame.data(0),
            u: frame.data(1),
            v: frame.data(2),
            stride_y: frame.stride(0),
            stride_u: frame.stride(1),
            stride_v: frame.stride(2),
            width: w as usize,
            height: h as usize,
        };
        {
            let (y, uv) = fill.planes_mut();
            planar_to_nv12(
                &src,
                &mut Nv12 {
                    y,
                    uv,
                    stride_y,
                    stride_uv,
                },
            );
        }
        let mut info = FrameInfo::captured_now(pts_ns);
        info.key_frame = key_frame;
        info.discontinuity = discontinuity;
        fill.publish(info);
        if std::mem::take(&mut self.error_shown) {
            self.status.set_export_error(None);
        }
        true
    }

    /// Stream time of the current frame in ns. Clock jumps are flagged by the camera thread;
    /// a decoded frame whose time does not advance (a repeated RTP timestamp) is flagged here,
    /// since readers gate on strictly increasing times within a timeline.
    fn pts_ns(&mut self) -> i64 {
        let ns = match self.frame.timestamp() {
            Some(ts) => crate::camera::changes::to_ns(ts, self.time_base),
            // No timestamp at all (rare over RTSP): keep the clock moving on capture time.
            None => frames::monotonic_now_ns(),
        };
        if self.last_pts_ns.is_some_and(|last| ns <= last) {
            self.discontinuity = true;
        }
        self.last_pts_ns = Some(ns);
        ns
    }

    /// Creates the ring on the first frame (its size depends on the geometry), and starts a
    /// new generation when the geometry changes.
    fn ensure_writer(&mut self, width: u32, height: u32) -> Result<(), String> {
        match self.writer.as_mut() {
            Some(w) if w.geometry() == (width, height) => Ok(()),
            Some(w) => {
                log::info!(
                    target: &self.log,
                    "export: geometry {:?} -> {width}x{height}, new generation",
                    w.geometry()
                );
                self.discontinuity = true;
                w.reconfigure(width, height).map_err(|e| e.to_string())
            }
            None => {
                let opts = WriterOptions {
                    slots: self.target.slots,
                    width,
                    height,
                    group: self.gid,
                };
                let w = SlotWriter::create(&self.target.shm_dir, &self.camera, &opts)
                    .map_err(|e| e.to_string())?;
                log::info!(
                    target: &self.log,
                    "export: {width}x{height} NV12, {} slots in {}",
                    self.target.slots,
                    w.dir().display()
                );
                self.writer = Some(w);
                Ok(())
            }
        }
    }

    fn resolve_group(&mut self) -> Result<(), String> {
        let Some(name) = &self.target.group else {
            return Ok(());
        };
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => {
                self.gid = Some(g.gid.as_raw());
                Ok(())
            }
            Ok(None) => Err(format!(
                "group {name:?} of [export] group does not exist: create it or remove the key"
            )),
            Err(e) => Err(format!("cannot look up group {name:?}: {e}")),
        }
    }

    fn refuse(&mut self, why: String) {
        log::error!(target: &self.log, "export refused: {why}; ingest goes on");
        self.status.set_export_error(Some(why.clone()));
        self.error_shown = true;
        self.refused = Some(why);
        self.decoder = None;
    }
}
