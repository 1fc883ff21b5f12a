//! The streams real cameras send, served by GStreamer's RTSP server to the real vasd: H.265,
//! H.264 with AAC and with G.711 audio, an in-band resolution change, a clock jump, video that
//! freezes while audio flows, UDP, and logins. Each kind is checked through what a user sees:
//! the recordings (ffprobe), the export, status and the log.
//!
//! One server and one daemon serve all kinds at once (starting them per kind would cost a
//! minute of CI); the login test has its own servers, since a server's login guards all of
//! its mounts.

mod daemon;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon::Vasd;
use serde_json::Value;
use support::{segments, wait_until, Netns, RtspServer};

const T: Duration = Duration::from_secs(60);

fn camera(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\nrecord = true\n{extra}\n\
         reconnect = {{ min_delay_ms = 200, max_delay_ms = 1000, io_timeout_ms = 2000 }}\n"
    )
}

fn ffprobe_json(args: &[&str], file: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One recording as a player sees it.
#[derive(Debug)]
struct Recording {
    video_codec: String,
    video_tag: String,
    /// Every decoded frame's size, once each.
    sizes: BTreeSet<(u64, u64)>,
    frames: usize,
    /// Largest step between consecutive video packet timestamps, in seconds.
    max_step_s: f64,
    audio_codec: Option<String>,
    audio_packets: usize,
    /// First audio timestamp, and the spans from first to last timestamp.
    audio_start_s: f64,
    audio_span_s: f64,
    video_span_s: f64,
}

fn recording(file: &Path) -> Recording {
    let streams = ffprobe_json(
        &[
            "-show_entries",
            "stream=codec_type,codec_name,codec_tag_string",
        ],
        file,
    );
    let streams = streams["streams"].as_array().cloned().unwrap_or_default();
    let of_type = |t: &str| streams.iter().find(|s| s["codec_type"] == t).cloned();
    let video = of_type("video").unwrap_or_else(|| panic!("{}: no video", file.display()));
    let frames = ffprobe_json(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=width,height",
        ],
        file,
    );
    let frames = frames["frames"].as_array().cloned().unwrap_or_default();
    let packets = ffprobe_json(&["-show_entries", "packet=codec_type,pts_time"], file);
    let packets = packets["packets"].as_array().cloned().unwrap_or_default();
    let times = |t: &str| -> Vec<f64> {
        packets
            .iter()
            .filter(|p| p["codec_type"] == t)
            .filter_map(|p| p["pts_time"].as_str()?.parse().ok())
            .collect()
    };
    let mut video_times = times("video");
    video_times.sort_by(f64::total_cmp);
    let audio_times = times("audio");
    let span = |t: &[f64]| t.last().zip(t.first()).map_or(0.0, |(l, f)| l - f);
    Recording {
        video_codec: video["codec_name"].as_str().unwrap_or("").into(),
        video_tag: video["codec_tag_string"].as_str().unwrap_or("").into(),
        sizes: frames
            .iter()
            .map(|f| {
                (
                    f["width"].as_u64().unwrap_or(0),
                    f["height"].as_u64().unwrap_or(0),
                )
            })
            .collect(),
        frames: frames.len(),
        max_step_s: video_times
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(0.0, f64::max),
        audio_codec: of_type("audio").and_then(|a| Some(a["codec_name"].as_str()?.to_string())),
        audio_packets: audio_times.len(),
        audio_start_s: audio_times.first().copied().unwrap_or(0.0),
        audio_span_s: span(&audio_times),
        video_span_s: span(&video_times),
    }
}

fn recordings(dir: &Path, id: &str) -> Vec<Recording> {
    segments(dir, id).iter().map(|f| recording(f)).collect()
}

fn counter(cam: &Value, key: &str) -> u64 {
    cam[key].as_u64().unwrap_or(0)
}

#[test]
fn real_camera_kinds_are_recorded_exported_and_reported() {
    let server = RtspServer::start_with_live(
        &[
            ("h265", "cam_h265.mp4"),
            ("h265_10bit", "cam_h265_10bit.mp4"),
            ("bframes", "cam1080_bframes.mp4"),
            ("aac", "cam_aac.mp4"),
            ("pcma", "cam_pcma.mkv"),
            ("jump", "cam_aac.mp4,jump=-30@6"),
        ],
        &[
            ("switch", "640x360@15,switch=320x180@4"),
            ("freeze", "320x180@15,audio=aac,freeze=4"),
        ],
    );
    let rec = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir().unwrap();
    let mut body = format!(
        "[record]\ndir = \"{}\"\nsegment_seconds = 60\n\
         [export]\nenabled = true\nshm_dir = \"{}\"\n",
        rec.path().display(),
        shm.path().display()
    );
    for id in [
        "h265",
        "h265_10bit",
        "aac",
        "pcma",
        "jump",
        "switch",
        "freeze",
    ] {
        body += &camera(id, &server.url(id), "");
    }
    body += &camera("bframes", &server.url("bframes"), "export = false");
    for transport in ["udp", "http"] {
        body += &camera(
            transport,
            &server.url("aac"),
            &format!("transport = \"{transport}\"\nexport = false"),
        );
    }
    body += &camera(
        "muted",
        &server.url("aac"),
        "record_audio = false\nexport = false",
    );
    let mut v = Vasd::start(&body);

    // Let every kind show its change: the size switches at 4 s, the clock jumps at 6 s, the
    // video freezes at 4 s and is seen stalled 2 s later.
    // On a loaded machine some cameras connect seconds after others: wait for each to have
    // streamed enough, not for a fixed time.
    wait_until(
        T,
        "the size switch, the clock jump, the stall and 4 s of every kind",
        || {
            // A status read that times out on a loaded machine shows no camera yet.
            let all = v.cameras();
            let none = Value::Null;
            let cams = |id: &str| all.get(id).unwrap_or(&none);
            let streamed = |id: &str, packets: u64| counter(cams(id), "packets") > packets;
            counter(cams("switch"), "param_changes") >= 2
                && counter(cams("jump"), "discontinuities") >= 1
                && counter(cams("freeze"), "reconnects") >= 1
                && ["aac", "pcma"]
                    .iter()
                    .all(|id| counter(cams(id), "audio_packets") > 150)
                && counter(&cams("h265")["export"], "frames_exported") > 60
                && ["h265", "h265_10bit", "bframes", "udp", "http", "muted"]
                    .iter()
                    .all(|id| streamed(id, 60))
        },
    );
    // Segments are 60 s: a clean stop closes the current ones, so everything is on disk.
    let cams = v.cameras();
    v.terminate(Duration::from_secs(10));
    let log = v.log();

    // H.265: hvc1 sample entry, decodes; exported (8-bit); the live view says why not.
    let h265 = &cams["h265"];
    assert_eq!(h265["stream"]["codec"], "h265", "{h265}");
    let recs = recordings(rec.path(), "h265");
    assert!(!recs.is_empty(), "no H.265 recording:\n{log}");
    for r in &recs {
        assert_eq!(
            (r.video_codec.as_str(), r.video_tag.as_str()),
            ("hevc", "hvc1")
        );
        assert!(r.frames > 10, "{r:?}");
        assert_eq!(r.sizes, BTreeSet::from([(640, 360)]), "{r:?}");
    }
    assert!(
        h265["export"]["frames_exported"].as_u64().unwrap_or(0) > 10,
        "H.265 export: {h265}"
    );
    let live_error = h265["live"]["error"].as_str().unwrap_or("");
    assert!(live_error.contains("H.264"), "live of H.265: {h265}");

    // H.265 Main 10: recorded as it is; the export says why it takes none of it.
    let main10 = &cams["h265_10bit"];
    let export_error = main10["export"]["error"].as_str().unwrap_or("");
    assert!(export_error.contains("10-bit"), "{main10}");
    assert_eq!(counter(&main10["export"], "frames_exported"), 0);
    let recs = recordings(rec.path(), "h265_10bit");
    assert!(recs.iter().any(|r| r.frames > 10), "Main 10: {recs:?}");
    for r in &recs {
        assert_eq!(r.video_tag, "hvc1", "{r:?}");
        assert_eq!(r.sizes, BTreeSet::from([(320, 180)]), "{r:?}");
    }

    // B-frames: every frame decodes, in one size.
    let recs = recordings(rec.path(), "bframes");
    assert!(recs.iter().any(|r| r.frames > 60), "B-frames: {recs:?}");
    for r in &recs {
        assert_eq!(r.sizes, BTreeSet::from([(1920, 1080)]), "{r:?}");
    }

    // AAC is kept; G.711 becomes AAC; record_audio = false records video only.
    for (id, codec) in [("aac", "aac"), ("pcma", "pcm_alaw")] {
        let cam = &cams[id];
        assert!(
            cam["stream"]["audio"]
                .as_str()
                .unwrap_or("")
                .starts_with(codec),
            "{id}: {cam}"
        );
        assert!(counter(cam, "audio_packets") > 50, "{id}: {cam}");
        let recs = recordings(rec.path(), id);
        assert!(!recs.is_empty(), "{id}: no recording");
        for r in &recs {
            assert_eq!(r.audio_codec.as_deref(), Some("aac"), "{id}: {r:?}");
            // Several seconds of audio: AAC frames of 1024 samples at 8 to 48 kHz.
            assert!(r.audio_packets > 20, "{id}: {r:?}");
            // Audio covers the video's span, in step with it.
            assert!(
                (r.audio_span_s - r.video_span_s).abs() < 1.0 && r.audio_start_s.abs() < 1.0,
                "{id}: audio out of step with video: {r:?}"
            );
            assert_eq!(r.video_codec, "h264");
        }
    }
    for r in recordings(rec.path(), "muted") {
        assert_eq!(r.audio_codec, None, "muted: {r:?}");
    }

    // UDP and RTSP tunnelled in HTTP record like TCP.
    for id in ["udp", "http"] {
        assert_eq!(cams[id]["stream"]["transport"], id, "{}", cams[id]);
        let recs = recordings(rec.path(), id);
        assert!(recs.iter().any(|r| r.frames > 30), "{id}: {recs:?}");
    }

    // A resolution change in band: a new segment per size, each of one size only; status
    // shows the current size.
    let recs = recordings(rec.path(), "switch");
    assert!(recs.len() >= 2, "switch: {recs:?}");
    let mut all_sizes = BTreeSet::new();
    for r in &recs {
        assert_eq!(r.sizes.len(), 1, "a segment holds two sizes: {r:?}");
        all_sizes.extend(r.sizes.iter().copied());
    }
    assert_eq!(
        all_sizes,
        BTreeSet::from([(320, 180), (640, 360)]),
        "{recs:?}"
    );

    // A clock jump: the recording is cut there, no file holds the jump.
    let recs = recordings(rec.path(), "jump");
    assert!(recs.len() >= 2, "jump: {recs:?}");
    for r in &recs {
        assert!(r.max_step_s < 1.0, "a segment holds the clock jump: {r:?}");
    }

    // Video froze while audio flowed: seen as a stall of the video.
    let freeze = &cams["freeze"];
    assert_eq!(freeze["last_error"]["fault"], "stalled", "{freeze}");
    assert!(
        freeze["last_error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("audio"),
        "{freeze}"
    );
    assert!(log.contains("new parameter sets in band"), "{log}");
}

/// Counts the logins a server refused (one line per 401 it sent).
fn refused(server: &RtspServer) -> usize {
    server.log().matches("auth refused").count()
}

#[test]
fn logins_work_and_a_wrong_password_cannot_lock_the_account() {
    let digest = RtspServer::start_with_args(
        &[("cam", "cam_aac.mp4")],
        &[],
        &["--auth", "admin:p@ss:w0rd", "--auth-method", "digest"],
    );
    let basic = RtspServer::start_with_args(
        &[("cam", "cam_aac.mp4")],
        &[],
        &["--auth", "viewer:s3cret", "--auth-method", "basic"],
    );
    // rtsps: a TLS server (self-signed: FFmpeg does not verify, as cameras' certificates are
    // self-signed too) behind a digest login.
    let tls = tempfile::tempdir().unwrap();
    let (cert, key) = (tls.path().join("c.pem"), tls.path().join("k.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let secure = RtspServer::start_with_args(
        &[("cam", "cam_aac.mp4")],
        &[],
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--auth",
            "admin:tl5",
        ],
    );
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), "s3cret\n").unwrap();
    let host = |s: &RtspServer| s.url("cam");
    // Recordings go to a temporary directory, never to the default one of the package.
    let rec = tempfile::tempdir().unwrap();
    let body = [
        format!("[record]\ndir = \"{}\"\n", rec.path().display()),
        // Separate keys; a password with '@' and ':' reaches the server intact.
        camera(
            "digest",
            &host(&digest),
            "username = \"admin\"\npassword = \"p@ss:w0rd\"",
        ),
        camera(
            "basic",
            &host(&basic),
            &format!(
                "username = \"viewer\"\npassword_file = \"{}\"",
                secret_file.path().display()
            ),
        ),
        camera(
            "wrong",
            &host(&digest),
            "username = \"admin\"\npassword = \"guess\"",
        ),
        camera(
            "tls",
            &host(&secure).replacen("rtsp://", "rtsps://", 1),
            "username = \"admin\"\npassword = \"tl5\"",
        ),
        // Credentials in the query string, as some firmware wants them.
        camera(
            "query",
            &format!("{}?user=admin&password=qu3ry", host(&digest)),
            "",
        ),
    ]
    .concat();
    let v = Vasd::start(&body);
    wait_until(T, "the cameras with the right credentials stream", || {
        ["digest", "basic", "tls"]
            .iter()
            .all(|id| v.state(id) == "streaming")
    });
    // The wrong password had time for many retries at network backoff (0.2 s doubling to
    // 1 s); a refused login waits at least 60 s, so it tried once.
    let started = Instant::now();
    wait_until(T, "the wrong password refused", || {
        v.fault("wrong").as_deref() == Some("unauthorized")
    });
    std::thread::sleep(Duration::from_secs(6).saturating_sub(started.elapsed()));
    let wrong = v.camera("wrong").unwrap();
    assert_eq!(counter(&wrong, "failures"), 1, "{wrong}");
    assert_eq!(wrong["state"], "backing_off");
    let next = counter(&wrong, "next_attempt_unix_ms");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(next > now + 50_000, "next attempt in {} ms", next - now);
    let log = v.log();
    assert!(
        log.contains("refused the login, next attempt in 60 s"),
        "{log}"
    );
    // digest: each login sends one request without credentials first (refused), so the
    // server refused at most: one for "digest", two for "wrong", and the query camera's.
    assert!(refused(&digest) <= 5, "{}", digest.log());
    assert!(basic.log().contains("auth accepted"), "{}", basic.log());

    // No secret anywhere: not in the log, not in status.
    let status = v.get("/api/cameras").unwrap();
    let metrics = v.get("/metrics").unwrap_or_default();
    for secret in ["p@ss", "p%40ss", "s3cret", "guess", "qu3ry", "tl5"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
        assert!(!status.contains(secret), "{secret} in status: {status}");
        assert!(!metrics.contains(secret), "{secret} in metrics");
    }
    assert!(status.contains("user=***&password=***"), "{status}");
}

#[test]
fn udp_with_packet_loss_records_on_and_counts_the_loss() {
    let ns = Netns::enter(&format!("vas-loss-{}", std::process::id()));
    // 2% of every UDP datagram (RTP and RTCP both ways) is dropped; RTSP itself is TCP.
    ns.random_loss(2, &["meta", "l4proto", "udp"]);
    let server = RtspServer::start(&[("cam", "cam720.mp4")]);
    let rec = tempfile::tempdir().unwrap();
    let body = format!(
        "[record]\ndir = \"{}\"\nsegment_seconds = 2\n{}",
        rec.path().display(),
        camera("udp", &server.url("cam"), "transport = \"udp\"")
    );
    let mut v = Vasd::start(&body);
    wait_until(T, "losses counted while recording goes on", || {
        let cam = v.camera("udp").unwrap_or_default();
        counter(&cam, "rtp_packets_lost") > 0 && segments(rec.path(), "udp").len() >= 2
    });
    let cam = v.camera("udp").unwrap();
    assert_eq!(cam["state"], "streaming", "{cam}");
    assert_eq!(cam["stream"]["transport"], "udp");
    v.terminate(Duration::from_secs(10));
    assert!(ns.dropped() > 0, "nothing dropped");
    for r in recordings(rec.path(), "udp") {
        assert!(r.frames > 0, "{r:?}");
        assert_eq!(r.sizes, BTreeSet::from([(1280, 720)]), "{r:?}");
    }
}
