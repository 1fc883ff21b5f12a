//! The `live` section of a camera's status in `/api/cameras`.
//!
//! Counters are atomics written by the `live` thread (and the key frame requests by mediasoup's
//! event thread) and read by the API thread. Each is an independent figure: Relaxed ordering
//! throughout, nobody infers other memory from any of them, and a reading a few units old is
//! fine for status.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::camera::fanout::QueueStats;
use crate::camera::status::StatusSection;

#[derive(Debug)]
pub struct LiveStatus {
    max_viewers: u32,
    /// The camera thread's counters of our queue: `dropped` are units it could not hand over.
    queue: Mutex<Arc<QueueStats>>,
    /// Viewers with a session now, connected or still connecting.
    pub viewers: AtomicU64,
    /// Sessions created since start.
    pub sessions: AtomicU64,
    /// Access units taken from the queue.
    pub units_received: AtomicU64,
    /// Units not sent to viewers because the stream had to restart at a key frame (after a
    /// gap, a reconnect, or while no one watched).
    pub units_skipped: AtomicU64,
    /// Gaps in the unit sequence: the queue overflowed and the camera thread dropped units.
    pub gaps: AtomicU64,
    /// Video RTP packets sent, and the bytes of all RTP (video and audio).
    pub rtp_packets: AtomicU64,
    pub rtp_bytes: AtomicU64,
    /// Audio units taken from the queue (only with `live_audio`), and the RTP packets made of
    /// them while someone listened.
    pub audio_units_received: AtomicU64,
    pub audio_rtp_packets: AtomicU64,
    /// An AAC-to-Opus transcoder is open (the camera has listeners).
    pub audio_transcoding: AtomicBool,
    /// PLI and FIR from viewers; an RTSP camera cannot honour them (see `rtcp`).
    pub key_frame_requests: AtomicU64,
    pub waiting_for_key_frame: AtomicBool,
    /// The current session's frames come out of presentation order: B-frames, which browsers'
    /// WebRTC decoders show badly (field-notes pain point 9). Only the camera can fix it.
    pub b_frames: AtomicBool,
    /// Arrival (camera thread clock) of the newest key frame; 0 before the first.
    pub last_key_frame_unix_ms: AtomicU64,
    /// Interval between the last two key frames: how long a new viewer waits at most for its
    /// first picture, since the camera cannot be asked for a key frame.
    pub gop_ms: AtomicU64,
    /// From a viewer's WHEP request to the first key frame sent after its DTLS handshake, for
    /// the most recent viewer: the time to first frame as the server sees it.
    pub last_join_to_key_frame_ms: AtomicU64,
    text: Mutex<Text>,
}

#[derive(Debug, Default)]
struct Text {
    profile_level_id: Option<String>,
    /// What viewers get of the camera's audio (`pcma`, `aac->opus`), `None` without.
    audio: Option<String>,
    error: Option<String>,
}

impl LiveStatus {
    pub fn new(max_viewers: u32, queue: Arc<QueueStats>) -> LiveStatus {
        LiveStatus {
            max_viewers,
            queue: Mutex::new(queue),
            viewers: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            units_received: AtomicU64::new(0),
            units_skipped: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            rtp_packets: AtomicU64::new(0),
            rtp_bytes: AtomicU64::new(0),
            audio_units_received: AtomicU64::new(0),
            audio_rtp_packets: AtomicU64::new(0),
            audio_transcoding: AtomicBool::new(false),
            key_frame_requests: AtomicU64::new(0),
            waiting_for_key_frame: AtomicBool::new(true),
            b_frames: AtomicBool::new(false),
            last_key_frame_unix_ms: AtomicU64::new(0),
            gop_ms: AtomicU64::new(0),
            last_join_to_key_frame_ms: AtomicU64::new(0),
            text: Mutex::new(Text::default()),
        }
    }

    /// A restarted camera thread comes with a new queue.
    pub fn set_queue(&self, queue: Arc<QueueStats>) {
        *self.queue.lock().unwrap_or_else(|e| e.into_inner()) = queue;
    }

    pub fn set_profile_level_id(&self, id: Option<String>) {
        self.text().profile_level_id = id;
    }

    pub fn set_audio(&self, audio: Option<String>) {
        self.text().audio = audio;
    }

    /// Why the camera cannot be viewed (unsupported codec, media worker down), or `None`.
    pub fn set_error(&self, error: Option<String>) {
        self.text().error = error;
    }

    pub fn error(&self) -> Option<String> {
        self.text().error.clone()
    }

    fn text(&self) -> std::sync::MutexGuard<'_, Text> {
        self.text.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl StatusSection for LiveStatus {
    fn snapshot(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let nonzero = |c: &AtomicU64| Some(get(c)).filter(|&v| v > 0);
        let dropped = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dropped
            .load(Ordering::Relaxed);
        let text = self.text();
        json!({
            "viewers": get(&self.viewers),
            "max_viewers": self.max_viewers,
            "sessions": get(&self.sessions),
            "profile_level_id": text.profile_level_id,
            "audio": text.audio,
            "audio_transcoding": self.audio_transcoding.load(Ordering::Relaxed),
            "audio_units_received": get(&self.audio_units_received),
            "audio_rtp_packets_sent": get(&self.audio_rtp_packets),
            "error": text.error,
            "waiting_for_key_frame": self.waiting_for_key_frame.load(Ordering::Relaxed),
            "b_frames": self.b_frames.load(Ordering::Relaxed),
            "last_key_frame_unix_ms": nonzero(&self.last_key_frame_unix_ms),
            "gop_ms": nonzero(&self.gop_ms),
            "last_join_to_key_frame_ms": nonzero(&self.last_join_to_key_frame_ms),
            "units_received": get(&self.units_received),
            "units_dropped": dropped,
            "units_skipped": get(&self.units_skipped),
            "gaps": get(&self.gaps),
            "rtp_packets_sent": get(&self.rtp_packets),
            "rtp_bytes_sent": get(&self.rtp_bytes),
            "key_frame_requests": get(&self.key_frame_requests),
        })
    }
}
