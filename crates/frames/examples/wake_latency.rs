//! Publish-to-wake latency of a reader blocked on the publish counter, against a live export.
//!
//! Each wake compares the wall clock with the frame's `wall_ns`, which the writer stamps just
//! before it publishes, so the figure is the futex wake-up plus scheduling, as a model or Ruth
//! would see it. Usage: `wake_latency <root> <camera> [frames]` (default 300).

use std::path::Path;
use std::time::Duration;

use frames::{wall_clock_now_ns, ExportReader, WaitOutcome};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: wake_latency <root> <camera> [frames]");
        std::process::exit(2);
    }
    let frames: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(300);
    let reader = match ExportReader::attach(Path::new(&args[1]), &args[2]) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut counter = reader.publish_counter();
    let mut latencies_us = Vec::with_capacity(frames);
    while latencies_us.len() < frames {
        match reader.wait_for_publish(counter, Duration::from_secs(5)) {
            WaitOutcome::Published { counter: c } => {
                let now = wall_clock_now_ns();
                counter = c;
                if let Some(latest) = reader.latest() {
                    latencies_us.push((now - latest.meta.wall_ns) as f64 / 1000.0);
                }
            }
            WaitOutcome::TimedOut => {
                eprintln!("no frame for 5 s");
                std::process::exit(1);
            }
            WaitOutcome::Closed => {
                eprintln!("the writer closed the export");
                std::process::exit(1);
            }
        }
    }
    latencies_us.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies_us[((latencies_us.len() - 1) as f64 * p) as usize];
    println!(
        "publish -> wake over {} frames: p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        latencies_us.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}
