//! Recording against the real RTSP fixture, checked with ffprobe/ffmpeg: segments, cuts,
//! crash safety, reconnects, retention, a full disk and a slow one.

mod daemon;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use daemon::Vasd;
use serde_json::Value;
use support::{parts, segments, wait_until, RtspServer};

const T: Duration = Duration::from_secs(60);

/// A recorded camera with fast reconnects; `extra` adds keys to its table.
fn recorded(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\nrecord = true\n{extra}\n\
         reconnect = {{ min_delay_ms = 200, max_delay_ms = 1000, io_timeout_ms = 3000 }}\n"
    )
}

fn record_section(dir: &Path, segment_seconds: u32) -> String {
    format!(
        "[record]\ndir = \"{}\"\nsegment_seconds = {segment_seconds}\n",
        dir.display()
    )
}

struct Probe {
    codec: String,
    width: u64,
    height: u64,
    frames: u64,
    duration_s: f64,
    first_is_key: bool,
}

/// Decodes the whole file: frame count, geometry, duration, and whether decoding was clean.
fn probe(file: &Path) -> Probe {
    let v = support::ffprobe_clean(
        file,
        &["-count_frames", "-select_streams", "v:0"],
        "stream=codec_name,width,height,nb_read_frames:format=duration",
    );
    let s = &v["streams"][0];
    Probe {
        codec: s["codec_name"].as_str().unwrap_or("").into(),
        width: s["width"].as_u64().unwrap_or(0),
        height: s["height"].as_u64().unwrap_or(0),
        frames: s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        duration_s: v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        // The first sample is a sync sample (flags "K_"). Asking for the first decoded frame
        // instead was flaky: with one packet read, ffprobe does not always get a frame out of
        // a decoder with reordering delay. That every sample decodes is -count_frames above.
        first_is_key: support::first_video_packet_is_key(file),
    }
}

#[test]
fn segments_are_cut_on_key_frames_and_play_back_to_back() {
    let server = RtspServer::start(&[("c", "cam720.mp4")]);
    let dir = tempfile::tempdir().unwrap();
    let v = Vasd::start(&(record_section(dir.path(), 3) + &recorded("c", &server.url("c"), "")));
    wait_until(T, "four segments closed", || {
        segments(dir.path(), "c").len() >= 4
    });
    let segs = segments(dir.path(), "c");
    let mut total_frames = 0;
    for seg in &segs[..4] {
        let p = probe(seg);
        assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 1280, 720));
        assert!(
            p.first_is_key,
            "{} does not start on a key frame",
            seg.display()
        );
        // Cut on the first key frame at or after 3 s; the GOP is 1 s (30 frames at 30 fps).
        // The first segment may start mid-stream, so allow one GOP either way.
        assert!(
            (2.0..=4.05).contains(&p.duration_s),
            "{}: {} s",
            seg.display(),
            p.duration_s
        );
        assert!(
            (60..=121).contains(&p.frames),
            "{}: {} frames",
            seg.display(),
            p.frames
        );
        total_frames += p.frames;
    }
    // Back to back: concatenated, they decode cleanly with every frame of each, and time
    // runs on without a jump (a lost or duplicated GOP would show as a duration mismatch).
    let list = dir.path().join("list.txt");
    let lines: String = segs[..4]
        .iter()
        .map(|s| format!("file '{}'\n", s.display()))
        .collect();
    std::fs::write(&list, lines).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-f", "concat", "-safe", "0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&list)
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let concat_frames: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(concat_frames, total_frames);
    let c = v.camera("c").unwrap();
    assert!(c["record"]["segments"].as_u64().unwrap() >= 4, "{c}");
    assert_eq!(c["record"]["write_errors"], 0, "{c}");
}

#[test]
fn a_sigkilled_daemon_leaves_a_playable_segment() {
    let server = RtspServer::start(&[("c", "cam720.mp4")]);
    let dir = tempfile::tempdir().unwrap();
    let mut v =
        Vasd::start(&(record_section(dir.path(), 600) + &recorded("c", &server.url("c"), "")));
    // Wait until the open segment holds several fragments (one per 1 s GOP).
    wait_until(T, "an open segment with data", || {
        parts(dir.path(), "c")
            .first()
            .is_some_and(|p| std::fs::metadata(p).map_or(0, |m| m.len()) > 1_000_000)
    });
    v.signal(libc::SIGKILL);
    wait_until(T, "vasd is gone", || v.has_exited());
    let part = parts(dir.path(), "c").remove(0);
    let p = probe(&part);
    assert_eq!((p.codec.as_str(), p.width), ("h264", 1280));
    assert!(p.frames >= 60, "{} frames", p.frames);
    assert!(p.first_is_key);

    // The next start gives it its final name, playable as any other segment.
    let v = Vasd::start(&(record_section(dir.path(), 600) + &recorded("c", &server.url("c"), "")));
    wait_until(T, "the crashed segment is renamed", || {
        segments(dir.path(), "c").len() == 1
    });
    assert!(v.log().contains("recovered 1 segment(s)"), "{}", v.log());
    assert_eq!(probe(&segments(dir.path(), "c")[0]).frames, p.frames);
}

#[test]
fn a_reconnect_starts_a_new_segment() {
    let server = RtspServer::start(&[("c", "cam720.mp4")]);
    let dir = tempfile::tempdir().unwrap();
    let v = Vasd::start(&(record_section(dir.path(), 600) + &recorded("c", &server.url("c"), "")));
    wait_until(T, "recording", || {
        v.camera("c")
            .is_some_and(|c| c["record"]["state"] == "recording")
    });
    // Let the segment grow for 3 s of real time (the server may send its first second in a
    // burst, so packet counts say little about the time recorded).
    std::thread::sleep(Duration::from_secs(3));
    server.drop_clients();
    wait_until(T, "the first segment is closed at the reconnect", || {
        segments(dir.path(), "c").len() == 1
    });
    wait_until(T, "a second segment is being written", || {
        !parts(dir.path(), "c").is_empty()
            && v.camera("c").unwrap()["reconnects"].as_u64() >= Some(1)
    });
    // At least the 3 s streamed minus the wait for the first key frame (1 s GOP).
    let first = probe(&segments(dir.path(), "c")[0]);
    assert!(first.frames >= 60, "{} frames", first.frames);
    assert!(first.first_is_key);
}

#[test]
fn retention_deletes_the_oldest_segments() {
    let server = RtspServer::start(&[("c", "cam720.mp4")]);
    let dir = tempfile::tempdir().unwrap();
    // An old segment (by its name) that keep_days must remove, and a file that is not a
    // segment that must stay.
    let old_day = dir.path().join("c/2020-01-01");
    std::fs::create_dir_all(&old_day).unwrap();
    std::fs::write(old_day.join("00-00-00.mp4"), b"old").unwrap();
    std::fs::write(dir.path().join("c/notes.txt"), b"keep me").unwrap();
    // 2 s segments of a 2 Mbit/s stream are about 0.5 MB: 1.2 MB keeps two or three.
    let v = Vasd::start(
        &(record_section(dir.path(), 2)
            + &recorded(
                "c",
                &server.url("c"),
                "keep_days = 30\nmax_bytes = \"1.2M\"",
            )),
    );
    wait_until(T, "the old segment is deleted", || {
        !old_day.join("00-00-00.mp4").exists()
    });
    assert!(!old_day.exists(), "the empty day directory stays");
    assert!(dir.path().join("c/notes.txt").exists());
    wait_until(T, "eight segments written", || {
        v.camera("c")
            .is_some_and(|c| c["record"]["segments"].as_u64() >= Some(8))
    });
    // The janitor runs on its own thread after each close: give it a moment to catch up.
    let kept_bytes = |kept: &[PathBuf]| -> u64 {
        kept.iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    };
    wait_until(T, "retention brings the segments under max_bytes", || {
        kept_bytes(&segments(dir.path(), "c")) <= 1_258_291
    });
    let kept = segments(dir.path(), "c");
    assert!(kept.len() < 8, "{kept:?}");
    // What is left is the newest: the janitor deletes oldest first.
    let newest_written = v.camera("c").unwrap()["record"]["segments"]
        .as_u64()
        .unwrap();
    assert!(newest_written as usize > kept.len());
    // The recordings index follows the janitor: it lists what is on disk, nothing deleted.
    let names = |files: Vec<PathBuf>| -> Vec<String> {
        let mut n: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    let listed = || -> Vec<String> {
        let body = v.get("/api/recordings/c?segments=1").unwrap_or_default();
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let mut n: Vec<String> = value["segments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["recording"] == false)
            .filter_map(|s| Some(s["file"].as_str()?.rsplit('/').next()?.to_string()))
            .collect();
        n.sort();
        n
    };
    wait_until(T, "the index lists exactly the segments on disk", || {
        let on_disk = names(segments(dir.path(), "c"));
        !on_disk.is_empty() && listed() == on_disk
    });
}

/// Mounts a tmpfs of `mib` MiB at a new temporary directory (needs root).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u32) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount tmpfs failed");
        Some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A full disk: the camera's recording pauses with a clear error, its ingest and frame export
/// go on, another camera goes on, and recording resumes on its own once space is back.
#[test]
fn a_full_disk_pauses_recording_and_nothing_else() {
    let Some(small) = Tmpfs::mount(3) else { return };
    let server = RtspServer::start(&[("a", "cam720.mp4"), ("b", "cam480_yuvj.mp4")]);
    let shm = tempfile::tempdir().unwrap();
    let body = format!(
        "{}[export]\nenabled = true\nshm_dir = \"{}\"\n{}[[camera]]\nid = \"b\"\nurl = \"{}\"\n",
        record_section(small.dir.path(), 2),
        shm.path().display(),
        recorded("a", &server.url("a"), ""),
        server.url("b"),
    );
    let v = Vasd::start(&body);
    wait_until(T, "a hits the full disk", || {
        v.camera("a")
            .is_some_and(|c| c["record"]["state"] == "disk_error")
    });
    let a = v.camera("a").unwrap();
    assert!(a["record"]["write_errors"].as_u64().unwrap() >= 1, "{a}");
    assert!(
        a["record"]["last_error"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{a}"
    );
    // Ingest and export of both cameras go on while a's recording is paused.
    let before: Vec<(u64, u64)> = ["a", "b"]
        .iter()
        .map(|id| {
            let c = v.camera(id).unwrap();
            (
                c["packets"].as_u64().unwrap(),
                c["export"]["frames_exported"].as_u64().unwrap(),
            )
        })
        .collect();
    wait_until(T, "both keep streaming and exporting", || {
        ["a", "b"].iter().zip(&before).all(|(id, (p, f))| {
            let c = v.camera(id).unwrap();
            c["state"] == "streaming"
                && c["packets"].as_u64().unwrap() > p + 60
                && c["export"]["frames_exported"].as_u64().unwrap() > f + 60
        })
    });

    // Space comes back: recording resumes on its own at a key frame.
    for seg in segments(small.dir.path(), "a") {
        std::fs::remove_file(seg).unwrap();
    }
    let written = v.camera("a").unwrap()["record"]["segments"]
        .as_u64()
        .unwrap();
    wait_until(T, "a records again", || {
        v.camera("a").is_some_and(|c| {
            c["record"]["state"] == "recording"
                && c["record"]["segments"].as_u64().unwrap() > written
        })
    });
    for seg in segments(small.dir.path(), "a") {
        let p = probe(&seg);
        if !p.first_is_key {
            // Kept for a post-mortem: the tmpfs goes with the test.
            let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failed-segments");
            let _ = std::fs::create_dir_all(&keep);
            let kept = keep.join(seg.file_name().unwrap());
            let _ = std::fs::copy(&seg, &kept);
            panic!(
                "{} ({} bytes, {} frames) does not start on a key frame (copied to {})\n{}",
                seg.display(),
                std::fs::metadata(&seg).map_or(0, |m| m.len()),
                p.frames,
                kept.display(),
                v.log()
            );
        }
    }
}

/// A disk too slow for the stream (simulated by a test hook that delays every write): the
/// queue overflows, the camera drops units without slowing down, and the recorder cuts its
/// segments and resumes at key frames, so every file still plays from its start.
#[test]
fn a_slow_disk_never_slows_the_camera() {
    let server = RtspServer::start(&[("c", "cam720.mp4")]);
    let dir = tempfile::tempdir().unwrap();
    let body =
        record_section(dir.path(), 2) + "queue_units = 16\n" + &recorded("c", &server.url("c"), "");
    let v = Vasd::start_with_env(&body, &[("VAS_TEST_RECORD_DELAY_MS", "60")]);
    wait_until(T, "the queue overflows and segments are cut", || {
        v.camera("c").is_some_and(|c| {
            c["record"]["overflow_cuts"].as_u64() >= Some(2)
                && c["record"]["queue_dropped"].as_u64() > Some(0)
        })
    });
    // Drops at the queue are the proof the camera thread never waited for the recorder: a
    // blocking hand-off would have slowed the camera to the recorder's pace and dropped none.
    let c = v.camera("c").unwrap();
    assert!(c["queues"]["record"]["dropped"].as_u64() > Some(0), "{c}");
    assert_eq!(c["state"], "streaming", "{c}");
    assert_eq!(
        c["reconnects"], 0,
        "the camera fell behind and was reconnected: {c}"
    );
    wait_until(T, "two segments closed", || {
        segments(dir.path(), "c").len() >= 2
    });
    for seg in segments(dir.path(), "c") {
        let p = probe(&seg);
        assert!(
            p.first_is_key,
            "{} does not start on a key frame",
            seg.display()
        );
    }
}
