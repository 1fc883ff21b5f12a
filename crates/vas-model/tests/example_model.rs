//! The example model, Rust and Python, against a real export written with the frames crate's
//! SlotWriter: each answers a frame reference with numbers computed from the pixels (worked
//! out by hand below), answers what it cannot serve with an error reply, and the two compute
//! the same result bit for bit.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use frames::{ExportReader, FrameInfo, SlotRef, SlotWriter, WriterOptions};
use serde_json::{json, Value};
use vas_model::protocol::FrameRequest;

const W: u32 = 64;
const H: u32 = 48;
const PYTHON: &str = "/usr/bin/python3";

/// A model process, killed on drop.
struct ModelProcess(Child);

impl Drop for ModelProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_socket(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(path).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the model exited with {status} before listening");
        }
        assert!(
            Instant::now() < deadline,
            "the model never listened on {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rust_model(socket: &Path) -> ModelProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vas-model-example"))
        .args(["--grid", "2", "--socket"])
        .arg(socket)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_socket(socket, &mut child);
    ModelProcess(child)
}

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python")
}

fn numpy_available() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success())
}

fn python_model(socket: &Path) -> ModelProcess {
    let mut child = Command::new(PYTHON)
        .args(["-m", "vas_model.example", "--grid", "2", "--socket"])
        .arg(socket)
        .env("PYTHONPATH", python_dir())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_socket(socket, &mut child);
    ModelProcess(child)
}

/// Publishes a frame whose luma is `top` above the middle row and `bottom` below it.
fn publish(writer: &mut SlotWriter, top: u8, bottom: u8, pts_ns: i64) {
    let mut fill = writer.begin();
    let stride = fill.stride_y();
    let (y, uv) = fill.planes_mut();
    for (r, row) in y.chunks_mut(stride).enumerate() {
        row.fill(if (r as u32) < H / 2 { top } else { bottom });
    }
    uv.fill(128);
    fill.publish(FrameInfo::captured_now(pts_ns));
}

struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Connection {
    fn open(socket: &Path) -> Connection {
        let stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Connection {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn ask(&mut self, request: &Value) -> Value {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        self.writer.write_all(&line).unwrap();
        let mut reply = String::new();
        self.reader.read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
    }
}

fn request(id: u64, root: &Path, frame: &SlotRef) -> Value {
    serde_json::to_value(FrameRequest::for_slot(
        id,
        "cam",
        root.to_str().unwrap(),
        frame,
        2000,
    ))
    .unwrap()
}

/// The requests of one run, against a fresh export: the replies of one model.
fn run_session(socket: &Path) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    let mut writer = SlotWriter::create(
        &root,
        "cam",
        &WriterOptions {
            slots: 2,
            ..WriterOptions::new(W, H)
        },
    )
    .unwrap();
    let reader = ExportReader::attach(&root, "cam").unwrap();
    let mut conn = Connection::open(socket);
    let mut replies = Vec::new();

    publish(&mut writer, 100, 200, 0);
    let first = reader.latest().unwrap();
    replies.push(conn.ask(&request(1, &root, &first)));

    publish(&mut writer, 110, 110, 40_000_000);
    let second = reader.latest().unwrap();
    replies.push(conn.ask(&request(2, &root, &second)));

    // Two more frames lap the 2-slot ring: the first frame's slot now holds another one.
    publish(&mut writer, 0, 0, 80_000_000);
    publish(&mut writer, 0, 0, 120_000_000);
    replies.push(conn.ask(&request(3, &root, &first)));

    let mut future = request(4, &root, &reader.latest().unwrap());
    future["v"] = json!(2);
    replies.push(conn.ask(&future));

    let mut elsewhere = request(5, &root, &reader.latest().unwrap());
    elsewhere["camera"] = json!("nope");
    replies.push(conn.ask(&elsewhere));
    replies
}

fn check_replies(replies: &[Value]) {
    // Frame 1: luma 100 above, 200 below; no previous frame.
    assert_eq!(
        replies[0],
        json!({"id": 1, "result": {
            "motion": null, "changed": null, "previous_frame_id": null,
            "grid": 2, "luma": [[100.0, 100.0], [200.0, 200.0]],
        }})
    );
    // Frame 2: luma 110 everywhere. Motion samples one pixel in 4x4: 12 rows of 16, the top
    // 6 rows moved by 10, the bottom 6 by 90: (96 * 10 + 96 * 90) / (192 * 255).
    let r = &replies[1]["result"];
    assert_eq!(replies[1]["id"], 2);
    assert_eq!(r["luma"], json!([[110.0, 110.0], [110.0, 110.0]]));
    assert_eq!(r["motion"], json!(9600.0 / 48960.0));
    assert_eq!(r["changed"], json!(0.5));
    // Frame ids start at 1 in a fresh export.
    assert_eq!(r["previous_frame_id"], json!(1));
    // A lapped frame, a future protocol, an export that is not there: error replies.
    assert_eq!(replies[2]["id"], 3);
    assert!(
        replies[2]["error"].as_str().unwrap().contains("lapped"),
        "{}",
        replies[2]
    );
    assert_eq!(replies[3]["id"], 4);
    assert!(
        replies[3]["error"]
            .as_str()
            .unwrap()
            .contains("protocol version 2 is not supported"),
        "{}",
        replies[3]
    );
    assert_eq!(replies[4]["id"], 5);
    assert!(
        replies[4]["error"].as_str().unwrap().contains("no export"),
        "{}",
        replies[4]
    );
}

#[test]
fn the_rust_example_computes_from_the_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("m.sock");
    let _model = rust_model(&socket);
    check_replies(&run_session(&socket));
}

#[test]
fn the_python_example_computes_the_same_numbers() {
    if !numpy_available() {
        eprintln!("skipped: {PYTHON} has no numpy (apt install python3-numpy)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rust_socket = dir.path().join("rust.sock");
    let python_socket = dir.path().join("python.sock");
    let _rust = rust_model(&rust_socket);
    let _python = python_model(&python_socket);
    let from_rust = run_session(&rust_socket);
    let from_python = run_session(&python_socket);
    check_replies(&from_python);
    // The results, to the last bit; the error texts may differ in wording.
    for (r, p) in from_rust.iter().zip(&from_python) {
        assert_eq!(r["id"], p["id"]);
        assert_eq!(r["result"], p["result"]);
        assert_eq!(r["error"].is_string(), p["error"].is_string(), "{r} {p}");
    }
}

#[test]
fn a_line_that_is_not_a_request_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("m.sock");
    let _model = rust_model(&socket);
    let mut conn = Connection::open(&socket);
    conn.writer.write_all(b"hello\n").unwrap();
    let mut reply = String::new();
    assert_eq!(conn.reader.read_line(&mut reply).unwrap(), 0, "{reply}");
    // The model goes on serving other connections.
    let mut other = Connection::open(&socket);
    let r = other.ask(
        &json!({"v": 2, "type": "frame", "id": 9, "camera": "x", "root": "/x",
        "generation": 1, "slot": 0, "sequence": 2, "frame_id": 1, "pts_ns": 0, "wall_ns": 0,
        "mono_ns": 0, "width": 2, "height": 2, "stride_y": 2, "stride_uv": 2,
        "format": "nv12", "key_frame": true, "deadline_ms": 100}),
    );
    assert_eq!(r["id"], 9);
    assert!(r["error"].is_string());
}
