//! Ruth with real processes: vasd exporting frames of the RTSP fixture, ruth, model
//! processes (the Rust and Python examples) and fake models inside the test. Rates are
//! checked on the frames' own timestamps and ids, never on wall-clock speed; every wait is
//! for a state.

mod daemon;
mod ruth_support;
mod support;

use std::time::Duration;

use daemon::{camera, Vasd};
use ruth_support::{
    numpy_available, wait_for, Behavior, EventTap, ExportRoot, FakeModel, ModelProcess, Ruth,
    RuthConfig,
};
use serde_json::Value;
use support::RtspServer;

const T: Duration = Duration::from_secs(40);

/// vasd exporting camera "a" (1280x720 at 30 fps) and, if asked, "b" (640x480 at 25 fps).
fn vasd_with(root: &ExportRoot, server: &RtspServer, with_b: bool) -> Vasd {
    let mut body = root.vasd_section() + &camera("a", &server.url("a"));
    if with_b {
        body += &camera("b", &server.url("b"));
    }
    Vasd::start(&body)
}

fn requests_of(fake: &FakeModel, camera: &str) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r["camera"] == camera)
        .collect()
}

fn pts(v: &Value) -> i64 {
    v["pts_ns"].as_i64().unwrap()
}

fn frame_id(v: &Value) -> u64 {
    v["frame_id"].as_u64().unwrap()
}

/// Checks what one subscription was sent (requests or events, in order) against its `fps`:
/// - never more: n frames lie in n different cells of 1/fps s, so the first and the last are
///   more than n - 2 periods apart in stream time;
/// - not much less: at least 0.9 x min(fps, source fps), the source rate taken from the
///   frame ids (one per source frame) over the same stretch of pts.
fn check_rate(name: &str, sent: &[Value], fps: f64) {
    assert!(sent.len() >= 10, "{name}: only {} frames", sent.len());
    // The first frames after attaching may come before the pipeline settles.
    let sent = &sent[2..];
    for pair in sent.windows(2) {
        assert!(
            frame_id(&pair[1]) > frame_id(&pair[0]),
            "{name}: a frame sent twice or out of order"
        );
    }
    let n = sent.len() as f64;
    let span_ns = (pts(&sent[sent.len() - 1]) - pts(&sent[0])) as f64;
    let period_ns = 1e9 / fps;
    assert!(
        (n - 2.0) * period_ns < span_ns,
        "{name}: {n} frames within {:.0} ms of stream time at fps {fps}",
        span_ns / 1e6
    );
    let ids = (frame_id(&sent[sent.len() - 1]) - frame_id(&sent[0])) as f64;
    let source_fps = ids / (span_ns / 1e9);
    let got_fps = (n - 1.0) / (span_ns / 1e9);
    let want = fps.min(source_fps);
    assert!(
        got_fps >= 0.9 * want,
        "{name}: {got_fps:.2} frames/s of stream time, want at least 0.9 x {want:.2} \
         (fps {fps}, source {source_fps:.2})"
    );
}

/// Each subscription gets at most `fps` frames a second of stream time, and at least 0.9 of
/// what it can get while its model keeps up; a model slower than its `fps` gets fewer frames,
/// always recent ones (no backlog). The Python and Rust example models compute the same
/// numbers from the same real frames.
#[test]
fn rates_follow_fps_and_a_slow_model_gets_fewer_frames_never_a_backlog() {
    let root = ExportRoot::new();
    let server = RtspServer::start(&[("a", "cam720.mp4"), ("b", "cam480_yuvj.mp4")]);
    let _vasd = vasd_with(&root, &server, true);
    let dir = tempfile::tempdir().unwrap();
    let sock = |name: &str| dir.path().join(format!("{name}.sock"));
    let fake_a = FakeModel::start(&sock("fa"), Behavior::Good);
    let fake_b = FakeModel::start(&sock("fb"), Behavior::Good);
    // 250 ms per frame: at most 4 frames a second, against fps 10.
    let _slow = ModelProcess::rust(&sock("slow"), &["--delay-ms", "250"]);
    let _rust = ModelProcess::rust(&sock("rust"), &[]);
    let python = numpy_available().then(|| ModelProcess::python(&sock("py"), &[]));
    let mut config = RuthConfig::default()
        .model("fa", &sock("fa"), "")
        .model("fb", &sock("fb"), "")
        .model("slow", &sock("slow"), "")
        .model("rust", &sock("rust"), "")
        // (camera, model, fps): below, above and at the source rate.
        .subscribe("a", "fa", "7")
        .subscribe("a", "fb", "60")
        .subscribe("b", "fa", "25")
        .subscribe("b", "fb", "12.5")
        .subscribe("a", "slow", "10")
        .subscribe("b", "rust", "5");
    if python.is_some() {
        config = config
            .model("py", &sock("py"), "")
            .subscribe("b", "py", "2.5");
    } else {
        eprintln!("the Python model is skipped: /usr/bin/python3 has no numpy");
    }
    let ruth = Ruth::start(&root.path, &config);
    let tap = EventTap::connect(&ruth);

    wait_for(T, "5 s of frames for a/fa at 7 fps", || {
        requests_of(&fake_a, "a").len() >= 37
    });
    wait_for(T, "a/slow results", || tap.count("a", "slow") >= 12);
    if python.is_some() {
        wait_for(
            T,
            "3 frames seen by both the Rust and the Python model",
            || common_frames(&tap).len() >= 3,
        );
    }

    check_rate("a/fa", &requests_of(&fake_a, "a"), 7.0);
    check_rate("a/fb", &requests_of(&fake_b, "a"), 60.0);
    check_rate("b/fa", &requests_of(&fake_a, "b"), 25.0);
    check_rate("b/fb", &requests_of(&fake_b, "b"), 12.5);
    check_rate("b/rust", &tap.of("b", "rust"), 5.0);

    // The slow model: fewer frames than fps 10, the rest skipped and counted, and every
    // result is of a recent frame. With a queue the latency would grow by 150 ms a second
    // (10 frames queued, 4 served) and pass 1 s within 7 s.
    let slow = tap.of("a", "slow");
    let span_s = (pts(slow.last().unwrap()) - pts(&slow[0])) as f64 / 1e9;
    assert!(
        (slow.len() - 1) as f64 / span_s <= 4.5,
        "a/slow got {} frames in {span_s:.1} s",
        slow.len()
    );
    for e in &slow {
        let latency = e["latency_capture_ms"].as_f64().unwrap();
        assert!(latency < 1000.0, "a/slow got a frame {latency} ms old: {e}");
        let dispatch = e["latency_dispatch_ms"].as_f64().unwrap();
        assert!(
            dispatch >= 250.0,
            "the delay is part of the dispatch latency: {e}"
        );
    }
    let row = ruth.subscription("a", "slow");
    assert!(
        row["counters"]["skipped_busy"].as_u64().unwrap() > 0,
        "{row}"
    );
    assert_eq!(row["state"], "up", "{row}");
    let c = &row["counters"];
    assert_eq!(
        c["due"].as_u64().unwrap(),
        [
            "dispatched",
            "skipped_busy",
            "skipped_down",
            "skipped_write"
        ]
        .iter()
        .map(|k| c[*k].as_u64().unwrap())
        .sum::<u64>(),
        "every due frame is dispatched or counted as skipped: {row}"
    );

    // Results computed from the pixels: a 3x3 grid of mean luma, identical from both
    // languages for the same frame.
    for e in tap.of("b", "rust") {
        let luma = e["result"]["luma"].as_array().unwrap();
        assert_eq!(luma.len(), 3, "{e}");
        assert!(luma
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .all(|v| v.as_f64().unwrap() > 0.0));
    }
    for (rust, py) in common_frames(&tap) {
        assert_eq!(
            rust["result"]["luma"],
            py["result"]["luma"],
            "frame {}",
            frame_id(&rust)
        );
    }
    assert!(
        !tap.is_closed(),
        "a subscriber that keeps up stays connected"
    );
}

/// (Rust event, Python event) pairs for the frames both models got.
fn common_frames(tap: &EventTap) -> Vec<(Value, Value)> {
    let rust = tap.of("b", "rust");
    tap.of("b", "py")
        .into_iter()
        .filter_map(|p| {
            let r = rust.iter().find(|r| frame_id(r) == frame_id(&p))?;
            Some((r.clone(), p))
        })
        .collect()
}

/// Models that answer garbage, an oversized line, two answers, errors, or that never read
/// or never answer: each takes down only its own subscription (status says why), no frame is
/// ever sent twice, and the good model on the same camera goes on; ruth answers status
/// throughout.
#[test]
fn misbehaving_models_go_down_alone_and_ruth_stays_responsive() {
    let root = ExportRoot::new();
    let server = RtspServer::start(&[("a", "cam720.mp4")]);
    let _vasd = vasd_with(&root, &server, false);
    let dir = tempfile::tempdir().unwrap();
    let sock = |name: &str| dir.path().join(format!("{name}.sock"));
    let fakes: Vec<(&str, FakeModel)> = [
        ("good", Behavior::Good),
        ("garbage", Behavior::Garbage),
        ("oversized", Behavior::Oversized),
        ("deaf", Behavior::NeverReads),
        ("hang", Behavior::Hangs),
        ("twice", Behavior::AnswersTwice),
        ("errors", Behavior::Errors),
    ]
    .into_iter()
    .map(|(name, b)| (name, FakeModel::start(&sock(name), b)))
    .collect();
    let mut config = RuthConfig::default();
    for (name, _) in &fakes {
        // Short deadlines so hanging models are found quickly; no reconnect during the test,
        // so a down subscription stays down with its reason.
        config = config
            .model(
                name,
                &sock(name),
                "deadline_ms = 500\nreconnect_ms = 600000\n",
            )
            .subscribe("a", name, "10");
    }
    let ruth = Ruth::start(&root.path, &config);
    let tap = EventTap::connect(&ruth);

    // (model, why it goes down)
    let table = [
        ("garbage", "garbage from the model"),
        ("oversized", "longer than 1048576 bytes"),
        ("deaf", "no reply within 500 ms"),
        ("hang", "no reply within 500 ms"),
    ];
    for (model, why) in table {
        wait_for(T, &format!("a/{model} down: {why}"), || {
            let row = ruth.subscription("a", model);
            row["state"] == "down" && row["down_reason"].as_str().is_some_and(|r| r.contains(why))
        });
        assert_eq!(ruth.subscription("a", model)["counters"]["downs"], 1);
        assert!(
            ruth.log().contains(&format!("a/{model}: down: ")),
            "the log names it"
        );
    }
    // The good one on the same camera keeps going, and so do the merely odd ones.
    let good = tap.count("a", "good");
    wait_for(T, "a/good keeps delivering", || {
        tap.count("a", "good") >= good + 20
    });
    for model in ["good", "twice", "errors"] {
        let row = ruth.subscription("a", model);
        assert_eq!(row["state"], "up", "{row}");
        assert_eq!(row["counters"]["downs"], 0, "{row}");
    }
    let twice = ruth.subscription("a", "twice");
    assert!(
        twice["counters"]["replies_dropped"].as_u64().unwrap() >= 3,
        "{twice}"
    );
    let errors = ruth.subscription("a", "errors");
    assert!(
        errors["counters"]["model_errors"].as_u64().unwrap() >= 3,
        "{errors}"
    );
    assert_eq!(errors["counters"]["results"], 0);
    assert_eq!(tap.count("a", "errors"), 0, "an error reply is no event");
    assert_eq!(errors["last_model_error"], "cannot see");
    // Twice-answered frames give one event each.
    let events = tap.of("a", "twice");
    for pair in events.windows(2) {
        assert!(
            frame_id(&pair[1]) > frame_id(&pair[0]),
            "one event per frame"
        );
    }
    // No frame was ever sent twice to any model.
    for (name, fake) in &fakes {
        let ids: Vec<u64> = fake.requests().iter().map(frame_id).collect();
        assert!(ids.windows(2).all(|w| w[1] > w[0]), "{name} got {ids:?}");
        assert_eq!(fake.connections(), 1, "{name} was not reconnected");
    }
    assert!(ruth.try_status().is_some());
}

/// kill -9 of one model: its subscription goes down (status and log), the other model on
/// the same camera is not disturbed, the frame in flight is never resent, and when a model
/// listens on the socket again ruth reconnects and sends it only new frames.
#[test]
fn kill_9_of_a_model_downs_only_its_subscription_and_no_frame_is_resent() {
    let root = ExportRoot::new();
    let server = RtspServer::start(&[("a", "cam720.mp4")]);
    let _vasd = vasd_with(&root, &server, false);
    let dir = tempfile::tempdir().unwrap();
    let victim_sock = dir.path().join("victim.sock");
    let other_sock = dir.path().join("other.sock");
    let mut victim = ModelProcess::rust(&victim_sock, &[]);
    let _other = ModelProcess::rust(&other_sock, &[]);
    let config = RuthConfig::default()
        .model("victim", &victim_sock, "reconnect_ms = 200\n")
        .model("other", &other_sock, "")
        .subscribe("a", "victim", "10")
        .subscribe("a", "other", "10");
    let ruth = Ruth::start(&root.path, &config);
    let tap = EventTap::connect(&ruth);
    wait_for(T, "both models deliver", || {
        tap.count("a", "victim") >= 10 && tap.count("a", "other") >= 10
    });

    victim.kill9();
    wait_for(T, "a/victim down", || {
        ruth.subscription("a", "victim")["state"] == "down"
    });
    let down = ruth.subscription("a", "victim");
    let last_sent = down["last_frame_id"].as_u64().unwrap();
    assert_eq!(
        down["in_flight"],
        Value::Null,
        "the frame in flight is dropped: {down}"
    );
    let reason = down["down_reason"].as_str().unwrap();
    assert!(
        reason.contains("closed the connection") || reason.contains("nothing listens"),
        "{reason}"
    );
    assert!(ruth.log().contains("a/victim: down: "), "{}", ruth.log());
    let other = tap.count("a", "other");
    wait_for(T, "a/other keeps delivering", || {
        tap.count("a", "other") >= other + 20
    });
    let row = ruth.subscription("a", "other");
    assert_eq!(
        (row["state"].as_str(), row["counters"]["downs"].as_u64()),
        (Some("up"), Some(0))
    );
    // Still down while nothing listens: due frames are skipped, not kept for later.
    wait_for(T, "frames skipped while down", || {
        ruth.subscription("a", "victim")["counters"]["skipped_down"].as_u64() >= Some(5)
    });

    // A model is back on the socket: ruth reconnects by itself and sends only frames that
    // were published after the kill.
    let back = FakeModel::start(&victim_sock, Behavior::Good);
    wait_for(T, "the new model gets frames", || {
        back.requests().len() >= 3
    });
    let first = frame_id(&back.requests()[0]);
    assert!(
        first > last_sent,
        "frame {first} resent (last sent before the kill: {last_sent})"
    );
    let row = ruth.subscription("a", "victim");
    assert_eq!(row["state"], "up", "{row}");
    assert_eq!(row["counters"]["connects"], 2, "{row}");
    assert_eq!(row["counters"]["downs"], 1, "{row}");
}
