//! The live view against real clients: aiortc as a WHEP client, headless Chromium on vasd's
//! viewer page, and the real RTSP server fixture as the cameras. Every wait is for a state
//! (frames decoded, a viewer count), never a measure of speed.

mod daemon;
mod live_support;
mod support;

use std::time::Duration;

use serde_json::Value;

use daemon::{camera, Vasd};
use live_support::{chromium_viewer, http, WhepClient};
use support::{closed_port, wait_until, RtspServer};

const T: Duration = Duration::from_secs(60);

/// A recvonly video offer as Chromium makes it (trimmed), for requests that must get past the
/// SDP check. Its DTLS fingerprint is made up: such a viewer could never connect.
const OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Vd+3\r\n\
a=ice-pwd:2Jw3uyeK0bcn7k6NbTOgfQCV\r\n\
a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

/// The `live` section of a camera's status.
fn live(v: &Vasd, id: &str) -> Value {
    v.camera(id)
        .map(|c| c["live"].clone())
        .unwrap_or(Value::Null)
}

fn live_u64(v: &Vasd, id: &str, key: &str) -> u64 {
    live(v, id)[key].as_u64().unwrap_or(0)
}

/// Waits until the camera streams and its SPS is known: viewers can join.
fn wait_live(v: &Vasd, id: &str) {
    wait_until(T, &format!("{id} in the live view"), || {
        live(v, id)["profile_level_id"].is_string()
    });
}

fn whep_url(v: &Vasd, id: &str) -> String {
    format!("http://127.0.0.1:{}/whep/{id}", v.port)
}

/// aiortc, an independent WebRTC stack, receives and decodes each camera at its resolution:
/// ICE, a complete DTLS handshake (aiortc is the DTLS client, so mediasoup's worker answers
/// its ClientHello), SRTP, H.264 Main and High. This is the end-to-end DTLS test the offline
/// mediasoup build needs: without the `onSslBioOut` fix of packaging/mediasoup, the worker
/// thread segfaults inside OpenSSL on that ClienthHello (Debian's OpenSSL has kernel TLS)
/// and takes vasd with it, and this test fails.
#[test]
fn aiortc_decodes_each_camera_at_its_resolution_after_a_real_dtls_handshake() {
    let server = RtspServer::start(&[("main720", "cam720.mp4"), ("high1080", "cam1080.mp4")]);
    let v = Vasd::start(
        &(camera("main720", &server.url("main720")) + &camera("high1080", &server.url("high1080"))),
    );
    wait_live(&v, "main720");
    wait_live(&v, "high1080");
    // One viewer ends with DELETE, the other by closing its peer connection (DTLS close).
    let mut a = WhepClient::start(&whep_url(&v, "main720"), &["--frames", "30", "--delete"]);
    let mut b = WhepClient::start(&whep_url(&v, "high1080"), &["--frames", "30"]);
    // (client, camera, width, height)
    for (client, id, w, h) in [
        (&mut a, "main720", 1280, 720),
        (&mut b, "high1080", 1920, 1080),
    ] {
        let (status, done) = client.wait(T);
        assert!(status.success(), "{id}: {}", client.describe());
        assert_eq!(done["sizes"][0], serde_json::json!([w, h]), "{id}: {done}");
        assert_eq!(done["decode_errors"], 0, "{id}: {done}");
        let answered = client.event("answered").expect("answered");
        let location = answered["location"].as_str().unwrap();
        assert!(
            location.starts_with(&format!("/whep/{id}/")),
            "{id}: {location}"
        );
    }
    for id in ["main720", "high1080"] {
        wait_until(T, &format!("{id}'s viewer is gone"), || {
            live_u64(&v, id, "viewers") == 0
        });
        let l = live(&v, id);
        assert_eq!(l["sessions"], 1, "{id}: {l}");
        assert!(l["rtp_packets_sent"].as_u64().unwrap() > 30, "{id}: {l}");
        assert!(l["last_key_frame_unix_ms"].as_u64().is_some(), "{id}: {l}");
    }
    let log = v.log();
    assert!(log.contains("ended by the viewer (DELETE)"), "{log}");
    assert!(log.contains("the viewer closed the connection"), "{log}");
}

/// The viewer page in a real browser: every camera's tile decodes moving video at the
/// camera's resolution.
#[test]
fn chromium_shows_moving_video_of_several_cameras_on_the_viewer_page() {
    let cams = [
        ("c720", "cam720.mp4"),
        ("c1080", "cam1080.mp4"),
        ("c480", "cam480_yuvj.mp4"),
    ];
    let server = RtspServer::start(&cams);
    let config: String = cams
        .iter()
        .map(|(id, _)| camera(id, &server.url(id)))
        .collect();
    let v = Vasd::start(&config);
    for (id, _) in cams {
        wait_live(&v, id);
    }
    let ids: Vec<&str> = cams.iter().map(|(id, _)| *id).collect();
    let done = chromium_viewer(&format!("http://127.0.0.1:{}/", v.port), &ids, 30, &[])
        .unwrap_or_else(|e| panic!("{e}\nvasd log:\n{}", v.log()));
    let stats = &done["stats"];
    // (camera, width, height)
    for (id, w, h) in [
        ("c720", 1280, 720),
        ("c1080", 1920, 1080),
        ("c480", 640, 480),
    ] {
        assert_eq!(stats[id]["frameWidth"], w, "{id}: {stats}");
        assert_eq!(stats[id]["frameHeight"], h, "{id}: {stats}");
        assert_eq!(live_u64(&v, id, "viewers"), 1, "{id}");
    }
}

/// Ten viewers of one camera all decode; an eleventh is refused with 429 while they watch.
#[test]
fn ten_simultaneous_viewers_of_one_camera_all_decode() {
    let server = RtspServer::start(&[("cam", "cam480_yuvj.mp4")]);
    let v = Vasd::start(&format!(
        "[live]\nmax_viewers = 10\n{}",
        camera("cam", &server.url("cam"))
    ));
    wait_live(&v, "cam");
    let mut viewers = WhepClient::start(
        &whep_url(&v, "cam"),
        &["--viewers", "10", "--frames", "100"],
    );
    wait_until(T, "10 viewers attached", || {
        live_u64(&v, "cam", "viewers") == 10
    });
    let eleventh = http("POST", v.port, "/whep/cam", "application/sdp", OFFER);
    assert_eq!(eleventh.status, 429, "{eleventh:?}");
    assert!(
        eleventh.body.contains("already has 10 viewers"),
        "{eleventh:?}"
    );
    assert_eq!(eleventh.retry_after.as_deref(), Some("10"));

    let (status, done) = viewers.wait(T * 2);
    assert!(status.success(), "{}", viewers.describe());
    let frames: Vec<u64> = done["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_u64().unwrap())
        .collect();
    assert_eq!(frames.len(), 10);
    assert!(frames.iter().all(|&f| f >= 100), "{frames:?}");
    for size in done["sizes"].as_array().unwrap() {
        assert_eq!(size, &serde_json::json!([640, 480]));
    }
    assert_eq!(done["decode_errors"], 0, "{done}");
    wait_until(T, "all viewers gone", || {
        live_u64(&v, "cam", "viewers") == 0
    });
    assert_eq!(live_u64(&v, "cam", "sessions"), 10);
}

/// A viewer killed mid-stream says no goodbye; ICE consent expiry frees its transport.
#[test]
fn a_killed_viewer_frees_its_transport() {
    let server = RtspServer::start(&[("cam", "cam480_yuvj.mp4")]);
    let v = Vasd::start(&camera("cam", &server.url("cam")));
    wait_live(&v, "cam");
    let mut client = WhepClient::start(&whep_url(&v, "cam"), &["--hold", "--timeout", "300"]);
    wait_until(T, "the viewer decodes", || {
        client.frames().first().is_some_and(|&f| f >= 20)
    });
    assert_eq!(live_u64(&v, "cam", "viewers"), 1);
    client.kill();
    // mediasoup's ICE consent timeout is 15 s.
    wait_until(T, "the killed viewer is dropped", || {
        live_u64(&v, "cam", "viewers") == 0
    });
    let log = v.log();
    assert!(log.contains("ICE consent expired"), "{log}");
    // The camera keeps streaming, and a new viewer can join.
    let mut again = WhepClient::start(&whep_url(&v, "cam"), &["--frames", "10"]);
    assert!(again.wait(T).0.success(), "{}", again.describe());
}

/// The camera's server restarts while two viewers watch: vasd reconnects, the viewers stay
/// attached to the same sessions (no new WHEP request) and get video again, without a single
/// frame that fails to decode (the stream restarts at a key frame with continuous RTP).
#[test]
fn viewers_get_video_again_after_the_camera_restarts() {
    let mut server = RtspServer::start(&[("cam", "cam720.mp4")]);
    let v = Vasd::start(&camera("cam", &server.url("cam")));
    wait_live(&v, "cam");
    let client = WhepClient::start(
        &whep_url(&v, "cam"),
        &["--viewers", "2", "--hold", "--timeout", "300"],
    );
    let all_at_least = |n: u64| {
        let f = client.frames();
        f.len() == 2 && f.iter().all(|&x| x >= n)
    };
    wait_until(T, "both viewers decode", || all_at_least(30));

    server.restart();
    wait_until(T, "the camera reconnects", || {
        v.camera("cam")
            .is_some_and(|c| c["reconnects"].as_u64() >= Some(1))
            && v.state("cam") == "streaming"
    });
    let after = client.frames().into_iter().max().unwrap_or(0);
    wait_until(T, "both viewers decode again", || all_at_least(after + 30));
    let l = live(&v, "cam");
    assert_eq!(l["sessions"], 2, "the same two sessions: {l}");
    assert_eq!(l["viewers"], 2, "{l}");
    assert_eq!(client.decode_errors(), 0, "{}", client.describe());
}

/// A reload that restarts a camera (its settings changed) keeps its viewers: the new camera
/// thread attaches within the grace period and the stream goes on in the same session.
#[test]
fn a_reload_that_restarts_the_camera_keeps_its_viewers() {
    let server = RtspServer::start(&[("cam", "cam480_yuvj.mp4")]);
    let before = camera("cam", &server.url("cam"));
    let v = Vasd::start(&before);
    wait_live(&v, "cam");
    let client = WhepClient::start(&whep_url(&v, "cam"), &["--hold", "--timeout", "300"]);
    wait_until(T, "the viewer decodes", || {
        client.frames().first().is_some_and(|&f| f >= 20)
    });
    v.write_config(&before.replace("io_timeout_ms = 2000", "io_timeout_ms = 3000"));
    v.signal(libc::SIGHUP);
    wait_until(T, "the camera restarts", || {
        v.log().contains("restarted [\"cam\"]")
    });
    let after = client.frames()[0];
    wait_until(T, "the viewer decodes again", || {
        client.frames()[0] >= after + 30
    });
    let l = live(&v, "cam");
    assert_eq!(
        (l["sessions"].as_u64(), l["viewers"].as_u64()),
        (Some(1), Some(1)),
        "{l}"
    );
    assert_eq!(client.decode_errors(), 0, "{}", client.describe());
}

/// Every WHEP refusal has its own status and a sentence saying why; the page and the status
/// API keep working.
#[test]
fn whep_refusals_are_precise() {
    let v = Vasd::start(
        &(camera("dark", &format!("rtsp://127.0.0.1:{}/x", closed_port()))
            + &camera("off", &format!("rtsp://127.0.0.1:{}/y", closed_port()))
            + "live = false\n"),
    );
    let sdp = "application/sdp";
    let big = "a".repeat(70_000);
    // (method, path, content type, body, status, text in the reply)
    let table: &[(&str, &str, &str, &str, u16, &str)] = &[
        (
            "POST",
            "/whep/dark",
            sdp,
            OFFER,
            409,
            "has not sent video yet",
        ),
        (
            "POST",
            "/whep/off",
            sdp,
            OFFER,
            409,
            "is not in the live view",
        ),
        (
            "POST",
            "/whep/nosuch",
            sdp,
            OFFER,
            404,
            "no camera \"nosuch\"",
        ),
        ("POST", "/whep/Bad!Id", sdp, OFFER, 404, "no camera"),
        ("POST", "/whep/dark", sdp, "hello", 400, "bad SDP offer"),
        (
            "POST",
            "/whep/dark",
            sdp,
            "",
            400,
            "the request body is empty",
        ),
        (
            "POST",
            "/whep/dark",
            sdp,
            &OFFER.replace("packetization-mode=1", "packetization-mode=0"),
            400,
            "packetization-mode=1",
        ),
        (
            "POST",
            "/whep/dark",
            "text/plain",
            OFFER,
            415,
            "Content-Type: application/sdp",
        ),
        ("POST", "/whep/dark", sdp, &big, 413, "larger than"),
        ("GET", "/whep/dark", sdp, "", 405, "use POST"),
        ("PATCH", "/whep/dark/0f2a-11", sdp, "", 405, "trickle ICE"),
        (
            "DELETE",
            "/whep/dark/0f2a-11",
            sdp,
            "",
            404,
            "no such WHEP session",
        ),
        (
            "DELETE",
            "/whep/dark/x/y",
            sdp,
            "",
            404,
            "no such WHEP session",
        ),
    ];
    for &(method, path, ctype, body, status, text) in table {
        let r = http(method, v.port, path, ctype, body);
        assert_eq!(r.status, status, "{method} {path}: {r:?}");
        assert!(r.body.contains(text), "{method} {path}: {r:?}");
    }
    let not_yet = http("POST", v.port, "/whep/dark", sdp, OFFER);
    assert_eq!(not_yet.retry_after.as_deref(), Some("2"));

    let page = http("GET", v.port, "/", "text/html", "");
    assert_eq!(page.status, 200);
    assert!(page.content_type.unwrap().starts_with("text/html"));
    assert!(page.body.contains("VAS live view") && page.body.contains("/whep/"));
    assert_eq!(v.get("/healthz").as_deref(), Some("ok\n"));
    let off = v.camera("off").expect("off in /api/cameras");
    assert!(
        off.get("live").is_none(),
        "no live section for live = false: {off}"
    );
    assert_eq!(live(&v, "dark")["viewers"], 0);
}

/// Without a live camera no mediasoup worker runs; the live thread waits alone.
#[test]
fn no_media_worker_without_a_live_camera() {
    let v = Vasd::start(
        &(camera("off", &format!("rtsp://127.0.0.1:{}/y", closed_port())) + "live = false\n"),
    );
    wait_until(T, "the camera is attempted", || !v.state("off").is_empty());
    let names = v.thread_names();
    assert!(names.iter().any(|n| n == "live"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("mediasoup")),
        "{names:?}"
    );
}
