//! The decode boundary's hand-off: every access unit read from a camera is offered to each
//! consumer (recorder, live view) through a bounded queue with `try_send`. A full queue drops
//! the unit and counts it; the camera thread never waits for a consumer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use ffmpeg_next::codec::Parameters;
use ffmpeg_next::packet::{Mut as _, Ref as _};
use ffmpeg_next::{Packet, Rational};

/// The tracks of one session as the demuxer describes them: the video's codec, geometry and
/// extradata (for H.264/H.265 from RTSP: the SDP's parameter sets, Annex B), and the audio
/// track if the camera sends one. Built when a session opens, and again by the camera thread
/// when new parameter sets arrive in band (see `camera::changes`).
pub struct StreamParams {
    parameters: Parameters,
    pub extradata: Vec<u8>,
    pub audio: Option<AudioTrack>,
}

/// A camera's audio track.
pub struct AudioTrack {
    pub parameters: Parameters,
    pub time_base: Rational,
}

// SAFETY: AVCodecParameters is plain data owned by `parameters` (and the audio track's); it
// is written only while a `StreamParams` is built and read-only afterwards, so sharing
// references across threads is sound.
unsafe impl Sync for StreamParams {}
unsafe impl Send for AudioTrack {}

impl StreamParams {
    pub fn new(parameters: Parameters, audio: Option<AudioTrack>) -> StreamParams {
        // SAFETY: `parameters` owns a valid AVCodecParameters; we copy `extradata_size` bytes
        // from `extradata`, which FFmpeg keeps consistent.
        let extradata = unsafe {
            let p = parameters.as_ptr();
            if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
            }
        };
        StreamParams {
            parameters,
            extradata,
            audio,
        }
    }

    /// The same tracks with new video parameter sets (Annex B) and, when FFmpeg's parser read
    /// them, the size, pixel format and profile they describe.
    pub fn with_sets(
        &self,
        sets: &[u8],
        geometry: Option<super::changes::Geometry>,
    ) -> StreamParams {
        let mut parameters = self.parameters.clone();
        set_extradata(&mut parameters, sets);
        if let Some(g) = geometry {
            // SAFETY: we own the clone; plain field writes on a valid AVCodecParameters.
            unsafe {
                let p = parameters.as_mut_ptr();
                (*p).width = g.width as i32;
                (*p).height = g.height as i32;
                (*p).format = g.format;
                (*p).profile = g.profile;
            }
        }
        let audio = self.audio.as_ref().map(|a| AudioTrack {
            parameters: a.parameters.clone(),
            time_base: a.time_base,
        });
        StreamParams::new(parameters, audio)
    }

    /// The codec parameters, e.g. to set up a muxer's stream.
    pub fn parameters(&self) -> &Parameters {
        &self.parameters
    }

    /// Width and height of the video, 0 when unknown.
    pub fn size(&self) -> (u32, u32) {
        // SAFETY: reading two plain fields of a valid AVCodecParameters.
        unsafe {
            let p = self.parameters.as_ptr();
            ((*p).width.max(0) as u32, (*p).height.max(0) as u32)
        }
    }
}

/// Replaces the extradata of `params` with `data`.
pub fn set_extradata(params: &mut Parameters, data: &[u8]) {
    use ffmpeg_next::ffi;
    // SAFETY: FFmpeg requires extradata to be allocated with av_malloc and padded; we free any
    // previous buffer with av_free and own the parameters exclusively.
    unsafe {
        let p = params.as_mut_ptr();
        let padding = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffi::av_mallocz(data.len() + padding) as *mut u8;
        if buf.is_null() {
            return;
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        ffi::av_free((*p).extradata as *mut _);
        (*p).extradata = buf;
        (*p).extradata_size = data.len() as i32;
    }
}

/// A new reference to the bytes of `packet`, without copying them. ffmpeg-next's `clone`
/// copies: it makes the clone writable, and a buffer with two references is copied for that.
/// Consumers only read the bytes and rewrite the timestamps, which are fields of the packet,
/// not of the shared buffer.
pub fn share(packet: &Packet) -> Packet {
    let mut out = Packet::empty();
    // SAFETY: both are valid AVPackets; av_packet_ref adds a reference to the source's
    // buffer (or copies a packet that has none) and copies its properties.
    unsafe { ffmpeg_next::ffi::av_packet_ref(out.as_mut_ptr(), packet.as_ptr()) };
    out
}

/// Which track of the camera a unit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video,
    Audio,
}

/// One demuxed access unit of a camera's video stream.
pub struct AccessUnit {
    /// Reference-counted by FFmpeg: the unit holds a reference to the demuxer's buffer
    /// ([`share`]), and consumers share the unit itself.
    pub packet: Packet,
    pub time_base: Rational,
    pub track: Track,
    /// The session's stream description, shared by all its units; a new one after new
    /// parameter sets in band.
    pub stream: Arc<StreamParams>,
    /// Position of this unit among all units of its track the camera offered since start,
    /// across sessions: a consumer that sees a gap knows its queue overflowed and units were
    /// dropped.
    pub seq: u64,
    /// Set on the video unit that carries new parameter sets (a new size or profile); its
    /// `stream` describes it and what follows. Consumers whose output is tied to the old
    /// parameters (a recording's sample entry) start over at it.
    pub params_changed: bool,
    /// The video timestamp of this unit does not continue the previous one's (a camera clock
    /// reset, a jump back or far forward): a new timeline starts here.
    pub discontinuity: bool,
    /// Increments on every reconnect; a consumer seeing a new value starts over (new segment,
    /// new RTP timeline).
    pub session: u64,
    pub key: bool,
    pub received_unix_ms: u64,
}

pub type SharedUnit = Arc<AccessUnit>;

/// Counters of one consumer's queue, shared with status.
#[derive(Debug, Default)]
pub struct QueueStats {
    pub offered: AtomicU64,
    pub dropped: AtomicU64,
}

pub struct QueueSink {
    pub name: &'static str,
    /// Whether this consumer takes audio units too (the recorder of a camera whose audio is
    /// recorded); the others never see them.
    pub wants_audio: bool,
    /// Raised by the consumer while it has no use for anything but video key frames (the
    /// live view of a camera nobody watches, which only keeps learning the parameter sets):
    /// the camera thread then offers it nothing else. Relaxed: a unit more or less around a
    /// change costs nothing, since that consumer restarts at a key frame anyway.
    pub idle: Option<Arc<AtomicBool>>,
    tx: Sender<SharedUnit>,
    pub stats: Arc<QueueStats>,
}

impl QueueSink {
    /// A bounded queue of `capacity` units and its receiving end for the consumer's thread.
    pub fn bounded(name: &'static str, capacity: usize) -> (QueueSink, Receiver<SharedUnit>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let sink = QueueSink {
            name,
            wants_audio: false,
            idle: None,
            tx,
            stats: Arc::new(QueueStats::default()),
        };
        (sink, rx)
    }
}

#[derive(Default)]
pub struct Fanout {
    sinks: Vec<QueueSink>,
}

impl Fanout {
    pub fn add(&mut self, sink: QueueSink) {
        self.sinks.push(sink);
    }

    /// True when no consumer wants access units; the camera thread then builds none.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// True when some consumer takes audio units.
    pub fn wants_audio(&self) -> bool {
        self.sinks.iter().any(|s| s.wants_audio)
    }

    /// Offers `unit` to every consumer without ever blocking. A full or closed queue drops it.
    pub fn offer(&self, unit: AccessUnit) {
        let unit = Arc::new(unit);
        for sink in &self.sinks {
            if unit.track == Track::Audio && !sink.wants_audio {
                continue;
            }
            let key_frame = unit.track == Track::Video && unit.key;
            if !key_frame
                && sink
                    .idle
                    .as_ref()
                    .is_some_and(|i| i.load(Ordering::Relaxed))
            {
                continue;
            }
            // Relaxed: independent counters read only for status.
            sink.stats.offered.fetch_add(1, Ordering::Relaxed);
            match sink.tx.try_send(unit.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    sink.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn unit(n: i64) -> AccessUnit {
        let mut packet = Packet::copy(&[0, 0, 0, 1, 0x65, n as u8]);
        packet.set_pts(Some(n));
        AccessUnit {
            packet,
            time_base: Rational::new(1, 90_000),
            track: Track::Video,
            stream: Arc::new(StreamParams::new(Parameters::new(), None)),
            seq: n as u64,
            params_changed: false,
            discontinuity: false,
            session: 1,
            key: n == 0,
            received_unix_ms: 0,
        }
    }

    /// Invariant 1: a consumer that never reads cannot stall the camera thread. If `offer`
    /// blocked on a full queue, the offering thread would not finish and the receive below
    /// would time out.
    #[test]
    fn a_consumer_that_never_reads_never_blocks_the_offer() {
        let (stuck, _stuck_rx) = QueueSink::bounded("stuck", 8);
        let (ok, ok_rx) = QueueSink::bounded("ok", 100_000);
        let stuck_stats = stuck.stats.clone();
        let mut fanout = Fanout::default();
        fanout.add(stuck);
        fanout.add(ok);
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            for n in 0..10_000 {
                fanout.offer(unit(n));
            }
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("offer blocked on a full queue");
        assert_eq!(stuck_stats.offered.load(Ordering::Relaxed), 10_000);
        assert_eq!(stuck_stats.dropped.load(Ordering::Relaxed), 10_000 - 8);
        // The healthy consumer got every unit, in order, unaffected by the stuck one.
        let got: Vec<i64> = ok_rx.try_iter().map(|u| u.packet.pts().unwrap()).collect();
        assert_eq!(got, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn an_idle_consumer_is_offered_key_frames_only() {
        let (mut sink, rx) = QueueSink::bounded("live", 100);
        let idle = Arc::new(AtomicBool::new(true));
        sink.idle = Some(idle.clone());
        sink.wants_audio = true;
        let mut fanout = Fanout::default();
        fanout.add(sink);
        // (unit, idle while offered, taken)
        let table = [
            (0, true, true),
            (1, true, false),
            (2, false, true),
            (3, false, true),
        ];
        for (n, is_idle, _) in table {
            idle.store(is_idle, Ordering::Relaxed);
            fanout.offer(unit(n));
        }
        let mut audio = unit(4);
        audio.track = Track::Audio;
        idle.store(true, Ordering::Relaxed);
        fanout.offer(audio);
        let got: Vec<i64> = rx.try_iter().map(|u| u.packet.pts().unwrap()).collect();
        let want: Vec<i64> = table.iter().filter(|t| t.2).map(|t| t.0).collect();
        assert_eq!(
            got, want,
            "unit 0 is the key frame; audio waits for a listener"
        );
    }

    #[test]
    fn a_consumer_that_went_away_is_counted_as_drops() {
        let (sink, rx) = QueueSink::bounded("gone", 4);
        let stats = sink.stats.clone();
        drop(rx);
        let mut fanout = Fanout::default();
        fanout.add(sink);
        fanout.offer(unit(0));
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
    }
}
