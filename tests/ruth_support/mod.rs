//! Helpers for the Ruth integration tests (tests/ruth_*.rs): the ruth and vas-model-example
//! binaries, a shared-memory export root per test, a ruth process with its config, status
//! and event sockets, model processes (the Rust and Python examples), and in-process fake
//! models that misbehave on purpose.
//!
//! Include it with `mod ruth_support;` beside `mod daemon; mod support;`.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// Debian's Python, with python3-numpy (see packaging/setup-debian.sh).
pub const PYTHON: &str = "/usr/bin/python3";

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The ruth and vas-model-example binaries of this build profile, next to vasd.
pub struct Binaries {
    pub ruth: PathBuf,
    pub model_example: PathBuf,
}

/// Finds the binaries beside vasd. `cargo test --workspace` builds them (their crates have
/// integration tests); when they are missing or older than their sources (say, after
/// `cargo test --test ruth_dispatch` alone), they are built here with the same cargo, target
/// directory and profile. Cargo holds no lock while tests run, so this cannot deadlock.
pub fn binaries() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_BIN_EXE_vasd"))
            .parent()
            .unwrap()
            .to_path_buf();
        let bins = Binaries {
            ruth: dir.join("ruth"),
            model_example: dir.join("vas-model-example"),
        };
        let sources = ["crates/ruth", "crates/vas-model", "crates/frames"]
            .iter()
            .map(|c| newest_mtime(&workspace().join(c)))
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let fresh = |bin: &Path| {
            fs::metadata(bin)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= sources)
        };
        if !(fresh(&bins.ruth) && fresh(&bins.model_example)) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(workspace())
                .args(["build", "-p", "ruth", "-p", "vas-model", "--bins"]);
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build for ruth");
            assert!(status.success(), "cargo build -p ruth -p vas-model failed");
        }
        assert!(bins.ruth.exists(), "{} is missing", bins.ruth.display());
        bins
    })
}

fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let Ok(entries) = fs::read_dir(dir) else {
        return newest;
    };
    for e in entries.flatten() {
        let path = e.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            e.metadata().and_then(|m| m.modified()).unwrap_or(newest)
        };
        newest = newest.max(t);
    }
    newest
}

/// A fresh export root in /dev/shm (where vasd and Ruth really work), removed on drop.
pub struct ExportRoot {
    pub path: PathBuf,
}

impl ExportRoot {
    pub fn new() -> ExportRoot {
        static N: AtomicUsize = AtomicUsize::new(0);
        // Relaxed: only makes names unique within this process.
        let n = N.fetch_add(1, Ordering::Relaxed);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!("vas-ruth-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        ExportRoot { path }
    }

    /// The `[export]` section of vas.toml that exports into this root.
    pub fn vasd_section(&self) -> String {
        format!(
            "[export]\nenabled = true\nshm_dir = \"{}\"\n\n",
            self.path.display()
        )
    }
}

impl Drop for ExportRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A `[[model]]` table.
pub struct ModelEntry {
    pub id: String,
    pub socket: PathBuf,
    /// Extra `key = value` lines (deadline_ms, max_reply_bytes, reconnect_ms).
    pub extra: String,
}

/// What goes into ruth.toml, besides the sockets and export root the harness fills in.
#[derive(Default)]
pub struct RuthConfig {
    /// `[events] stdout`; ruth's standard output goes to `Ruth::stdout_path`.
    pub stdout: bool,
    pub models: Vec<ModelEntry>,
    /// (camera, model, fps as written in TOML)
    pub subscriptions: Vec<(String, String, String)>,
}

impl RuthConfig {
    pub fn model(mut self, id: &str, socket: &Path, extra: &str) -> Self {
        self.models.push(ModelEntry {
            id: id.into(),
            socket: socket.into(),
            extra: extra.into(),
        });
        self
    }

    pub fn subscribe(mut self, camera: &str, model: &str, fps: &str) -> Self {
        self.subscriptions
            .push((camera.into(), model.into(), fps.into()));
        self
    }

    fn text(&self, root: &Path, dir: &Path) -> String {
        let mut t = format!(
            "[export]\nroot = \"{}\"\n\n[events]\nsocket = \"{}\"\nstdout = {}\n\n\
             [status]\nsocket = \"{}\"\n\n",
            root.display(),
            dir.join("events.sock").display(),
            self.stdout,
            dir.join("status.sock").display()
        );
        for m in &self.models {
            t += &format!(
                "[[model]]\nid = \"{}\"\nsocket = \"{}\"\n{}\n",
                m.id,
                m.socket.display(),
                m.extra
            );
        }
        for (camera, model, fps) in &self.subscriptions {
            t += &format!(
                "[[subscription]]\ncamera = \"{camera}\"\nmodel = \"{model}\"\nfps = {fps}\n\n"
            );
        }
        t
    }
}

/// A running ruth: config, status and events sockets in a temporary directory, stderr in a
/// log file. Killed on drop (its log printed if the test failed).
pub struct Ruth {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    root: PathBuf,
}

impl Ruth {
    pub fn start(root: &Path, config: &RuthConfig) -> Ruth {
        Ruth::start_with_env(root, config, &[])
    }

    pub fn start_with_env(root: &Path, config: &RuthConfig, env: &[(&str, &str)]) -> Ruth {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ruth = Ruth {
            child: None,
            dir,
            root: root.to_path_buf(),
        };
        ruth.write_config(config);
        let log = fs::File::create(ruth.log_path()).expect("log file");
        let stdout = fs::File::create(ruth.stdout_path()).expect("stdout file");
        let mut cmd = Command::new(&binaries().ruth);
        cmd.arg("--config")
            .arg(ruth.config_path())
            .arg("--log-level")
            .arg("debug")
            .env_remove("RUTH_TEST_PANIC_CAMERA")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        ruth.child = Some(cmd.spawn().expect("spawn ruth"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while ruth.try_status().is_none() {
            if let Some(status) = ruth.try_exit_status() {
                panic!("ruth exited with {status} at start:\n{}", ruth.log());
            }
            assert!(
                Instant::now() < deadline,
                "ruth never answered status:\n{}",
                ruth.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        ruth
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("ruth.toml")
    }

    pub fn events_socket(&self) -> PathBuf {
        self.dir.path().join("events.sock")
    }

    pub fn status_socket(&self) -> PathBuf {
        self.dir.path().join("status.sock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("ruth.log")
    }

    /// Where ruth's standard output (events, with `stdout: true`) goes.
    pub fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("stdout")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn write_config(&self, config: &RuthConfig) {
        fs::write(self.config_path(), config.text(&self.root, self.dir.path()))
            .expect("write config");
    }

    /// Rewrites the config and sends SIGHUP; returns once status shows the reload applied.
    pub fn reload(&self, config: &RuthConfig) {
        let before = self.status()["reloads"].as_u64().unwrap();
        self.write_config(config);
        self.signal(libc::SIGHUP);
        wait_for(Duration::from_secs(20), "the reload to be applied", || {
            self.status()["reloads"].as_u64().unwrap() > before
        });
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// The status document, or None if ruth does not answer.
    pub fn try_status(&self) -> Option<Value> {
        let mut s = UnixStream::connect(self.status_socket()).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn status(&self) -> Value {
        self.try_status()
            .unwrap_or_else(|| panic!("ruth does not answer status:\n{}", self.log()))
    }

    /// The status row of subscription `camera/model`.
    pub fn subscription(&self, camera: &str, model: &str) -> Value {
        self.status()["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["camera"] == camera && s["model"] == model)
            .cloned()
            .unwrap_or_else(|| panic!("no subscription {camera}/{model}"))
    }

    pub fn agent(&self, camera: &str) -> Option<Value> {
        self.status()["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["camera"] == camera)
            .cloned()
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; returns how long the exit took (panics after `limit`).
    pub fn terminate(&mut self, limit: Duration) -> (Duration, ExitStatus) {
        let started = Instant::now();
        self.signal(libc::SIGTERM);
        loop {
            if let Some(status) = self.try_exit_status() {
                return (started.elapsed(), status);
            }
            assert!(
                started.elapsed() < limit,
                "ruth ignored SIGTERM:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }
}

impl Drop for Ruth {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!("--- ruth log ---\n{}", self.log());
        }
    }
}

/// Reads every event line from ruth's events socket on a thread.
pub struct EventTap {
    events: Arc<Mutex<Vec<Value>>>,
    closed: Arc<AtomicBool>,
}

impl EventTap {
    pub fn connect(ruth: &Ruth) -> EventTap {
        let stream =
            UnixStream::connect(ruth.events_socket()).expect("connect to the events socket");
        let events = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (sink, done) = (events.clone(), closed.clone());
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("an event that is not JSON ({e}): {line}"));
                sink.lock().unwrap().push(v);
            }
            // Relaxed: read by the test after a wait.
            done.store(true, Ordering::Relaxed);
        });
        // Ruth's acceptor thread registers the subscriber asynchronously.
        wait_for(
            Duration::from_secs(10),
            "the event subscriber to register",
            || ruth.status()["events"]["subscribers"].as_u64() >= Some(1),
        );
        EventTap { events, closed }
    }

    pub fn all(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Events of one subscription, in arrival order.
    pub fn of(&self, camera: &str, model: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|e| e["camera"] == camera && e["model"] == model)
            .collect()
    }

    pub fn count(&self, camera: &str, model: &str) -> usize {
        self.of(camera, model).len()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// A model process (the Rust or the Python example), killed on drop.
pub struct ModelProcess {
    child: Option<Child>,
    pub socket: PathBuf,
}

impl ModelProcess {
    /// vas-model-example with `args` (e.g. `["--delay-ms", "250"]`).
    pub fn rust(socket: &Path, args: &[&str]) -> ModelProcess {
        let mut cmd = Command::new(&binaries().model_example);
        cmd.arg("--socket").arg(socket).args(args);
        ModelProcess::spawn(cmd, socket)
    }

    /// python3 -m vas_model.example.
    pub fn python(socket: &Path, args: &[&str]) -> ModelProcess {
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "vas_model.example", "--socket"])
            .arg(socket)
            .args(args)
            .env("PYTHONPATH", workspace().join("python"));
        ModelProcess::spawn(cmd, socket)
    }

    /// vas-model-people (python/vas-model-people, a sh wrapper of vas_model.people: OpenCV's
    /// HOG person detector) with `args`.
    pub fn people(socket: &Path, args: &[&str]) -> ModelProcess {
        let mut cmd = Command::new(workspace().join("python/vas-model-people"));
        cmd.arg("--socket")
            .arg(socket)
            .args(args)
            .env("PYTHONPATH", workspace().join("python"));
        ModelProcess::spawn(cmd, socket)
    }

    fn spawn(mut cmd: Command, socket: &Path) -> ModelProcess {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a model");
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("model {cmd:?} exited with {status}");
            }
            assert!(Instant::now() < deadline, "model {cmd:?} never listened");
            thread::sleep(Duration::from_millis(20));
        }
        ModelProcess {
            child: Some(child),
            socket: socket.to_path_buf(),
        }
    }

    /// SIGKILL and reap: the socket file stays, nothing listens on it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ModelProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn numpy_available() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success())
}

/// What a [`FakeModel`] does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Answers each request with a small valid result.
    Good,
    /// Answers each request with a line that is not JSON.
    Garbage,
    /// Answers with one valid JSON line of 2 MiB (over the default 1 MiB cap).
    Oversized,
    /// Never reads its socket (and so never answers).
    NeverReads,
    /// Reads requests, never answers.
    Hangs,
    /// Answers each request twice.
    AnswersTwice,
    /// Answers each request with an error.
    Errors,
    /// Holds the first request until [`FakeModel::release`], then tries to answer it and
    /// ends the connection.
    HoldsFirst,
}

/// A model inside the test process. Records every request it reads, across connections.
pub struct FakeModel {
    pub socket: PathBuf,
    requests: Arc<Mutex<Vec<Value>>>,
    connections: Arc<AtomicUsize>,
    released: Arc<AtomicBool>,
    /// What happened to the held reply: "closed" when ruth had closed the connection.
    held_outcome: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeModel {
    pub fn start(socket: &Path, behavior: Behavior) -> FakeModel {
        let _ = fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind a fake model");
        let fake = FakeModel {
            socket: socket.to_path_buf(),
            requests: Arc::default(),
            connections: Arc::default(),
            released: Arc::default(),
            held_outcome: Arc::default(),
            stop: Arc::default(),
        };
        let (requests, connections, released, outcome, stop) = (
            fake.requests.clone(),
            fake.connections.clone(),
            fake.released.clone(),
            fake.held_outcome.clone(),
            fake.stop.clone(),
        );
        listener.set_nonblocking(true).unwrap();
        thread::spawn(move || {
            let mut open: Vec<UnixStream> = Vec::new();
            // Relaxed: plain flags and counters between the test and this thread.
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        connections.fetch_add(1, Ordering::Relaxed);
                        if behavior == Behavior::NeverReads {
                            open.push(conn);
                            continue;
                        }
                        let (requests, released, outcome, stop) = (
                            requests.clone(),
                            released.clone(),
                            outcome.clone(),
                            stop.clone(),
                        );
                        thread::spawn(move || {
                            serve_fake(conn, behavior, &requests, &released, &outcome, &stop)
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => break,
                }
            }
        });
        fake
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
    }

    pub fn held_outcome(&self) -> Option<String> {
        self.held_outcome.lock().unwrap().clone()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Only our own socket file: a model started later on the same path keeps its own.
        let _ = fs::remove_file(&self.socket);
    }
}

fn serve_fake(
    conn: UnixStream,
    behavior: Behavior,
    requests: &Mutex<Vec<Value>>,
    released: &AtomicBool,
    held_outcome: &Mutex<Option<String>>,
    stop: &AtomicBool,
) {
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let req: Value = serde_json::from_str(&line).expect("ruth sent a request that is not JSON");
        let id = req["id"].as_u64().unwrap();
        requests.lock().unwrap().push(req);
        let reply = format!("{{\"id\":{id},\"result\":{{\"fake\":true}}}}\n");
        let out: Vec<u8> = match behavior {
            Behavior::Good => reply.into_bytes(),
            Behavior::Garbage => b"this is not json\n".to_vec(),
            Behavior::Oversized => {
                let mut big = format!("{{\"id\":{id},\"result\":\"").into_bytes();
                big.extend(std::iter::repeat_n(b'x', 2 << 20));
                big.extend(b"\"}\n");
                big
            }
            Behavior::NeverReads | Behavior::Hangs => continue,
            Behavior::AnswersTwice => format!("{reply}{reply}").into_bytes(),
            Behavior::Errors => format!("{{\"id\":{id},\"error\":\"cannot see\"}}\n").into_bytes(),
            Behavior::HoldsFirst => {
                while !released.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(10));
                }
                // Ruth should have closed the connection by now: a read sees EOF at once.
                reader
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut rest = Vec::new();
                let eof = reader.read_to_end(&mut rest).is_ok();
                let wrote = writer.write_all(reply.as_bytes()).is_ok();
                *held_outcome.lock().unwrap() = Some(if eof && !wrote {
                    "closed".to_string()
                } else {
                    format!("eof={eof} wrote={wrote}")
                });
                return;
            }
        };
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `timeout`. For
/// waiting on states, never for measuring speed.
pub fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The latest frame id vasd published for `camera` (read from the export itself).
pub fn latest_frame_id(root: &Path, camera: &str) -> u64 {
    let reader = frames::ExportReader::attach(root, camera).expect("attach to the export");
    reader.latest().expect("a published frame").meta.frame_id
}

/// (inode of) a socket path, to tell a model's socket from its replacement.
pub fn inode(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.ino())
}
