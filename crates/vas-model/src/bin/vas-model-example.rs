//! vas-model-example: a small model that really looks at the pixels. For each frame it
//! reports a motion score against the previous frame of the same subscription and the mean
//! luma of each region of a grid. The Python twin (python3 -m vas_model.example) computes the
//! same numbers bit for bit.
//!
//! Usage: vas-model-example --socket PATH [--grid N] [--delay-ms MS] [--timing]
//!
//! Result of one frame:
//!   {"motion": 0.0123, "changed": 0.041, "previous_frame_id": 41,
//!    "grid": 3, "luma": [[r0c0, r0c1, r0c2], [..], [..]]}
//! motion: mean absolute luma difference with the previous frame, 0 to 1 (1 = every sampled
//! pixel went from black to white); changed: the share of sampled pixels whose luma moved by
//! more than 25 (about 10%); both null on the first frame or after a size change. Motion
//! samples every 4th pixel of every 4th row; the region means every 2nd of every 2nd.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use vas_model::{Frame, Model, ModelServer};

/// A luma step above which a sampled pixel counts as changed: about 10% of the range.
const CHANGED_THRESHOLD: u8 = 25;
/// Motion looks at one pixel in 4x4: 57,600 samples at 1280x720, enough for a score and
/// cheap enough for a debug build at 30 fps.
const MOTION_STEP: usize = 4;
/// Region means look at one pixel in 2x2.
const LUMA_STEP: usize = 2;

struct Args {
    socket: String,
    grid: usize,
    delay: Duration,
    timing: bool,
}

const USAGE: &str = "usage: vas-model-example --socket PATH [--grid N] [--delay-ms MS] [--timing]
  --socket PATH   Unix socket to listen on (Ruth connects to it; [[model]] socket in ruth.toml)
  --grid N        regions per side for the mean luma, 1 to 16 (default 3)
  --delay-ms MS   extra time spent per frame, to play a slow model (default 0)
  --timing        add receive_latency_us (publish to request read) to each result";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        socket: String::new(),
        grid: 3,
        delay: Duration::ZERO,
        timing: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--socket" => args.socket = value("--socket")?,
            "--grid" => {
                args.grid = value("--grid")?
                    .parse()
                    .ok()
                    .filter(|g| (1..=16).contains(g))
                    .ok_or("--grid takes a number from 1 to 16")?
            }
            "--delay-ms" => {
                let ms: u64 = value("--delay-ms")?
                    .parse()
                    .map_err(|_| "--delay-ms takes a number of milliseconds")?;
                args.delay = Duration::from_millis(ms);
            }
            "--timing" => args.timing = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.socket.is_empty() {
        return Err("--socket is required".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("vas-model-example: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match ModelServer::bind(&args.socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vas-model-example: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("vas-model-example: listening on {}", args.socket);
    let (grid, delay, timing) = (args.grid, args.delay, args.timing);
    match server.run(move || MotionModel::new(grid, delay, timing)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vas-model-example: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The previous frame's motion samples, to compare the next frame with.
struct Previous {
    frame_id: u64,
    width: u32,
    height: u32,
    samples: Vec<u8>,
}

struct MotionModel {
    grid: usize,
    delay: Duration,
    timing: bool,
    previous: Option<Previous>,
}

impl MotionModel {
    fn new(grid: usize, delay: Duration, timing: bool) -> MotionModel {
        MotionModel {
            grid,
            delay,
            timing,
            previous: None,
        }
    }
}

impl Model for MotionModel {
    fn process(&mut self, frame: &Frame<'_>) -> Result<Value, String> {
        let luma = region_luma(frame, self.grid);
        let samples = motion_samples(frame);
        let (w, h) = (frame.width(), frame.height());
        let (motion, changed, previous_id) = match &self.previous {
            Some(p) if p.width == w && p.height == h => {
                let (m, c) = compare(&p.samples, &samples);
                (json!(m), json!(c), json!(p.frame_id))
            }
            _ => (Value::Null, Value::Null, Value::Null),
        };
        self.previous = Some(Previous {
            frame_id: frame.frame_id(),
            width: w,
            height: h,
            samples,
        });
        if !self.delay.is_zero() {
            // Plays a model whose inference takes this long; Ruth must skip, not queue.
            std::thread::sleep(self.delay);
        }
        let mut result = json!({
            "motion": motion,
            "changed": changed,
            "previous_frame_id": previous_id,
            "grid": self.grid,
            "luma": luma,
        });
        if self.timing {
            let us = (frame.received_mono_ns() - frame.meta().mono_ns) / 1000;
            result["receive_latency_us"] = json!(us);
        }
        Ok(result)
    }
}

/// Mean luma of each of grid x grid regions, over every LUMA_STEP-th pixel of every
/// LUMA_STEP-th row. Region (i, j) spans rows i*H/grid .. (i+1)*H/grid and the same for
/// columns, in full-resolution coordinates; sampled pixels are those with both coordinates
/// multiples of LUMA_STEP. An exact ratio of two integers, so Python gets the same double.
fn region_luma(frame: &Frame<'_>, grid: usize) -> Vec<Vec<Value>> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let y = frame.y_plane();
    let stride = frame.stride_y();
    let first_sample = |from: usize| from.next_multiple_of(LUMA_STEP);
    (0..grid)
        .map(|i| {
            let (r0, r1) = (i * h / grid, (i + 1) * h / grid);
            (0..grid)
                .map(|j| {
                    let (c0, c1) = (j * w / grid, (j + 1) * w / grid);
                    let (mut sum, mut count) = (0u64, 0u64);
                    for r in (first_sample(r0)..r1).step_by(LUMA_STEP) {
                        let row = &y[r * stride..r * stride + w];
                        for c in (first_sample(c0)..c1).step_by(LUMA_STEP) {
                            sum += u64::from(row[c]);
                            count += 1;
                        }
                    }
                    if count == 0 {
                        Value::Null
                    } else {
                        json!(sum as f64 / count as f64)
                    }
                })
                .collect()
        })
        .collect()
}

/// Every MOTION_STEP-th luma value of every MOTION_STEP-th row, row by row.
fn motion_samples(frame: &Frame<'_>) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let y = frame.y_plane();
    let stride = frame.stride_y();
    let mut out = Vec::with_capacity(w.div_ceil(MOTION_STEP) * h.div_ceil(MOTION_STEP));
    for r in (0..h).step_by(MOTION_STEP) {
        let row = &y[r * stride..r * stride + w];
        out.extend(row.iter().step_by(MOTION_STEP));
    }
    out
}

/// (mean |difference| / 255, share of samples that moved by more than the threshold).
fn compare(before: &[u8], now: &[u8]) -> (f64, f64) {
    let n = before.len().min(now.len());
    if n == 0 {
        return (0.0, 0.0);
    }
    let (mut sum, mut changed) = (0u64, 0u64);
    for (a, b) in before.iter().zip(now) {
        let d = a.abs_diff(*b);
        sum += u64::from(d);
        changed += u64::from(d > CHANGED_THRESHOLD);
    }
    (
        sum as f64 / (n as u64 * 255) as f64,
        changed as f64 / n as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_table() {
        // (before, now, motion, changed)
        let table: &[(&[u8], &[u8], f64, f64)] = &[
            (&[0, 0, 0, 0], &[0, 0, 0, 0], 0.0, 0.0),
            (&[0, 0, 0, 0], &[255, 255, 255, 255], 1.0, 1.0),
            (&[10, 10, 10, 10], &[10, 36, 10, 35], 51.0 / 1020.0, 0.25),
            (&[200, 0], &[100, 0], 100.0 / 510.0, 0.5),
            (&[], &[], 0.0, 0.0),
        ];
        for (before, now, motion, changed) in table {
            assert_eq!(
                compare(before, now),
                (*motion, *changed),
                "{before:?} {now:?}"
            );
        }
    }
}
