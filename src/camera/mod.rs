//! One thread per camera: connect, stream, back off, reconnect, until stopped.
//!
//! ```text
//! Connecting --open ok--> Streaming --error/EOF/stall--> BackingOff --delay--> Connecting
//!     |                                                      ^
//!     +---------------------open failed----------------------+
//! any state --stop--> Stopped
//! ```

pub mod backoff;
pub mod fanout;
pub mod session;
pub mod status;
mod url;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ffmpeg_next::Packet;

use self::backoff::{Backoff, RandomJitter};
use self::fanout::{AccessUnit, Fanout, QueueSink, StreamParams};
use self::session::{Session, SessionEnd};
use self::status::{unix_ms, CameraState, CameraStatus};
pub use self::url::redact_url;
use crate::config::CameraConfig;
use crate::error::CameraFault;
use crate::export::FrameTap;
use crate::stop::StopSignal;

/// A running camera thread and what the supervisor needs to manage it.
pub struct CameraHandle {
    pub config: CameraConfig,
    pub status: Arc<CameraStatus>,
    stop: Arc<StopSignal>,
    thread: JoinHandle<()>,
}

impl CameraHandle {
    /// The status a camera's thread will report into; consumers add their sections to it.
    pub fn new_status(config: &CameraConfig) -> Arc<CameraStatus> {
        Arc::new(CameraStatus::new(
            &config.id,
            redact_url(&config.url),
            config.export.is_some(),
        ))
    }

    /// Starts the `cam-<id>` thread, feeding `sinks` (recorder, live view) without blocking.
    pub fn spawn(
        config: CameraConfig,
        status: Arc<CameraStatus>,
        sinks: Vec<QueueSink>,
    ) -> std::io::Result<CameraHandle> {
        for sink in &sinks {
            status.add_queue(sink.name, sink.stats.clone());
        }
        let stop = Arc::new(StopSignal::new());
        let thread = {
            let (config, status, stop) = (config.clone(), status.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("cam-{}", config.id))
                .spawn(move || CameraThread::new(config, status, stop, sinks).run())?
        };
        Ok(CameraHandle {
            config,
            status,
            stop,
            thread,
        })
    }

    /// Asks the thread to stop; a blocked open or read is cancelled by the interrupt callback.
    pub fn request_stop(&self) {
        self.stop.raise();
    }

    /// Waits for the thread to end. Call [`CameraHandle::request_stop`] first.
    pub fn join(self) {
        let id = self.config.id.clone();
        if self.thread.join().is_err() {
            log::error!(target: &log_target(&id), "camera thread panicked");
        }
    }
}

/// The log target of a camera: `cam-<id>`, like its thread.
pub fn log_target(id: &str) -> String {
    format!("cam-{id}")
}

struct CameraThread {
    cam: CameraConfig,
    status: Arc<CameraStatus>,
    stop: Arc<StopSignal>,
    log: String,
    fanout: Fanout,
    /// The decode boundary's frame tap; `None` when the export is off for this camera, and
    /// then nothing is decoded.
    tap: Option<FrameTap>,
    /// Access units handed to the fanout since start (the `seq` of the last one).
    units_offered: u64,
}

impl CameraThread {
    fn new(
        cam: CameraConfig,
        status: Arc<CameraStatus>,
        stop: Arc<StopSignal>,
        sinks: Vec<QueueSink>,
    ) -> CameraThread {
        let log = log_target(&cam.id);
        let tap = cam
            .export
            .as_ref()
            .map(|target| FrameTap::new(&cam.id, target, status.clone()));
        let mut fanout = Fanout::default();
        for sink in sinks {
            fanout.add(sink);
        }
        CameraThread {
            cam,
            status,
            stop,
            log,
            fanout,
            tap,
            units_offered: 0,
        }
    }

    fn run(mut self) {
        let r = self.cam.reconnect;
        let mut backoff = Backoff::new(
            r.min_delay,
            r.max_delay,
            r.healthy_after,
            RandomJitter::new(),
        );
        let mut sessions: u64 = 0;
        let mut last_fault: Option<CameraFault> = None;
        let mut down_since: Option<Instant> = None;
        log::info!(target: &self.log, "starting: {}", redact_url(&self.cam.url));

        while !self.stop.is_raised() {
            self.status.set_state(CameraState::Connecting);
            let mut streamed_for = Duration::ZERO;
            let end = match Session::open(&self.cam, &self.stop) {
                Ok(mut session) => {
                    sessions += 1;
                    if sessions > 1 {
                        self.status
                            .reconnects
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let info = &session.info;
                    match down_since.take() {
                        Some(since) => log::info!(
                            target: &self.log,
                            "recovered after {:.1} s ({} attempt(s)): {} {}x{}",
                            since.elapsed().as_secs_f64(),
                            backoff.attempts(),
                            info.codec,
                            info.width,
                            info.height
                        ),
                        None => log::info!(
                            target: &self.log,
                            "streaming {} {}x{}",
                            info.codec,
                            info.width,
                            info.height
                        ),
                    }
                    last_fault = None;
                    self.status.set_stream(session.info.clone());
                    self.status.set_state(CameraState::Streaming);
                    if let Some(tap) = self.tap.as_mut() {
                        tap.start_session(&session.video_stream());
                    }
                    let started = Instant::now();
                    let end = self.stream(&mut session, sessions);
                    streamed_for = started.elapsed();
                    if let Some(tap) = self.tap.as_mut() {
                        tap.end_session();
                    }
                    end
                }
                Err(end) => end,
            };

            let (fault, detail) = match end {
                SessionEnd::Stopped => break,
                SessionEnd::Fault(fault, detail) => (fault, detail),
            };
            down_since.get_or_insert_with(Instant::now);
            let delay = backoff.next_delay(streamed_for);
            // A camera that stays down would log every attempt; say it when the fault changes
            // and then every tenth attempt.
            if last_fault != Some(fault) || backoff.attempts() % 10 == 0 {
                log::warn!(
                    target: &self.log,
                    "{fault}: {detail}; attempt {} failed, retrying in {:.1} s",
                    backoff.attempts(),
                    delay.as_secs_f64()
                );
            }
            last_fault = Some(fault);
            self.status.set_error(fault, detail);
            self.status.set_state(CameraState::BackingOff);
            if self.stop.sleep(delay) {
                break;
            }
        }
        self.status.set_state(CameraState::Stopped);
        log::info!(target: &self.log, "stopped");
    }

    /// Reads packets until the session ends; hands each to the consumers without waiting.
    fn stream(&mut self, session: &mut Session, session_no: u64) -> SessionEnd {
        let time_base = session.video_stream().time_base();
        let stream = Arc::new(StreamParams::new(session.video_stream().parameters()));
        let mut packet = Packet::empty();
        loop {
            if let Err(end) = session.read_video(&mut packet) {
                return end;
            }
            let key = packet.is_key();
            let now_ms = unix_ms();
            self.status.count_packet(packet.size(), key, now_ms);
            if !self.fanout.is_empty() {
                self.units_offered += 1;
                self.fanout.offer(AccessUnit {
                    packet: packet.clone(),
                    time_base,
                    stream: stream.clone(),
                    seq: self.units_offered,
                    session: session_no,
                    key,
                    received_unix_ms: now_ms,
                });
            }
            if let Some(tap) = self.tap.as_mut() {
                tap.decode(&packet);
            }
        }
    }
}
