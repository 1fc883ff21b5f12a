//! Real WebRTC clients for the live view tests: aiortc as a WHEP client
//! (`whep_client.py`, aiortc from PyPI in a virtualenv made on first use) and headless
//! Chromium (Debian's `chromium`) opening vasd's viewer page (`chromium_viewer.py`).
//!
//! Include it with `mod live_support;` from a file in `tests/`.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/live_support")
}

/// The Python of `<target>/live-venv`, made from Debian's python3 (python3-venv) with the
/// pinned `requirements.txt` on first use (about 10 s with a warm pip cache, 30 s from PyPI)
/// and kept while the requirements file is unchanged.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let venv = tmp.parent().unwrap_or(tmp).join("live-venv");
            let requirements = support_dir().join("requirements.txt");
            let wanted = fs::read_to_string(&requirements).expect("read requirements.txt");
            let stamp = venv.join("vas-requirements.txt");
            let python = venv.join("bin/python");
            fs::create_dir_all(venv.parent().unwrap()).expect("target dir");
            // Test binaries run in parallel: one makes the venv, the others wait for it.
            let lock = File::create(venv.with_extension("lock")).expect("venv lock file");
            // SAFETY: flock on a descriptor `lock` owns for this whole scope.
            assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
            if fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
                let _ = fs::remove_dir_all(&venv);
                run(Command::new("/usr/bin/python3")
                    .arg("-m")
                    .arg("venv")
                    .arg(&venv));
                run(Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(["--only-binary=:all:", "-r"])
                    .arg(&requirements));
                fs::write(&stamp, &wanted).expect("write the venv stamp");
            }
            drop(lock);
            python
        })
        .clone()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `whep_client.py`: its JSON lines are collected as they come. Killed on drop.
pub struct WhepClient {
    child: Option<Child>,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl WhepClient {
    /// Starts `whep_client.py URL ARGS...` (see its doc for the arguments).
    pub fn start(url: &str, args: &[&str]) -> WhepClient {
        let mut child = Command::new(python())
            .arg(support_dir().join("whep_client.py"))
            .arg(url)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start whep_client.py");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = events.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        WhepClient {
            child: Some(child),
            events,
            stderr,
        }
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// The first event named `name` so far.
    pub fn event(&self, name: &str) -> Option<Value> {
        self.events().into_iter().find(|e| e["event"] == name)
    }

    /// Frames each viewer received, from the newest progress line.
    pub fn frames(&self) -> Vec<u64> {
        self.events()
            .iter()
            .rev()
            .find(|e| e["event"] == "progress")
            .and_then(|e| e["frames"].as_array().cloned())
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    }

    pub fn decode_errors(&self) -> u64 {
        self.events()
            .iter()
            .rev()
            .find(|e| e["event"] == "progress" || e["event"] == "done")
            .and_then(|e| e["decode_errors"].as_u64())
            .unwrap_or(0)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the client to exit by itself; returns its status and its `done` line.
    pub fn wait(&mut self, timeout: Duration) -> (ExitStatus, Value) {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                // The reader thread may still be handing over the last lines.
                thread::sleep(Duration::from_millis(100));
                let done = self.event("done").unwrap_or(Value::Null);
                return (status, done);
            }
            if Instant::now() > deadline {
                panic!(
                    "whep_client.py still running after {timeout:?}; output:\n{}",
                    self.describe()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the viewer vanishes without a goodbye (no DTLS close, no DELETE).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Everything the client printed, for failure messages.
    pub fn describe(&self) -> String {
        let lines: Vec<String> = self
            .events()
            .iter()
            .filter(|e| e["event"] != "progress")
            .map(Value::to_string)
            .collect();
        format!(
            "stdout (without progress): {}\nlast frames: {:?}\nstderr: {}",
            lines.join("\n"),
            self.frames(),
            self.stderr.lock().unwrap()
        )
    }
}

impl Drop for WhepClient {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("--- whep_client.py ---\n{}", self.describe());
        }
    }
}

/// Opens `url` (vasd's viewer page) in headless Chromium until every camera in `cameras` has
/// decoded `frames` frames and then more, or as `extra` options of `chromium_viewer.py` say
/// (`--audio`, `--seconds S`, `--no-nack`). Returns its `done` line (per-camera `stats`), or
/// the output.
pub fn chromium_viewer(
    url: &str,
    cameras: &[&str],
    frames: u32,
    extra: &[&str],
) -> Result<Value, String> {
    let out = Command::new("/usr/bin/python3")
        .arg(support_dir().join("chromium_viewer.py"))
        .arg(url)
        .arg("--cameras")
        .arg(cameras.join(","))
        .arg("--frames")
        .arg(frames.to_string())
        .args(["--timeout", "90"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run chromium_viewer.py: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let done = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "done");
    match done {
        Some(d) if out.status.success() => Ok(d),
        _ => Err(format!(
            "chromium_viewer.py failed ({}):\n{}\n{}",
            out.status,
            stdout.lines().rev().take(3).collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// An HTTP reply as the WHEP tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// One HTTP request to vasd's API on `port`, whatever the status.
pub fn http(method: &str, port: u16, path: &str, content_type: &str, body: &str) -> Reply {
    let req = ureq::request(method, &format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(15))
        .set("Content-Type", content_type);
    let resp = match req.send_string(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    Reply {
        status: resp.status(),
        location: resp.header("Location").map(str::to_string),
        retry_after: resp.header("Retry-After").map(str::to_string),
        content_type: resp.header("Content-Type").map(str::to_string),
        body: resp.into_string().unwrap_or_default(),
    }
}
