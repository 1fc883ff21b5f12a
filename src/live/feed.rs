//! One camera's access units turned into its live RTP stream.
//!
//! The rules that keep every viewer's picture intact:
//! - The stream (re)starts only at a key frame, with SPS and PPS in front of it: at the first
//!   unit, after a gap in the unit sequence (the camera thread dropped units because our queue
//!   was full: a frame missing mid-GOP would corrupt every frame until the next key frame,
//!   field-notes pain point 8), after a camera reconnect, and after a time without viewers.
//! - Timestamps and sequence numbers continue across all of that ([`RtpTimeline`], one
//!   [`Packetizer`] for the camera's life), so viewers stay attached to the same producer.
//! - Nothing is packetized while nobody watches: an idle camera costs a NAL scan per unit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::packetizer::Packetizer;
use super::status::LiveStatus;
use super::timeline::{RtpTimeline, CLOCK_RATE};
use crate::bitstream::{annex_b, Codec, NalKind, ParameterSets};

/// The fixed payload type of the RTP we hand to mediasoup; it rewrites it per viewer.
pub const PAYLOAD_TYPE: u8 = 96;

/// One access unit as the feed needs it (built from the camera's `AccessUnit`).
#[derive(Debug, Clone, Copy)]
pub struct UnitIn<'a> {
    pub data: &'a [u8],
    /// The session's codec extradata (SPS/PPS from the SDP).
    pub extradata: &'a [u8],
    /// Presentation time on the 90 kHz clock, if the demuxer had one.
    pub pts_90k: Option<i64>,
    pub seq: u64,
    pub session: u64,
    pub key: bool,
    pub received_unix_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Packets handed to the producers; `key` for a key frame.
    Sent { packets: usize, key: bool },
    /// Not sent: waiting for a key frame (with parameter sets) to restart at.
    Skipped,
    /// Nobody watches.
    Idle,
}

#[derive(Debug)]
pub struct Feed {
    /// The camera id, for log lines.
    camera: String,
    status: Arc<LiveStatus>,
    sets: ParameterSets,
    session: Option<u64>,
    next_seq: Option<u64>,
    waiting: bool,
    /// The previous unit came while someone watched.
    was_sending: bool,
    last_key_ms: Option<u64>,
    /// Newest presentation time of the session, to notice B-frames.
    newest_pts: Option<i64>,
    timeline: RtpTimeline,
    packetizer: Packetizer,
}

impl Feed {
    /// A feed writing RTP with `ssrc`, starting at a random-looking sequence number and
    /// timestamp (RFC 3550 5.1) taken from `seed`.
    pub fn new(camera: &str, ssrc: u32, seed: u64, status: Arc<LiveStatus>) -> Feed {
        Feed {
            camera: camera.to_string(),
            status,
            sets: ParameterSets::new(Codec::H264),
            session: None,
            next_seq: None,
            waiting: true,
            was_sending: false,
            last_key_ms: None,
            newest_pts: None,
            timeline: RtpTimeline::new(CLOCK_RATE as u32, (seed >> 16) as u32),
            packetizer: Packetizer::new(PAYLOAD_TYPE, ssrc, seed as u16),
        }
    }

    /// The camera's thread was replaced (a config reload restarted it): its unit and session
    /// numbers start over, so the next unit is a new session whatever its numbers say.
    pub fn new_source(&mut self) {
        self.session = None;
        self.next_seq = None;
        self.waiting = true;
        self.timeline.break_session();
    }

    /// The stream's `profile-level-id`, once an SPS was seen.
    pub fn profile_level_id(&self) -> Option<String> {
        self.sets.profile_level_id()
    }

    /// Handles one unit: packets go to `out` when `sending` (someone watches).
    pub fn push(
        &mut self,
        unit: &UnitIn,
        sending: bool,
        now: Instant,
        out: &mut dyn FnMut(Vec<u8>),
    ) -> Outcome {
        let st = &self.status;
        LiveStatus::add(&st.units_received, 1);
        if unit.key {
            if let Some(prev) = self.last_key_ms {
                st.gop_ms.store(
                    unit.received_unix_ms.saturating_sub(prev),
                    Ordering::Relaxed,
                );
            }
            self.last_key_ms = Some(unit.received_unix_ms);
            st.last_key_frame_unix_ms
                .store(unit.received_unix_ms, Ordering::Relaxed);
        }
        if self.session != Some(unit.session) {
            self.session = Some(unit.session);
            self.sets.learn_extradata(unit.extradata);
            self.waiting = true;
            self.newest_pts = None;
            st.b_frames.store(false, Ordering::Relaxed);
        }
        if let Some(pts) = unit.pts_90k {
            if self.newest_pts.is_some_and(|newest| pts < newest)
                && !st.b_frames.swap(true, Ordering::Relaxed)
            {
                log::warn!(
                    target: "live",
                    "camera {}: it sends B-frames (frames out of presentation order), which \
                     browsers show badly: turn B-frames off in the camera's encoder settings",
                    self.camera
                );
            }
            self.newest_pts = Some(self.newest_pts.map_or(pts, |n| n.max(pts)));
        }
        // A gap while someone watches is an overflow of the queue; without viewers the camera
        // thread offers key frames only, so gaps are expected and not counted.
        if self.next_seq.is_some_and(|want| unit.seq != want) {
            if sending && self.was_sending {
                LiveStatus::add(&st.gaps, 1);
            }
            self.waiting = true;
        }
        self.was_sending = sending;
        self.next_seq = Some(unit.seq + 1);
        let nals: Vec<&[u8]> = annex_b::units(unit.data).collect();
        for nal in &nals {
            self.sets.learn(nal);
        }

        let outcome = if !sending {
            self.waiting = true;
            Outcome::Idle
        } else if self.waiting && !(unit.key && self.sets.is_complete()) {
            LiveStatus::add(&st.units_skipped, 1);
            Outcome::Skipped
        } else {
            self.waiting = false;
            let pts = unit
                .pts_90k
                .unwrap_or(unit.received_unix_ms as i64 * (CLOCK_RATE / 1000));
            let ts = self.timeline.stamp(unit.session, pts, now);
            let units = units_to_send(&self.sets, &nals, unit.key);
            let mut bytes = 0;
            let packets = self.packetizer.packetize(&units, ts, &mut |p| {
                bytes += p.len();
                out(p)
            });
            LiveStatus::add(&st.rtp_packets, packets as u64);
            LiveStatus::add(&st.rtp_bytes, bytes as u64);
            Outcome::Sent {
                packets,
                key: unit.key,
            }
        };
        st.waiting_for_key_frame
            .store(self.waiting, Ordering::Relaxed);
        outcome
    }
}

/// The NAL units to send: without delimiters, filler and end markers, and for a key frame with SPS and PPS
/// before its first slice if the camera did not repeat them in-band.
fn units_to_send<'a>(sets: &'a ParameterSets, nals: &[&'a [u8]], key: bool) -> Vec<&'a [u8]> {
    let kind = |n: &[u8]| Codec::H264.nal_kind(n);
    let has = |k: NalKind| nals.iter().any(|n| kind(n) == k);
    let (mut need_sps, mut need_pps) = (key && !has(NalKind::Sps), key && !has(NalKind::Pps));
    let mut units = Vec::with_capacity(nals.len() + 2);
    for &nal in nals {
        let k = kind(nal);
        if k == NalKind::Padding {
            continue;
        }
        // The first slice of a key frame gets the missing sets first.
        if matches!(k, NalKind::Slice | NalKind::KeySlice) && (need_sps || need_pps) {
            if let (true, Some(sps)) = (need_sps, sets.sps.as_deref()) {
                units.push(sps);
            }
            if let (true, Some(pps)) = (need_pps, sets.pps.as_deref()) {
                units.push(pps);
            }
            (need_sps, need_pps) = (false, false);
        }
        units.push(nal);
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::fanout::QueueStats;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x28, 0xac];
    const PPS: &[u8] = &[0x68, 0xee, 0x3c];

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
            .collect()
    }

    fn feed() -> Feed {
        let status = Arc::new(LiveStatus::new(4, Arc::new(QueueStats::default())));
        Feed::new("test", 0xabcd, 0x0001_0000_0000, status)
    }

    /// Pushes units described as (session, seq, key, in-band SPS/PPS) and returns what each
    /// did plus the NAL types of everything sent (from the single-NAL and STAP-A payloads).
    fn run(f: &mut Feed, units: &[Unit], extradata: &[u8]) -> Vec<Outcome> {
        let t0 = Instant::now();
        // A key frame too large for one packet: STAP-A(SPS, PPS) and two FU-A fragments.
        let idr: Vec<u8> = std::iter::once(0x65).chain([7; 1500]).collect();
        units
            .iter()
            .map(|&(session, seq, key, inband)| {
                let slice: &[u8] = if key { &idr } else { &[0x41, 3, 4] };
                let mut nals: Vec<&[u8]> = vec![&[0x09, 0xf0]];
                if inband {
                    nals.extend([SPS, PPS]);
                }
                nals.push(slice);
                let data = annex_b(&nals);
                let u = UnitIn {
                    data: &data,
                    extradata,
                    pts_90k: Some(seq as i64 * 3000),
                    seq,
                    session,
                    key,
                    received_unix_ms: seq * 33,
                };
                f.push(&u, true, t0, &mut |_| {})
            })
            .collect()
    }

    use Outcome::{Sent, Skipped};
    /// (session, seq, key, in-band SPS/PPS) of a test unit.
    type Unit = (u64, u64, bool, bool);
    /// (NAL units, key frame, NAL units sent).
    type Assembly<'a> = (Vec<&'a [u8]>, bool, Vec<&'a [u8]>);
    const KEY: Outcome = Sent {
        packets: 3,
        key: true,
    };
    const DELTA: Outcome = Sent {
        packets: 1,
        key: false,
    };

    #[test]
    fn restarts_only_at_key_frames() {
        let sets = annex_b(&[SPS, PPS]);
        // (session, seq, key, in-band sets) -> outcome; SPS/PPS come from extradata here
        let table: &[(Unit, Outcome)] = &[
            ((1, 1, false, false), Skipped), // joined mid-GOP
            ((1, 2, true, false), KEY),      // SPS and PPS from the extradata
            ((1, 3, false, false), DELTA),
            ((1, 5, false, false), Skipped), // unit 4 was dropped: gap
            ((1, 6, false, false), Skipped),
            ((1, 7, true, false), KEY),
            ((1, 8, false, false), DELTA),
            ((2, 9, false, false), Skipped), // reconnect: wait for a key frame
            ((2, 10, true, false), KEY),
            ((2, 11, false, false), DELTA),
        ];
        let mut f = feed();
        let units: Vec<_> = table.iter().map(|(u, _)| *u).collect();
        let want: Vec<_> = table.iter().map(|(_, o)| *o).collect();
        assert_eq!(run(&mut f, &units, &sets), want);
        let st = &f.status;
        assert_eq!(st.gaps.load(Ordering::Relaxed), 1);
        assert_eq!(st.units_skipped.load(Ordering::Relaxed), 4);
        assert_eq!(st.units_received.load(Ordering::Relaxed), 10);
        assert_eq!(st.rtp_packets.load(Ordering::Relaxed), 3 * 3 + 3);
        assert_eq!(st.gop_ms.load(Ordering::Relaxed), (10 - 7) * 33);
        assert!(!st.waiting_for_key_frame.load(Ordering::Relaxed));
    }

    #[test]
    fn key_frames_wait_for_parameter_sets() {
        let mut f = feed();
        // No extradata: the first key frame without in-band sets cannot start the stream.
        let got = run(
            &mut f,
            &[
                (1, 1, true, false),
                (1, 2, false, false),
                (1, 3, true, true),
                (1, 4, true, false),
            ],
            &[],
        );
        assert_eq!(got, vec![Skipped, Skipped, KEY, KEY]);
        assert_eq!(f.profile_level_id().as_deref(), Some("640028"));
    }

    #[test]
    fn sets_go_before_the_first_slice_once() {
        let f = {
            let mut f = feed();
            f.sets.learn(SPS);
            f.sets.learn(PPS);
            f
        };
        let sei: &[u8] = &[0x06, 5];
        let idr: &[u8] = &[0x65, 1];
        let idr2: &[u8] = &[0x65, 2];
        let aud: &[u8] = &[0x09, 0xf0];
        // (units, key, expected units sent)
        let table: Vec<Assembly> = vec![
            (
                vec![aud, sei, idr, idr2],
                true,
                vec![sei, SPS, PPS, idr, idr2],
            ),
            (vec![SPS, PPS, idr], true, vec![SPS, PPS, idr]),
            // only the PPS was in-band: the SPS is added before the slice
            (vec![PPS, idr], true, vec![PPS, SPS, idr]),
            (vec![aud, &[0x41, 7]], false, vec![&[0x41, 7]]),
        ];
        for (nals, key, want) in table {
            assert_eq!(units_to_send(&f.sets, &nals, key), want, "{nals:02x?}");
        }
    }

    #[test]
    fn nobody_watching_means_nothing_sent_and_a_key_frame_restart() {
        let mut f = feed();
        let sets = annex_b(&[SPS, PPS]);
        let t0 = Instant::now();
        let mut sent = 0;
        let data = annex_b(&[&[0x41, 1]]);
        for (seq, sending) in [(1, false), (2, true)] {
            let u = UnitIn {
                data: &data,
                extradata: &sets,
                pts_90k: None,
                seq,
                session: 1,
                key: false,
                received_unix_ms: 0,
            };
            let o = f.push(&u, sending, t0, &mut |_| sent += 1);
            assert_eq!(o, if sending { Skipped } else { Outcome::Idle });
        }
        assert_eq!(sent, 0);
    }

    #[test]
    fn b_frames_are_noticed_per_session() {
        let mut f = feed();
        let t0 = Instant::now();
        let data = annex_b(&[&[0x41, 1]]);
        // (session, pts, B-frames flagged after it)
        let table = [
            (1, 0, false),
            (1, 9000, false),
            (1, 3000, true),
            (1, 12000, true),
            (2, 0, false),
        ];
        for (n, &(session, pts, want)) in table.iter().enumerate() {
            let u = UnitIn {
                data: &data,
                extradata: &[],
                pts_90k: Some(pts),
                seq: n as u64,
                session,
                key: false,
                received_unix_ms: 0,
            };
            f.push(&u, false, t0, &mut |_| {});
            assert_eq!(f.status.b_frames.load(Ordering::Relaxed), want, "unit {n}");
        }
    }

    #[test]
    fn a_new_source_restarts_even_with_the_same_numbers() {
        let mut f = feed();
        let sets = annex_b(&[SPS, PPS]);
        assert_eq!(run(&mut f, &[(1, 1, true, false)], &sets), vec![KEY]);
        f.new_source();
        assert_eq!(
            run(&mut f, &[(1, 2, false, false), (1, 3, true, false)], &sets),
            vec![Skipped, KEY]
        );
    }
}
