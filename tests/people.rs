//! The people model (vas-model-people: OpenCV's HOG person detector in Python) on real
//! footage: OpenCV's vtest.avi (pedestrians on a campus path, 768x576 at 10 fps, 79.5 s,
//! from Debian's opencv-doc) served by the RTSP fixture, exported by vasd, routed by ruth.
//! Needs python3-opencv and opencv-doc (packaging/setup-debian.sh); fails, never skips,
//! without them. Rates are checked on the frames' own timestamps and ids, and the motion
//! model's share of frames with and without the people model beside it: counts, not times.

mod daemon;
mod ruth_support;
mod support;

use std::process::Command;
use std::time::Duration;

use daemon::{camera, Vasd};
use ruth_support::{wait_for, EventTap, ExportRoot, ModelProcess, Ruth, RuthConfig, PYTHON};
use serde_json::Value;
use support::{media_dir, RtspServer};

/// People visible in vtest.avi, counted by hand on frames taken every 2.5 s (ffmpeg select,
/// tiled to one PNG): (from s, to s of footage, fewest people on the path in that stretch).
/// Someone is on the path in every frame of the file.
const VISIBLE: &[(f64, f64, u32)] = &[
    (0.0, 10.0, 3),
    (10.0, 20.0, 6),
    (20.0, 30.0, 5),
    (30.0, 40.0, 5),
    (40.0, 50.0, 4),
    (50.0, 60.0, 5),
    (60.0, 70.0, 5),
    (70.0, 79.5, 6),
];
/// The fixture loops the file: 795 frames at 10 fps.
const LOOP_S: f64 = 79.5;
const PEOPLE_FPS: f64 = 2.0;
const CAMERA_FPS: f64 = 10.0;

fn require_opencv() {
    let ok = Command::new(PYTHON)
        .args([
            "-c",
            "import cv2; cv2.HOGDescriptor().setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import cv2 with the HOG people detector: install Debian's \
         python3-opencv (packaging/setup-debian.sh does)"
    );
}

fn vtest_media() -> &'static str {
    let file = media_dir().join("vtest.mp4");
    assert!(
        file.exists(),
        "{} was not made: tests/fixtures/make_media.sh needs vtest.avi from Debian's \
         opencv-doc (packaging/setup-debian.sh installs it)",
        file.display()
    );
    "vtest.mp4"
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Frames delivered per source frame over a run of events of one subscription: the source
/// frames are counted by their ids (one id per decoded frame).
fn share_of_source(events: &[Value]) -> f64 {
    assert!(events.len() >= 10, "only {} events", events.len());
    let first = num(&events[0], "frame_id");
    let last = num(&events[events.len() - 1], "frame_id");
    (events.len() - 1) as f64 / (last - first)
}

/// What the table says for a footage time, and the footage time of a frame: the fixture's
/// media starts with vasd's connection, so pts 0 is the file's first frame, then it loops.
fn visible_at(pts_ns: f64) -> (usize, u32) {
    let t = (pts_ns / 1e9).rem_euclid(LOOP_S);
    VISIBLE
        .iter()
        .position(|&(from, to, _)| from <= t && t < to)
        .map(|i| (i, VISIBLE[i].2))
        .unwrap_or((VISIBLE.len() - 1, VISIBLE[VISIBLE.len() - 1].2))
}

/// Over 30 s of the footage at 2 fps: the people model finds someone in most frames, gets at
/// most 2 frames a second although it takes longer per frame than the camera's period (the
/// due frames it is too busy for are skipped, never queued), and the motion model on the
/// same camera keeps its share of frames.
#[test]
fn people_are_found_in_real_footage_at_2_fps_without_slowing_the_motion_model() {
    require_opencv();
    let media = vtest_media();
    let root = ExportRoot::new();
    let server = RtspServer::start(&[("street", media)]);
    let _vasd = Vasd::start(&(root.vasd_section() + &camera("street", &server.url("street"))));
    let dir = tempfile::tempdir().unwrap();
    let motion_sock = dir.path().join("motion.sock");
    let people_sock = dir.path().join("people.sock");
    let _motion = ModelProcess::rust(&motion_sock, &[]);
    // Scale step 1.05: about 190 ms of CPU per 768x576 frame here, longer than the camera's
    // 100 ms period and shorter than the subscription's 500 ms.
    let _people = ModelProcess::people(&people_sock, &["--scale", "1.05", "--min-score", "0.3"]);

    let alone = RuthConfig::default()
        .model("motion", &motion_sock, "")
        .subscribe("street", "motion", "30");
    let ruth = Ruth::start(&root.path, &alone);
    let tap = EventTap::connect(&ruth);
    let t = Duration::from_secs(40);
    // 10 s of the motion model alone (fps 30 is above the source: every frame is due).
    wait_for(t, "100 motion results", || {
        tap.count("street", "motion") >= 100
    });
    let alone_events = tap.of("street", "motion");

    let both = alone
        .model("people", &people_sock, "deadline_ms = 5000")
        .subscribe("street", "people", "2");
    ruth.reload(&both);
    let reloaded_at = tap.count("street", "motion");
    // 30 s at 2 fps.
    // 30 s of stream time, however long the model takes per frame on a loaded machine.
    let span_of = |events: &[Value]| match (events.first(), events.last()) {
        (Some(a), Some(b)) => (num(b, "pts_ns") - num(a, "pts_ns")) / 1e9,
        _ => 0.0,
    };
    wait_for(
        Duration::from_secs(120),
        "30 s of stream time of people results",
        || span_of(&tap.of("street", "people")) >= 30.0,
    );

    // Never more than fps: n frames lie in n different cells of 1/fps s of stream time, so
    // the first and the last are more than n - 2 periods apart.
    let people = tap.of("street", "people");
    let span_s = span_of(&people);
    let n = people.len() as f64;
    assert!(
        (n - 2.0) / PEOPLE_FPS < span_s,
        "{n} people frames within {span_s:.1} s of stream time: more than {PEOPLE_FPS} a second"
    );
    // Not fewer due frames either: the gate found 2 a second due, and each was either sent or
    // skipped because the model was still busy (Ruth's counters: due = dispatched + skipped).
    // How many were sent depends on the machine's load, not on Ruth.
    let c = &ruth.subscription("street", "people")["counters"];
    let count = |k: &str| c[k].as_u64().unwrap();
    let accounted = count("dispatched")
        + count("skipped_busy")
        + count("skipped_down")
        + count("skipped_write");
    assert!(
        count("due") as f64 >= 0.9 * PEOPLE_FPS * span_s,
        "{} frames due over {span_s:.1} s at fps {PEOPLE_FPS}: {c}",
        count("due")
    );
    assert!(
        accounted + 1 >= count("due") && accounted <= count("due"),
        "due frames neither sent nor skipped: {c}"
    );
    let mut dispatch_ms: Vec<f64> = people
        .iter()
        .map(|e| num(e, "latency_dispatch_ms"))
        .collect();
    dispatch_ms.sort_by(f64::total_cmp);
    eprintln!(
        "people: {n} frames over {span_s:.1} s, median {:.0} ms from request to result \
         (the camera's period is {:.0} ms)",
        dispatch_ms[dispatch_ms.len() / 2],
        1e3 / CAMERA_FPS
    );

    // Detections, against the hand count of each stretch of footage.
    let mut seen = vec![(0u32, 0u32); VISIBLE.len()]; // (frames, frames with someone found)
    for e in &people {
        let r = &e["result"];
        assert_eq!((num(r, "width"), num(r, "height")), (768.0, 576.0), "{e}");
        let count = num(r, "count") as usize;
        let boxes = r["people"].as_array().unwrap();
        assert_eq!(boxes.len(), count, "{e}");
        for b in boxes {
            // OpenCV clips a box at the frame's edges: 61 wide at x 707 in a 768 wide frame.
            let (x, y, w, h) = (num(b, "x"), num(b, "y"), num(b, "w"), num(b, "h"));
            assert!(
                x >= 0.0 && y >= 0.0 && w > 0.0 && h > 0.0 && x + w <= 768.0 && y + h <= 576.0,
                "a box outside the frame: {b}"
            );
            assert!(num(b, "score") >= 0.3, "a box under --min-score: {b}");
        }
        let (i, _) = visible_at(num(e, "pts_ns"));
        seen[i].0 += 1;
        seen[i].1 += u32::from(count >= 1);
    }
    eprintln!("(from s, to s, visible, frames, frames with someone found): ");
    for (&(from, to, visible), &(frames, found)) in VISIBLE.iter().zip(&seen) {
        eprintln!("  {from:5.1} {to:5.1} {visible:2} {frames:3} {found:3}");
        if frames >= 4 {
            assert!(
                found * 2 >= frames,
                "footage {from}-{to} s has at least {visible} people, found in {found} of \
                 {frames} frames"
            );
        }
    }
    let found: u32 = seen.iter().map(|s| s.1).sum();
    assert!(
        f64::from(found) >= 0.8 * n,
        "someone found in {found} of {n} frames; every frame of the footage has people"
    );

    // The motion model beside the slow one: its share of the camera's frames stays.
    let with_events = &tap.of("street", "motion")[reloaded_at..];
    let (share_alone, share_with) = (share_of_source(&alone_events), share_of_source(with_events));
    eprintln!(
        "motion: {:.3} of the source frames alone, {:.3} beside the people model",
        share_alone, share_with
    );
    assert!(
        share_alone >= 0.9,
        "motion alone got {share_alone:.3} of the frames"
    );
    assert!(
        share_with >= 0.95 * share_alone,
        "the motion model got {share_with:.3} of the frames beside the people model, \
         {share_alone:.3} alone"
    );
    let motion = ruth.subscription("street", "motion");
    eprintln!("motion subscription status: {motion}");
}
