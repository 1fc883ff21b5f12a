//! A stand-in for vasd's frame export, for benchmarks and demos without cameras: N cameras
//! publishing synthetic NV12 frames (a bright bar moving over a gradient, so motion models
//! see motion) at a fixed rate, with the frames crate's SlotWriter, exactly as vasd does
//! after decoding. It costs no decode: the CPU left is for Ruth and the models.
//!
//! Usage: synthetic_writer --root DIR [--cameras N] [--prefix cam] [--fps 30]
//!                         [--size 640x360] [--seconds S]
//! Cameras are named <prefix>0 .. <prefix>N-1. Runs until killed (or S seconds).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use frames::{FrameInfo, SlotWriter, WriterOptions};

struct Args {
    root: PathBuf,
    cameras: usize,
    prefix: String,
    fps: f64,
    width: u32,
    height: u32,
    seconds: Option<f64>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        root: PathBuf::new(),
        cameras: 1,
        prefix: "cam".into(),
        fps: 30.0,
        width: 640,
        height: 360,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        let bad = |what: &str| format!("{arg}: {what}");
        match arg.as_str() {
            "--root" => a.root = PathBuf::from(value()?),
            "--cameras" => a.cameras = value()?.parse().map_err(|_| bad("a count"))?,
            "--prefix" => a.prefix = value()?,
            "--fps" => a.fps = value()?.parse().map_err(|_| bad("frames per second"))?,
            "--seconds" => a.seconds = Some(value()?.parse().map_err(|_| bad("seconds"))?),
            "--size" => {
                let v = value()?;
                let (w, h) = v.split_once('x').ok_or(bad("WIDTHxHEIGHT"))?;
                a.width = w.parse().map_err(|_| bad("WIDTHxHEIGHT"))?;
                a.height = h.parse().map_err(|_| bad("WIDTHxHEIGHT"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.root.as_os_str().is_empty() || a.fps.is_nan() || a.fps <= 0.0 {
        return Err(
            "usage: synthetic_writer --root DIR [--cameras N] [--prefix cam] [--fps 30] \
                    [--size 640x360] [--seconds S]"
                .into(),
        );
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let threads: Vec<_> = (0..args.cameras)
        .map(|i| {
            let camera = format!("{}{i}", args.prefix);
            let root = args.root.clone();
            let (fps, w, h, seconds) = (args.fps, args.width, args.height, args.seconds);
            std::thread::Builder::new()
                .name(format!("cam-{camera}"))
                .spawn(move || write_camera(&root, &camera, fps, w, h, seconds, i))
                .expect("spawn")
        })
        .collect();
    println!("READY");
    for t in threads {
        let _ = t.join();
    }
}

fn write_camera(
    root: &std::path::Path,
    camera: &str,
    fps: f64,
    width: u32,
    height: u32,
    seconds: Option<f64>,
    phase: usize,
) {
    let mut writer = SlotWriter::create(root, camera, &WriterOptions::new(width, height))
        .unwrap_or_else(|e| panic!("{camera}: {e}"));
    let period = Duration::from_secs_f64(1.0 / fps);
    let start = Instant::now();
    // Cameras start at different phases, as real ones do.
    let offset = period.mul_f64(phase as f64 / 8.0);
    for n in 0u64.. {
        let due = start + offset + period.mul_f64(n as f64);
        if let Some(s) = seconds {
            if due.duration_since(start).as_secs_f64() > s {
                return;
            }
        }
        // A fixed schedule, not "sleep one period": frames stay on time however long the
        // writes take.
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut fill = writer.begin();
        let stride = fill.stride_y();
        let bar = (n as usize * 8) % width as usize;
        let (y, uv) = fill.planes_mut();
        for (r, row) in y.chunks_mut(stride).enumerate() {
            for (c, px) in row.iter_mut().enumerate() {
                *px = if c.abs_diff(bar) < 16 {
                    235
                } else {
                    (16 + (r + c) % 200) as u8
                };
            }
        }
        uv.fill(128);
        let pts_ns = (n as f64 * 1e9 / fps) as i64;
        let mut info = FrameInfo::captured_now(pts_ns);
        info.key_frame = n % 30 == 0;
        info.discontinuity = n == 0;
        fill.publish(info);
    }
}
