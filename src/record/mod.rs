//! Recording: passthrough fragmented-MP4 segments per camera, with retention.
//!
//! ```text
//! cam-<id> --try_send--> [bounded queue] --> rec-<id>: segments on disk
//!                                              |--opened/closed--> playback::Index
//!                                              \--closed--> rec-janitor: retention
//! ```
//! The camera thread never waits: when the disk is slow the queue overflows, the camera drops
//! units and counts them, and the recorder cuts its segment and resumes at a key frame.

mod audio;
mod janitor;
mod recorder;
mod segment;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use self::janitor::{Janitor, Policy, Retention};
use self::recorder::{RecordCounters, Recorder};
use crate::camera::fanout::QueueSink;
use crate::camera::status::CameraStatus;
use crate::config::{CameraConfig, RecordConfig};
use crate::playback::Index;
use crate::supervisor::Consumer;

/// How long stopping waits for a recorder to close its segment before leaving it behind
/// (a disk that hangs must not hang shutdown; the fragments written so far stay playable).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

struct Running {
    thread: JoinHandle<()>,
    done: Receiver<()>,
}

/// The recorders of all recorded cameras, as one consumer of the supervisor.
pub struct Recorders {
    policy: Arc<Mutex<Policy>>,
    index: Index,
    janitor: Janitor,
    running: BTreeMap<String, Running>,
}

impl Recorders {
    /// Recovers segments a crash left under their temporary names, reads every segment into
    /// the recordings index, and starts the janitor.
    pub fn start(config: &RecordConfig) -> std::io::Result<Recorders> {
        let recovered = janitor::recover_parts(&config.dir);
        if recovered > 0 {
            log::info!(
                target: "vasd",
                "recovered {recovered} segment(s) left open by an earlier crash in {}",
                config.dir.display()
            );
        }
        let index = Index::build(&config.dir);
        let policy = Arc::new(Mutex::new(Policy::default()));
        Recorders::apply_config(&policy, config);
        let janitor = Janitor::start(policy.clone(), index.clone())?;
        Ok(Recorders {
            policy,
            index,
            janitor,
            running: BTreeMap::new(),
        })
    }

    /// A handle that applies the global settings of a reloaded config.
    pub fn settings(&self) -> RecordSettings {
        RecordSettings {
            policy: self.policy.clone(),
            index: self.index.clone(),
        }
    }

    /// The recordings index the recorders and the janitor keep current.
    pub fn index(&self) -> Index {
        self.index.clone()
    }

    fn apply_config(policy: &Mutex<Policy>, config: &RecordConfig) {
        let mut p = policy.lock().unwrap_or_else(|e| e.into_inner());
        p.dir = config.dir.clone();
        p.total_max_bytes = config.total_max_bytes;
        p.fallback = Retention {
            keep_days: config.keep_days,
            max_bytes: None,
        };
    }
}

/// Applies `[record]` changes on reload (per-camera changes restart the camera instead).
pub struct RecordSettings {
    policy: Arc<Mutex<Policy>>,
    index: Index,
}

impl RecordSettings {
    pub fn update(&self, config: &RecordConfig) {
        Recorders::apply_config(&self.policy, config);
        if self.index.dir() != config.dir {
            self.index.rebuild(&config.dir);
        }
    }
}

impl Consumer for Recorders {
    fn attach(&mut self, cam: &CameraConfig, status: &Arc<CameraStatus>) -> Option<QueueSink> {
        let target = cam.record.clone()?;
        let (mut sink, units) = QueueSink::bounded("record", target.queue_units);
        sink.wants_audio = target.audio;
        let counters = Arc::new(RecordCounters::new(sink.stats.clone()));
        status.add_section("record", counters.clone());
        self.policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cameras
            .insert(
                cam.id.clone(),
                Retention {
                    keep_days: target.keep_days,
                    max_bytes: target.max_bytes,
                },
            );
        let recorder = Recorder::new(
            &cam.id,
            target,
            counters,
            self.janitor.waker(),
            self.index.clone(),
        );
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new()
            .name(format!("rec-{}", cam.id))
            .spawn(move || {
                recorder.run(units);
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(thread) => {
                self.running
                    .insert(cam.id.clone(), Running { thread, done });
                Some(sink)
            }
            Err(e) => {
                log::error!(target: &format!("rec-{}", cam.id), "cannot start: {e}");
                None
            }
        }
    }

    fn detach(&mut self, cam: &CameraConfig) {
        if cam.record.is_none() {
            // This stream does not record; the camera's recorder is another stream's.
            return;
        }
        let camera_id = cam.id.as_str();
        self.policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cameras
            .remove(camera_id);
        let Some(r) = self.running.remove(camera_id) else {
            return;
        };
        let started = Instant::now();
        if r.done.recv_timeout(CLOSE_WAIT).is_ok() {
            let _ = r.thread.join();
        } else {
            log::warn!(
                target: &format!("rec-{camera_id}"),
                "still closing its segment after {:.1} s (slow disk?); not waiting longer",
                started.elapsed().as_secs_f64()
            );
        }
    }
}
