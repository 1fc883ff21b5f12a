//! One thread per camera: connect, stream, back off, reconnect, until stopped.
//!
//! ```text
//! Connecting --open ok--> Streaming --error/EOF/stall--> BackingOff --delay--> Connecting
//!     |                                                      ^
//!     +---------------------open failed----------------------+
//! any state --stop--> Stopped
//! ```

pub mod backoff;
pub mod changes;
pub mod fanout;
pub mod ffmpeg_log;
pub mod session;
pub mod status;
mod url;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ffmpeg_next::Packet;

use self::backoff::{Backoff, RandomJitter};
use self::changes::ChangeDetector;
use self::fanout::{share, AccessUnit, AudioTrack, Fanout, QueueSink, StreamParams, Track};
use self::session::{Session, SessionEnd};
use self::status::{unix_ms, CameraState, CameraStatus};
pub use self::url::{redact_url, RtspUrl};
use crate::config::{CameraConfig, StreamKind};
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
        let stream = match config.stream {
            StreamKind::Main => "main",
            StreamKind::Sub => "sub",
        };
        Arc::new(
            CameraStatus::new(
                &config.stream_key(),
                config.url.to_string(),
                config.export.is_some(),
            )
            .with_roles(stream, config.roles.names()),
        )
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
                .name(config.thread_name())
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
        if self.thread.join().is_err() {
            log::error!(target: &self.config.thread_name(), "camera thread panicked");
        }
    }
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
    /// Video access units handed to the fanout since start (the `seq` of the last one).
    units_offered: u64,
    /// Audio units handed to the fanout since start.
    audio_offered: u64,
}

impl CameraThread {
    fn new(
        cam: CameraConfig,
        status: Arc<CameraStatus>,
        stop: Arc<StopSignal>,
        sinks: Vec<QueueSink>,
    ) -> CameraThread {
        let log = cam.thread_name();
        let tap = cam
            .export
            .as_ref()
            .map(|target| FrameTap::new(&cam.id, &log, target, status.clone()));
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
            audio_offered: 0,
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
        log::info!(
            target: &self.log,
            "starting: {} over {}",
            self.cam.url,
            self.cam.transport.ffmpeg_name()
        );

        while !self.stop.is_raised() {
            self.status.set_state(CameraState::Connecting);
            let mut streamed_for = Duration::ZERO;
            let wants_audio = self.fanout.wants_audio();
            let end = match Session::open(&self.cam, wants_audio, &self.stop) {
                Ok(mut session) => {
                    sessions += 1;
                    if sessions > 1 {
                        self.status.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    let info = &session.info;
                    let what = format!(
                        "{} {}x{}{} over {}",
                        info.codec,
                        info.width,
                        info.height,
                        info.audio
                            .as_ref()
                            .map_or(String::new(), |a| format!(" with {a} audio")),
                        info.transport
                    );
                    match down_since.take() {
                        Some(since) => log::info!(
                            target: &self.log,
                            "recovered after {:.1} s ({} attempt(s)): {what}",
                            since.elapsed().as_secs_f64(),
                            backoff.attempts(),
                        ),
                        None => log::info!(target: &self.log, "streaming {what}"),
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
            let mut delay = backoff.next_delay(streamed_for);
            if fault == CameraFault::Unauthorized {
                // Many cameras lock the account, or the client address, after 3 to 5 failed
                // logins; retrying a wrong password every few seconds would lock the owner
                // out of their own camera. Every refused login waits the long delay.
                delay = delay.max(r.auth_retry);
                log::warn!(
                    target: &self.log,
                    "{fault}: {detail}; the camera refused the login, next attempt in {} s \
                     (cameras lock accounts after a few failed logins): check username and \
                     password, then reload",
                    delay.as_secs()
                );
            } else if last_fault != Some(fault) || backoff.attempts() % 10 == 0 {
                // A camera that stays down would log every attempt; say it when the fault
                // changes and then every tenth attempt.
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
            self.status
                .next_attempt_unix_ms
                .store(unix_ms() + delay.as_millis() as u64, Ordering::Relaxed);
            if self.stop.sleep(delay) {
                break;
            }
            self.status.next_attempt_unix_ms.store(0, Ordering::Relaxed);
        }
        self.status.set_state(CameraState::Stopped);
        log::info!(target: &self.log, "stopped");
    }

    /// Reads packets until the session ends; hands each to the consumers without waiting.
    fn stream(&mut self, session: &mut Session, session_no: u64) -> SessionEnd {
        let time_base = session.video_stream().time_base();
        let audio = session.audio_stream().map(|a| AudioTrack {
            parameters: a.parameters(),
            time_base: a.time_base(),
        });
        let audio_time_base = audio.as_ref().map(|a| a.time_base);
        let params = Arc::new(StreamParams::new(
            session.video_stream().parameters(),
            audio,
        ));
        let mut changes = ChangeDetector::new(params);
        let mut packet = Packet::empty();
        loop {
            let track = match session.read(&mut packet) {
                Ok(track) => track,
                Err(end) => return end,
            };
            let now_ms = unix_ms();
            let lost = ffmpeg_log::take_lost();
            if lost > 0 {
                self.status
                    .rtp_packets_lost
                    .fetch_add(lost, Ordering::Relaxed);
            }
            if track == Track::Audio {
                self.status.audio_packets.fetch_add(1, Ordering::Relaxed);
                if let Some(tb) = audio_time_base {
                    self.audio_offered += 1;
                    self.fanout.offer(AccessUnit {
                        packet: share(&packet),
                        time_base: tb,
                        track,
                        stream: changes.params().clone(),
                        seq: self.audio_offered,
                        session: session_no,
                        params_changed: false,
                        discontinuity: false,
                        key: true,
                        received_unix_ms: now_ms,
                    });
                }
                continue;
            }
            let key = packet.is_key();
            self.status.count_packet(packet.size(), key, now_ms);
            let verdict = changes.observe(&packet, time_base);
            if verdict.params_changed {
                let (w, h) = changes.params().size();
                self.status.param_changes.fetch_add(1, Ordering::Relaxed);
                self.status.set_size(w, h);
                log::info!(target: &self.log, "new parameter sets in band: now {w}x{h}");
            }
            if verdict.discontinuity {
                self.status.discontinuities.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    target: &self.log,
                    "the video clock jumped (camera clock reset?): a new timeline starts"
                );
            }
            if !self.fanout.is_empty() {
                self.units_offered += 1;
                self.fanout.offer(AccessUnit {
                    packet: share(&packet),
                    time_base,
                    track,
                    stream: changes.params().clone(),
                    seq: self.units_offered,
                    session: session_no,
                    params_changed: verdict.params_changed,
                    discontinuity: verdict.discontinuity,
                    key,
                    received_unix_ms: now_ms,
                });
            }
            if let Some(tap) = self.tap.as_mut() {
                tap.decode(&packet, verdict.discontinuity);
            }
        }
    }
}
