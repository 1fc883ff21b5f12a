//! The frame export of the real vasd against the real RTSP fixture: zero cost when off, exact
//! pixels when on, readers that cannot hurt it, a full /dev/shm, geometry changes, restarts.

mod daemon;
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use daemon::Vasd;
use frames::ExportReader;
use support::{media_dir, wait_until, RtspServer};

const T: Duration = Duration::from_secs(60);

fn camera(id: &str, url: &str) -> String {
    daemon::camera(id, url)
}

fn export_on(shm: &Path) -> String {
    format!(
        "[export]\nenabled = true\nshm_dir = \"{}\"\n",
        shm.display()
    )
}

fn exported(v: &Vasd, id: &str) -> u64 {
    v.camera(id)
        .and_then(|c| c["export"]["frames_exported"].as_u64())
        .unwrap_or(0)
}

fn threads_named(v: &Vasd, name: &str) -> usize {
    v.thread_names().iter().filter(|n| *n == name).count()
}

/// Invariant 3: with the export off nothing is decoded, no frame memory exists, no shared
/// memory is created. And with it on, decoding stays on the camera's own thread (FFmpeg's
/// threads would carry the creator's name).
#[test]
fn export_off_decodes_nothing_and_creates_nothing() {
    let server = RtspServer::start(&[("a", "cam720.mp4"), ("b", "cam480_yuvj.mp4")]);
    let shm = tempfile::tempdir().unwrap();
    let body = format!(
        "[export]\nenabled = false\nshm_dir = \"{}\"\n{}{}",
        shm.path().display(),
        camera("a", &server.url("a")),
        camera("b", &server.url("b"))
    );
    let v = Vasd::start(&body);
    for id in ["a", "b"] {
        wait_until(T, "streaming", || v.packets(id) > 60);
        assert!(v.camera(id).unwrap()["export"].is_null());
        assert_eq!(threads_named(&v, &format!("cam-{id}")), 1);
    }
    assert_eq!(std::fs::read_dir(shm.path()).unwrap().count(), 0);
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", v.pid())).unwrap();
    assert!(
        !maps.contains("frame.data") && !maps.contains("/dev/shm"),
        "{maps}"
    );
    drop(v);

    // The same cameras with the environment switch on: frames flow, one thread each.
    let v = Vasd::start_with_env(&body, &[("AI_FRAME_EXPORT_ENABLED", "true")]);
    for id in ["a", "b"] {
        wait_until(T, "frames exported", || exported(&v, id) > 30);
        assert_eq!(
            threads_named(&v, &format!("cam-{id}")),
            1,
            "{:?}",
            v.thread_names()
        );
        assert!(shm.path().join(id).join("frame.data").exists());
    }
}

/// NV12 frames of `file` decoded by the ffmpeg CLI, as a set of hashes of the visible bytes.
/// Full-range input is decoded to its native planar format and interleaved here: the CLI's
/// conversion to nv12 would also convert the range, which vasd deliberately does not.
fn source_frame_hashes(file: &Path, width: usize, height: usize, native: bool) -> HashSet<u64> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-nostdin", "-i"]).arg(file);
    if native {
        cmd.args(["-f", "rawvideo", "-"]);
    } else {
        cmd.args(["-pix_fmt", "nv12", "-f", "rawvideo", "-"]);
    }
    let out = cmd.output().expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame = width * height * 3 / 2;
    out.stdout
        .chunks_exact(frame)
        .map(|f| {
            if !native {
                return hash(f);
            }
            let (y, chroma) = f.split_at(width * height);
            let (u, v) = chroma.split_at(width * height / 4);
            let mut nv12 = y.to_vec();
            for (u, v) in u.iter().zip(v) {
                nv12.push(*u);
                nv12.push(*v);
            }
            hash(&nv12)
        })
        .collect()
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The latest exported frame of `camera`, visible bytes only (strides removed).
fn latest_frame(reader: &ExportReader) -> Option<(u32, u32, Vec<u8>)> {
    let slot = reader.latest()?;
    let mut data = Vec::new();
    let meta = reader
        .read_slot_into(slot.slot, slot.sequence, &mut data)
        .ok()?;
    let (w, h) = (meta.width as usize, meta.height as usize);
    let (y, uv) = meta.planes(&data);
    let mut visible = Vec::with_capacity(w * h * 3 / 2);
    for row in 0..h {
        visible.extend_from_slice(&y[row * meta.stride_y as usize..][..w]);
    }
    for row in 0..h / 2 {
        visible.extend_from_slice(&uv[row * meta.stride_uv as usize..][..w]);
    }
    Some((meta.width, meta.height, visible))
}

/// The pixels a reader gets are exactly the decoder's: compared byte for byte with the
/// ffmpeg CLI's decode of the file the camera serves, limited and full range.
#[test]
fn exported_pixels_equal_the_source() {
    let server = RtspServer::start(&[
        ("lim", "cam720.mp4"),
        ("full", "cam480_yuvj.mp4"),
        ("h265", "cam_h265.mp4"),
    ]);
    let shm = tempfile::tempdir().unwrap();
    let v = Vasd::start(
        &(export_on(shm.path())
            + &camera("lim", &server.url("lim"))
            + &camera("full", &server.url("full"))
            + &camera("h265", &server.url("h265"))),
    );
    // (camera, file, width, height, full range)
    let table = [
        ("lim", "cam720.mp4", 1280, 720, false),
        ("full", "cam480_yuvj.mp4", 640, 480, true),
        ("h265", "cam_h265.mp4", 640, 360, false),
    ];
    for (id, file, w, h, full) in table {
        wait_until(T, "frames exported", || exported(&v, id) > 10);
        let source = source_frame_hashes(&media_dir().join(file), w, h, full);
        let reader = ExportReader::attach(shm.path(), id).unwrap();
        let mut matched = 0;
        for _ in 0..5 {
            let (fw, fh, frame) = latest_frame(&reader).expect("a frame");
            assert_eq!((fw, fh), (w as u32, h as u32));
            if source.contains(&hash(&frame)) {
                matched += 1;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        assert_eq!(matched, 5, "{id}: exported frames differ from the source");
    }
}

/// A reader process in Python: `mode` is "copy" (reads every frame in a loop) or "hold"
/// (attaches and never reads).
fn python_reader(shm: &Path, camera: &str, mode: &str) -> Child {
    let script = r#"
import sys, time
from vas_frames import ExportReader
root, cam, mode = sys.argv[1:4]
r = ExportReader(root, cam)
print("attached", flush=True)
while True:
    if mode == "hold":
        time.sleep(3600)
    ref = r.latest()
    if ref is not None:
        r.read(ref.slot, ref.sequence)
"#;
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(shm)
        .arg(camera)
        .arg(mode)
        .env("PYTHONPATH", python)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "attached");
    child
}

/// Invariants 4 and 5: readers that are killed mid-copy, stopped while holding the mapping,
/// or that map and never read cannot affect vasd: it keeps decoding and publishing every
/// frame, and a well-behaved reader beside them keeps reading whole frames.
#[test]
fn misbehaving_readers_cannot_affect_vasd() {
    let server = RtspServer::start(&[("c", "cam720.mp4")]);
    let shm = tempfile::tempdir().unwrap();
    let v = Vasd::start(&(export_on(shm.path()) + &camera("c", &server.url("c"))));
    wait_until(T, "frames exported", || exported(&v, "c") > 30);

    let mut killed = python_reader(shm.path(), "c", "copy");
    let mut stopped = python_reader(shm.path(), "c", "copy");
    let mut holder = python_reader(shm.path(), "c", "hold");
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signals to child processes we spawned and still own.
    unsafe {
        libc::kill(killed.id() as i32, libc::SIGKILL);
        libc::kill(stopped.id() as i32, libc::SIGSTOP);
    }
    let _ = killed.wait();

    // Every decoded frame is still published, with no decode error, no reconnect.
    let before = v.camera("c").unwrap();
    let (d0, e0) = (
        before["export"]["frames_decoded"].as_u64().unwrap(),
        before["export"]["frames_exported"].as_u64().unwrap(),
    );
    wait_until(T, "150 more frames (5 s of video)", || {
        exported(&v, "c") > e0 + 150
    });
    let c = v.camera("c").unwrap();
    let decoded = c["export"]["frames_decoded"].as_u64().unwrap() - d0;
    let published = c["export"]["frames_exported"].as_u64().unwrap() - e0;
    assert!(
        published + 2 >= decoded,
        "decoded {decoded}, published {published}"
    );
    assert_eq!(c["export"]["decode_errors"], 0, "{c}");
    assert_eq!(c["reconnects"], 0, "{c}");

    // A reader beside them reads whole, fresh frames.
    let reader = ExportReader::attach(shm.path(), "c").unwrap();
    let mut good = 0;
    for _ in 0..20 {
        if latest_frame(&reader).is_some() {
            good += 1;
        }
    }
    assert!(good >= 15, "only {good} of 20 reads succeeded");

    // SAFETY: as above.
    unsafe { libc::kill(stopped.id() as i32, libc::SIGKILL) };
    let _ = stopped.wait();
    let _ = holder.kill();
    let _ = holder.wait();
}

/// Mounts a tmpfs of `kib` KiB (needs root); `None` with a message otherwise.
fn small_tmpfs(kib: u32) -> Option<tempfile::TempDir> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mount tmpfs failed");
    Some(dir)
}

/// A /dev/shm too small: the export of the camera that does not fit is refused with the sizes
/// and the fix, never a SIGBUS; its ingest goes on, and a camera that fits exports.
#[test]
fn a_full_shm_refuses_only_the_camera_that_does_not_fit() {
    // 640x480 NV12 with 4 slots needs about 1.8 MiB; 1280x720 about 5.3 MiB.
    let Some(shm) = small_tmpfs(3 * 1024) else {
        return;
    };
    let server = RtspServer::start(&[("big", "cam720.mp4"), ("small", "cam480_yuvj.mp4")]);
    let v = Vasd::start(
        &(export_on(shm.path())
            + &camera("big", &server.url("big"))
            + &camera("small", &server.url("small"))),
    );
    wait_until(T, "big's export is refused", || {
        v.camera("big")
            .is_some_and(|c| c["export"]["error"].is_string())
    });
    let err = v.camera("big").unwrap()["export"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("free") && err.contains("needs"), "{err}");
    wait_until(T, "small exports", || exported(&v, "small") > 30);
    let p = v.packets("big");
    wait_until(T, "big keeps streaming", || v.packets("big") > p + 60);
    assert_eq!(exported(&v, "big"), 0);
    assert!(v.log().contains("export refused"), "{}", v.log());
    let _ = Command::new("umount").arg("-l").arg(shm.path()).status();
}

/// A camera that comes back with another resolution: the ring gets a new generation with the
/// new geometry, and an attached reader sees its export go stale and re-attaches.
#[test]
fn a_resolution_change_starts_a_new_generation() {
    let mut server = RtspServer::start(&[("c", "cam720.mp4")]);
    let shm = tempfile::tempdir().unwrap();
    let v = Vasd::start(&(export_on(shm.path()) + &camera("c", &server.url("c"))));
    wait_until(T, "frames exported", || exported(&v, "c") > 10);
    let old = ExportReader::attach(shm.path(), "c").unwrap();
    assert_eq!((old.info().width, old.info().height), (1280, 720));

    server.restart_with(&[("c", "cam480_yuvj.mp4")]);
    wait_until(T, "the old generation goes stale", || old.is_stale());
    wait_until(T, "a 640x480 generation", || {
        ExportReader::attach(shm.path(), "c")
            .is_ok_and(|r| (r.info().width, r.info().height) == (640, 480))
    });
    let new = ExportReader::attach(shm.path(), "c").unwrap();
    assert!(new.generation() > old.generation());
    wait_until(T, "frames of the new geometry", || {
        latest_frame(&new).is_some_and(|(w, h, _)| (w, h) == (640, 480))
    });
}

/// SIGTERM removes the export; a SIGKILL leaves it, and the next start replaces it with a new
/// generation that readers can tell from the old one.
#[test]
fn shutdown_removes_the_export_and_a_crash_leaves_it_for_the_next_start() {
    let server = RtspServer::start(&[("c", "cam480_yuvj.mp4")]);
    let shm = tempfile::tempdir().unwrap();
    let body = export_on(shm.path()) + &camera("c", &server.url("c"));
    let meta = shm.path().join("c/frame.meta");

    let mut v = Vasd::start(&body);
    wait_until(T, "exporting", || exported(&v, "c") > 10);
    let (_, status) = v.terminate(Duration::from_secs(10));
    assert!(status.success());
    assert!(!meta.exists(), "a clean stop leaves {}", meta.display());

    let mut v = Vasd::start(&body);
    wait_until(T, "exporting", || exported(&v, "c") > 10);
    let crashed = ExportReader::attach(shm.path(), "c").unwrap();
    v.signal(libc::SIGKILL);
    wait_until(T, "vasd is gone", || v.has_exited());
    assert!(meta.exists());
    wait_until(T, "the reader sees the writer gone", || crashed.is_stale());

    let v = Vasd::start(&body);
    wait_until(T, "exporting again", || exported(&v, "c") > 10);
    let fresh = ExportReader::attach(shm.path(), "c").unwrap();
    assert!(fresh.generation() > crashed.generation());
    assert!(latest_frame(&fresh).is_some());
}

/// `export_decode = "key_frames"`: only key frames reach the decoder and the ring. The
/// decoder's output count equals the key frames received (a P-frame decoded would make it
/// 30 times larger with this 1 s GOP at 30 fps), and every frame a reader sees is a key frame
/// with frame ids one apart. And `export_threads` gives the decoder frame threads, which
/// carry the camera thread's name.
#[test]
fn key_frame_mode_decodes_only_key_frames_and_decoder_threads_work() {
    let server = RtspServer::start(&[("gop", "cam720.mp4")]);
    let shm = tempfile::tempdir().unwrap();
    let v = Vasd::start(
        &(export_on(shm.path())
            + &camera("gop", &server.url("gop"))
            + "export_decode = \"key_frames\"\n"
            + &camera("threads", &server.url("gop"))
            + "export_threads = 3\n"),
    );
    wait_until(T, "frames exported with three decoder threads", || {
        exported(&v, "threads") > 30
    });
    assert!(
        threads_named(&v, "cam-threads") > 1,
        "no decoder threads: {:?}",
        v.thread_names()
    );
    assert_eq!(threads_named(&v, "cam-gop"), 1, "{:?}", v.thread_names());
    wait_until(T, "five key frames exported", || exported(&v, "gop") >= 5);
    let reader = ExportReader::attach(shm.path(), "gop").unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        if let Some(slot) = reader.latest() {
            let mut data = Vec::new();
            if let Ok(meta) = reader.read_slot_into(slot.slot, slot.sequence, &mut data) {
                if seen.last() != Some(&(meta.frame_id, meta.key_frame)) {
                    seen.push((meta.frame_id, meta.key_frame));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen.iter().all(|&(_, key)| key),
        "a non-key frame: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "frames between key frames were exported: {seen:?}"
    );
    let cam = v.camera("gop").unwrap();
    let (decoded, keys) = (
        cam["export"]["frames_decoded"].as_u64().unwrap(),
        cam["key_frames"].as_u64().unwrap(),
    );
    // The last key frame may be received and not yet decoded when status is read.
    assert!(
        decoded <= keys && decoded + 1 >= keys,
        "decoded {decoded} frames for {keys} key frames: {cam}"
    );
    assert!(cam["packets"].as_u64().unwrap() > 4 * keys, "{cam}");
}
