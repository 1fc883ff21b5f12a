//! Per-camera state and counters, written by the camera thread, read by the API.
//!
//! Counters are plain atomics updated with Relaxed ordering: each is an independent monotonic
//! figure, no reader infers anything about other memory from one, and a reading a few packets
//! old is fine for status. Text fields sit behind a mutex the camera thread takes only on state
//! changes, never per packet.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::camera::fanout::QueueStats;
use crate::error::CameraFault;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Connecting = 0,
    Streaming = 1,
    BackingOff = 2,
    Stopped = 3,
}

impl CameraState {
    fn from_u8(v: u8) -> CameraState {
        match v {
            0 => CameraState::Connecting,
            1 => CameraState::Streaming,
            2 => CameraState::BackingOff,
            _ => CameraState::Stopped,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamInfo {
    pub codec: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub fault: CameraFault,
    pub message: String,
    pub at_unix_ms: u64,
}

#[derive(Debug)]
pub struct CameraStatus {
    id: String,
    url_redacted: String,
    state: AtomicU8,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub key_frames: AtomicU64,
    /// Sessions opened after the first one.
    pub reconnects: AtomicU64,
    /// Failed open attempts and sessions that ended in an error.
    pub failures: AtomicU64,
    pub last_packet_unix_ms: AtomicU64,
    pub last_key_frame_unix_ms: AtomicU64,
    /// Present only for a camera whose frames are exported; `None` costs nothing.
    pub export: Option<ExportCounters>,
    sections: Mutex<Vec<(&'static str, Arc<dyn StatusSection>)>>,
    queues: Mutex<Vec<(&'static str, Arc<QueueStats>)>>,
    text: Mutex<Text>,
}

/// A consumer's own part of a camera's status (the recorder's, the live view's), shown under
/// its name in `/api/cameras`. The consumer keeps the counters; status only reads them.
pub trait StatusSection: Send + Sync + std::fmt::Debug {
    fn snapshot(&self) -> serde_json::Value;
}

/// Frame export figures of one camera.
#[derive(Debug, Default)]
pub struct ExportCounters {
    pub frames_decoded: AtomicU64,
    pub frames_exported: AtomicU64,
    pub decode_errors: AtomicU64,
}

#[derive(Debug, Default)]
struct Text {
    last_error: Option<LastError>,
    stream: Option<StreamInfo>,
    export_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueSnapshot {
    pub offered: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportSnapshot {
    pub frames_decoded: u64,
    pub frames_exported: u64,
    pub decode_errors: u64,
    /// Why frames of this camera are not exported, if they are not.
    pub error: Option<String>,
}

/// What `/api/cameras` shows for one camera.
#[derive(Debug, Clone, Serialize)]
pub struct CameraSnapshot {
    pub id: String,
    pub url: String,
    pub state: CameraState,
    pub packets: u64,
    pub bytes: u64,
    pub key_frames: u64,
    pub reconnects: u64,
    pub failures: u64,
    pub last_packet_unix_ms: Option<u64>,
    pub last_key_frame_unix_ms: Option<u64>,
    pub stream: Option<StreamInfo>,
    pub last_error: Option<LastError>,
    pub export: Option<ExportSnapshot>,
    /// Per consumer queue: units offered by the camera thread and dropped because it was full.
    pub queues: BTreeMap<&'static str, QueueSnapshot>,
    /// The consumers' sections, e.g. "record" and "live".
    #[serde(flatten)]
    pub sections: BTreeMap<&'static str, serde_json::Value>,
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl CameraStatus {
    pub fn new(id: &str, url_redacted: String, exported: bool) -> CameraStatus {
        CameraStatus {
            id: id.to_string(),
            url_redacted,
            state: AtomicU8::new(CameraState::Connecting as u8),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            key_frames: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_packet_unix_ms: AtomicU64::new(0),
            last_key_frame_unix_ms: AtomicU64::new(0),
            export: exported.then(ExportCounters::default),
            sections: Mutex::new(Vec::new()),
            queues: Mutex::new(Vec::new()),
            text: Mutex::new(Text::default()),
        }
    }

    pub fn state(&self) -> CameraState {
        CameraState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn set_state(&self, state: CameraState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    fn text(&self) -> std::sync::MutexGuard<'_, Text> {
        self.text.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_stream(&self, info: StreamInfo) {
        self.text().stream = Some(info);
    }

    pub fn set_error(&self, fault: CameraFault, message: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.text().last_error = Some(LastError {
            fault,
            message,
            at_unix_ms: unix_ms(),
        });
    }

    /// Adds a consumer's section; called before the camera thread starts.
    pub fn add_section(&self, name: &'static str, section: Arc<dyn StatusSection>) {
        self.sections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, section));
    }

    /// Shows a consumer queue's counters; called before the camera thread starts.
    pub fn add_queue(&self, name: &'static str, stats: Arc<QueueStats>) {
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, stats));
    }

    /// Records why the export of this camera stopped, or `None` once it works again.
    pub fn set_export_error(&self, error: Option<String>) {
        self.text().export_error = error;
    }

    /// Counts one packet of the video stream.
    pub fn count_packet(&self, len: usize, key: bool, now_unix_ms: u64) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.last_packet_unix_ms
            .store(now_unix_ms, Ordering::Relaxed);
        if key {
            self.key_frames.fetch_add(1, Ordering::Relaxed);
            self.last_key_frame_unix_ms
                .store(now_unix_ms, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> CameraSnapshot {
        let text = self.text();
        let nonzero = |v: u64| (v != 0).then_some(v);
        CameraSnapshot {
            id: self.id.clone(),
            url: self.url_redacted.clone(),
            state: self.state(),
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            key_frames: self.key_frames.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_packet_unix_ms: nonzero(self.last_packet_unix_ms.load(Ordering::Relaxed)),
            last_key_frame_unix_ms: nonzero(self.last_key_frame_unix_ms.load(Ordering::Relaxed)),
            stream: text.stream.clone(),
            last_error: text.last_error.clone(),
            export: self.export.as_ref().map(|e| ExportSnapshot {
                frames_decoded: e.frames_decoded.load(Ordering::Relaxed),
                frames_exported: e.frames_exported.load(Ordering::Relaxed),
                decode_errors: e.decode_errors.load(Ordering::Relaxed),
                error: text.export_error.clone(),
            }),
            queues: self
                .queues
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(name, q)| {
                    (
                        *name,
                        QueueSnapshot {
                            offered: q.offered.load(Ordering::Relaxed),
                            dropped: q.dropped.load(Ordering::Relaxed),
                        },
                    )
                })
                .collect(),
            sections: self
                .sections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(name, s)| (*name, s.snapshot()))
                .collect(),
        }
    }
}
