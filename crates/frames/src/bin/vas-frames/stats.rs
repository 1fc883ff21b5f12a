//! `vas-frames stats`: a live table of every camera's export as this reader sees it.
//!
//! One thread per camera (`stats-<camera>`) waits on the publish futex and copies each new
//! frame, exactly as a model would, so the torn and lapped counts are real. At 1080p30 that
//! costs about 30 copies of 3 MB a second, around 1% of a core per camera.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frames::{monotonic_now_ns, validate_camera_id, ExportReader, ReadStats, WaitOutcome};

/// How long a worker waits on the futex before checking that its export is still current.
const WAIT_SLICE: Duration = Duration::from_millis(250);
/// Pause between attach attempts while a camera has no export.
const ATTACH_RETRY: Duration = Duration::from_millis(500);

/// What a worker has seen so far. Totals only; the printer derives rates.
#[derive(Debug, Clone, Default)]
struct CameraSample {
    status: String,
    /// The first frame this worker saw and when, so the first rate needs no earlier sample.
    first_seen: Option<(u64, Instant)>,
    frame_id: Option<u64>,
    generation: u64,
    mono_ns: i64,
    geometry: (u32, u32),
    /// Reads of earlier attachments, added when a worker re-attaches.
    past_reads: ReadStats,
    reads: ReadStats,
}

pub fn run(root: &Path, cameras: &[String], once: bool) -> Result<(), String> {
    let cameras = if cameras.is_empty() {
        discover(root)?
    } else {
        cameras.to_vec()
    };
    for camera in &cameras {
        validate_camera_id(camera).map_err(|e| e.to_string())?;
    }
    let samples: Vec<Arc<Mutex<CameraSample>>> = cameras
        .iter()
        .map(|camera| {
            let sample = Arc::new(Mutex::new(CameraSample {
                status: "attaching".into(),
                ..CameraSample::default()
            }));
            let (root, camera, shared) = (root.to_path_buf(), camera.clone(), sample.clone());
            std::thread::Builder::new()
                .name(format!("stats-{camera}"))
                .spawn(move || watch(&root, &camera, &shared))
                .expect("spawn a stats thread");
            sample
        })
        .collect();
    let mut previous: Vec<Option<(u64, Instant)>> = vec![None; cameras.len()];
    let snapshot = |i: usize| samples[i].lock().unwrap_or_else(|p| p.into_inner()).clone();
    let tty = std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let mut table = String::new();
        table.push_str(&format!(
            "{:<16} {:>6} {:>10} {:>20} {:>8} {:>7} {:>7} {:>10}  {}\n",
            "CAMERA",
            "FPS",
            "FRAME_ID",
            "GENERATION",
            "AGE_MS",
            "TORN",
            "LAPPED",
            "GEOMETRY",
            "STATUS"
        ));
        let mut attached = 0;
        for (i, camera) in cameras.iter().enumerate() {
            let s = snapshot(i);
            let now = Instant::now();
            let fps = match (previous[i].or(s.first_seen), s.frame_id) {
                (Some((id0, t0)), Some(id1)) if id1 >= id0 => {
                    format!(
                        "{:.1}",
                        (id1 - id0) as f64 / now.duration_since(t0).as_secs_f64()
                    )
                }
                _ => "-".into(),
            };
            previous[i] = s.frame_id.map(|id| (id, now));
            let dash = || "-".to_string();
            let age_ms = s
                .frame_id
                .map(|_| format!("{:.1}", (monotonic_now_ns() - s.mono_ns) as f64 / 1e6))
                .unwrap_or_else(dash);
            if s.status == "ok" {
                attached += 1;
            }
            table.push_str(&format!(
                "{:<16} {:>6} {:>10} {:>20} {:>8} {:>7} {:>7} {:>10}  {}\n",
                camera,
                fps,
                s.frame_id.map(|id| id.to_string()).unwrap_or_else(dash),
                if s.generation == 0 {
                    dash()
                } else {
                    s.generation.to_string()
                },
                age_ms,
                s.past_reads.torn + s.reads.torn,
                s.past_reads.lapped + s.reads.lapped,
                if s.geometry.0 == 0 {
                    dash()
                } else {
                    format!("{}x{}", s.geometry.0, s.geometry.1)
                },
                s.status
            ));
        }
        let mut out = std::io::stdout().lock();
        let clear = if tty && !once { "\x1b[H\x1b[2J" } else { "" };
        let _ = write!(out, "{clear}{table}");
        if !tty && !once {
            let _ = writeln!(out);
        }
        let _ = out.flush();
        if once {
            return if attached > 0 || cameras.is_empty() {
                Ok(())
            } else {
                Err(format!("no camera under {} could be read", root.display()))
            };
        }
    }
}

/// Camera directories under the root.
fn discover(root: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        format!(
            "cannot list {}: {e}: is vasd running with export enabled?",
            root.display()
        )
    })?;
    let mut cameras: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| validate_camera_id(name).is_ok())
        .collect();
    cameras.sort();
    if cameras.is_empty() {
        return Err(format!(
            "no camera exports under {}: is vasd running with export enabled?",
            root.display()
        ));
    }
    Ok(cameras)
}

/// A worker: attach, follow every publish, re-attach when stale. Runs until the process ends.
fn watch(root: &Path, camera: &str, shared: &Mutex<CameraSample>) {
    // A poisoned lock only means the printer panicked mid-read; the data is still usable.
    let sample = || shared.lock().unwrap_or_else(|p| p.into_inner());
    let mut pixels = Vec::new();
    loop {
        let reader = match ExportReader::attach(root, camera) {
            Ok(reader) => reader,
            Err(e) => {
                sample().status = e.to_string();
                std::thread::sleep(ATTACH_RETRY);
                continue;
            }
        };
        let info = *reader.info();
        {
            let mut s = sample();
            s.status = "ok".into();
            s.generation = info.generation;
            s.geometry = (info.width, info.height);
        }
        let mut counter = reader.publish_counter();
        let mut first = true;
        loop {
            if !first {
                match reader.wait_for_publish(counter, WAIT_SLICE) {
                    WaitOutcome::Published { counter: now } => counter = now,
                    WaitOutcome::TimedOut if !reader.is_stale() => continue,
                    _ => break,
                }
            }
            first = false;
            if let Some(latest) = reader.latest() {
                let read = reader.read_slot_into(latest.slot, latest.sequence, &mut pixels);
                let stats = reader.read_stats();
                let mut s = sample();
                s.first_seen
                    .get_or_insert((latest.meta.frame_id, Instant::now()));
                s.frame_id = Some(latest.meta.frame_id);
                s.mono_ns = latest.meta.mono_ns;
                s.reads = stats;
                if read.is_ok() {
                    s.status = "ok".into();
                }
            }
        }
        let reason = reader
            .stale_reason()
            .map(|r| format!("re-attaching ({r:?})"))
            .unwrap_or_else(|| "re-attaching".into());
        let stats = reader.read_stats();
        let mut s = sample();
        s.status = reason;
        s.past_reads.torn += stats.torn;
        s.past_reads.lapped += stats.lapped;
        s.reads = ReadStats::default();
    }
}
