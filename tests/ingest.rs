//! vasd against a real RTSP server (GStreamer's): streaming, recovery, bad sources, reload,
//! shutdown. Every wait is for a state, never a measure of speed.

mod daemon;
mod support;

use std::time::Duration;

use daemon::{camera, Vasd};
use support::{closed_port, wait_until, GarbageMode, GarbageServer, RtspServer};

const T: Duration = Duration::from_secs(30);

fn streaming_with_packets(v: &Vasd, id: &str, min: u64) -> bool {
    v.state(id) == "streaming" && v.packets(id) >= min
}

#[test]
fn several_cameras_stream_with_their_geometry() {
    let server = RtspServer::start(&[
        ("c720", "cam720.mp4"),
        ("c1080", "cam1080.mp4"),
        ("bframes", "cam1080_bframes.mp4"),
        ("yuvj", "cam480_yuvj.mp4"),
    ]);
    let cams: String = ["c720", "c1080", "bframes", "yuvj"]
        .iter()
        .map(|m| camera(m, &server.url(m)))
        .collect();
    let v = Vasd::start(&cams);
    for id in ["c720", "c1080", "bframes", "yuvj"] {
        wait_until(T, &format!("{id} streams 60 packets"), || {
            streaming_with_packets(&v, id, 60)
        });
    }
    // (camera, width, height) as the media was made
    for (id, w, h) in [
        ("c720", 1280, 720),
        ("c1080", 1920, 1080),
        ("bframes", 1920, 1080),
        ("yuvj", 640, 480),
    ] {
        let c = v.camera(id).unwrap();
        assert_eq!(c["stream"]["codec"], "h264", "{id}");
        assert_eq!(c["stream"]["width"], w, "{id}");
        assert_eq!(c["stream"]["height"], h, "{id}");
        assert!(c["key_frames"].as_u64().unwrap() >= 1, "{id}: {c}");
        assert_eq!(c["reconnects"], 0, "{id}: {c}");
    }
    let names = v.thread_names();
    for id in ["c720", "c1080", "bframes", "yuvj"] {
        assert!(names.contains(&format!("cam-{id}")), "{names:?}");
    }
    let log = v.log();
    assert!(
        log.contains("cam-c720"),
        "log lines name the camera:\n{log}"
    );
}

/// Kill, restart, stall, resume and client drops of the server: every camera comes back on
/// its own, and vasd holds no more threads or file descriptors afterwards than before.
#[test]
fn every_camera_recovers_from_server_failures_without_leaks() {
    let mut server = RtspServer::start(&[("a", "cam720.mp4"), ("b", "cam480_yuvj.mp4")]);
    let v = Vasd::start(&(camera("a", &server.url("a")) + &camera("b", &server.url("b"))));
    let both_stream = |v: &Vasd, min: [u64; 2]| {
        streaming_with_packets(v, "a", min[0]) && streaming_with_packets(v, "b", min[1])
    };
    wait_until(T, "both stream", || both_stream(&v, [30, 30]));
    let (fds, threads) = (v.fd_count(), v.thread_count());

    // 1. The server dies: both cameras leave streaming and back off.
    server.kill();
    wait_until(T, "both back off after the kill", || {
        v.state("a") == "backing_off" && v.state("b") == "backing_off"
    });
    // 2. It comes back on the same port: both recover with no help.
    server.restart();
    let p = [v.packets("a"), v.packets("b")];
    wait_until(T, "both recover after the restart", || {
        both_stream(&v, [p[0] + 30, p[1] + 30])
    });

    // 3. The server stalls (SIGSTOP): the I/O timeout ends the session as stalled.
    server.stall();
    wait_until(T, "a stall is detected", || {
        v.fault("a").as_deref() == Some("stalled") && v.fault("b").as_deref() == Some("stalled")
    });
    server.resume();
    let p = [v.packets("a"), v.packets("b")];
    wait_until(T, "both recover after the stall", || {
        both_stream(&v, [p[0] + 30, p[1] + 30])
    });

    // 4. The server drops every client.
    let reconnects = v.camera("a").unwrap()["reconnects"].as_u64().unwrap();
    server.drop_clients();
    wait_until(T, "a reconnects after the drop", || {
        v.camera("a").unwrap()["reconnects"].as_u64().unwrap() > reconnects
    });
    let p = [v.packets("a"), v.packets("b")];
    wait_until(T, "both stream after the drop", || {
        both_stream(&v, [p[0] + 30, p[1] + 30])
    });

    // No leak: same threads and descriptors as before all this (FFmpeg may still be closing
    // a socket for a moment, hence the wait).
    wait_until(T, "fds and threads back to the baseline", || {
        v.fd_count() <= fds && v.thread_count() == threads
    });
    assert!(v.camera("a").unwrap()["reconnects"].as_u64().unwrap() >= 3);
}

/// Each kind of bad source gets its own clear error state, and a good camera beside them keeps
/// streaming the whole time.
#[test]
fn bad_sources_get_clear_errors_while_the_others_stream() {
    let server = RtspServer::start(&[("good", "cam720.mp4"), ("silent", "audio_only.mp4")]);
    let garbage = GarbageServer::start(GarbageMode::Close);
    let garbage_open = GarbageServer::start(GarbageMode::KeepOpen);
    let silent = GarbageServer::start(GarbageMode::Silent);
    let api_port = daemon::free_port();
    let cams = [
        camera("good", &server.url("good")),
        camera("refused", &format!("rtsp://127.0.0.1:{}/x", closed_port())),
        camera(
            "wrongpath",
            &format!("rtsp://127.0.0.1:{}/no-such-mount", server.port()),
        ),
        // vasd's own HTTP API: a real server that does not speak RTSP.
        camera("http", &format!("rtsp://127.0.0.1:{api_port}/api")),
        camera("garbage", &format!("rtsp://127.0.0.1:{}/x", garbage.port())),
        camera("novideo", &server.url("silent")),
        camera("mute", &format!("rtsp://127.0.0.1:{}/x", silent.port())),
        camera(
            "garbage_open",
            &format!("rtsp://127.0.0.1:{}/x", garbage_open.port()),
        ),
    ]
    .concat();
    let v = Vasd::start_on_port(&cams, api_port);
    // (camera, expected fault)
    let table = [
        ("refused", "unreachable"),
        ("wrongpath", "not_found"),
        ("http", "protocol"),
        ("garbage", "protocol"),
        ("novideo", "no_video"),
        // A peer that accepts and then sends nothing valid within the I/O timeout.
        ("mute", "stalled"),
        ("garbage_open", "stalled"),
    ];
    for (id, fault) in table {
        wait_until(T, &format!("{id} reports {fault}"), || {
            v.fault(id).as_deref() == Some(fault)
        });
        let c = v.camera(id).unwrap();
        assert_ne!(c["state"], "streaming", "{id}: {c}");
        assert!(
            !c["last_error"]["message"].as_str().unwrap().is_empty(),
            "{id}: {c}"
        );
    }
    // The good camera was never disturbed: streaming, no reconnect, packets still growing.
    let p = v.packets("good");
    wait_until(T, "good keeps streaming", || {
        streaming_with_packets(&v, "good", p + 30)
    });
    assert_eq!(v.camera("good").unwrap()["reconnects"], 0);
    assert_eq!(v.camera("good").unwrap()["failures"], 0);
}

#[test]
fn sighup_starts_stops_and_restarts_only_what_changed() {
    let server = RtspServer::start(&[("m1", "cam720.mp4"), ("m2", "cam480_yuvj.mp4")]);
    let v = Vasd::start(
        &[
            camera("keep", &server.url("m1")),
            camera("change", &server.url("m1")),
            camera("remove", &server.url("m2")),
        ]
        .concat(),
    );
    for id in ["keep", "change", "remove"] {
        wait_until(T, &format!("{id} streams"), || {
            streaming_with_packets(&v, id, 10)
        });
    }
    let keep_before = v.packets("keep");

    v.write_config(
        &[
            camera("keep", &server.url("m1")),
            camera("change", &server.url("m2")),
            camera("add", &server.url("m2")),
        ]
        .concat(),
    );
    v.signal(libc::SIGHUP);
    wait_until(T, "add streams and remove is gone", || {
        streaming_with_packets(&v, "add", 10) && v.camera("remove").is_none()
    });
    wait_until(T, "change streams its new url", || {
        v.camera("change").is_some_and(|c| {
            c["url"].as_str().unwrap().ends_with("/m2") && c["state"] == "streaming"
        })
    });
    // Untouched: the same session, counters never reset, no reconnect.
    let keep = v.camera("keep").unwrap();
    assert!(keep["packets"].as_u64().unwrap() > keep_before, "{keep}");
    assert_eq!(keep["reconnects"], 0, "{keep}");
    assert_eq!(
        v.log().matches("cam-keep: starting").count(),
        1,
        "keep was restarted:\n{}",
        v.log()
    );
    assert!(!v.thread_names().contains(&"cam-remove".to_string()));

    // A broken config on SIGHUP is refused; everything keeps running.
    std::fs::write(v.config_path(), "[[camera]]\nid = \"BAD ID\"\n").unwrap();
    v.signal(libc::SIGHUP);
    wait_until(T, "the refusal is logged", || {
        v.log().contains("reload refused")
    });
    let p = v.packets("keep");
    wait_until(T, "cameras still stream", || {
        streaming_with_packets(&v, "keep", p + 10) && v.state("add") == "streaming"
    });
    assert_eq!(v.cameras().len(), 3);
}

/// A stalled camera, blocked inside FFmpeg, must not hold up shutdown: SIGTERM exits within 2 s
/// (the I/O timeout is set far longer so only the interrupt callback can end the read).
#[test]
fn sigterm_exits_within_two_seconds_with_stalled_cameras() {
    let mut server = RtspServer::start(&[("s", "cam720.mp4")]);
    let slow = |id: &str| {
        format!(
            "[[camera]]\nid = \"{id}\"\nurl = \"{}\"\nreconnect = {{ io_timeout_ms = 60000 }}\n",
            server.url("s")
        )
    };
    let mut v = Vasd::start(&(slow("one") + &slow("two")));
    wait_until(T, "both stream", || {
        streaming_with_packets(&v, "one", 10) && streaming_with_packets(&v, "two", 10)
    });
    server.stall();
    // Let both threads block in a read that would only end after 60 s.
    let p = v.packets("one");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(v.packets("one") <= p + 60, "the server is not stalled");
    let (took, status) = v.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
    server.resume();
}

/// Same with the camera stalled before it was even opened (blocked in DESCRIBE).
#[test]
fn sigterm_exits_within_two_seconds_while_opening_a_stalled_camera() {
    let mut server = RtspServer::start(&[("s", "cam720.mp4")]);
    server.stall();
    let mut v = Vasd::start(&format!(
        "[[camera]]\nid = \"opening\"\nurl = \"{}\"\nreconnect = {{ io_timeout_ms = 60000 }}\n",
        server.url("s")
    ));
    wait_until(T, "the camera is connecting", || {
        v.state("opening") == "connecting"
    });
    std::thread::sleep(Duration::from_millis(500));
    let (took, status) = v.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
    server.resume();
}

#[test]
fn credentials_never_reach_logs_or_status() {
    let server = RtspServer::start(&[("c", "cam720.mp4")]);
    let url = format!("rtsp://admin:hunter2secret@127.0.0.1:{}/c", server.port());
    let bad = format!("rtsp://admin:hunter2secret@127.0.0.1:{}/x", closed_port());
    let v = Vasd::start(&(camera("c", &url) + &camera("bad", &bad)));
    wait_until(T, "c streams", || streaming_with_packets(&v, "c", 10));
    wait_until(T, "bad fails", || v.fault("bad").is_some());
    let status = v.get("/api/cameras").unwrap();
    assert!(!status.contains("hunter2"), "{status}");
    assert!(status.contains("rtsp://***@127.0.0.1"), "{status}");
    let log = v.log();
    assert!(!log.contains("hunter2"), "{log}");
}

#[test]
fn check_config_exits_zero_or_one_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&good, camera("a", "rtsp://127.0.0.1/a")).unwrap();
    std::fs::write(
        &bad,
        "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nslots = 3\n",
    )
    .unwrap();
    let run = |file: &std::path::Path, env: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vasd"));
        cmd.arg("--check-config").arg(file);
        match env {
            Some(v) => cmd.env("AI_FRAME_EXPORT_ENABLED", v),
            None => cmd.env_remove("AI_FRAME_EXPORT_ENABLED"),
        };
        cmd.output().unwrap()
    };
    let out = run(&good, None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 camera(s), export off)"));
    let out = run(&good, Some("1"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("export on"));

    let out = run(&bad, None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4:1: camera[0].slots: unknown field `slots`"),
        "{err}"
    );

    let out = run(&good, Some("maybe"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AI_FRAME_EXPORT_ENABLED=\"maybe\""));
}

#[test]
fn a_bad_export_variable_stops_the_daemon_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vas.toml");
    std::fs::write(&cfg, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vasd"))
        .arg("--config")
        .arg(&cfg)
        .env("AI_FRAME_EXPORT_ENABLED", "yes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use true, false, 1 or 0"), "{err}");
}
