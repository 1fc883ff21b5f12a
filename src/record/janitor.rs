//! Retention: the `rec-janitor` thread deletes old segments, never on a camera's thread.
//!
//! It runs after every closed segment (recorders tell it) and once a minute. Per camera, the
//! segments older than `keep_days` go, then the oldest until the camera is under `max_bytes`;
//! then the oldest of all cameras until the whole directory is under `total_max_bytes`.
//! Segments being written (`.part`) are never touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::playback::index::{Index, SegmentFile, PART_SUFFIX};

/// How one camera's segments are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub keep_days: Option<u32>,
    pub max_bytes: Option<u64>,
}

/// What the janitor knows: the record directory, the global cap, per-camera rules.
#[derive(Debug, Default)]
pub struct Policy {
    pub dir: PathBuf,
    pub total_max_bytes: Option<u64>,
    /// Rules of configured cameras; directories of other cameras get `fallback`.
    pub cameras: BTreeMap<String, Retention>,
    pub fallback: Retention,
}

pub struct Janitor {
    wake: Sender<String>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Janitor {
    pub fn start(policy: Arc<Mutex<Policy>>, index: Index) -> std::io::Result<Janitor> {
        let (wake, wake_rx) = crossbeam_channel::bounded::<String>(64);
        let (stop, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("rec-janitor".into())
            .spawn(move || run(&policy, &index, &wake_rx, &stop_rx))?;
        Ok(Janitor {
            wake,
            stop,
            thread: Some(thread),
        })
    }

    /// Where recorders report closed segments.
    pub fn waker(&self) -> Sender<String> {
        self.wake.clone()
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(policy: &Mutex<Policy>, index: &Index, wake: &Receiver<String>, stop: &Receiver<()>) {
    loop {
        let policy_now = {
            let p = policy.lock().unwrap_or_else(|e| e.into_inner());
            Policy {
                dir: p.dir.clone(),
                total_max_bytes: p.total_max_bytes,
                cameras: p.cameras.clone(),
                fallback: p.fallback,
            }
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // The index, not a walk of the directory: with months of segments a walk per closed
        // segment would cost more than the recording.
        for (file, why) in plan(&index.files(), &policy_now, now) {
            let removed = std::fs::remove_file(&file.path);
            if removed.is_ok() || !file.path.exists() {
                index.removed(&file.camera, &file.path);
            }
            match removed {
                Ok(()) => log::info!(
                    target: &format!("rec-{}", file.camera),
                    "deleted {} ({})",
                    file.path.display(),
                    why
                ),
                Err(e) => log::warn!(
                    target: "rec-janitor",
                    "cannot delete {}: {e}",
                    file.path.display()
                ),
            }
            if let Some(day) = file.path.parent() {
                // Removes the day directory once its last segment is gone; fails harmlessly
                // while it still holds files.
                let _ = std::fs::remove_dir(day);
            }
        }
        crossbeam_channel::select! {
            recv(stop) -> _ => return,
            recv(wake) -> msg => {
                if msg.is_err() {
                    return;
                }
                // Coalesce a burst of closed segments into one pass.
                while wake.try_recv().is_ok() {}
            }
            default(Duration::from_secs(60)) => {}
        }
    }
}

/// Which segments to delete and why, oldest first within each rule.
pub fn plan(files: &[SegmentFile], policy: &Policy, now_unix_s: i64) -> Vec<(SegmentFile, String)> {
    let mut keep: Vec<SegmentFile> = files.to_vec();
    keep.sort_by(|a, b| (a.start_unix_s, &a.path).cmp(&(b.start_unix_s, &b.path)));
    let mut delete = Vec::new();

    let rule = |camera: &str| *policy.cameras.get(camera).unwrap_or(&policy.fallback);
    keep.retain(|f| match rule(&f.camera).keep_days {
        Some(days) if now_unix_s - f.start_unix_s > i64::from(days) * 86_400 => {
            delete.push((f.clone(), format!("older than {days} day(s)")));
            false
        }
        _ => true,
    });

    let mut per_camera: BTreeMap<String, u64> = BTreeMap::new();
    for f in &keep {
        *per_camera.entry(f.camera.clone()).or_default() += f.bytes;
    }
    keep.retain(|f| {
        let used = per_camera.get_mut(&f.camera).expect("counted above");
        match rule(&f.camera).max_bytes {
            Some(max) if *used > max => {
                *used -= f.bytes;
                delete.push((f.clone(), format!("camera over max_bytes {max}")));
                false
            }
            _ => true,
        }
    });

    if let Some(max) = policy.total_max_bytes {
        let mut used: u64 = keep.iter().map(|f| f.bytes).sum();
        keep.retain(|f| {
            if used > max {
                used -= f.bytes;
                delete.push((f.clone(), format!("all cameras over total_max_bytes {max}")));
                false
            } else {
                true
            }
        });
    }
    delete
}

/// A crash leaves the segment being written under its temporary name; its fragments are
/// playable, so it is given its final name. Called once at start, before any recorder runs.
pub fn recover_parts(dir: &Path) -> usize {
    let mut recovered = 0;
    let Ok(cameras) = std::fs::read_dir(dir) else {
        return 0;
    };
    for cam in cameras.flatten() {
        let Ok(days) = std::fs::read_dir(cam.path()) else {
            continue;
        };
        for day in days.flatten() {
            let Ok(files) = std::fs::read_dir(day.path()) else {
                continue;
            };
            for f in files.flatten() {
                let path = f.path();
                let name = f.file_name().to_string_lossy().into_owned();
                let Some(final_name) = name.strip_suffix(PART_SUFFIX) else {
                    continue;
                };
                let target = path.with_file_name(final_name);
                let ok = if f.metadata().map_or(0, |m| m.len()) == 0 {
                    std::fs::remove_file(&path).is_ok()
                } else {
                    !target.exists() && std::fs::rename(&path, &target).is_ok()
                };
                if ok {
                    recovered += 1;
                }
            }
        }
    }
    recovered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(camera: &str, start: i64, bytes: u64) -> SegmentFile {
        SegmentFile {
            camera: camera.into(),
            path: PathBuf::from(format!("/r/{camera}/{start}.mp4")),
            start_unix_s: start,
            bytes,
        }
    }

    #[test]
    fn retention_plan() {
        let day = 86_400;
        let now = 100 * day;
        let files = vec![
            seg("a", now - 3 * day, 10), // too old for a (2 days)
            seg("a", now - day, 10),
            seg("a", now - 10, 10),
            seg("b", now - 50, 40), // b: max 50 bytes -> the oldest goes
            seg("b", now - 40, 40),
            seg("c", now - 30 * day, 5), // c: not configured, fallback keeps 40 days
        ];
        let mut cameras = BTreeMap::new();
        cameras.insert(
            "a".to_string(),
            Retention {
                keep_days: Some(2),
                max_bytes: None,
            },
        );
        cameras.insert(
            "b".to_string(),
            Retention {
                keep_days: None,
                max_bytes: Some(50),
            },
        );
        let policy = Policy {
            dir: PathBuf::from("/r"),
            total_max_bytes: Some(50),
            cameras,
            fallback: Retention {
                keep_days: Some(40),
                max_bytes: None,
            },
        };
        let deleted: Vec<(String, i64)> = plan(&files, &policy, now)
            .into_iter()
            .map(|(f, _)| (f.camera, now - f.start_unix_s))
            .collect();
        // Left after per-camera rules: c(5) a(10) a(10) b(40) = 65 > 50: the oldest, c,
        // then a's older one go, leaving 50.
        assert_eq!(
            deleted,
            vec![
                ("a".into(), 3 * day),
                ("b".into(), 50),
                ("c".into(), 30 * day),
                ("a".into(), day),
            ]
        );
    }
}
