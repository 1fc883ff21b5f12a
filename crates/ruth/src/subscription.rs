//! A subscription: one camera's frames to one model at most `fps` a second, over its own
//! connection to the model. The camera's Stream Agent offers it frames (the dispatch side);
//! the replies thread reads what the model answers and enforces the deadline (the reply
//! side). Both take the subscription's lock for a few microseconds, never across a wait.
//!
//! Ruth never stores, queues or retries a frame: a due frame is sent at once, or skipped and
//! counted (a request still in flight, the model down, its socket full); a reply that comes
//! for anything but the one request in flight is dropped.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use frames::SlotRef;
use serde::Serialize;
use serde_json::{json, Value};
use vas_model::protocol::{FrameRequest, Reply};

use crate::config::ModelConfig;
use crate::gate::{Fps, FrameGate};
use crate::link::{InFlight, Link, Sent};
use crate::rate::{mono_seconds, RateMeter};
use crate::wall_time::rfc3339_utc;

/// Counts of one subscription since it was created. Each due frame ends up in exactly one of
/// `dispatched`, `skipped_busy`, `skipped_down`, `skipped_write`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counters {
    /// Frames the gate found due.
    pub due: u64,
    /// Frames sent to the model.
    pub dispatched: u64,
    /// Due while the previous frame was still with the model.
    pub skipped_busy: u64,
    /// Due while the model was down.
    pub skipped_down: u64,
    /// Due while the model's socket buffer was full.
    pub skipped_write: u64,
    /// Replies with a result (each one an event).
    pub results: u64,
    /// Replies with an error.
    pub model_errors: u64,
    /// Replies for a request that was not in flight.
    pub replies_dropped: u64,
    /// Times the subscription went down.
    pub downs: u64,
    /// Connections made.
    pub connects: u64,
}

struct State {
    gate: FrameGate,
    link: Link,
    /// Why the link is down (`None` while up).
    down_reason: Option<String>,
    /// No connection attempt before this.
    next_attempt: Instant,
    next_request_id: u64,
    /// Reused for every request line.
    request: Vec<u8>,
    counters: Counters,
    /// Requests sent (the `dispatched` count) per second.
    sent: RateMeter,
    /// Due frames skipped (busy, down or write) per second.
    skipped: RateMeter,
    last_frame_id: Option<u64>,
    last_model_error: Option<String>,
}

pub struct Subscription {
    pub camera: String,
    pub model: ModelConfig,
    /// "camera/model": the log target and the name in status.
    pub name: String,
    root: String,
    removed: AtomicBool,
    state: Mutex<State>,
}

impl Subscription {
    pub fn new(camera: &str, model: &ModelConfig, fps: Fps, root: &Path, now: Instant) -> Self {
        let s = mono_seconds(now);
        Subscription {
            camera: camera.to_string(),
            model: model.clone(),
            name: format!("{camera}/{}", model.id),
            root: root.to_string_lossy().into_owned(),
            removed: AtomicBool::new(false),
            state: Mutex::new(State {
                gate: FrameGate::new(fps),
                link: Link::default(),
                down_reason: Some("not connected yet".into()),
                next_attempt: now,
                next_request_id: 1,
                request: Vec::with_capacity(1024),
                counters: Counters::default(),
                sent: RateMeter::new(s),
                skipped: RateMeter::new(s),
                last_frame_id: None,
                last_model_error: None,
            }),
        }
    }

    /// The state, also after a panic elsewhere poisoned the lock: every field stays valid
    /// between statements, and the worst a half-done update leaves is a miscount.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_removed(&self) -> bool {
        // Acquire: pairs with the Release in remove(); a frame offered after it sees it.
        self.removed.load(Ordering::Acquire)
    }

    /// Taken out by a reload: from now on no frame is sent, and the request in flight is
    /// forgotten with its connection (its reply, if it ever comes, is never read).
    pub fn remove(&self) {
        // Release: see is_removed.
        self.removed.store(true, Ordering::Release);
        self.lock().link.close();
        log::info!(target: &self.name, "removed");
    }

    /// A reload changed only the rate: the gate starts over at the next frame.
    pub fn set_fps(&self, fps: Fps) {
        self.lock().gate.set_fps(fps);
        log::info!(target: &self.name, "fps is now {fps}");
    }

    /// A new export generation: the next frame is due and cells are counted from it.
    pub fn reset_gate(&self) {
        self.lock().gate.reset();
    }

    /// Tries to connect now if the link is down and the reconnect delay has passed. Returns
    /// true if a connection was made (the replies thread must start polling it).
    pub fn try_connect(&self, now: Instant) -> bool {
        if self.is_removed() {
            return false;
        }
        let mut st = self.lock();
        self.connect_locked(&mut st, now)
    }

    fn connect_locked(&self, st: &mut State, now: Instant) -> bool {
        if st.link.is_up() || now < st.next_attempt {
            return false;
        }
        st.next_attempt = now + self.model.reconnect;
        match st.link.connect(&self.model.socket) {
            Ok(()) => {
                st.down_reason = None;
                st.counters.connects += 1;
                log::info!(
                    target: &self.name,
                    "connected to model '{}' at {}",
                    self.model.id,
                    self.model.socket.display()
                );
                true
            }
            Err(why) => {
                if st.down_reason.as_deref() != Some(why.as_str()) {
                    log::warn!(target: &self.name, "model '{}' is down: {why}", self.model.id);
                }
                st.down_reason = Some(why);
                false
            }
        }
    }

    fn mark_down(&self, st: &mut State, why: String, now: Instant) {
        if !st.link.is_up() {
            return;
        }
        let lost = st.link.in_flight.as_ref().map(|f| f.frame_id);
        st.link.close();
        st.counters.downs += 1;
        st.next_attempt = now + self.model.reconnect;
        match lost {
            Some(id) => log::warn!(
                target: &self.name,
                "down: {why}; frame {id} is dropped, never resent"
            ),
            None => log::warn!(target: &self.name, "down: {why}"),
        }
        st.down_reason = Some(why);
    }

    /// The dispatch side, called by the camera's Stream Agent for each new frame. Returns
    /// true if a connection was made on the way (the replies thread must poll it).
    pub fn offer(&self, frame: &SlotRef, now: Instant) -> bool {
        if self.is_removed() {
            return false;
        }
        let mut st = self.lock();
        if !st.gate.is_due(frame.meta.pts_ns, frame.meta.discontinuity) {
            return false;
        }
        st.counters.due += 1;
        let seconds = mono_seconds(now);
        if st.link.in_flight.is_some() {
            st.counters.skipped_busy += 1;
            st.skipped.add(seconds);
            return false;
        }
        let connected = self.connect_locked(&mut st, now);
        if !st.link.is_up() {
            st.counters.skipped_down += 1;
            st.skipped.add(seconds);
            return false;
        }
        let id = st.next_request_id;
        st.next_request_id += 1;
        let deadline_ms = self.model.deadline.as_millis() as u64;
        let request = FrameRequest::for_slot(id, &self.camera, &self.root, frame, deadline_ms);
        let st = &mut *st;
        st.request.clear();
        // Writing a plain struct of numbers and strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut st.request, &request);
        st.request.push(b'\n');
        match st.link.send(&st.request) {
            Sent::Whole => {
                st.link.in_flight = Some(InFlight {
                    id,
                    frame_id: frame.meta.frame_id,
                    pts_ns: frame.meta.pts_ns,
                    wall_ns: frame.meta.wall_ns,
                    dispatched: now,
                    deadline: now + self.model.deadline,
                });
                st.counters.dispatched += 1;
                st.sent.add(seconds);
                st.last_frame_id = Some(frame.meta.frame_id);
            }
            Sent::WouldBlock => {
                st.counters.skipped_write += 1;
                st.skipped.add(seconds);
            }
            Sent::Failed(why) => {
                self.mark_down(st, why, now);
                st.counters.skipped_down += 1;
                st.skipped.add(seconds);
            }
        }
        connected
    }

    /// For the replies thread: marks the subscription down if its request is past the
    /// deadline, then tells what to poll (the descriptor and its connection's epoch) and
    /// until when (the deadline of the request in flight).
    pub fn poll_entry(&self, now: Instant) -> (Option<(i32, u64)>, Option<Instant>) {
        let mut st = self.lock();
        if let Some(f) = &st.link.in_flight {
            if now >= f.deadline {
                let why = format!(
                    "no reply within {} ms (deadline_ms) for frame {}",
                    self.model.deadline.as_millis(),
                    f.frame_id
                );
                self.mark_down(&mut st, why, now);
            }
        }
        let deadline = st.link.in_flight.as_ref().map(|f| f.deadline);
        (st.link.raw_fd().map(|fd| (fd, st.link.epoch)), deadline)
    }

    /// For the replies thread: the connection of `epoch` is readable. Reads the replies and
    /// returns the event lines to publish (outside the lock).
    pub fn on_readable(&self, epoch: u64, now: Instant) -> Vec<String> {
        let mut events = Vec::new();
        let mut st = self.lock();
        if st.link.epoch != epoch || !st.link.is_up() {
            return events;
        }
        let received = st.link.receive(self.model.max_reply_bytes);
        for line in &received.lines {
            let reply = match Reply::parse(line) {
                Ok(r) => r,
                Err(why) => {
                    let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
                    self.mark_down(
                        &mut st,
                        format!("garbage from the model: {why}: {shown:?}"),
                        now,
                    );
                    return events;
                }
            };
            let wanted = st.link.in_flight.as_ref().is_some_and(|f| f.id == reply.id);
            if !wanted {
                st.counters.replies_dropped += 1;
                log::debug!(target: &self.name, "reply {} was not asked for: dropped", reply.id);
                continue;
            }
            let Some(frame) = st.link.in_flight.take() else {
                continue;
            };
            match (reply.error, reply.result) {
                (Some(e), _) => {
                    st.counters.model_errors += 1;
                    log::debug!(target: &self.name, "frame {}: model error: {e}", frame.frame_id);
                    st.last_model_error = Some(e);
                }
                (None, result) => {
                    st.counters.results += 1;
                    if !self.is_removed() {
                        events.push(self.event(&frame, result.unwrap_or(Value::Null), now));
                    }
                }
            }
        }
        if let Some(why) = received.ended {
            self.mark_down(&mut st, why, now);
        }
        events
    }

    /// One event line: when, which camera, model and frame, the latencies, the result.
    fn event(&self, frame: &InFlight, result: Value, now: Instant) -> String {
        #[derive(Serialize)]
        struct Event<'a> {
            time: String,
            time_ns: i64,
            camera: &'a str,
            model: &'a str,
            frame_id: u64,
            pts_ns: i64,
            /// From the frame's capture (its wall_ns) to now.
            latency_capture_ms: f64,
            /// From the dispatch of the request to now.
            latency_dispatch_ms: f64,
            result: Value,
        }
        let time_ns = frames::wall_clock_now_ns();
        let ms = |ns: i128| (ns / 1000) as f64 / 1000.0;
        let event = Event {
            time: rfc3339_utc(time_ns),
            time_ns,
            camera: &self.camera,
            model: &self.model.id,
            frame_id: frame.frame_id,
            pts_ns: frame.pts_ns,
            latency_capture_ms: ms(time_ns as i128 - frame.wall_ns as i128),
            latency_dispatch_ms: ms(
                now.saturating_duration_since(frame.dispatched).as_nanos() as i128
            ),
            result,
        };
        serde_json::to_string(&event).unwrap_or_default()
    }

    /// The subscription's row in the status.
    pub fn status(&self, now: Instant) -> Value {
        let mut st = self.lock();
        let seconds = mono_seconds(now);
        let sent_fps = st.sent.per_second(seconds);
        let skipped_fps = st.skipped.per_second(seconds);
        json!({
            "camera": self.camera,
            "model": self.model.id,
            "fps": st.gate.fps().as_f64(),
            "state": if st.link.is_up() { "up" } else { "down" },
            "down_reason": st.down_reason,
            "sent_fps": sent_fps,
            "skipped_fps": skipped_fps,
            "in_flight": st.link.in_flight.as_ref().map(|f| f.frame_id),
            "last_frame_id": st.last_frame_id,
            "last_model_error": st.last_model_error,
            "counters": st.counters,
        })
    }
}
