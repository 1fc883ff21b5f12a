//! Reconnect delays: capped exponential backoff with jitter, reset after a healthy session.
//!
//! Jitter spreads the reconnects of many cameras behind one switch that rebooted, and cheap
//! cameras that keep a stale session for about a minute refuse fast reconnects anyway.

use std::time::Duration;

/// Source of jitter in `[0, 1)`; injected so tests are exact.
pub trait Jitter {
    fn unit(&mut self) -> f64;
}

/// Uniform jitter from a fast non-cryptographic generator.
pub struct RandomJitter(fastrand::Rng);

impl RandomJitter {
    pub fn new() -> RandomJitter {
        RandomJitter(fastrand::Rng::new())
    }
}

impl Jitter for RandomJitter {
    fn unit(&mut self) -> f64 {
        self.0.f64()
    }
}

pub struct Backoff<J: Jitter> {
    min: Duration,
    max: Duration,
    healthy_after: Duration,
    /// Consecutive failed or short sessions.
    attempt: u32,
    jitter: J,
}

impl<J: Jitter> Backoff<J> {
    pub fn new(min: Duration, max: Duration, healthy_after: Duration, jitter: J) -> Backoff<J> {
        Backoff {
            min,
            max,
            healthy_after,
            attempt: 0,
            jitter,
        }
    }

    /// Delay before the next attempt, given how long the session that just ended streamed
    /// (zero if it never opened). A session that streamed at least `healthy_after` means the
    /// camera was fine and this is a fresh failure: the backoff starts over.
    ///
    /// The delay is "equal jitter": half of the exponential step is fixed, half random, so it
    /// never collapses to zero and never exceeds `max`.
    pub fn next_delay(&mut self, streamed_for: Duration) -> Duration {
        if streamed_for >= self.healthy_after {
            self.attempt = 0;
        }
        let step = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(self.jitter.unit().clamp(0.0, 1.0))
    }

    /// Consecutive attempts since the last healthy session.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl Jitter for Fixed {
        fn unit(&mut self) -> f64 {
            self.0
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_up_to_the_cap_then_resets_after_a_healthy_session() {
        let mut b = Backoff::new(MS(500), MS(30_000), MS(30_000), Fixed(1.0));
        // (streamed for ms, expected delay ms) with jitter at its top: delay == step
        let table = [
            (0, 500),
            (0, 1_000),
            (0, 2_000),
            (29_999, 4_000), // short session: not healthy, keep backing off
            (0, 8_000),
            (0, 16_000),
            (0, 30_000), // capped
            (0, 30_000),
            (30_000, 500), // healthy session: start over
            (0, 1_000),
        ];
        for (i, (streamed, want)) in table.into_iter().enumerate() {
            assert_eq!(b.next_delay(MS(streamed)), MS(want), "row {i}");
        }
    }

    #[test]
    fn jitter_stays_within_half_and_full_step() {
        // (jitter unit, first delay ms) for min 1000 ms
        let table = [
            (0.0, 500),
            (0.5, 750),
            (0.998, 999),
            (7.0, 1000),
            (-1.0, 500),
        ];
        for (unit, want) in table {
            let mut b = Backoff::new(MS(1000), MS(8000), MS(1000), Fixed(unit));
            assert_eq!(b.next_delay(Duration::ZERO), MS(want), "jitter {unit}");
        }
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(MS(500), MS(30_000), MS(30_000), Fixed(1.0));
        for _ in 0..10_000 {
            assert!(b.next_delay(Duration::ZERO) <= MS(30_000));
        }
        assert_eq!(b.attempts(), 10_000);
    }
}
