//! Frames per second over the last few seconds, for status: counts per whole second in a
//! small ring, nothing per frame but an increment.

use std::sync::OnceLock;
use std::time::Instant;

/// Whole seconds since the first call, on the monotonic clock: the meters' time base.
pub fn mono_seconds(now: Instant) -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    now.saturating_duration_since(*START.get_or_init(Instant::now))
        .as_secs()
}

/// Seconds the rate is averaged over.
const WINDOW_S: u64 = 5;
const SLOTS: usize = WINDOW_S as usize + 1;

#[derive(Debug, Clone)]
pub struct RateMeter {
    counts: [u32; SLOTS],
    /// The second the slot `current % SLOTS` counts.
    current: u64,
    /// The second the meter started: a young meter averages over its age.
    started: u64,
}

impl RateMeter {
    /// `now_s`: whole seconds on any monotonic clock.
    pub fn new(now_s: u64) -> RateMeter {
        RateMeter {
            counts: [0; SLOTS],
            current: now_s,
            started: now_s,
        }
    }

    pub fn add(&mut self, now_s: u64) {
        self.advance(now_s);
        let slot = &mut self.counts[(now_s % SLOTS as u64) as usize];
        *slot = slot.saturating_add(1);
    }

    /// Events per second over the last complete seconds (up to WINDOW_S of them).
    pub fn per_second(&mut self, now_s: u64) -> f64 {
        self.advance(now_s);
        let complete = (now_s - self.started).min(WINDOW_S);
        if complete == 0 {
            return 0.0;
        }
        let sum: u64 = (1..=complete)
            .map(|back| u64::from(self.counts[((now_s - back) % SLOTS as u64) as usize]))
            .sum();
        sum as f64 / complete as f64
    }

    fn advance(&mut self, now_s: u64) {
        if now_s <= self.current {
            return;
        }
        // Clear the slots of the seconds that passed without an event (at most a full ring).
        let from = self.current + 1;
        for s in from.max(now_s.saturating_sub(SLOTS as u64 - 1))..=now_s {
            self.counts[(s % SLOTS as u64) as usize] = 0;
        }
        self.current = now_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_table() {
        // 10 events a second for seconds 100..110, then silence.
        let mut m = RateMeter::new(100);
        for s in 100..110 {
            for _ in 0..10 {
                m.add(s);
            }
        }
        // (now, rate): only complete seconds count; a young meter averages over its age.
        assert_eq!(m.per_second(110), 10.0);
        assert_eq!(m.per_second(112), 6.0);
        assert_eq!(m.per_second(115), 0.0);
        assert_eq!(m.per_second(1000), 0.0);
        let mut young = RateMeter::new(50);
        for _ in 0..7 {
            young.add(50);
        }
        assert_eq!(young.per_second(50), 0.0);
        assert_eq!(young.per_second(51), 7.0);
        assert_eq!(young.per_second(52), 3.5);
    }
}
