//! The Python reader (python/vas_frames) reads exactly the pixels the Rust writer wrote, waits
//! on the futex and by polling, and notices a closed writer. Runs Debian's /usr/bin/python3
//! (python3-numpy); skips with a message if numpy is missing.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{pattern, TestRoot};
use frames::{SlotWriter, WriterOptions};

const PYTHON: &str = "/usr/bin/python3";

const SCRIPT: &str = r#"
import sys
from vas_frames import ExportReader, NoExport, FrameRef, CorruptExport, UnsupportedVersion

root, outdir = sys.argv[1], sys.argv[2]
say = lambda *a: print(*a, flush=True)

for camera in ("even", "odd"):
    r = ExportReader(root, camera)
    ref = r.latest()
    meta, y, uv = r.read(ref.slot, ref.sequence)
    open(f"{outdir}/{camera}.y", "wb").write(y.tobytes())
    open(f"{outdir}/{camera}.uv", "wb").write(uv.tobytes())
    say(f"read {camera} frame_id={meta['frame_id']} pts_ns={meta['pts_ns']} "
        f"key_frame={meta['key_frame']} discontinuity={meta['discontinuity']} "
        f"y={y.shape} uv={uv.shape} dtype={y.dtype}")
    say(f"wrong-sequence {r.read(ref.slot, ref.sequence + 2)}")
    say(f"wrong-generation {r.read_ref(FrameRef(ref.generation + 1, ref.slot, ref.sequence, ref.frame_id))}")
    say(f"stale {r.is_stale()}")
    r.close()

for camera in ("garbage", "newer", "truncated"):
    try:
        ExportReader(root, camera)
        say(f"attached {camera}")
    except (CorruptExport, UnsupportedVersion) as e:
        say(f"{camera} {type(e).__name__}")

r = ExportReader(root, "even")
counter = r.publish_counter()
say("waiting futex")
new = r.wait(30.0, counter)
say(f"woke futex {new == counter + 1} latest={r.latest().frame_id}")
say("waiting poll")
new2 = r.wait(30.0, poll_interval=0.001)
say(f"woke poll {new2 == new + 1} latest={r.latest().frame_id}")
say(f"timeout {r.wait(0.2)}")
say("drop now")
sys.stdin.readline()
say(f"stale {r.is_stale()}")
try:
    ExportReader(root, "even")
except NoExport as e:
    say(f"no-export {e}")
"#;

fn numpy_available() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success())
}

fn publish(writer: &mut SlotWriter) -> u64 {
    let mut scratch = Vec::new();
    let mut fill = writer.begin();
    pattern::fill(&mut fill, &mut scratch);
    let id = fill.frame_id();
    fill.publish(pattern::info(id))
}

/// The planes without stride padding, as Python's arrays hold them.
fn expected_planes(frame_id: u64, width: usize, height: usize) -> (Vec<u8>, Vec<u8>) {
    let stride = width + (width & 1);
    let rows = height.div_ceil(2);
    let mut frame = Vec::new();
    pattern::frame_bytes(frame_id, stride * height + stride * rows, &mut frame);
    let (y_plane, uv_plane) = frame.split_at(stride * height);
    let y = y_plane
        .chunks(stride)
        .flat_map(|row| &row[..width])
        .copied()
        .collect();
    let uv_width = 2 * width.div_ceil(2);
    let uv = uv_plane
        .chunks(stride)
        .flat_map(|row| &row[..uv_width])
        .copied()
        .collect();
    (y, uv)
}

#[test]
fn python_reads_what_rust_wrote() {
    if !Path::new(PYTHON).exists() || !numpy_available() {
        println!("SKIPPED python_reads_what_rust_wrote: {PYTHON} with numpy is not installed (apt-get install python3-numpy)");
        return;
    }
    let root = TestRoot::new("python");
    let out = TestRoot::new("python-out");
    let mut even = SlotWriter::create(root.path(), "even", &WriterOptions::new(64, 48)).unwrap();
    let mut odd = SlotWriter::create(root.path(), "odd", &WriterOptions::new(33, 17)).unwrap();
    assert_eq!(publish(&mut even), 1);
    assert_eq!(publish(&mut odd), 1);
    assert_eq!(publish(&mut odd), 2);

    // Broken exports Python must refuse: garbage, a newer layout version, a truncated header.
    let meta = std::fs::read(even.dir().join("frame.meta")).unwrap();
    let mut newer = meta.clone();
    newer[8..12].copy_from_slice(&2u32.to_le_bytes());
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (camera, bytes) in [
        ("garbage", &garbage[..]),
        ("newer", &newer[..]),
        ("truncated", &meta[..200]),
    ] {
        std::fs::create_dir_all(root.path().join(camera)).unwrap();
        std::fs::write(root.path().join(camera).join("frame.meta"), bytes).unwrap();
    }

    let python_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python");
    let mut child = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .arg(root.path())
        .arg(out.path())
        .env("PYTHONPATH", python_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python3");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || {
        let line = lines.next().expect("python printed a line").unwrap();
        println!("python: {line}");
        line
    };
    // (line python prints, in order)
    for expected in [
        "read even frame_id=1 pts_ns=1000 key_frame=True discontinuity=False y=(48, 64) uv=(24, 32, 2) dtype=uint8",
        "wrong-sequence None",
        "wrong-generation None",
        "stale False",
        "read odd frame_id=2 pts_ns=2000 key_frame=False discontinuity=False y=(17, 33) uv=(9, 17, 2) dtype=uint8",
        "wrong-sequence None",
        "wrong-generation None",
        "stale False",
        "garbage CorruptExport",
        "newer UnsupportedVersion",
        "truncated CorruptExport",
        "waiting futex",
    ] {
        assert_eq!(next(), expected);
    }
    publish(&mut even);
    assert_eq!(next(), "woke futex True latest=2");
    assert_eq!(next(), "waiting poll");
    publish(&mut even);
    assert_eq!(next(), "woke poll True latest=3");
    assert_eq!(next(), "timeout None");
    assert_eq!(next(), "drop now");
    drop(even);
    stdin.write_all(b"dropped\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(next(), "stale True");
    assert_eq!(
        next(),
        format!(
            "no-export no export for camera 'even' under {}: is vasd running with export enabled for it?",
            root.path().display()
        )
    );
    assert!(child.wait().unwrap().success());

    for (camera, id, (w, h)) in [("even", 1, (64, 48)), ("odd", 2, (33, 17))] {
        let (y, uv) = expected_planes(id, w, h);
        let got_y = std::fs::read(out.path().join(format!("{camera}.y"))).unwrap();
        let got_uv = std::fs::read(out.path().join(format!("{camera}.uv"))).unwrap();
        assert!(got_y == y, "{camera}: Y plane differs");
        assert!(got_uv == uv, "{camera}: UV plane differs");
    }
}
