//! Stream Agents: one per camera that has a subscription, `stream_agent_id == camera_id`.
//!
//! An agent is a value (this struct) driven by one thread, `agent-<camera>`, that blocks on
//! the export's publish-counter futex: it wakes when vasd publishes a frame (a wait for data,
//! never a timing sleep), takes the latest frame, and offers it to each subscription of the
//! camera, whose gate decides whether it is due. While the export is missing or stale it
//! idles and tries to attach again every 500 ms (waiting for files to appear, not frame
//! timing). A panic inside the agent ends only that thread: the camera stops, status and log
//! say so, the other cameras go on; a reload starts the agent again.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use frames::{ExportReader, WaitOutcome};
use serde_json::{json, Value};

use crate::subscription::Subscription;
use crate::waker::Waker;

/// Longest wait on the futex before checking whether the export went stale (vasd killed) or
/// the agent was retired.
const PUBLISH_WAIT: Duration = Duration::from_millis(500);

/// Time between attach attempts while the export is missing.
const ATTACH_RETRY: Duration = Duration::from_millis(500);

/// The test hook: in debug builds, an agent whose camera id equals this variable's value
/// panics at its first frame (tests/ruth_failures.rs checks containment with it). Release
/// builds ignore it.
pub const TEST_PANIC_ENV: &str = "RUTH_TEST_PANIC_CAMERA";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentState {
    /// No usable export yet (vasd down, export off, or the camera not streaming).
    WaitingForExport,
    Attached,
    /// The agent panicked; the camera gets no frames until a reload.
    Panicked,
    /// Retired by a reload (no subscription left).
    Stopped,
}

impl AgentState {
    fn as_str(self) -> &'static str {
        match self {
            AgentState::WaitingForExport => "waiting_for_export",
            AgentState::Attached => "attached",
            AgentState::Panicked => "panicked",
            AgentState::Stopped => "stopped",
        }
    }
}

struct Control {
    /// The registry wants the thread to end.
    retired: bool,
    /// The thread runs. Cleared in the same critical section in which the thread decides to
    /// end, so the registry never revives a thread that is already on its way out.
    running: bool,
}

struct Report {
    state: AgentState,
    generation: Option<u64>,
    /// Why the export is not usable, or the panic message.
    error: Option<String>,
    attaches: u64,
}

pub struct Agent {
    pub camera: String,
    log: String,
    subscriptions: Mutex<Arc<Vec<Arc<Subscription>>>>,
    control: Mutex<Control>,
    wake: Condvar,
    report: Mutex<Report>,
    /// New frames seen; Relaxed: a status figure.
    frames: AtomicU64,
    /// Frames published but never seen, because more than one came between two wake-ups (a
    /// starved agent); skipped like any other frame, counted to show it.
    missed: AtomicU64,
    last_frame_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Agent {
    pub fn new(camera: &str) -> Arc<Agent> {
        Arc::new(Agent {
            camera: camera.to_string(),
            log: format!("agent-{camera}"),
            subscriptions: Mutex::new(Arc::new(Vec::new())),
            control: Mutex::new(Control {
                retired: false,
                running: false,
            }),
            wake: Condvar::new(),
            report: Mutex::new(Report {
                state: AgentState::WaitingForExport,
                generation: None,
                error: None,
                attaches: 0,
            }),
            frames: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            last_frame_id: AtomicU64::new(0),
        })
    }

    /// The subscriptions the agent offers frames to from its next frame on.
    pub fn set_subscriptions(&self, subs: Vec<Arc<Subscription>>) {
        *lock(&self.subscriptions) = Arc::new(subs);
    }

    /// Starts the agent's thread unless it is already running (a retired agent still on its
    /// way out is kept instead of starting a second one). Returns false if it could not.
    pub fn ensure_running(self: &Arc<Self>, root: &Path, waker: &Arc<Waker>) -> bool {
        let mut c = lock(&self.control);
        c.retired = false;
        if c.running {
            return true;
        }
        let agent = Arc::clone(self);
        let (root, waker) = (root.to_path_buf(), Arc::clone(waker));
        let spawned = std::thread::Builder::new()
            .name(format!("agent-{}", self.camera))
            .spawn(move || agent.thread_main(root, waker));
        match spawned {
            Ok(_) => {
                c.running = true;
                let mut r = lock(&self.report);
                if r.state != AgentState::Attached {
                    r.state = AgentState::WaitingForExport;
                    r.error = None;
                }
                true
            }
            Err(e) => {
                log::error!(target: &self.log, "cannot start the agent thread: {e}");
                false
            }
        }
    }

    /// Asks the thread to end (it does at its next wake, within 500 ms) and takes its
    /// subscriptions away at once.
    pub fn retire(&self) {
        self.set_subscriptions(Vec::new());
        lock(&self.control).retired = true;
        self.wake.notify_all();
    }

    /// Whether the agent's thread runs (or is still on its way out after a retire).
    pub fn is_running(&self) -> bool {
        lock(&self.control).running
    }

    /// True (and the thread marked as ending) if the agent was retired.
    fn should_exit(&self) -> bool {
        let mut c = lock(&self.control);
        if c.retired {
            c.running = false;
        }
        c.retired
    }

    /// Sleeps up to `d` unless retired first; true if retired.
    fn idle(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut c = lock(&self.control);
        loop {
            if c.retired {
                c.running = false;
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            c = match self.wake.wait_timeout(c, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    fn thread_main(self: Arc<Self>, root: PathBuf, waker: Arc<Waker>) {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.run(&root, &waker)));
        // Control before report, the order ensure_running takes them in.
        let mut c = lock(&self.control);
        let mut report = lock(&self.report);
        match outcome {
            // A reload may have started a new thread since this one decided to end: then
            // the report is the new thread's.
            Ok(()) if c.running => {}
            Ok(()) => {
                report.state = AgentState::Stopped;
                report.generation = None;
                log::info!(target: &self.log, "stopped");
            }
            Err(payload) => {
                c.running = false;
                let message = panic_message(&*payload);
                log::error!(
                    target: &self.log,
                    "panicked: {message}; camera '{}' gets no frames until the next reload, the \
                     other cameras go on",
                    self.camera
                );
                report.state = AgentState::Panicked;
                report.generation = None;
                report.error = Some(message);
            }
        }
    }

    fn set_waiting(&self, why: String) {
        let mut r = lock(&self.report);
        if r.state != AgentState::WaitingForExport || r.error.as_deref() != Some(why.as_str()) {
            log::info!(target: &self.log, "waiting for the export: {why}");
        }
        r.state = AgentState::WaitingForExport;
        r.generation = None;
        r.error = Some(why);
    }

    fn run(&self, root: &Path, waker: &Waker) {
        #[cfg(debug_assertions)]
        let panic_hook = std::env::var(TEST_PANIC_ENV).is_ok_and(|v| v == self.camera);
        loop {
            if self.should_exit() {
                return;
            }
            let reader = match ExportReader::attach(root, &self.camera) {
                Ok(r) => match r.stale_reason() {
                    None => r,
                    Some(why) => {
                        self.set_waiting(format!(
                            "the export is stale ({why:?}): vasd is not writing it"
                        ));
                        if self.idle(ATTACH_RETRY) {
                            return;
                        }
                        continue;
                    }
                },
                Err(e) => {
                    self.set_waiting(e.to_string());
                    if self.idle(ATTACH_RETRY) {
                        return;
                    }
                    continue;
                }
            };
            {
                let mut r = lock(&self.report);
                r.state = AgentState::Attached;
                r.generation = Some(reader.generation());
                r.error = None;
                r.attaches += 1;
            }
            let info = reader.info();
            log::info!(
                target: &self.log,
                "attached to the export: generation {}, {}x{}, {} slots",
                info.generation,
                info.width,
                info.height,
                info.slots
            );
            // A new generation may start a new timeline: every gate starts over.
            for sub in lock(&self.subscriptions).iter() {
                sub.reset_gate();
            }
            let mut counter = reader.publish_counter();
            // The frame already there when we attached is not new: wait for the next one.
            let mut last_id = reader.latest().map_or(0, |f| f.meta.frame_id);
            loop {
                if self.should_exit() {
                    return;
                }
                match reader.wait_for_publish(counter, PUBLISH_WAIT) {
                    WaitOutcome::Published { counter: now } => counter = now,
                    WaitOutcome::TimedOut => match reader.stale_reason() {
                        None => continue,
                        Some(why) => {
                            log::info!(target: &self.log, "the export went stale ({why:?}): re-attaching");
                            break;
                        }
                    },
                    WaitOutcome::Closed => {
                        log::info!(target: &self.log, "vasd closed this export generation: re-attaching");
                        break;
                    }
                }
                let Some(frame) = reader.latest() else {
                    continue;
                };
                if frame.meta.frame_id <= last_id {
                    continue;
                }
                // Relaxed: status figures.
                if last_id != 0 {
                    let between = frame.meta.frame_id - last_id - 1;
                    self.missed.fetch_add(between, Ordering::Relaxed);
                }
                last_id = frame.meta.frame_id;
                self.frames.fetch_add(1, Ordering::Relaxed);
                self.last_frame_id.store(last_id, Ordering::Relaxed);
                #[cfg(debug_assertions)]
                if panic_hook {
                    panic!("{TEST_PANIC_ENV}={} (test hook)", self.camera);
                }
                let subs = Arc::clone(&lock(&self.subscriptions));
                let now = Instant::now();
                let mut connected = false;
                for sub in subs.iter() {
                    connected |= sub.offer(&frame, now);
                }
                if connected {
                    waker.wake();
                }
            }
        }
    }

    /// The agent's row in the status.
    pub fn status(&self) -> Value {
        let r = lock(&self.report);
        let subs: Vec<String> = lock(&self.subscriptions)
            .iter()
            .map(|s| s.model.id.clone())
            .collect();
        json!({
            "camera": self.camera,
            "stream_agent_id": self.camera,
            "state": r.state.as_str(),
            "generation": r.generation,
            "error": r.error,
            "attaches": r.attaches,
            // Relaxed: status figures.
            "frames": self.frames.load(Ordering::Relaxed),
            "missed": self.missed.load(Ordering::Relaxed),
            "last_frame_id": self.last_frame_id.load(Ordering::Relaxed),
            "models": subs,
        })
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}
