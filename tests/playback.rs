//! Playback of recordings through the API, against a real recording of the GStreamer RTSP
//! fixture (H.264 and AAC): listings, clips across segments (checked by ffprobe decoding
//! them), downloads, raw segments with ranges, bad requests, a restart rebuilding the index,
//! retention deleting from it, and headless Chromium playing the viewer page's timeline.
//!
//! One recording serves every check: vasd records two spans (the camera goes away for a few
//! seconds between them) with 3 s segments, then the checks run one after another.

mod daemon;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use daemon::Vasd;
use serde_json::Value;
use support::{segments, wait_until, RtspServer};

const T: Duration = Duration::from_secs(60);
const TOKEN: &str = "playback-test-token-0123";

/// Mounts of the fixture: `cam` (H.264 and AAC) is watched live too; the others are other
/// kinds of camera whose clips must decode as well.
const MOUNTS: [(&str, &str); 3] = [
    ("cam", "cam_aac.mp4"),
    ("bframes", "cam1080_bframes.mp4"),
    ("h265", "cam_h265.mp4"),
];

fn config(dir: &Path, server: &RtspServer) -> String {
    let mut body = format!(
        "[record]\ndir = \"{}\"\nsegment_seconds = 3\n",
        dir.display()
    );
    for (id, _) in MOUNTS {
        body += &format!(
            "[[camera]]\nid = \"{id}\"\nurl = \"{}\"\nrecord = true\nlive = {}\n\
             reconnect = {{ min_delay_ms = 200, max_delay_ms = 1000, io_timeout_ms = 2000 }}\n",
            server.url(id),
            id == "cam"
        );
    }
    body
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = ureq::get(&format!("http://127.0.0.1:{port}{path}")).timeout(T);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|k| {
            let v = resp.header(&k).unwrap_or("").to_string();
            (k, v)
        })
        .collect();
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).expect("body");
    Reply {
        status,
        headers,
        body,
    }
}

fn authed(port: u16, path: &str) -> Reply {
    get(port, path, &[("Authorization", &format!("Bearer {TOKEN}"))])
}

/// Spans of `cam` as (start_ms, end_ms, segments).
fn spans(port: u16) -> Vec<(i64, i64, u64)> {
    let v = authed(port, "/api/recordings/cam").json();
    v["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| {
            (
                s["start_unix_ms"].as_i64().unwrap(),
                s["end_unix_ms"].as_i64().unwrap(),
                s["segments"].as_u64().unwrap(),
            )
        })
        .collect()
}

struct Probe {
    video_frames: u64,
    audio_packets: u64,
    start_time: f64,
    duration: f64,
    first_key: bool,
}

/// Decodes the whole file with ffprobe; any decoding complaint fails the test.
fn probe(file: &Path) -> Probe {
    let v = support::ffprobe_clean(
        file,
        &["-count_frames", "-count_packets"],
        "stream=codec_type,nb_read_frames,nb_read_packets:format=start_time,duration",
    );
    let count = |kind: &str, field: &str| {
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == kind)
            .and_then(|s| s[field].as_str()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let f = |k: &str| {
        v["format"][k]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Probe {
        video_frames: count("video", "nb_read_frames"),
        audio_packets: count("audio", "nb_read_packets"),
        start_time: f("start_time"),
        duration: f("duration"),
        first_key: support::first_video_packet_is_key(file),
    }
}

/// Top-level box types of an MP4, in order.
fn top_boxes(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as u64;
        if size == 1 {
            size = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap());
        }
        out.push(String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned());
        if size < 8 {
            break;
        }
        at += size as usize;
    }
    out
}

/// Writes `data` to `dir/name`, and to `$VAS_TEST_ARTIFACTS/name` for a person to look at.
fn save(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    if let Some(keep) = std::env::var_os("VAS_TEST_ARTIFACTS") {
        let _ = std::fs::write(Path::new(&keep).join(name), data);
    }
    p
}

/// A client that asks for `path` and then reads nothing, through a 4 KiB receive buffer (set
/// before connecting, so the window stays small): the server's writes soon block on it.
fn stalled_client(port: u16, path: &str) -> TcpStream {
    // SAFETY: a fresh socket; the sockaddr_in is fully initialised; the descriptor is handed
    // to TcpStream, which owns and closes it.
    let mut stream = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let rc = libc::connect(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    stream
}

#[test]
fn recordings_are_listed_played_and_downloaded() {
    let mut server = RtspServer::start(&MOUNTS);
    let rec = tempfile::tempdir().unwrap();
    let mut vasd = Vasd::start_with_token(&config(rec.path(), &server), TOKEN);
    let port = vasd.port;
    let out = tempfile::tempdir().unwrap();

    // Span 1: about 8 s; the camera goes away for 3 s; span 2: about 8 s.
    wait_until(T, "three closed segments", || {
        segments(rec.path(), "cam").len() >= 3
    });
    server.kill();
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    let before = segments(rec.path(), "cam").len();
    wait_until(T, "three more closed segments", || {
        segments(rec.path(), "cam").len() >= before + 3
    });

    // Listings.
    let no_token = get(port, "/api/recordings", &[]);
    assert_eq!(no_token.status, 401);
    let all = authed(port, "/api/recordings");
    assert_eq!(all.status, 200, "{}", String::from_utf8_lossy(&all.body));
    let all = all.json();
    let ids: Vec<&str> = all["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["camera"].as_str())
        .collect();
    assert_eq!(ids, ["bframes", "cam", "h265"], "{all}");
    let listed = spans(port);
    assert!(
        listed.len() >= 2,
        "a gap splits the recording into spans: {listed:?}"
    );
    let (s1, e1, n1) = listed[0];
    let (s2, e2, _) = listed[1];
    assert!(n1 >= 3, "adjacent segments merge into one span: {listed:?}");
    assert!(
        s2 - e1 >= 1000,
        "the spans are apart by the outage: {listed:?}"
    );
    let detail = authed(port, "/api/recordings/cam?segments=1").json();
    let segs = detail["segments"].as_array().expect("segments on request");
    assert!(segs.len() >= 6, "{detail}");
    let later = authed(
        port,
        &format!("/api/recordings/cam?start={}", (s2 as f64) / 1000.0),
    )
    .json();
    assert_eq!(
        later["spans"].as_array().unwrap().len(),
        listed.len() - 1,
        "start= leaves out the spans that end before it: {later}"
    );

    // A clip across segment boundaries, from 1.5 s into span 1, for 6 s.
    let start = s1 + 1500;
    let clip = authed(
        port,
        &format!(
            "/api/recordings/cam/video.mp4?start={}&duration=6",
            start as f64 / 1000.0
        ),
    );
    assert_eq!(clip.status, 200, "{}", String::from_utf8_lossy(&clip.body));
    assert_eq!(clip.header("Content-Type"), Some("video/mp4"));
    let clip_start: i64 = clip.header("X-Vas-Start-Unix-Ms").unwrap().parse().unwrap();
    assert!(
        clip_start <= start && start - clip_start < 2500,
        "the clip starts at the key frame at or before start: {clip_start} vs {start}"
    );
    let boxes = top_boxes(&clip.body);
    assert_eq!(&boxes[..2], ["ftyp", "moov"], "{boxes:?}");
    assert!(
        boxes.iter().filter(|b| *b == "moof").count() >= 4,
        "{boxes:?}"
    );
    let p = probe(&save(out.path(), "clip.mp4", &clip.body));
    assert!(p.first_key, "the clip starts on a key frame");
    assert!(
        p.start_time.abs() < 0.05,
        "timeline from zero: {}",
        p.start_time
    );
    assert!(
        (6.0..9.5).contains(&p.duration),
        "6 s asked from 1.5 s after a key frame, whole GOPs: {}",
        p.duration
    );
    assert!(p.video_frames >= 6 * 20, "frames: {}", p.video_frames);
    assert!(
        p.audio_packets > 100,
        "audio is in the clip: {}",
        p.audio_packets
    );

    // The same clip as a download: progressive, its length announced.
    let dl = authed(
        port,
        &format!(
            "/api/recordings/cam/video.mp4?start={}&duration=6&download=1",
            start as f64 / 1000.0
        ),
    );
    assert_eq!(dl.status, 200);
    assert_eq!(
        dl.header("Content-Length")
            .map(|v| v.parse::<usize>().unwrap()),
        Some(dl.body.len())
    );
    let disposition = dl.header("Content-Disposition").unwrap_or("");
    assert!(
        disposition.starts_with("attachment; filename=\"cam-")
            && disposition.ends_with("Z-6s.mp4\""),
        "{disposition}"
    );
    assert_eq!(top_boxes(&dl.body), ["ftyp", "moov", "mdat"]);
    let d = probe(&save(out.path(), "download.mp4", &dl.body));
    assert_eq!(
        d.video_frames, p.video_frames,
        "the download holds the clip's frames"
    );
    assert_eq!(d.audio_packets, p.audio_packets);
    assert!(
        (d.duration - p.duration).abs() < 0.2,
        "{} vs {}",
        d.duration,
        p.duration
    );

    // B-frames (composition offsets) and H.265 (hvc1): both forms decode, the same frames.
    for id in ["bframes", "h265"] {
        let v = authed(port, &format!("/api/recordings/{id}")).json();
        let from = v["spans"][0]["start_unix_ms"].as_i64().expect("a span") as f64 / 1000.0;
        let url = format!("/api/recordings/{id}/video.mp4?start={from}&duration=4");
        let frag = probe(&save(
            out.path(),
            &format!("{id}.mp4"),
            &authed(port, &url).body,
        ));
        let prog = authed(port, &format!("{url}&download=1"));
        assert_eq!(top_boxes(&prog.body), ["ftyp", "moov", "mdat"], "{id}");
        let prog = probe(&save(out.path(), &format!("{id}-dl.mp4"), &prog.body));
        assert!(frag.first_key && prog.first_key, "{id}");
        assert!(
            frag.video_frames >= 4 * 20,
            "{id}: {} frames",
            frag.video_frames
        );
        assert_eq!(frag.video_frames, prog.video_frames, "{id}");
    }

    // A clip from span 2 with the token in the query, as a <video src> sends it.
    let second = get(
        port,
        &format!(
            "/api/recordings/cam/video.mp4?start={}&duration=3&access_token={TOKEN}",
            s2 as f64 / 1000.0
        ),
        &[],
    );
    assert_eq!(second.status, 200);
    let q = probe(&save(out.path(), "second.mp4", &second.body));
    assert!(q.first_key && q.video_frames > 0);
    assert!(e2 > s2);

    // The segment being written is listed and plays, up to its last complete fragment.
    let open_span = || {
        let now = authed(port, "/api/recordings/cam").json();
        now["spans"].as_array().unwrap().last().unwrap().clone()
    };
    // Right after a cut the new segment has no complete fragment yet and is not listed.
    wait_until(T, "the last span is being recorded", || {
        open_span()["recording"] == true
    });
    let last = open_span();
    let tail = last["end_unix_ms"].as_i64().unwrap() - 1500;
    let open_clip = authed(
        port,
        &format!(
            "/api/recordings/cam/video.mp4?start={}&duration=10",
            tail as f64 / 1000.0
        ),
    );
    assert_eq!(open_clip.status, 200);
    let o = probe(&save(out.path(), "open.mp4", &open_clip.body));
    assert!(
        o.first_key && o.video_frames > 0,
        "{} frames",
        o.video_frames
    );

    // Raw segments: whole, by range, unchanged.
    let file = segs[0]["url"].as_str().unwrap();
    let whole = authed(port, file);
    assert_eq!(whole.status, 200);
    let on_disk = segments(rec.path(), "cam")[0].clone();
    assert_eq!(whole.body, std::fs::read(&on_disk).unwrap());
    let etag = whole.header("ETag").expect("ETag").to_string();
    assert!(whole.header("Last-Modified").is_some());
    let auth = format!("Bearer {TOKEN}");
    let part = get(
        port,
        file,
        &[("Authorization", &auth), ("Range", "bytes=100-199")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[100..200]);
    assert_eq!(
        part.header("Content-Range"),
        Some(format!("bytes 100-199/{}", whole.body.len()).as_str())
    );
    let cached = get(
        port,
        file,
        &[("Authorization", &auth), ("If-None-Match", &etag)],
    );
    assert_eq!(cached.status, 304);
    let past = get(
        port,
        file,
        &[("Authorization", &auth), ("Range", "bytes=999999999-")],
    );
    assert_eq!(past.status, 416);

    // Clients that stop reading hold their own threads, not the API's: more of them than
    // there are API workers, each on megabytes of 1080p, and the API still answers.
    let big = authed(port, "/api/recordings/bframes").json();
    let span = &big["spans"][0];
    let url = format!(
        "/api/recordings/bframes/video.mp4?start={}&duration={}&download=1",
        span["start_unix_ms"].as_i64().unwrap() as f64 / 1000.0,
        span["duration_s"]
    );
    let stalled: Vec<TcpStream> = (0..6).map(|_| stalled_client(port, &url)).collect();
    std::thread::sleep(Duration::from_secs(1));
    for path in ["/healthz", "/api/cameras", "/api/recordings"] {
        let r = ureq::get(&format!("http://127.0.0.1:{port}{path}"))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .timeout(Duration::from_secs(5))
            .call();
        assert!(r.is_ok(), "{path} with 6 stalled downloads: {r:?}");
    }
    drop(stalled);

    // Bad requests: a status and a message saying what to fix.
    let bad = |path: &str, status: u16, needle: &str| {
        let r = authed(port, path);
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, status, "{path}: {body}");
        let v = r.json();
        let msg = v["error"].as_str().unwrap_or("");
        assert!(
            msg.contains(needle),
            "{path}: {msg:?} should mention {needle:?}"
        );
        v
    };
    bad(
        "/api/recordings/cam/video.mp4?start=yesterday",
        400,
        "RFC 3339",
    );
    bad("/api/recordings/cam/video.mp4", 400, "start= is missing");
    bad(
        &format!(
            "/api/recordings/cam/video.mp4?start={}&duration=99999",
            s1 / 1000
        ),
        400,
        "over the limit",
    );
    bad(
        &format!(
            "/api/recordings/cam/video.mp4?start={}&duration=-1",
            s1 / 1000
        ),
        400,
        "more than 0",
    );
    let none = bad(
        "/api/recordings/cam/video.mp4?start=2001-01-01T00:00:00Z",
        404,
        "no recording",
    );
    assert!(!none["nearest"].as_array().unwrap().is_empty(), "{none}");
    bad("/api/recordings/nosuch", 404, "no recordings of camera");
    bad(
        "/api/recordings/nosuch/video.mp4?start=0",
        404,
        "no recordings of camera",
    );
    bad("/api/recordings/cam?start=soon", 400, "Unix");
    for path in [
        "/api/recordings/cam/files/../../../etc/passwd",
        "/api/recordings/cam/files/..%2F..%2F..%2Fetc/passwd",
        "/api/recordings/..%2F..%2Fetc/files/x/passwd",
        "/api/recordings/cam/files/2026-01-01/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let r = authed(port, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("root:"),
            "{path}"
        );
    }

    // Headless Chromium: the viewer page draws the spans, plays a moment of each span (the
    // second is a seek to another span), and shows the picture.
    let shot = out.path().join("playback.png");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/live_support/chromium_playback.py");
    let moments = format!(
        "{},{}",
        (s1 + 2000) as f64 / 1000.0,
        (s2 + 1000) as f64 / 1000.0
    );
    let run = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/#token={TOKEN}"))
        .args(["--camera", "cam", "--at", &moments, "--timeout", "40"])
        .arg("--screenshot")
        .arg(&shot)
        .output()
        .expect("chromium_playback.py");
    let lines = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "chromium playback: {lines}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let played: Vec<Value> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "played")
        .collect();
    assert_eq!(played.len(), 2, "{lines}");
    for p in &played {
        assert!(p["framesDecoded"].as_u64().unwrap_or(0) > 10, "{p}");
        assert!(p["currentTime"].as_f64().unwrap_or(0.0) >= 2.0, "{p}");
        assert_eq!(p["videoWidth"], 640, "{p}");
    }
    assert!(
        std::fs::metadata(&shot).map_or(0, |m| m.len()) > 10_000,
        "a screenshot"
    );
    if let Some(keep) = std::env::var_os("VAS_TEST_ARTIFACTS") {
        // For a person to look at: the page as Chromium drew it.
        let _ = std::fs::copy(&shot, Path::new(&keep).join("playback.png"));
    }

    // A restart rebuilds the index from the files: the closed segments are all there.
    let closed: Vec<_> = listed.iter().filter(|s| s.1 < e2).cloned().collect();
    vasd.terminate(Duration::from_secs(10));
    server.kill();
    let again = Vasd::start_with_token(&config(rec.path(), &server), TOKEN);
    let rebuilt = spans(again.port);
    for (s, e, n) in &closed {
        assert!(
            rebuilt
                .iter()
                .any(|r| r.0 == *s && (r.1 - e).abs() < 100 && r.2 >= *n),
            "span {s}..{e} ({n} segments) is listed after a restart: {rebuilt:?}"
        );
    }
}
