//! Runs the real `vasd` binary for integration tests: a config in a temporary directory, the
//! API on a free loopback port, stderr captured to a file, signals, /proc counts.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Vasd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    extra_env: Vec<(String, String)>,
    /// `[server] token`, when set.
    token: Option<String>,
}

/// A `[[camera]]` table with fast reconnects, so tests spend little time backing off.
pub fn camera(id: &str, url: &str) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\n\
         reconnect = {{ min_delay_ms = 200, max_delay_ms = 1000, io_timeout_ms = 2000 }}\n"
    )
}

impl Vasd {
    /// Writes `body` (cameras and any sections but `[server]`) as the config and starts vasd.
    pub fn start(body: &str) -> Vasd {
        Vasd::start_with_env(body, &[])
    }

    /// Starts with the API on a port chosen beforehand (to point a camera at it).
    pub fn start_on_port(body: &str, port: u16) -> Vasd {
        Vasd::start_full(body, &[], port, None)
    }

    pub fn start_with_env(body: &str, env: &[(&str, &str)]) -> Vasd {
        Vasd::start_full(body, env, free_port(), None)
    }

    /// Starts with `[server] token` set; the harness's own /healthz polling needs none.
    pub fn start_with_token(body: &str, token: &str) -> Vasd {
        Vasd::start_full(body, &[], free_port(), Some(token))
    }

    fn start_full(body: &str, env: &[(&str, &str)], port: u16, token: Option<&str>) -> Vasd {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut v = Vasd {
            child: None,
            dir,
            port,
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            token: token.map(str::to_string),
        };
        v.write_config(body);
        v.spawn();
        v
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("vas.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("vasd.log")
    }

    /// Replaces the config (for a SIGHUP test). The `[server]` section stays the same.
    pub fn write_config(&self, body: &str) {
        let token = self
            .token
            .as_ref()
            .map_or(String::new(), |t| format!("token = \"{t}\"\n"));
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\n{token}\n{body}",
            self.port
        );
        fs::write(self.config_path(), text).expect("write config");
    }

    fn spawn(&mut self) {
        let log = fs::File::create(self.log_path()).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vasd"));
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("--log-level")
            .arg("debug")
            .env_remove("AI_FRAME_EXPORT_ENABLED")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn vasd"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.get("/healthz").is_some() {
                return;
            }
            if let Some(status) = self.try_exit_status() {
                panic!("vasd exited with {status} at start:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("vasd did not answer /healthz in 20 s:\n{}", self.log());
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Option<String> {
        ureq::get(&format!("http://127.0.0.1:{}{path}", self.port))
            .timeout(Duration::from_secs(5))
            .call()
            .ok()?
            .into_string()
            .ok()
    }

    /// `/api/cameras` as JSON, keyed by camera id.
    pub fn cameras(&self) -> serde_json::Map<String, Value> {
        let body = self.get("/api/cameras").expect("GET /api/cameras");
        let list: Vec<Value> = serde_json::from_str(&body).expect("cameras JSON");
        list.into_iter()
            .map(|c| (c["id"].as_str().unwrap().to_string(), c))
            .collect()
    }

    pub fn camera(&self, id: &str) -> Option<Value> {
        self.cameras().remove(id)
    }

    pub fn state(&self, id: &str) -> String {
        self.camera(id)
            .map(|c| c["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    pub fn packets(&self, id: &str) -> u64 {
        self.camera(id)
            .and_then(|c| c["packets"].as_u64())
            .unwrap_or(0)
    }

    pub fn fault(&self, id: &str) -> Option<String> {
        self.camera(id)
            .and_then(|c| c["last_error"]["fault"].as_str().map(str::to_string))
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid we spawned and still own.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Sends SIGTERM and waits up to `limit` for the exit; returns how long it took.
    pub fn terminate(&mut self, limit: Duration) -> (Duration, ExitStatus) {
        let started = Instant::now();
        self.signal(libc::SIGTERM);
        loop {
            if let Some(status) = self.try_exit_status() {
                return (started.elapsed(), status);
            }
            if started.elapsed() > limit {
                panic!(
                    "vasd did not exit within {limit:?} of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True once the process has exited (reaps it).
    pub fn has_exited(&mut self) -> bool {
        self.try_exit_status().is_some()
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Open file descriptors of the vasd process.
    pub fn fd_count(&self) -> usize {
        count_dir(format!("/proc/{}/fd", self.pid()))
    }

    /// Threads of the vasd process.
    pub fn thread_count(&self) -> usize {
        count_dir(format!("/proc/{}/task", self.pid()))
    }

    /// Names of the vasd process's threads, sorted.
    pub fn thread_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| fs::read_to_string(e.path().join("comm")).ok())
                    .map(|s| s.trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for Vasd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- vasd log ---\n{}", self.log());
        }
    }
}

fn count_dir(path: impl AsRef<Path>) -> usize {
    fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
