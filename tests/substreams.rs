//! A camera with two streams, as real cameras have: the main stream (1280x720) records, the
//! substream (640x360) feeds the live view and the export. Two GStreamer servers stand for
//! the camera's two streams so each can fail alone.

mod daemon;
mod support;

use std::time::Duration;

use daemon::Vasd;
use frames::ExportReader;
use serde_json::Value;
use support::{segments, wait_until, RtspServer};

const T: Duration = Duration::from_secs(60);

fn counter(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

fn two_streams(id: &str, main: &str, sub: &str, extra: &str) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nurl = \"{main}\"\nrecord = true\n{extra}\
         roles = [\"record\"]\n\
         reconnect = {{ min_delay_ms = 200, max_delay_ms = 1000, io_timeout_ms = 2000 }}\n\
         [camera.substream]\nurl = \"{sub}\"\nroles = [\"live\", \"export\"]\n"
    )
}

#[test]
fn each_stream_serves_its_roles_and_fails_and_reloads_alone() {
    let main = RtspServer::start(&[("main", "cam720.mp4")]);
    let sub = RtspServer::start(&[("sub", "cam_aac.mp4"), ("sub2", "cam_h265.mp4")]);
    let rec = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir().unwrap();
    let head = format!(
        "[record]\ndir = \"{}\"\nsegment_seconds = 2\n\
         [export]\nenabled = true\nshm_dir = \"{}\"\n",
        rec.path().display(),
        shm.path().display()
    );
    // "idle" gives its substream only the export role and turns its export off: that
    // substream is never connected.
    let idle = two_streams(
        "idle",
        &main.url("main"),
        &sub.url("sub"),
        "export = false\n",
    )
    .replace("roles = [\"record\"]", "roles = [\"record\", \"live\"]")
    .replace("roles = [\"live\", \"export\"]", "roles = [\"export\"]");
    let config = |sub_mount: &str| {
        format!(
            "{head}{}{idle}",
            two_streams("two", &main.url("main"), &sub.url(sub_mount), "")
        )
    };
    let v = Vasd::start(&config("sub"));
    wait_until(T, "both streams streaming, frames exported", || {
        let c = v.camera("two").unwrap_or_default();
        c["state"] == "streaming"
            && c["substream"]["state"] == "streaming"
            && counter(&c["substream"]["export"], "frames_exported") > 10
    });

    // Threads and status name the streams and their roles.
    let names = v.thread_names();
    for thread in ["cam-two", "cam-two-sub", "cam-idle"] {
        assert!(names.iter().any(|n| n == thread), "{thread}: {names:?}");
    }
    assert!(!names.iter().any(|n| n == "cam-idle-sub"), "{names:?}");
    let c = v.camera("two").unwrap();
    assert_eq!(
        c["role_streams"],
        serde_json::json!({"record": "main", "live": "sub", "export": "sub"}),
        "{c}"
    );
    assert_eq!(c["stream"]["width"], 1280);
    assert_eq!(c["substream"]["stream"]["width"], 640);
    assert_eq!(c["substream"]["stream_kind"], "sub");
    assert!(
        c["export"].is_null(),
        "the main stream decodes nothing: {c}"
    );
    assert!(v.camera("idle").unwrap()["substream"].is_null());

    // The export has the substream's size; the recordings the main stream's.
    let reader = ExportReader::attach(shm.path(), "two").unwrap();
    let slot = reader.latest().expect("an exported frame");
    let mut data = Vec::new();
    let meta = reader
        .read_slot_into(slot.slot, slot.sequence, &mut data)
        .unwrap();
    assert_eq!((meta.width, meta.height), (640, 360));
    wait_until(T, "two segments of the main stream", || {
        segments(rec.path(), "two").len() >= 2
    });
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(&segments(rec.path(), "two")[0])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "1280,720");

    // The substream fails alone: the main stream does not reconnect.
    sub.drop_clients();
    wait_until(T, "the substream reconnected", || {
        let c = v.camera("two").unwrap_or_default();
        counter(&c["substream"], "reconnects") >= 1 && c["substream"]["state"] == "streaming"
    });
    assert_eq!(counter(&v.camera("two").unwrap(), "reconnects"), 0);
    // And the reverse.
    main.drop_clients();
    wait_until(T, "the main stream reconnected", || {
        counter(&v.camera("two").unwrap_or_default(), "reconnects") >= 1
    });
    let c = v.camera("two").unwrap();
    assert_eq!(counter(&c["substream"], "reconnects"), 1, "{c}");

    // A reload that changes only the substream restarts only the substream: the main
    // stream keeps its status (packets keep counting up, no reconnect).
    let before = counter(&v.camera("two").unwrap(), "packets");
    let segs = segments(rec.path(), "two").len();
    v.write_config(&config("sub2"));
    v.signal(libc::SIGHUP);
    wait_until(T, "the substream serves the new mount (H.265)", || {
        v.camera("two").unwrap_or_default()["substream"]["stream"]["codec"] == "h265"
    });
    let c = v.camera("two").unwrap();
    assert!(
        counter(&c, "packets") > before,
        "main status was reset: {c}"
    );
    assert_eq!(counter(&c, "reconnects"), 1, "{c}");
    assert_eq!(c["state"], "streaming");
    wait_until(T, "the main stream records on after the reload", || {
        segments(rec.path(), "two").len() >= segs + 2
    });

    // The H.265 substream cannot be shown live, and says so; back on H.264 it can again.
    let live = |v: &Vasd| v.camera("two").unwrap_or_default()["substream"]["live"].clone();
    wait_until(T, "the live view says why H.265 is not shown", || {
        live(&v)["error"]
            .as_str()
            .is_some_and(|e| e.contains("H.264"))
    });
    v.write_config(&config("sub"));
    v.signal(libc::SIGHUP);
    wait_until(T, "the live view takes the H.264 substream again", || {
        let l = live(&v);
        l["error"].is_null() && counter(&l, "units_received") > 0
    });
}
