//! Per-camera state and counters, written by the camera thread, read by the API.
//!
//! Counters are plain atomics updated with Relaxed ordering: each is an independent monotonic
//! figure, no reader infers anything about other memory from one, and a reading a few packets
//! old is fine for status. Text fields sit behind a mutex the camera thread takes only on state
//! changes, never per packet.
//!
//! Rates (frames and bits per second) are not counted by the camera thread either: a reader
//! derives them from two readings of the counters at least [`RATE_WINDOW`] apart, kept in
//! [`RateWindow`] behind a mutex only readers take.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// The current size: updated when new parameter sets arrive in band.
    pub width: u32,
    pub height: u32,
    /// The camera's audio track (`aac 48000 Hz`), whether or not it is recorded.
    pub audio: Option<String>,
    /// How the RTP travels: `tcp`, `udp`, `udp_multicast`, `http`.
    pub transport: &'static str,
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
    /// `main` or `sub`, and the roles the stream serves.
    stream: &'static str,
    roles: Vec<&'static str>,
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
    /// Audio packets received.
    pub audio_packets: AtomicU64,
    /// New parameter sets (size, profile) in band within a session.
    pub param_changes: AtomicU64,
    /// Timestamp discontinuities of the video within a session.
    pub discontinuities: AtomicU64,
    /// RTP packets the demuxer reported missing (UDP transports).
    pub rtp_packets_lost: AtomicU64,
    /// When the next connection attempt is due while backing off; 0 otherwise.
    pub next_attempt_unix_ms: AtomicU64,
    /// Present only for a camera whose frames are exported; `None` costs nothing.
    pub export: Option<ExportCounters>,
    sections: Mutex<Vec<(&'static str, Arc<dyn StatusSection>)>>,
    queues: Mutex<Vec<(&'static str, Arc<QueueStats>)>>,
    text: Mutex<Text>,
    rates: Mutex<RateWindow>,
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
    /// How far decoding runs behind the stream's clock, in ms (see `FrameTap::track_lag`).
    pub behind_ms: AtomicU64,
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
    /// Decoding behind real time, in ms; grows without bound when the decoder is too slow.
    pub behind_ms: u64,
    /// Why frames of this camera are not exported, if they are not.
    pub error: Option<String>,
}

/// Shortest span rates are computed over. The fixture and most cameras send 25 to 30 access
/// units a second with a key frame every 1 to 2 s, so 2 s hold 50 to 60 units and at least
/// one key frame: a rate over a shorter span would jump with every key frame's size.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

/// The counters rates are derived from, read at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSample {
    pub at: Instant,
    pub packets: u64,
    pub bytes: u64,
    /// `None` for a camera whose frames are not exported.
    pub frames_exported: Option<u64>,
}

/// Receive and export rates of one camera.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// Access units received per second.
    pub fps_in: f64,
    /// Kilobits (1000 bits) received per second, payload of the access units.
    pub bitrate_kbps: f64,
    /// Frames exported per second; `None` when the camera's export is off.
    pub fps_out: Option<f64>,
}

/// The reader side's memory for rates: the sample the next rate is measured from, and the
/// last rate computed over a full window.
#[derive(Debug, Clone, PartialEq)]
pub struct RateWindow {
    pub since: RateSample,
    pub last: Option<Rates>,
}

impl RateWindow {
    /// Starts measuring at `start`, normally all counters at zero when the status is created.
    pub fn new(start: RateSample) -> RateWindow {
        RateWindow {
            since: start,
            last: None,
        }
    }

    /// The rates at `now`. Once `now` is at least `window` after the sample they are measured
    /// from, they are computed over that span and `now` becomes the next starting point;
    /// before that the last such rates are returned, or, before the first full window, the
    /// rates since the start (so a status read right after a start shows numbers at once).
    pub fn advance(&mut self, now: RateSample, window: Duration) -> Rates {
        let span = now.at.saturating_duration_since(self.since.at);
        if span >= window {
            let rates = rates_between(&self.since, &now);
            self.since = now;
            self.last = Some(rates);
            return rates;
        }
        self.last
            .unwrap_or_else(|| rates_between(&self.since, &now))
    }
}

/// Counter increase per second from `from` to `to`; zero over an empty span. Counters only
/// grow within one status, so a decrease (which would be a bug) also counts as zero.
pub fn rates_between(from: &RateSample, to: &RateSample) -> Rates {
    let seconds = to.at.saturating_duration_since(from.at).as_secs_f64();
    let per_second = |a: u64, b: u64| {
        if seconds > 0.0 {
            b.saturating_sub(a) as f64 / seconds
        } else {
            0.0
        }
    };
    // Two decimals: enough to tell 29.97 from 30, no false precision in the JSON.
    let round = |v: f64| (v * 100.0).round() / 100.0;
    Rates {
        fps_in: round(per_second(from.packets, to.packets)),
        bitrate_kbps: round(per_second(from.bytes, to.bytes) * 8.0 / 1000.0),
        fps_out: to
            .frames_exported
            .map(|b| round(per_second(from.frames_exported.unwrap_or(0), b))),
    }
}

/// What `/api/cameras` shows for one camera.
#[derive(Debug, Clone, Serialize)]
pub struct CameraSnapshot {
    pub id: String,
    /// `main` or `sub`: which stream of the camera this is.
    pub stream_kind: &'static str,
    /// The roles this stream serves (`record`, `live`, `export`).
    pub roles: Vec<&'static str>,
    pub url: String,
    pub state: CameraState,
    pub packets: u64,
    pub bytes: u64,
    /// Access units received per second (see [`RateWindow::advance`] for the span).
    pub fps_in: f64,
    /// Kilobits received per second.
    pub bitrate_kbps: f64,
    /// Frames exported per second; null when the camera's export is off.
    pub fps_out: Option<f64>,
    pub key_frames: u64,
    pub audio_packets: u64,
    pub param_changes: u64,
    pub discontinuities: u64,
    pub rtp_packets_lost: u64,
    pub reconnects: u64,
    pub failures: u64,
    /// While backing off: when the next attempt is due.
    pub next_attempt_unix_ms: Option<u64>,
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
            stream: "main",
            roles: vec!["record", "live", "export"],
            url_redacted,
            state: AtomicU8::new(CameraState::Connecting as u8),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            key_frames: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_packet_unix_ms: AtomicU64::new(0),
            last_key_frame_unix_ms: AtomicU64::new(0),
            audio_packets: AtomicU64::new(0),
            param_changes: AtomicU64::new(0),
            discontinuities: AtomicU64::new(0),
            rtp_packets_lost: AtomicU64::new(0),
            next_attempt_unix_ms: AtomicU64::new(0),
            export: exported.then(ExportCounters::default),
            sections: Mutex::new(Vec::new()),
            queues: Mutex::new(Vec::new()),
            text: Mutex::new(Text::default()),
            rates: Mutex::new(RateWindow::new(RateSample {
                at: Instant::now(),
                packets: 0,
                bytes: 0,
                frames_exported: exported.then_some(0),
            })),
        }
    }

    /// Names the stream (`main`, `sub`) and its roles; called before the status is shared.
    pub fn with_roles(mut self, stream: &'static str, roles: Vec<&'static str>) -> CameraStatus {
        self.stream = stream;
        self.roles = roles;
        self
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

    /// The size after new parameter sets in band.
    pub fn set_size(&self, width: u32, height: u32) {
        if let Some(s) = self.text().stream.as_mut() {
            (s.width, s.height) = (width, height);
        }
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

    /// The receive and export rates now; called by readers only.
    fn rates(&self, packets: u64, bytes: u64, frames_exported: Option<u64>) -> Rates {
        let now = RateSample {
            at: Instant::now(),
            packets,
            bytes,
            frames_exported,
        };
        self.rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .advance(now, RATE_WINDOW)
    }

    pub fn snapshot(&self) -> CameraSnapshot {
        let packets = self.packets.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let frames_exported = self
            .export
            .as_ref()
            .map(|e| e.frames_exported.load(Ordering::Relaxed));
        let rates = self.rates(packets, bytes, frames_exported);
        let text = self.text();
        let nonzero = |v: u64| (v != 0).then_some(v);
        CameraSnapshot {
            id: self.id.clone(),
            stream_kind: self.stream,
            roles: self.roles.clone(),
            url: self.url_redacted.clone(),
            state: self.state(),
            packets,
            bytes,
            fps_in: rates.fps_in,
            bitrate_kbps: rates.bitrate_kbps,
            fps_out: rates.fps_out,
            key_frames: self.key_frames.load(Ordering::Relaxed),
            audio_packets: self.audio_packets.load(Ordering::Relaxed),
            param_changes: self.param_changes.load(Ordering::Relaxed),
            discontinuities: self.discontinuities.load(Ordering::Relaxed),
            rtp_packets_lost: self.rtp_packets_lost.load(Ordering::Relaxed),
            next_attempt_unix_ms: nonzero(self.next_attempt_unix_ms.load(Ordering::Relaxed)),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_packet_unix_ms: nonzero(self.last_packet_unix_ms.load(Ordering::Relaxed)),
            last_key_frame_unix_ms: nonzero(self.last_key_frame_unix_ms.load(Ordering::Relaxed)),
            stream: text.stream.clone(),
            last_error: text.last_error.clone(),
            export: self.export.as_ref().map(|e| ExportSnapshot {
                frames_decoded: e.frames_decoded.load(Ordering::Relaxed),
                frames_exported: frames_exported.unwrap_or(0),
                decode_errors: e.decode_errors.load(Ordering::Relaxed),
                behind_ms: e.behind_ms.load(Ordering::Relaxed),
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

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = RATE_WINDOW;

    /// A sample `ms` after `t0` with these counters.
    fn at(t0: Instant, ms: u64, packets: u64, bytes: u64, exported: Option<u64>) -> RateSample {
        RateSample {
            at: t0 + Duration::from_millis(ms),
            packets,
            bytes,
            frames_exported: exported,
        }
    }

    fn rates(fps_in: f64, bitrate_kbps: f64, fps_out: Option<f64>) -> Rates {
        Rates {
            fps_in,
            bitrate_kbps,
            fps_out,
        }
    }

    #[test]
    fn rates_between_two_samples() {
        let t0 = Instant::now();
        let start = at(t0, 0, 100, 50_000, Some(90));
        // (ms later, packets, bytes, frames exported) -> rates
        let table = [
            // 60 units and 500 kB in 2 s: 30 fps, 2000 kbit/s; 60 frames exported.
            (
                (2000, 160, 550_000, Some(150)),
                rates(30.0, 2000.0, Some(30.0)),
            ),
            // 30 units in 1.001 s (29.97 fps), 125 kB.
            (
                (1001, 130, 175_000, Some(120)),
                rates(29.97, 999.0, Some(29.97)),
            ),
            // Nothing new in 3 s: a stalled camera.
            ((3000, 100, 50_000, Some(90)), rates(0.0, 0.0, Some(0.0))),
            // Export off: fps_out is null, the receive rates are still there.
            ((2000, 160, 550_000, None), rates(30.0, 2000.0, None)),
            // An empty span divides by nothing.
            ((0, 160, 550_000, Some(150)), rates(0.0, 0.0, Some(0.0))),
            // Counters that went backwards (never within one status) count as no progress.
            ((2000, 50, 1_000, Some(10)), rates(0.0, 0.0, Some(0.0))),
        ];
        for ((ms, packets, bytes, exported), want) in table {
            let got = rates_between(&start, &at(t0, ms, packets, bytes, exported));
            assert_eq!(got, want, "{ms} ms, {packets} packets, {bytes} bytes");
        }
    }

    #[test]
    fn window_keeps_the_last_rate_until_it_is_full() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(at(t0, 0, 0, 0, Some(0)));
        // (ms since creation, packets, bytes, exported) -> rates returned, and the instant (ms)
        // the next rate is measured from afterwards.
        let table = [
            // First read after 0.5 s: no full window yet, the rate since creation.
            (
                (500, 10, 10_000, Some(5)),
                rates(20.0, 160.0, Some(10.0)),
                0,
            ),
            // 2 s after creation: a full window, measured from creation.
            (
                (2000, 60, 250_000, Some(60)),
                rates(30.0, 1000.0, Some(30.0)),
                2000,
            ),
            // 1 s later: too young, the last rate again, not a 1 s rate.
            (
                (3000, 100, 300_000, Some(100)),
                rates(30.0, 1000.0, Some(30.0)),
                2000,
            ),
            // 2.5 s after the window began: a new rate over those 2.5 s.
            (
                (4500, 110, 300_000, Some(110)),
                rates(20.0, 160.0, Some(20.0)),
                4500,
            ),
            // A long pause between reads: the rate is the average over all of it.
            (
                (14500, 410, 1_550_000, Some(410)),
                rates(30.0, 1000.0, Some(30.0)),
                14500,
            ),
        ];
        for ((ms, packets, bytes, exported), want, since_ms) in table {
            let got = w.advance(at(t0, ms, packets, bytes, exported), W);
            assert_eq!(got, want, "read at {ms} ms");
            assert_eq!(
                w.since.at,
                t0 + Duration::from_millis(since_ms),
                "read at {ms} ms"
            );
        }
    }

    #[test]
    fn snapshot_of_a_new_status_has_zero_rates() {
        let exported = CameraStatus::new("a", "rtsp://x".into(), true).snapshot();
        assert_eq!(exported.fps_in, 0.0);
        assert_eq!(exported.bitrate_kbps, 0.0);
        assert_eq!(exported.fps_out, Some(0.0));
        let not_exported = CameraStatus::new("b", "rtsp://x".into(), false).snapshot();
        assert_eq!(not_exported.fps_out, None);
        let json = serde_json::to_value(&not_exported).unwrap();
        assert!(json["fps_out"].is_null(), "{json}");
        assert_eq!(json["fps_in"], 0.0);
    }
}
