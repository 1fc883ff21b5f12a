//! The vas-frames tool, run as a user would.

mod common;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::TestRoot;
use frames::{FrameInfo, SlotWriter, WriterOptions};

fn vas_frames(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vas-frames"))
        .args(args)
        .output()
        .expect("run vas-frames")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A 16x8 frame: left half white, right half BT.601 red.
fn publish_two_colours(writer: &mut SlotWriter) {
    let mut fill = writer.begin();
    let (stride_y, stride_uv) = (fill.stride_y(), fill.stride_uv());
    let (y, uv) = fill.planes_mut();
    for (i, px) in y.iter_mut().enumerate() {
        *px = if i % stride_y < 8 { 235 } else { 81 };
    }
    for (i, pair) in uv.chunks_mut(2).enumerate() {
        let white = (i * 2) % stride_uv < 8;
        pair.copy_from_slice(if white { &[128, 128] } else { &[90, 240] });
    }
    fill.publish(FrameInfo::captured_now(0));
}

#[test]
fn snapshot_writes_the_latest_frame_as_rgb_png() {
    let root = TestRoot::new("cli-snapshot");
    let mut writer = SlotWriter::create(root.path(), "cam", &WriterOptions::new(16, 8)).unwrap();
    publish_two_colours(&mut writer);
    let png_path = root.path().join("out.png");
    let out = vas_frames(&[
        "snapshot",
        "cam",
        "--root",
        root.path().to_str().unwrap(),
        "-o",
        png_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("frame 1 of camera 'cam', 16x8"),
        "{}",
        text(&out.stdout)
    );

    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut rgb = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut rgb).unwrap();
    assert_eq!(
        (info.width, info.height, info.color_type),
        (16, 8, png::ColorType::Rgb)
    );
    let pixel = |x: usize, y: usize| &rgb[(y * 16 + x) * 3..(y * 16 + x) * 3 + 3];
    // (x, y) -> expected colour
    for ((x, y), expected) in [
        ((0, 0), [255, 255, 255]),
        ((7, 7), [255, 255, 255]),
        ((8, 0), [255, 0, 0]),
        ((15, 7), [255, 0, 0]),
    ] {
        let got = pixel(x, y);
        for (g, e) in got.iter().zip(expected) {
            assert!(
                (*g as i32 - e).abs() <= 1,
                "pixel ({x},{y}) is {got:?}, expected {expected:?}"
            );
        }
    }
}

#[test]
fn snapshot_of_a_missing_camera_says_what_to_check() {
    let root = TestRoot::new("cli-missing");
    let out = vas_frames(&[
        "snapshot",
        "nope",
        "--root",
        root.path().to_str().unwrap(),
        "-o",
        "/tmp/x.png",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim_end(),
        format!(
            "vas-frames: no export for camera 'nope' under {}: is vasd running with export enabled for it?",
            root.path().display()
        )
    );
}

#[test]
fn snapshot_without_frames_times_out_with_a_reason() {
    let root = TestRoot::new("cli-no-frames");
    let _writer = SlotWriter::create(root.path(), "idle", &WriterOptions::new(16, 8)).unwrap();
    let out = vas_frames(&[
        "snapshot",
        "idle",
        "--root",
        root.path().to_str().unwrap(),
        "--timeout-ms",
        "100",
        "-o",
        "/tmp/never.png",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("camera 'idle' has published no frame in 100 ms"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn stats_once_measures_the_frame_rate() {
    let root = TestRoot::new("cli-stats");
    let mut writer = SlotWriter::create(root.path(), "live", &WriterOptions::new(16, 8)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer_stop = stop.clone();
    // About 100 frames a second, for as long as the tool measures.
    let publisher = std::thread::spawn(move || {
        // Relaxed: a stop request, no data travels with it.
        while !writer_stop.load(Ordering::Relaxed) {
            publish_two_colours(&mut writer);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let out = vas_frames(&[
        "stats",
        "--once",
        "--root",
        root.path().to_str().unwrap(),
        "live",
        "absent",
    ]);
    // Relaxed: see above.
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    let stdout = text(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("CAMERA"), "{stdout}");
    let live: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(live[0], "live");
    let fps: f64 = live[1].parse().expect("an fps number");
    assert!((20.0..=150.0).contains(&fps), "fps {fps}");
    assert_eq!(live[7], "16x8");
    assert_eq!(live[8], "ok");
    assert!(
        lines[2].starts_with("absent") && lines[2].contains("no export for camera 'absent'"),
        "{stdout}"
    );
}

#[test]
fn stats_without_exports_and_bad_usage_fail_clearly() {
    let root = TestRoot::new("cli-empty");
    let out = vas_frames(&["stats", "--once", "--root", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no camera exports under"),
        "{}",
        text(&out.stderr)
    );
    let out = vas_frames(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("usage:"));
}
