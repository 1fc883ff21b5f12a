//! The live view on a lossy link: headless Chromium watches a 1080p camera (a key frame every
//! 2 s, as cameras send) while an nftables rule drops a share of what vasd sends it, at
//! random. Everything runs in a network namespace the test makes (vasd, the RTSP fixture and
//! Chromium on its own 127.0.0.1, see `Netns::enter_for_browser`), so the loss touches
//! nothing else on the machine.
//!
//! Without retransmission each lost packet costs the viewer every frame up to the next key
//! frame (it cannot decode a frame that refers to a broken one): at 5% loss most frames of a
//! 1080p stream (a dozen packets each) are hit. With it, the viewer's NACK brings the packet
//! back within a round trip. benches/live_loss.py prints the full table; this test holds the
//! line at the harsher loss.

mod daemon;
mod live_support;
mod support;

use std::time::Duration;

use serde_json::Value;

use daemon::{camera, Vasd};
use live_support::chromium_viewer;
use support::{wait_until, Netns, RtspServer};

const T: Duration = Duration::from_secs(60);
/// vasd's WebRTC ports: the loss rule drops datagrams coming from them.
const PORTS: &str = "40000-40099";

fn delta(window: &Value, key: &str) -> f64 {
    let get = |at: &str| window[at][key].as_f64().unwrap_or(0.0);
    get("last") - get("first")
}

#[test]
fn retransmission_keeps_a_lossy_viewers_picture_whole() {
    let ns = Netns::enter_for_browser(&format!("vas-live-loss-{}", std::process::id()));
    let server = RtspServer::start(&[("cam", "cam1080.mp4")]);
    let (min, max) = PORTS.split_once('-').unwrap();
    let v = Vasd::start(&format!(
        "[live]\nudp_port_min = {min}\nudp_port_max = {max}\n{}",
        camera("cam", &server.url("cam"))
    ));
    wait_until(T, "cam in the live view", || {
        v.camera("cam").unwrap_or_default()["live"]["profile_level_id"].is_string()
    });
    ns.random_loss(5, &["udp", "sport", PORTS]);
    let done = chromium_viewer(
        &format!("http://127.0.0.1:{}/", v.port),
        &["cam"],
        1,
        &["--seconds", "20"],
    )
    .unwrap_or_else(|e| panic!("{e}\nvasd log:\n{}", v.log()));
    let window = &done["cameras"]["cam"];
    let seconds = done["window_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    let fps = v.camera("cam").unwrap()["fps_in"].as_f64().unwrap_or(30.0);
    let decoded = delta(window, "framesDecoded") / (seconds * fps);
    let nacks = delta(window, "nackCount");
    let stall = window["longest_stall_ms"].as_f64().unwrap_or(f64::MAX);
    let summary = format!(
        "decoded {:.1}% of {:.0} frames, {nacks} NACKs, longest stall {stall} ms, {} \
         datagrams dropped: {done}",
        decoded * 100.0,
        seconds * fps,
        ns.dropped()
    );
    eprintln!("5% loss: {}", summary.split(": {").next().unwrap_or(""));
    assert!(ns.dropped() > 100, "the rule dropped too little: {summary}");
    assert!(nacks > 0.0, "the viewer sent no NACK: {summary}");
    // Without retransmission this viewer decodes well under half of the frames and stalls
    // for seconds at a time (see benches/live_loss.py).
    assert!(decoded > 0.9, "{summary}");
    assert!(stall < 1500.0, "{summary}");
}
