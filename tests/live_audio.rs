//! The live view's audio against real clients: GStreamer serves cameras with G.711 and AAC
//! audio (and one whose audio stops), aiortc and headless Chromium receive it from vasd over
//! WebRTC. One server and one daemon serve the whole file: starting them per check would cost
//! half a minute of CI each.

mod daemon;
mod live_support;
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;

use daemon::{camera, Vasd};
use live_support::{chromium_viewer, WhepClient};
use support::{wait_until, RtspServer};

const T: Duration = Duration::from_secs(60);

fn live(v: &Vasd, id: &str) -> Value {
    v.camera(id)
        .map(|c| c["live"].clone())
        .unwrap_or(Value::Null)
}

fn whep_url(v: &Vasd, id: &str) -> String {
    format!("http://127.0.0.1:{}/whep/{id}", v.port)
}

/// The newest progress line's per-viewer list `key` of a client, summed.
fn progress(client: &WhepClient, key: &str) -> u64 {
    client
        .events()
        .iter()
        .rev()
        .find(|e| e["event"] == "progress")
        .and_then(|e| e[key].as_array().cloned())
        .map(|a| a.iter().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

#[test]
fn viewers_hear_g711_and_aac_cameras_and_video_outlives_the_audio() {
    // (camera, fixture mount, what the viewers get, codec aiortc reports, Chromium's mime)
    let cams = [
        (
            "pcma",
            "640x360@15,audio=pcma",
            "pcma",
            "pcma",
            "audio/PCMA",
        ),
        (
            "aac",
            "640x360@15,audio=aac",
            "aac->opus",
            "opus",
            "audio/opus",
        ),
    ];
    let mut live_mounts: Vec<(&str, &str)> = cams.iter().map(|c| (c.0, c.1)).collect();
    // Its audio stops for good 8 s into the stream while its video goes on.
    live_mounts.push(("mute", "640x360@15,audio=pcma,mute=8"));
    // An H.265 camera (main stream) watched through its H.264 substream, with AAC audio.
    live_mounts.push(("sub", "640x360@15,audio=aac"));
    let silent = "640x360@15";
    let server = RtspServer::start_with_live(&[("h265", "cam_h265.mp4")], &live_mounts);
    let silent_server = RtspServer::start_with_live(&[], &[("silent", silent)]);
    let mut config: String = live_mounts[..3]
        .iter()
        .map(|(id, _)| camera(id, &server.url(id)))
        .collect();
    config += &camera("silent", &silent_server.url("silent"));
    config += &format!(
        "{}roles = [\"record\", \"export\"]\n[camera.substream]\nurl = \"{}\"\nroles = [\"live\"]\n",
        camera("hevc", &server.url("h265")),
        server.url("sub")
    );
    let v = Vasd::start(&config);
    let live_of = |v: &Vasd, id: &str| {
        let c = v.camera(id).unwrap_or_default();
        if c["role_streams"]["live"] == "sub" {
            c["substream"]["live"].clone()
        } else {
            c["live"].clone()
        }
    };
    for id in ["pcma", "aac", "mute", "hevc"] {
        wait_until(T, &format!("{id} in the live view with audio"), || {
            let l = live_of(&v, id);
            l["profile_level_id"].is_string() && l["audio"].is_string()
        });
    }
    wait_until(T, "silent in the live view", || {
        live(&v, "silent")["profile_level_id"].is_string()
    });
    assert_eq!(live(&v, "silent")["audio"], Value::Null);

    // A viewer offering audio and video to a camera without audio gets the video: the
    // rejected audio section is one aiortc accepts (it refuses a whole answer otherwise).
    let mut client = WhepClient::start(&whep_url(&v, "silent"), &["--audio", "--frames", "30"]);
    let (exit, done) = client.wait(T);
    assert!(exit.success(), "silent: {}", client.describe());
    assert_eq!(done["audio_codecs"][0], Value::Null, "{done}");
    // The viewer of the muting camera watches from the start, through the silence.
    let mut muted = WhepClient::start(&whep_url(&v, "mute"), &["--audio", "--hold"]);

    // aiortc gets both tracks of each camera and decodes a real signal (the fixture's sine).
    for (id, _, status, codec, _) in cams {
        assert_eq!(live(&v, id)["audio"], status, "{id}");
        let mut client = WhepClient::start(
            &whep_url(&v, id),
            &["--audio", "--audio-frames", "50", "--frames", "30"],
        );
        let (exit, done) = client.wait(T);
        assert!(exit.success(), "{id}: {}", client.describe());
        assert_eq!(done["audio_codecs"][0], codec, "{id}: {done}");
        let rms = done["audio_rms"][0].as_f64().unwrap_or(0.0);
        assert!(rms > 0.05, "{id}: audio RMS {rms}: {done}");
        assert_eq!(done["decode_errors"], 0, "{id}: {done}");
        let first = client.event("first_audio").expect("first_audio");
        assert!(first["ms"].as_f64().is_some(), "{first}");
    }
    // The AAC transcoder ran while someone listened, and only then.
    wait_until(T, "the aac camera's listener is gone", || {
        live(&v, "aac")["viewers"] == 0
    });
    wait_until(T, "the transcoder closed", || {
        live(&v, "aac")["audio_transcoding"] == false
    });
    let log = v.log();
    assert!(
        log.contains("camera aac: transcoding its aac audio to Opus"),
        "{log}"
    );
    assert!(
        log.contains("camera aac: no listeners, audio transcoding stopped"),
        "{log}"
    );
    let sent = live(&v, "pcma")["audio_rtp_packets_sent"]
        .as_u64()
        .unwrap_or(0);
    assert!(sent > 50, "pcma: {sent} audio packets sent");

    // Chromium hears both cameras on the viewer page (getStats: packets and audio energy),
    // and the H.265 camera through its H.264 substream, which its tile names.
    let mut ids: Vec<&str> = cams.iter().map(|c| c.0).collect();
    ids.push("hevc");
    let done = chromium_viewer(
        &format!("http://127.0.0.1:{}/", v.port),
        &ids,
        30,
        &["--audio"],
    )
    .unwrap_or_else(|e| panic!("{e}\nvasd log:\n{}", v.log()));
    for (id, _, _, _, mime) in cams {
        let audio = &done["stats"][id]["audio"];
        assert!(
            audio["packetsReceived"].as_u64().unwrap_or(0) > 0,
            "{id}: {done}"
        );
        assert!(
            audio["totalAudioEnergy"].as_f64().unwrap_or(0.0) > 0.0,
            "{id}: {done}"
        );
        assert_eq!(audio["codec"], mime, "{id}: {done}");
        let label = done["stats"][id]["label"].as_str().unwrap_or("");
        assert!(label.contains("main 640x360"), "{id}: {label}");
    }
    let hevc = &done["stats"]["hevc"];
    assert_eq!(hevc["audio"]["codec"], "audio/opus", "{done}");
    assert!(
        hevc["audio"]["totalAudioEnergy"].as_f64().unwrap_or(0.0) > 0.0,
        "{done}"
    );
    assert_eq!(
        (hevc["frameWidth"].as_u64(), hevc["frameHeight"].as_u64()),
        (Some(640), Some(360)),
        "{done}"
    );
    let label = hevc["label"].as_str().unwrap_or("");
    assert!(label.contains("substream 640x360"), "{label}");
    assert!(label.contains("audio aac->opus"), "{label}");

    // The muting camera: its audio stopped, its video and its viewer went on.
    let packets = |v: &Vasd| {
        v.camera("mute").unwrap_or_default()["audio_packets"]
            .as_u64()
            .unwrap_or(0)
    };
    let mut last = (packets(&v), Instant::now());
    wait_until(T, "the camera's audio stopped for 2 s", || {
        let now = packets(&v);
        if now != last.0 {
            last = (now, Instant::now());
        }
        now > 0 && last.1.elapsed() > Duration::from_secs(2)
    });
    let heard = progress(&muted, "audio_frames");
    assert!(
        heard > 0,
        "no audio before the silence: {}",
        muted.describe()
    );
    let seen = progress(&muted, "frames");
    wait_until(T, "video frames after the audio stopped", || {
        progress(&muted, "frames") > seen + 30
    });
    let cam = v.camera("mute").unwrap();
    assert_eq!(cam["state"], "streaming", "{cam}");
    let state = muted
        .events()
        .iter()
        .rev()
        .find(|e| e["event"] == "progress")
        .map(|e| e["states"][0].clone());
    assert_eq!(state, Some("connected".into()), "{}", muted.describe());
    assert_eq!(muted.decode_errors(), 0, "{}", muted.describe());
    muted.kill();
}
