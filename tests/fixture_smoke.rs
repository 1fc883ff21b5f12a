//! Proves the test fixtures themselves, with real ffmpeg/ffprobe clients:
//! the RTSP server serves what it claims, loops without time going backwards,
//! and its fault switches (drop clients, stall, kill, restart) do what the
//! ingest tests rely on.

mod support;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::{
    closed_port, ffprobe_streams, run_with_timeout, wait_until, Background, GarbageMode,
    GarbageServer, RtspServer,
};

fn probe(server: &RtspServer, mount: &str) -> String {
    ffprobe_streams(&server.url(mount))
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()))
}

/// Last `frame=N` of an ffmpeg progress report.
fn last_frame_count(ffmpeg_stderr: &str) -> Option<u64> {
    let tail = &ffmpeg_stderr[ffmpeg_stderr.rfind("frame=")? + "frame=".len()..];
    tail.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn serves_each_mount_with_its_codec_and_geometry() {
    let server = RtspServer::start_with_live(
        &[
            ("cam720", "cam720.mp4"),
            ("cam1080", "cam1080.mp4"),
            ("audio", "audio_only.mp4"),
        ],
        &[("synth", "320x240@10")],
    );
    // mount      codec   width  height
    let table = [
        ("cam720", "h264", 1280, 720),
        ("cam1080", "h264", 1920, 1080),
        ("synth", "h264", 320, 240),
    ];
    for (mount, codec, width, height) in table {
        let json = probe(&server, mount);
        for want in [
            format!("\"codec_name\": \"{codec}\""),
            format!("\"width\": {width}"),
            format!("\"height\": {height}"),
        ] {
            assert!(json.contains(&want), "{mount}: no {want} in {json}");
        }
    }
    let audio = probe(&server, "audio");
    assert!(audio.contains("\"codec_name\": \"aac\""), "audio: {audio}");
    assert!(
        !audio.contains("\"video\""),
        "audio mount has video: {audio}"
    );
}

#[test]
fn delivers_frames_in_real_time() {
    let server = RtspServer::start(&[("cam720", "cam720.mp4")]);
    let done = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-nostdin", "-nostats", "-rtsp_transport", "tcp"])
            .args([
                "-timeout",
                "5000000",
                "-i",
                &server.url("cam720"),
                "-t",
                "3",
                "-c",
                "copy",
                "-f",
                "null",
                "-",
            ]),
        Duration::from_secs(20),
    );
    assert!(
        done.status.is_some_and(|s| s.success()),
        "ffmpeg: {}",
        done.stderr
    );
    // 3 s at 30 fps is 90 frames; the first key frame may cost up to 29.
    let frames = last_frame_count(&done.stderr).unwrap_or(0);
    assert!(frames > 60, "only {frames} frames in 3 s:\n{}", done.stderr);
}

#[test]
fn timestamps_stay_monotonic_across_the_loop_point() {
    // The file is 10 s long; reading 11 s crosses one loop. B-frames make PTS
    // non-monotonic in decode order, so DTS must rise and PTS must not repeat.
    let server = RtspServer::start(&[("cam", "cam1080_bframes.mp4")]);
    let done = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp"])
            .args([
                "-timeout",
                "5000000",
                "-read_intervals",
                "%+11",
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=pts,dts",
                "-of",
                "csv=p=0",
                &server.url("cam"),
            ]),
        Duration::from_secs(30),
    );
    assert!(
        done.status.is_some_and(|s| s.success()),
        "ffprobe: {}",
        done.stderr
    );
    let mut dts_seen = Vec::new();
    let mut pts_seen = Vec::new();
    for line in done.stdout.lines() {
        let mut fields = line.split(',').map(|f| f.trim().parse::<i64>().ok());
        let (pts, dts) = (fields.next().flatten(), fields.next().flatten());
        pts_seen.extend(pts);
        dts_seen.extend(dts);
    }
    assert!(
        dts_seen.len() > 250,
        "only {} packets in 11 s",
        dts_seen.len()
    );
    for pair in dts_seen.windows(2) {
        assert!(
            pair[1] > pair[0],
            "DTS went from {} to {}",
            pair[0],
            pair[1]
        );
    }
    let span_90khz = dts_seen[dts_seen.len() - 1] - dts_seen[0];
    assert!(
        span_90khz > 10 * 90_000,
        "did not cross the loop point: {span_90khz}"
    );
    pts_seen.sort_unstable();
    let before = pts_seen.len();
    pts_seen.dedup();
    assert_eq!(before, pts_seen.len(), "repeated PTS");
}

#[test]
fn drop_clients_disconnects_a_reader_and_keeps_serving() {
    let server = RtspServer::start(&[("cam", "cam720.mp4")]);
    let mut reader = Background::spawn(
        Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-rtsp_transport",
                "tcp",
                "-timeout",
                "5000000",
                "-i",
            ])
            .arg(server.url("cam"))
            .args(["-c", "copy", "-f", "null", "-"]),
    );
    // The progress report appears once packets flow.
    wait_until(Duration::from_secs(15), "ffmpeg to receive frames", || {
        reader.stderr().contains("frame=") || reader.exited().is_some()
    });
    assert!(
        reader.exited().is_none(),
        "ffmpeg ended early: {}",
        reader.stderr()
    );

    server.drop_clients();
    wait_until(
        Duration::from_secs(10),
        "ffmpeg to see the disconnect",
        || reader.exited().is_some(),
    );
    assert!(
        server.log().contains("dropping all clients"),
        "{}",
        server.log()
    );
    probe(&server, "cam");
}

#[test]
fn stalls_resumes_and_restarts_on_the_same_port() {
    let mut server = RtspServer::start(&[("cam", "cam720.mp4")]);
    let url = server.url("cam");
    let short_probe = || {
        run_with_timeout(
            Command::new("ffprobe")
                .args(["-v", "error", "-rtsp_transport", "tcp"])
                .args([
                    "-timeout",
                    "2000000",
                    "-show_entries",
                    "stream=codec_name",
                    "-of",
                    "csv=p=0",
                    &url,
                ]),
            Duration::from_secs(15),
        )
    };

    server.stall();
    let stalled = short_probe();
    assert!(
        !stalled.status.is_some_and(|s| s.success()),
        "a stalled server answered"
    );
    server.resume();
    probe(&server, "cam");

    let port = server.port();
    server.kill();
    let killed = short_probe();
    assert!(
        !killed.status.is_some_and(|s| s.success()),
        "a killed server answered"
    );
    server.restart();
    assert_eq!(server.port(), port);
    probe(&server, "cam");

    // Restart while a client is connected: the old connection's TIME_WAIT
    // must not block the bind.
    let _reader = Background::spawn(
        Command::new("ffmpeg")
            .args(["-nostdin", "-rtsp_transport", "tcp", "-i", &url])
            .args(["-c", "copy", "-f", "null", "-"]),
    );
    wait_until(Duration::from_secs(15), "the reader to connect", || {
        server.log().matches("client connected").count() >= 2
    });
    server.restart();
    probe(&server, "cam");
}

#[test]
fn garbage_and_closed_ports_misbehave_as_advertised() {
    let timeout = Some(Duration::from_secs(5));
    let mut buf = [0u8; 8192];

    let closing = GarbageServer::start(GarbageMode::Close);
    let mut conn = TcpStream::connect(("127.0.0.1", closing.port())).expect("connect");
    conn.set_read_timeout(timeout).unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read until close");
    assert_eq!(got.len(), 4096);
    assert!(!got.starts_with(b"RTSP/"));

    let open = GarbageServer::start(GarbageMode::KeepOpen);
    let mut conn = TcpStream::connect(("127.0.0.1", open.port())).expect("connect");
    conn.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut total = 0;
    let err = loop {
        match conn.read(&mut buf) {
            Ok(0) => panic!("KeepOpen closed the connection"),
            Ok(n) => total += n,
            Err(e) => break e,
        }
    };
    assert_eq!(total, 4096);
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    assert!(ffprobe_streams(&open.url("cam")).is_err());
    assert!(open.accepted() >= 2);

    let refused = TcpStream::connect(("127.0.0.1", closed_port())).expect_err("connected");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}
