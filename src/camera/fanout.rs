//! The decode boundary's hand-off: every access unit read from a camera is offered to each
//! consumer (recorder, live view) through a bounded queue with `try_send`. A full queue drops
//! the unit and counts it; the camera thread never waits for a consumer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use ffmpeg_next::codec::Parameters;
use ffmpeg_next::{Packet, Rational};

/// The video stream of one session as the demuxer describes it: codec, geometry, and the
/// extradata (for H.264 from RTSP: SPS and PPS from the SDP, Annex B). Built once per session.
pub struct StreamParams {
    parameters: Parameters,
    pub extradata: Vec<u8>,
}

// SAFETY: AVCodecParameters is plain data owned by `parameters`; it is written only in
// `StreamParams::new` and read-only afterwards, so sharing references across threads is sound.
unsafe impl Sync for StreamParams {}

impl StreamParams {
    pub fn new(parameters: Parameters) -> StreamParams {
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
        }
    }

    /// The codec parameters, e.g. to set up a muxer's stream.
    pub fn parameters(&self) -> &Parameters {
        &self.parameters
    }
}

/// One demuxed access unit of a camera's video stream.
pub struct AccessUnit {
    /// Reference-counted by FFmpeg: cloning the packet for a consumer does not copy the bytes.
    pub packet: Packet,
    pub time_base: Rational,
    /// The session's stream description, shared by all its units.
    pub stream: Arc<StreamParams>,
    /// Position of this unit among all the camera offered since start, across sessions: a
    /// consumer that sees a gap knows its queue overflowed and units were dropped.
    pub seq: u64,
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
    tx: Sender<SharedUnit>,
    pub stats: Arc<QueueStats>,
}

impl QueueSink {
    /// A bounded queue of `capacity` units and its receiving end for the consumer's thread.
    pub fn bounded(name: &'static str, capacity: usize) -> (QueueSink, Receiver<SharedUnit>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let sink = QueueSink {
            name,
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

    /// Offers `unit` to every consumer without ever blocking. A full or closed queue drops it.
    pub fn offer(&self, unit: AccessUnit) {
        let unit = Arc::new(unit);
        for sink in &self.sinks {
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
            stream: Arc::new(StreamParams::new(Parameters::new())),
            seq: n as u64,
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
