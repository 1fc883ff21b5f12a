//! Helpers shared by the integration tests: throwaway export roots, a frame pattern that
//! makes a torn frame detectable, and a writer that runs in a child process.
#![allow(dead_code)] // each test binary uses a different subset

pub mod child;
pub mod pattern;
pub mod small_tmpfs;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh export root under /dev/shm, removed (with everything in it) on drop.
pub struct TestRoot {
    path: PathBuf,
}

impl TestRoot {
    pub fn new(name: &str) -> TestRoot {
        // Relaxed: only uniqueness within this process matters.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!(
            "/dev/shm/vas-test-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test root under /dev/shm");
        TestRoot { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Read attempts for the long tests: at least 10^6 in release builds. Debug builds run the
/// same code about 20 times slower, so they do a twentieth of the work to stay around the
/// same wall time; the protocol is the same, only the sample is smaller.
pub fn scaled_attempts(release: u64) -> u64 {
    if cfg!(debug_assertions) {
        release / 20
    } else {
        release
    }
}
