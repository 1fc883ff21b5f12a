//! A stop request that threads can poll cheaply and sleep on without missing it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct StopSignal {
    raised: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl StopSignal {
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Asks every holder to stop and wakes those sleeping in [`StopSignal::sleep`].
    pub fn raise(&self) {
        // Release pairs with the Acquire in is_raised: whoever sees the flag also sees what the
        // raiser wrote before it. Taking the lock before notifying closes the window in which
        // a sleeper has checked the flag but not yet started waiting.
        self.raised.store(true, Ordering::Release);
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_all();
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Sleeps for `duration` or until the signal is raised. Returns true if it was raised.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.is_raised() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = match self.wake.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sleep_returns_false_when_not_raised() {
        let s = StopSignal::new();
        assert!(!s.sleep(Duration::from_millis(1)));
    }

    #[test]
    fn raise_wakes_a_long_sleep() {
        let s = Arc::new(StopSignal::new());
        let t = {
            let s = s.clone();
            std::thread::spawn(move || s.sleep(Duration::from_secs(3600)))
        };
        s.raise();
        // The join would hang for an hour if raise did not wake the sleeper.
        assert!(t.join().unwrap());
        assert!(s.is_raised());
    }
}
