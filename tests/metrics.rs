//! `GET /metrics` and the rates of `/api/cameras` on the real vasd with real fixture cameras.
//! The exposition is parsed by the Prometheus project's own Python client
//! (`prometheus_client.parser`, Debian's python3-prometheus-client), not by our reading of the
//! format. Also: the bearer token guards /metrics, and a non-loopback listen address without
//! a token refuses to start.

mod daemon;
mod support;

use std::process::Command;
use std::time::Duration;

use daemon::Vasd;
use serde_json::{Map, Value};
use support::{free_port, run_with_timeout, wait_until, RtspServer};

const T: Duration = Duration::from_secs(60);

/// Debian's Python, which has python3-prometheus-client; the pyenv one on PATH does not.
const PYTHON: &str = "/usr/bin/python3";

/// Parses the exposition in the file named by argv[1] and prints its families as JSON: name
/// (as the parser names it: counters without `_total`) -> type and samples. A parse error
/// raises, so the exit status is not 0 and the traceback is on stderr.
const PARSER: &str = r#"
import json, sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    sys.exit("cannot import prometheus_client (%s): install the Debian package python3-prometheus-client" % e)
with open(sys.argv[1]) as f:
    text = f.read()
families = {}
for family in text_string_to_metric_families(text):
    if family.name in families:
        sys.exit("family %s appears twice" % family.name)
    families[family.name] = {
        "type": family.type,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
    }
print(json.dumps(families))
"#;

/// A token long enough for [server] token (16 characters at least).
const TOKEN: &str = "metrics-test-token-0123456789";

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

fn get(port: u16, path: &str, token: Option<&str>) -> Reply {
    let mut request =
        ureq::get(&format!("http://127.0.0.1:{port}{path}")).timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    Reply {
        status: response.status(),
        content_type: response.header("Content-Type").unwrap_or("").to_string(),
        body: response.into_string().expect("body"),
    }
}

/// The families of one scrape, as the Prometheus parser read them.
struct Scrape {
    families: Map<String, Value>,
    text: String,
}

impl Scrape {
    fn of(v: &Vasd, token: Option<&str>) -> Scrape {
        let reply = get(v.port, "/metrics", token);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            reply.content_type.starts_with("text/plain; version=0.0.4"),
            "{}",
            reply.content_type
        );
        Scrape::parse(reply.body)
    }

    fn parse(text: String) -> Scrape {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        let out = run_with_timeout(
            Command::new(PYTHON).arg("-c").arg(PARSER).arg(file.path()),
            Duration::from_secs(30),
        );
        assert!(
            out.status.is_some_and(|s| s.success()),
            "the Prometheus parser failed ({:?}): {}\n--- exposition ---\n{text}",
            out.status,
            out.stderr
        );
        let families: Value = serde_json::from_str(&out.stdout).expect("parser JSON");
        Scrape {
            families: families.as_object().unwrap().clone(),
            text,
        }
    }

    fn family(&self, name: &str) -> &Value {
        self.families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name} in\n{}", self.text))
    }

    /// The value of the sample `sample` of `family` with exactly these labels, if there is one.
    fn value(&self, family: &str, sample: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        self.families.get(family)?["samples"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == sample && s["labels"].as_object() == Some(&want))
            .and_then(|s| s["value"].as_f64())
    }
}

/// One family to check: its name as the parser gives it, its type, the sample name, the
/// label besides `camera`, and where `/api/cameras` has the same figure (a JSON pointer into
/// the camera's object, or a fixed value for the state gauges of a streaming camera).
struct Expected {
    family: &'static str,
    kind: &'static str,
    sample: &'static str,
    label: Option<(&'static str, &'static str)>,
    api: Api,
}

enum Api {
    Pointer(&'static str),
    Streaming(f64),
}

fn counter(family: &'static str, sample: &'static str, api: &'static str) -> Expected {
    Expected {
        family,
        kind: "counter",
        sample,
        label: None,
        api: Api::Pointer(api),
    }
}

fn queue(
    family: &'static str,
    sample: &'static str,
    queue: &'static str,
    api: &'static str,
) -> Expected {
    Expected {
        label: Some(("queue", queue)),
        ..counter(family, sample, api)
    }
}

/// Every family of vasd(8) that a recorded, exported, live camera has.
fn expected() -> Vec<Expected> {
    let mut rows = vec![
        counter(
            "vas_packets_received",
            "vas_packets_received_total",
            "/packets",
        ),
        counter("vas_bytes_received", "vas_bytes_received_total", "/bytes"),
        counter("vas_key_frames", "vas_key_frames_total", "/key_frames"),
        counter("vas_reconnects", "vas_reconnects_total", "/reconnects"),
        counter("vas_failures", "vas_failures_total", "/failures"),
        Expected {
            family: "vas_camera_streaming",
            kind: "gauge",
            sample: "vas_camera_streaming",
            label: None,
            api: Api::Streaming(1.0),
        },
        counter(
            "vas_frames_decoded",
            "vas_frames_decoded_total",
            "/export/frames_decoded",
        ),
        counter(
            "vas_frames_exported",
            "vas_frames_exported_total",
            "/export/frames_exported",
        ),
        counter(
            "vas_decode_errors",
            "vas_decode_errors_total",
            "/export/decode_errors",
        ),
        counter(
            "vas_record_segments",
            "vas_record_segments_total",
            "/record/segments",
        ),
        counter(
            "vas_record_bytes",
            "vas_record_bytes_total",
            "/record/bytes",
        ),
        counter(
            "vas_record_write_errors",
            "vas_record_write_errors_total",
            "/record/write_errors",
        ),
        counter(
            "vas_record_units_skipped",
            "vas_record_units_skipped_total",
            "/record/units_skipped",
        ),
        Expected {
            family: "vas_live_viewers",
            kind: "gauge",
            sample: "vas_live_viewers",
            label: None,
            api: Api::Pointer("/live/viewers"),
        },
        counter(
            "vas_live_rtp_bytes_sent",
            "vas_live_rtp_bytes_sent_total",
            "/live/rtp_bytes_sent",
        ),
    ];
    let offered = ("vas_queue_units_offered", "vas_queue_units_offered_total");
    let dropped = ("vas_queue_units_dropped", "vas_queue_units_dropped_total");
    for ((family, sample), q, api) in [
        (offered, "record", "/queues/record/offered"),
        (dropped, "record", "/queues/record/dropped"),
        (offered, "live", "/queues/live/offered"),
        (dropped, "live", "/queues/live/dropped"),
    ] {
        rows.push(queue(family, sample, q, api));
    }
    for (state, value) in [
        ("connecting", 0.0),
        ("streaming", 1.0),
        ("backing_off", 0.0),
        ("stopped", 0.0),
    ] {
        rows.push(Expected {
            family: "vas_camera_state",
            kind: "gauge",
            sample: "vas_camera_state",
            label: Some(("state", state)),
            api: Api::Streaming(value),
        });
    }
    rows
}

impl Expected {
    /// What `/api/cameras` says for this row of camera `cam`.
    fn api_value(&self, cam: &Value) -> f64 {
        match self.api {
            Api::Streaming(v) => {
                assert_eq!(cam["state"], "streaming", "{cam}");
                v
            }
            Api::Pointer(p) => cam
                .pointer(p)
                .and_then(Value::as_f64)
                .unwrap_or_else(|| panic!("no {p} in {cam}")),
        }
    }

    fn labels<'a>(&self, camera: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut labels = vec![("camera", camera)];
        labels.extend(self.label);
        labels
    }
}

fn u64_at(cam: &Value, pointer: &str) -> u64 {
    cam.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// Two recorded, exported, live cameras and a third with none of that: every family is there
/// for each camera that has it, each value lies between the `/api/cameras` readings taken just
/// before and just after the scrape, the counters grow from one scrape to the next, and the
/// rates of `/api/cameras` match the 30 fps fixture.
#[test]
fn metrics_agree_with_the_camera_status() {
    let server = RtspServer::start(&[
        ("a", "cam720.mp4"),
        ("b", "cam720.mp4"),
        ("c", "cam720.mp4"),
    ]);
    let record = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir().unwrap();
    let recorded = |id: &str| {
        daemon::camera(id, &server.url(id)).replacen(
            "[[camera]]\n",
            "[[camera]]\nrecord = true\n",
            1,
        )
    };
    let body = format!(
        "[record]\ndir = \"{}\"\nsegment_seconds = 2\n\n[export]\nenabled = true\nshm_dir = \"{}\"\n\n{}{}{}export = false\nlive = false\n",
        record.path().display(),
        shm.path().display(),
        recorded("a"),
        recorded("b"),
        daemon::camera("c", &server.url("c")),
    );
    let v = Vasd::start(&body);
    let full = ["a", "b"];
    wait_until(T, "cameras streaming, exporting and recording", || {
        let cams = v.cameras();
        full.iter().all(|id| {
            cams.get(*id).is_some_and(|c| {
                c["state"] == "streaming"
                    && u64_at(c, "/export/frames_exported") > 0
                    && u64_at(c, "/record/bytes") > 0
            })
        }) && cams.get("c").is_some_and(|c| c["state"] == "streaming")
    });

    let before = v.cameras();
    let first = Scrape::of(&v, None);
    let after = v.cameras();

    let version = first
        .family("vas_build_info")
        .get("samples")
        .and_then(|s| s[0]["labels"]["version"].as_str())
        .map(str::to_string);
    assert_eq!(version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    for row in expected() {
        assert_eq!(first.family(row.family)["type"], row.kind, "{}", row.family);
        for id in full {
            let got = first
                .value(row.family, row.sample, &row.labels(id))
                .unwrap_or_else(|| {
                    panic!(
                        "no {}{:?} for camera {id} in\n{}",
                        row.sample, row.label, first.text
                    )
                });
            let low = row.api_value(&before[id]);
            let high = row.api_value(&after[id]);
            assert!(
                low <= got && got <= high,
                "{}{:?} of camera {id}: {got}, /api/cameras said {low} before and {high} after",
                row.sample,
                row.label
            );
        }
    }
    // Camera c is neither exported, recorded nor live: those families leave it out, and it
    // has no queue at all.
    for row in expected() {
        let present = first.value(row.family, row.sample, &row.labels("c"));
        let only_full = [
            "vas_frames",
            "vas_decode",
            "vas_record",
            "vas_live",
            "vas_queue",
        ]
        .iter()
        .any(|p| row.family.starts_with(p));
        assert_eq!(
            present.is_some(),
            !only_full,
            "{}{:?} of camera c: {present:?}",
            row.sample,
            row.label
        );
    }

    // Counters only grow, and those that move with every unit grow within a second at 30 fps
    // (the recorder's move when a segment closes, every 2 s here).
    std::thread::sleep(Duration::from_secs(1));
    let second = Scrape::of(&v, None);
    for row in expected().iter().filter(|r| r.kind == "counter") {
        for id in full {
            let a = first
                .value(row.family, row.sample, &row.labels(id))
                .unwrap();
            let b = second
                .value(row.family, row.sample, &row.labels(id))
                .unwrap();
            assert!(
                a <= b,
                "{}{:?} of {id} went from {a} to {b}",
                row.sample,
                row.label
            );
        }
    }
    for (family, sample, label) in [
        ("vas_packets_received", "vas_packets_received_total", None),
        ("vas_bytes_received", "vas_bytes_received_total", None),
        ("vas_frames_decoded", "vas_frames_decoded_total", None),
        ("vas_frames_exported", "vas_frames_exported_total", None),
        (
            "vas_queue_units_offered",
            "vas_queue_units_offered_total",
            Some(("queue", "record")),
        ),
    ] {
        for id in full {
            let mut labels = vec![("camera", id)];
            labels.extend(label);
            let a = first.value(family, sample, &labels).unwrap();
            let b = second.value(family, sample, &labels).unwrap();
            assert!(a < b, "{sample}{label:?} of {id} stayed at {a}");
        }
    }

    // Rates: the fixture sends 30 access units a second. Readings at least 2 s apart, so the
    // second one is measured over a full window that began after the cameras streamed.
    std::thread::sleep(Duration::from_secs(2));
    let _ = v.cameras();
    std::thread::sleep(Duration::from_millis(2100));
    let cams = v.cameras();
    for id in ["a", "b", "c"] {
        let cam = &cams[id];
        let fps_in = cam["fps_in"].as_f64().unwrap();
        let kbps = cam["bitrate_kbps"].as_f64().unwrap();
        assert!((25.0..=35.0).contains(&fps_in), "fps_in of {id}: {cam}");
        assert!(kbps > 0.0, "bitrate_kbps of {id}: {cam}");
    }
    for id in full {
        let fps_out = cams[id]["fps_out"].as_f64().unwrap();
        assert!(fps_out > 0.0, "fps_out of {id}: {}", cams[id]);
    }
    assert!(cams["c"]["fps_out"].is_null(), "{}", cams["c"]);
}

/// With [server] token set, /metrics (like /api/cameras) answers 401 without the token or with
/// a wrong one, and 200 with it; /healthz stays open.
#[test]
fn metrics_need_the_token_when_one_is_set() {
    // The harness writes `[server]` with `listen` first: a body starting with a bare key adds
    // it to that table.
    let v = Vasd::start(&format!("token = \"{TOKEN}\"\n"));
    for (path, token, status) in [
        ("/metrics", None, 401),
        ("/metrics", Some("wrong-token-0123456789"), 401),
        ("/metrics", Some(TOKEN), 200),
        ("/api/cameras", None, 401),
        ("/api/cameras", Some(TOKEN), 200),
        ("/healthz", None, 200),
    ] {
        let reply = get(v.port, path, token);
        assert_eq!(
            reply.status, status,
            "{path} with {token:?}: {}",
            reply.body
        );
    }
    // No camera: only the build info, and still a valid exposition.
    let scrape = Scrape::of(&v, Some(TOKEN));
    let names: Vec<&String> = scrape.families.keys().collect();
    assert_eq!(names, ["vas_build_info"], "{}", scrape.text);
}

/// A listen address beyond loopback without a token is a start-up error naming the fix, not
/// an API open to the network. The check comes before the bind, so nothing listens, ever.
#[test]
fn listening_beyond_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vas.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"0.0.0.0:{}\"\n", free_port()),
    )
    .unwrap();
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_vasd"))
            .arg("--config")
            .arg(&config)
            .env_remove("AI_FRAME_EXPORT_ENABLED"),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("a non-loopback address needs [server] token set"),
        "{}",
        out.stderr
    );
}
