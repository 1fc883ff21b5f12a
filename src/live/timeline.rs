//! RTP timestamps of one of a camera's live streams (video, audio), continuous across its RTSP
//! sessions.
//!
//! Viewers stay attached to the same mediasoup producer while the camera reconnects, so the
//! stream they receive must look like one stream: timestamps that keep moving forward at the
//! 90 kHz clock. Within a session the camera's own presentation times are used, shifted by an
//! offset. A new session (or a jump in the camera's clock) gets a new offset that places its
//! first unit after the newest timestamp sent, by the wall-clock time that passed in between,
//! so a receiver's jitter buffer sees a pause, not a time warp.

use std::time::Instant;

/// The RTP clock rate of video (RFC 6184).
pub const CLOCK_RATE: i64 = 90_000;

/// Within a session, a timestamp this many seconds behind the newest one is a camera clock
/// reset, not B-frame reordering (which stays within a few frames).
const MAX_BACKWARD_S: i64 = 5;
/// ... and this far ahead of it a jump (the camera thread ends a silent session after its
/// I/O timeout, 5 s by default, so real gaps inside a session are shorter).
const MAX_FORWARD_S: i64 = 10;

#[derive(Debug)]
pub struct RtpTimeline {
    /// Ticks per second of the stream's RTP clock.
    rate: i64,
    initial: i64,
    /// Added to a unit's 90 kHz presentation time to get its (unwrapped) RTP timestamp.
    offset: i64,
    session: Option<u64>,
    /// The highest timestamp sent so far and when the last unit was stamped.
    newest: Option<(i64, Instant)>,
    /// Times a new offset was chosen after the first: reconnects and clock jumps.
    pub rebases: u64,
}

impl RtpTimeline {
    /// A timeline at `rate` ticks per second whose first timestamp is `initial` (random,
    /// RFC 3550 5.1).
    pub fn new(rate: u32, initial: u32) -> RtpTimeline {
        RtpTimeline {
            rate: i64::from(rate),
            initial: i64::from(initial),
            offset: 0,
            session: None,
            newest: None,
            rebases: 0,
        }
    }

    /// The next unit starts a new session whatever its number (the camera thread was
    /// replaced and numbers its sessions from 1 again).
    pub fn break_session(&mut self) {
        self.session = None;
    }

    /// The RTP timestamp of a unit of `session` presented at `pts` (in clock ticks), stamped
    /// at `now`.
    pub fn stamp(&mut self, session: u64, pts: i64, now: Instant) -> u32 {
        let mut ts = pts.saturating_add(self.offset);
        let jumped = match self.newest {
            Some((newest, _)) => {
                ts < newest - MAX_BACKWARD_S * self.rate || ts > newest + MAX_FORWARD_S * self.rate
            }
            None => true,
        };
        if self.session != Some(session) || jumped {
            let next = match self.newest {
                None => self.initial,
                Some((newest, at)) => {
                    self.rebases += 1;
                    let paused = now.saturating_duration_since(at);
                    let paused_ticks =
                        (paused.as_micros() as i64).saturating_mul(self.rate) / 1_000_000;
                    newest + paused_ticks.max(1)
                }
            };
            self.offset = next - pts;
            self.session = Some(session);
            ts = next;
        }
        let newest = self.newest.map_or(ts, |(n, _)| n.max(ts));
        self.newest = Some((newest, now));
        ts.rem_euclid(1 << 32) as u32
    }
}

/// A presentation time in `time_base` units converted to a `rate` Hz RTP clock.
pub fn to_clock(pts: i64, time_base_num: i32, time_base_den: i32, rate: u32) -> Option<i64> {
    if time_base_den <= 0 || time_base_num <= 0 {
        return None;
    }
    let v =
        i128::from(pts) * i128::from(rate) * i128::from(time_base_num) / i128::from(time_base_den);
    i64::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn continuous_across_sessions_and_jumps() {
        let t0 = Instant::now();
        let mut tl = RtpTimeline::new(90_000, 1000);
        // (session, pts in 90 kHz, ms since t0, expected RTP timestamp)
        let table: &[(u64, i64, u64, u32)] = &[
            // first session: the camera's clock starts at 500000, we start at 1000
            (1, 500_000, 0, 1000),
            (1, 503_000, 33, 4000),
            // B-frame reordering goes back a little within the session: kept as is
            (1, 501_500, 66, 2500),
            (1, 506_000, 100, 7000),
            // reconnect after 2 s; the camera restarted its clock at 0: we continue from the
            // newest (7000) plus the 2000 ms pause (180000 ticks)
            (2, 0, 2100, 187_000),
            (2, 3000, 2133, 190_000),
            // the camera clock jumps 1 hour ahead inside the session: treated like a pause
            (2, 3600 * 90_000, 2166, 190_000 + 33 * 90),
            // and back by a minute: likewise
            (2, 3540 * 90_000, 2200, 190_000 + 67 * 90),
            // a new session stamped at the same instant still moves forward by one tick
            (3, 42, 2200, 190_000 + 67 * 90 + 1),
        ];
        for &(session, pts, ms, want) in table {
            let got = tl.stamp(session, pts, t0 + Duration::from_millis(ms));
            assert_eq!(got, want, "session {session} pts {pts} at {ms} ms");
        }
        assert_eq!(tl.rebases, 4);
    }

    #[test]
    fn wraps_at_32_bits() {
        let t0 = Instant::now();
        let mut tl = RtpTimeline::new(90_000, u32::MAX - 1000);
        assert_eq!(tl.stamp(1, 0, t0), u32::MAX - 1000);
        assert_eq!(tl.stamp(1, 3000, t0), 1999);
    }

    #[test]
    fn time_bases() {
        // (pts, num, den, clock rate, ticks)
        let table = [
            (90_000, 1, 90_000, 90_000, Some(90_000)),
            (1000, 1, 1000, 90_000, Some(90_000)),
            (3, 1, 30, 90_000, Some(9000)),
            (-10, 1, 90_000, 90_000, Some(-10)),
            (1, 0, 90_000, 90_000, None),
            (1, 1, 0, 90_000, None),
            // audio: G.711 at its own 8 kHz, AAC at 16 kHz onto Opus's 48 kHz
            (160, 1, 8000, 8000, Some(160)),
            (1024, 1, 16_000, 48_000, Some(3072)),
        ];
        for (pts, num, den, rate, want) in table {
            assert_eq!(
                to_clock(pts, num, den, rate),
                want,
                "{pts} in {num}/{den} at {rate}"
            );
        }
    }
}
