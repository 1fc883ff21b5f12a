//! The `rec-<id>` thread: takes access units from the camera's recorder queue and writes
//! segments. It is the only place that waits on the disk; the camera thread never does.
//!
//! A segment ends, and the next one starts at the next key frame, when:
//! - it reached `segment_seconds` (cut on the first key frame after it);
//! - the camera reconnected (a new session: two sessions are never glued with a time jump);
//! - the camera thread flagged new parameter sets (each file's sample entry describes all of
//!   its frames) or a timestamp discontinuity (a file never holds a clock jump);
//! - units were dropped because the queue overflowed (a slow disk): a gap in `seq`;
//! - a write failed (disk full): then no new segment is tried for a few seconds, and the
//!   first one after that starts at a key frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use serde::Serialize;

use super::segment::Segment;
use crate::bitstream::Codec;
use crate::camera::fanout::{QueueStats, SharedUnit, Track};
use crate::camera::status::StatusSection;
use crate::config::RecordTarget;
use crate::playback::index::{self, Index, Progress};

/// How often the recorder takes what its queue holds. The smallest queue (16 units) lasts
/// over 260 ms at 60 fps; segments are written a fragment (a GOP) at a time anyway.
const DRAIN_EVERY: Duration = Duration::from_millis(100);

/// After a failed write or open, the recorder waits this long before trying a new segment.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// Counters of one camera's recorder, shown as `record` in the camera's status.
#[derive(Debug)]
pub struct RecordCounters {
    pub segments: AtomicU64,
    pub bytes: AtomicU64,
    /// Units never written: dropped at the queue, waiting for a key frame after a cut, or
    /// holding no picture.
    pub units_skipped: AtomicU64,
    pub write_errors: AtomicU64,
    /// Audio units not written: lost at the queue, or outside a segment.
    pub audio_skipped: AtomicU64,
    /// Segments cut early because the queue overflowed.
    pub overflow_cuts: AtomicU64,
    queue: Arc<QueueStats>,
    text: Mutex<RecordText>,
}

#[derive(Debug, Default, Clone, Serialize)]
struct RecordText {
    state: &'static str,
    current: Option<String>,
    last_error: Option<String>,
}

impl RecordCounters {
    pub fn new(queue: Arc<QueueStats>) -> RecordCounters {
        RecordCounters {
            segments: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            units_skipped: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            audio_skipped: AtomicU64::new(0),
            overflow_cuts: AtomicU64::new(0),
            queue,
            text: Mutex::new(RecordText {
                state: "waiting_for_key_frame",
                ..RecordText::default()
            }),
        }
    }

    fn text(&self) -> std::sync::MutexGuard<'_, RecordText> {
        self.text.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StatusSection for RecordCounters {
    fn snapshot(&self) -> serde_json::Value {
        // Relaxed: independent status counters.
        let text = self.text().clone();
        serde_json::json!({
            "state": text.state,
            "current_segment": text.current,
            "segments": self.segments.load(Ordering::Relaxed),
            "bytes": self.bytes.load(Ordering::Relaxed),
            "queue_dropped": self.queue.dropped.load(Ordering::Relaxed),
            "units_skipped": self.units_skipped.load(Ordering::Relaxed),
            "write_errors": self.write_errors.load(Ordering::Relaxed),
            "audio_skipped": self.audio_skipped.load(Ordering::Relaxed),
            "overflow_cuts": self.overflow_cuts.load(Ordering::Relaxed),
            "last_error": text.last_error,
        })
    }
}

/// Test hook of debug builds: `VAS_TEST_RECORD_DELAY_MS` makes every write that much slower,
/// standing in for a disk that cannot keep up. Release builds ignore it.
fn test_write_delay() -> Option<Duration> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let ms: u64 = std::env::var("VAS_TEST_RECORD_DELAY_MS")
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms))
}

pub struct Recorder {
    camera: String,
    log: String,
    target: RecordTarget,
    counters: Arc<RecordCounters>,
    /// Told about every closed segment so retention runs soon after.
    closed: Sender<String>,
    index: Index,
    segment: Option<Segment>,
    /// How far the open segment has reached, for the index.
    progress: Option<Arc<Progress>>,
    last_seq: Option<u64>,
    last_audio_seq: Option<u64>,
    session: Option<u64>,
    retry_at: Option<Instant>,
}

impl Recorder {
    pub fn new(
        camera: &str,
        target: RecordTarget,
        counters: Arc<RecordCounters>,
        closed: Sender<String>,
        index: Index,
    ) -> Recorder {
        Recorder {
            camera: camera.to_string(),
            log: format!("rec-{camera}"),
            target,
            counters,
            closed,
            index,
            segment: None,
            progress: None,
            last_seq: None,
            last_audio_seq: None,
            session: None,
            retry_at: None,
        }
    }

    /// Records until the camera's side of the queue is gone, then closes the last segment.
    ///
    /// The queue is drained every `DRAIN_EVERY` rather than waited on: a recorder blocked
    /// in `recv` costs a futex wake on the camera thread and a wake-up here for every unit.
    pub fn run(mut self, units: Receiver<SharedUnit>) {
        let delay = test_write_delay();
        loop {
            std::thread::sleep(DRAIN_EVERY);
            loop {
                match units.try_recv() {
                    Ok(unit) => {
                        if let Some(d) = delay {
                            std::thread::sleep(d);
                        }
                        self.take(&unit);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.cut("camera stopped");
                        return;
                    }
                }
            }
        }
    }

    fn take(&mut self, unit: &SharedUnit) {
        if unit.track == Track::Audio {
            return self.take_audio(unit);
        }
        if let Some(last) = self.last_seq {
            let dropped = unit.seq.saturating_sub(last + 1);
            if dropped > 0 {
                self.counters
                    .units_skipped
                    .fetch_add(dropped, Ordering::Relaxed);
                if self.segment.is_some() {
                    self.counters.overflow_cuts.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        target: &self.log,
                        "the disk did not keep up: {dropped} unit(s) dropped at the queue; \
                         cutting the segment, the next starts at a key frame"
                    );
                    self.cut("queue overflow");
                }
            }
        }
        self.last_seq = Some(unit.seq);
        let picture = Codec::from_ffmpeg(unit.stream.parameters().id())
            .is_none_or(|c| c.carries_picture(unit.packet.data().unwrap_or(&[])));
        if !picture {
            self.counters.units_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.session != Some(unit.session) {
            if self.session.is_some() {
                self.cut("camera reconnected");
            }
            self.session = Some(unit.session);
        }
        if unit.params_changed {
            self.cut("new parameter sets");
        }
        if unit.discontinuity {
            self.cut("timestamp discontinuity");
        }
        if unit.key {
            let full = self
                .segment
                .as_ref()
                .is_some_and(|s| s.seconds_to(unit) >= self.target.segment.as_secs_f64());
            if full {
                self.cut("segment complete");
            }
        }
        if self.segment.is_none() && !self.open(unit) {
            self.counters.units_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(segment) = self.segment.as_mut() else {
            return;
        };
        if let Err(e) = segment.write(unit) {
            self.fail(&e);
            self.cut("write failed");
            return;
        }
        if let (true, Some(p)) = (unit.key, self.progress.as_ref()) {
            // Everything before this key frame is on disk now (see `Segment::write`).
            p.advance(
                (segment.seconds_to(unit) * 1000.0) as u64,
                segment.media_bytes,
            );
        }
    }

    /// Writes an audio unit into the open segment. Audio lost at the queue leaves a gap in
    /// the audio track only: it is counted, the segment goes on.
    fn take_audio(&mut self, unit: &SharedUnit) {
        if let Some(last) = self.last_audio_seq {
            let dropped = unit.seq.saturating_sub(last + 1);
            self.counters
                .audio_skipped
                .fetch_add(dropped, Ordering::Relaxed);
        }
        self.last_audio_seq = Some(unit.seq);
        let Some(segment) = self.segment.as_mut() else {
            self.counters.audio_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if self.session != Some(unit.session) {
            return;
        }
        if let Err(e) = segment.write_audio(unit) {
            self.fail(&e);
            self.cut("write failed");
        }
    }

    /// Starts a segment at `unit` if it can: a key frame, and no recent error. Returns
    /// whether a segment is open.
    fn open(&mut self, unit: &SharedUnit) -> bool {
        // A unit without a timestamp cannot anchor a segment's timeline; the first packets of
        // an RTSP session often have none.
        let stamped = unit.packet.dts().or(unit.packet.pts()).is_some();
        if !unit.key || !stamped || self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        match Segment::open(&self.target.dir, &self.camera, unit, self.target.audio) {
            Ok(s) => {
                if self.retry_at.take().is_some() {
                    log::info!(target: &self.log, "recording again: {}", s.path.display());
                }
                let mut text = self.counters.text();
                text.state = "recording";
                text.current = Some(s.path.display().to_string());
                drop(text);
                log::debug!(target: &self.log, "segment {}", s.path.display());
                self.progress = Some(self.index.opened(
                    &self.camera,
                    &s.path,
                    s.start_unix_ms as i64,
                    index::setup_of(s.part_path()),
                ));
                self.segment = Some(s);
                true
            }
            Err(e) => {
                self.fail(&e);
                false
            }
        }
    }

    fn fail(&mut self, error: &str) {
        self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
        if self.retry_at.is_none() {
            log::error!(
                target: &self.log,
                "{error}; recording pauses and resumes at a key frame once writing works"
            );
        }
        self.retry_at = Some(Instant::now() + RETRY_AFTER_ERROR);
        let mut text = self.counters.text();
        text.state = "disk_error";
        text.last_error = Some(error.to_string());
    }

    /// Closes the current segment, if any.
    fn cut(&mut self, why: &str) {
        let Some(segment) = self.segment.take() else {
            return;
        };
        if segment.fixed_dts > 0 {
            log::debug!(
                target: &self.log,
                "{} unit(s) had timestamps out of order and were moved forward",
                segment.fixed_dts
            );
        }
        let final_path = segment.path.clone();
        let path = final_path.display().to_string();
        self.progress = None;
        let closed = segment.close();
        if final_path.exists() {
            self.index.closed(&self.camera, &final_path);
        } else {
            self.index.removed(&self.camera, &final_path);
        }
        match closed {
            Ok(bytes) => {
                self.counters.segments.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                log::debug!(target: &self.log, "closed {path} ({bytes} bytes): {why}");
            }
            Err(e) => {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                log::warn!(target: &self.log, "{e}");
            }
        }
        let mut text = self.counters.text();
        text.current = None;
        if text.state == "recording" {
            text.state = "waiting_for_key_frame";
        }
        drop(text);
        let _ = self.closed.try_send(self.camera.clone());
    }
}
