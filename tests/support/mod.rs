//! Shared fixtures for integration tests: synthetic camera media, a real RTSP
//! server (`tests/fixtures/rtsp_server.py`, GStreamer's GstRtspServer) that
//! tests can stall, drop and restart, and misbehaving TCP peers.
//!
//! Include it with `mod support;` from a file in `tests/`.
//!
//! Every process started here is killed on drop, and the RTSP server also
//! exits by itself when the test process dies (it watches its stdin), so a
//! crashed test run leaves no server behind.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Debian's Python: it has `gi`, the pyenv one on PATH does not.
const PYTHON: &str = "/usr/bin/python3";
/// Loading four 10 s files takes about 1 s; the rest is slack for a loaded CI.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Directory with the synthetic media (`cam720.mp4`, `cam1080.mp4`,
/// `cam1080_bframes.mp4`, `cam480_yuvj.mp4`, `audio_only.mp4`), made on first
/// use in `<target>/test-media` (about 15 s once, then kept).
pub fn media_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // CARGO_TARGET_TMPDIR is <target>/tmp; the media lives beside it so a
        // `cargo clean` removes it and every test binary shares it.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.parent().unwrap_or(tmp).join("test-media");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // Test binaries run in parallel: the first one holding the lock makes
        // the media, the others wait and then find every file valid. The lock
        // is released when `lock` is closed, also if this process dies.
        let lock_path = dir.join(".lock");
        let lock = File::create(&lock_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
        // SAFETY: flock on a descriptor that `lock` owns for this whole scope.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            panic!(
                "flock {}: {}",
                lock_path.display(),
                std::io::Error::last_os_error()
            );
        }
        let script = fixtures_dir().join("make_media.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        drop(lock);
        if !out.status.success() {
            panic!(
                "{} failed ({}):\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
    .clone()
}

/// A running `rtsp_server.py`. Mount `NAME` is served at `url(NAME)`, looping
/// its file forever in real time with monotonic timestamps.
pub struct RtspServer {
    child: Option<Child>,
    /// Held open: the server exits when its stdin closes.
    stdin: Option<ChildStdin>,
    port: u16,
    args: Vec<String>,
    log: Arc<Mutex<String>>,
    log_thread: Option<JoinHandle<()>>,
    stalled: bool,
}

impl RtspServer {
    /// Serves each `(name, file)`, with `file` a name inside [`media_dir`].
    pub fn start(mounts: &[(&str, &str)]) -> RtspServer {
        RtspServer::start_with_live(mounts, &[])
    }

    /// Also serves live encoded mounts: `(name, "640x480@15")` is a
    /// videotestsrc + x264enc (ultrafast, key frame every second) stream.
    pub fn start_with_live(mounts: &[(&str, &str)], live: &[(&str, &str)]) -> RtspServer {
        RtspServer::start_with_args(mounts, live, &[])
    }

    /// Also passes `extra` to the server (e.g. `["--auth", "user:pass"]`).
    pub fn start_with_args(
        mounts: &[(&str, &str)],
        live: &[(&str, &str)],
        extra: &[&str],
    ) -> RtspServer {
        let mut args = server_args(mounts, live);
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut server = RtspServer {
            child: None,
            stdin: None,
            port: 0,
            args,
            log: Arc::new(Mutex::new(String::new())),
            log_thread: None,
            stalled: false,
        };
        server.spawn(0);
        server
    }

    fn spawn(&mut self, port: u16) {
        let script = fixtures_dir().join("rtsp_server.py");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--exit-on-stdin-eof")
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON} {}: {e}", script.display()));

        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::Builder::new()
            .name("rtsp-fixture-out".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = line.strip_prefix("READY ") {
                        let _ = ready_tx.send(port.trim().parse::<u16>().ok());
                    }
                }
                // Dropping ready_tx tells the waiter the server is gone.
            })
            .expect("spawn stdout reader");

        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::clone(&self.log);
        if let Ok(mut log) = self.log.lock() {
            log.push_str(&format!("--- {} --port {port}\n", script.display()));
        }
        self.log_thread = Some(
            thread::Builder::new()
                .name("rtsp-fixture-err".into())
                .spawn(move || {
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        if let Ok(mut log) = log.lock() {
                            log.push_str(&line);
                            log.push('\n');
                        }
                    }
                })
                .expect("spawn stderr reader"),
        );
        self.stdin = child.stdin.take();
        self.child = Some(child);

        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(bound)) => {
                assert!(
                    port == 0 || bound == port,
                    "server bound {bound}, asked for {port}"
                );
                self.port = bound;
            }
            Ok(None) => self.fail("printed a malformed READY line"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.fail(&format!("not READY within {READY_TIMEOUT:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => self.fail("exited before READY"),
        }
    }

    fn fail(&mut self, what: &str) -> ! {
        self.kill();
        panic!("rtsp_server.py {what}; its stderr:\n{}", self.log());
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, name: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{name}", self.port)
    }

    /// Process id, e.g. to read its CPU time from /proc.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the server wrote to stderr so far (one line per client
    /// connect, signal and loaded file).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn signal(&self, sig: Signal) {
        let pid = self.pid().expect("rtsp_server.py is not running");
        kill(Pid::from_raw(pid as i32), sig).unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
    }

    /// SIGKILL and reap: the port closes at once, every client sees a reset
    /// or EOF. A no-op when already killed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process dies from SIGKILL too; no SIGCONT needed.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stdin = None;
        self.stalled = false;
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
    }

    /// SIGSTOP: a camera that stops answering with its connections open.
    /// Returns once the kernel reports the process stopped.
    pub fn stall(&mut self) {
        self.signal(Signal::SIGSTOP);
        self.stalled = true;
        let pid = self.pid().expect("running");
        wait_until(Duration::from_secs(5), "rtsp_server.py to stop", || {
            process_state(pid) == Some('T')
        });
    }

    /// SIGCONT after [`stall`](Self::stall): serving resumes; clients that
    /// gave up in the meantime must reconnect.
    pub fn resume(&mut self) {
        self.signal(Signal::SIGCONT);
        self.stalled = false;
        let pid = self.pid().expect("running");
        wait_until(Duration::from_secs(5), "rtsp_server.py to continue", || {
            process_state(pid) != Some('T')
        });
    }

    /// SIGUSR1: the server closes every client connection and session and
    /// keeps running, like a camera that drops its clients.
    pub fn drop_clients(&self) {
        self.signal(Signal::SIGUSR1);
    }

    /// Kills the server and starts it again on the same port with the same
    /// mounts: a camera reboot.
    pub fn restart(&mut self) {
        let port = self.port;
        self.kill();
        self.spawn(port);
    }

    /// Kills the server and starts it on the same port serving other files under the same
    /// names: a camera whose settings (say, its resolution) changed while it rebooted.
    pub fn restart_with(&mut self, mounts: &[(&str, &str)]) {
        let port = self.port;
        self.kill();
        self.args = server_args(mounts, &[]);
        self.spawn(port);
    }
}

fn server_args(mounts: &[(&str, &str)], live: &[(&str, &str)]) -> Vec<String> {
    let mut args = Vec::new();
    if !mounts.is_empty() {
        let dir = media_dir();
        for (name, file) in mounts {
            args.push("--mount".to_string());
            args.push(format!("{name}={}", dir.join(file).display()));
        }
    }
    for (name, spec) in live {
        args.push("--live".to_string());
        args.push(format!("{name}={spec}"));
    }
    args
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        if self.stalled {
            let _ = self
                .pid()
                .map(|pid| kill(Pid::from_raw(pid as i32), Signal::SIGCONT));
        }
        self.kill();
    }
}

/// Third field of /proc/PID/stat: R, S, T (stopped), Z, ...
fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may contain spaces: parse after it.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |s| s.1)
        .split_whitespace()
        .collect();
    // After the ")": state is field 0, utime 11, stime 12 (fields 14 and 15 of proc(5)).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A port with nothing listening: connecting to it is refused.
pub fn closed_port() -> u16 {
    free_port()
}

/// What a [`GarbageServer`] does with each connection it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GarbageMode {
    /// Writes 4 KiB of random bytes and keeps the connection open.
    KeepOpen,
    /// Writes 4 KiB of random bytes and closes the connection.
    Close,
    /// Writes nothing and keeps the connection open: a port that accepts but
    /// never answers.
    Silent,
}

/// A TCP listener on 127.0.0.1 that answers RTSP clients with garbage.
pub struct GarbageServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GarbageServer {
    pub fn start(mode: GarbageMode) -> GarbageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (accepted2, stop2) = (Arc::clone(&accepted), Arc::clone(&stop));
        let thread = thread::Builder::new()
            .name("garbage-server".into())
            .spawn(move || {
                let mut open: Vec<TcpStream> = Vec::new();
                let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(port);
                // Relaxed: a plain stop flag, no data is published through it.
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(mut conn) = conn else { continue };
                    // Relaxed: a counter read by tests after wait_until.
                    accepted2.fetch_add(1, Ordering::Relaxed);
                    if mode != GarbageMode::Silent {
                        let _ = conn.write_all(&random_bytes(&mut seed, 4096));
                    }
                    if mode != GarbageMode::Close {
                        open.push(conn);
                    }
                }
            })
            .expect("spawn garbage server");
        GarbageServer {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, name: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{name}", self.port)
    }

    /// Connections accepted so far (a client that retries shows up here).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for GarbageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept; the thread then sees the flag and drops
        // every connection it kept open.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// xorshift64: garbage only needs to be non-RTSP and cheap, not good.
fn random_bytes(state: &mut u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` after
/// `timeout`. For waiting on real state, never for asserting speed.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Result of [`run_with_timeout`].
pub struct Finished {
    /// `None` when the command was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` (stdin null, stdout and stderr captured), killing it after
/// `timeout`. Use it for ffprobe/ffmpeg so a hung client fails the test
/// instead of hanging it.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Finished {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A background command whose stderr is collected while it runs, e.g. an
/// `ffmpeg -i URL -c copy -f null -` reader. Killed on drop.
pub struct Background {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Background {
    pub fn spawn(cmd: &mut Command) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut pipe = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            }
        });
        Background { child, stderr }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Exit status once it has exited, without blocking.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ffprobe` of an RTSP URL over TCP: the JSON of its streams'
/// codec_name/codec_type/width/height, or the error output. 15 s at most.
pub fn ffprobe_streams(url: &str) -> Result<String, String> {
    let done = run_with_timeout(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            // Socket I/O timeout in microseconds (FFmpeg 5.1 name; stimeout is gone).
            "-timeout",
            "5000000",
            "-show_entries",
            "stream=codec_name,codec_type,width,height",
            "-of",
            "json",
            url,
        ]),
        Duration::from_secs(15),
    );
    match done.status {
        Some(s) if s.success() => Ok(done.stdout),
        Some(s) => Err(format!("ffprobe {url}: {s}: {}", done.stderr.trim())),
        None => Err(format!(
            "ffprobe {url}: killed after 15 s: {}",
            done.stderr.trim()
        )),
    }
}

/// Finished segments of a camera, oldest first (names sort by time).
pub fn segments(dir: &Path, camera: &str) -> Vec<PathBuf> {
    files(dir, camera, |n| n.ends_with(".mp4"))
}

pub fn parts(dir: &Path, camera: &str) -> Vec<PathBuf> {
    files(dir, camera, |n| n.ends_with(".mp4.part"))
}

pub fn files(dir: &Path, camera: &str, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(dir.join(camera)) else {
        return out;
    };
    for day in days.flatten() {
        for f in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if keep(&f.file_name().to_string_lossy()) {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// Whether the first video packet of `file` is a key frame (ffprobe's packet flags).
pub fn first_video_packet_is_key(file: &Path) -> bool {
    let first = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
        ])
        .args(["-show_entries", "packet=flags", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(
        first.status.success(),
        "ffprobe of the first packet of {}: {}",
        file.display(),
        String::from_utf8_lossy(&first.stderr)
    );
    String::from_utf8_lossy(&first.stdout)
        .trim()
        .starts_with('K')
}

/// ffprobe's JSON for `entries` of `file`, decoding all of it (`extra` adds options such as
/// `-count_frames`); any complaint of the decoder fails the test.
pub fn ffprobe_clean(file: &Path, extra: &[&str], entries: &str) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(extra)
        .args(["-show_entries", entries, "-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// A network namespace of the test's own, entered by the calling thread only: the processes
/// it starts afterwards (servers, vasd, clients, nft) live in it, on its own 127.0.0.1 (lo is
/// up). Deleted on drop. Needs root, as CI has.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn enter(name: &str) -> Netns {
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        let f = std::fs::File::open(format!("/run/netns/{name}")).expect("netns file");
        // SAFETY: setns on a descriptor we own; it changes this thread's network namespace
        // only, which is what the test wants.
        let rc = unsafe {
            use std::os::fd::AsRawFd;
            libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET)
        };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// [`Netns::enter`] for a test that runs Chromium: Chromium gathers no ICE candidate at
    /// all where the loopback is the only interface (its network list is empty, even with
    /// --allow-loopback-in-peer-connection), so the namespace also gets a veth pair with an
    /// IPv4 link-local address (169.254/16, RFC 3927: never routed). Nothing is sent on it:
    /// vasd's only candidate is 127.0.0.1, and the kernel sends Chromium's packets to it
    /// over the loopback, from 127.0.0.1.
    pub fn enter_for_browser(name: &str) -> Netns {
        let ns = Netns::enter(name);
        for args in [
            &[
                "link", "add", "vas-va", "type", "veth", "peer", "name", "vas-vb",
            ][..],
            &["addr", "add", "169.254.77.1/16", "dev", "vas-va"],
            &["link", "set", "vas-va", "up"],
            &["link", "set", "vas-vb", "up"],
        ] {
            let out = Command::new("ip").args(args).output().expect("ip");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ns
    }

    /// Runs `nft ARGS` in the namespace; returns its output.
    pub fn nft(&self, args: &[&str]) -> String {
        let out = Command::new("nft").args(args).output().expect("nft");
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Drops `percent` % of the datagrams that match `selector` (nft words, e.g. `udp sport
    /// 40000-40999`) at random, where they arrive (the input hook: a drop at output would
    /// fail the sender's send call, which a real lossy link never does). A second call
    /// replaces the rule.
    pub fn random_loss(&self, percent: u32, selector: &[&str]) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", "vasloss"])
            .output();
        self.nft(&["add", "table", "inet", "vasloss"]);
        self.nft(&[
            "add", "chain", "inet", "vasloss", "in", "{", "type", "filter", "hook", "input",
            "priority", "0", ";", "}",
        ]);
        let percent = percent.to_string();
        let mut rule = vec!["add", "rule", "inet", "vasloss", "in"];
        rule.extend_from_slice(selector);
        rule.extend_from_slice(&[
            "numgen", "random", "mod", "100", "<", &percent, "counter", "drop",
        ]);
        self.nft(&rule);
    }

    /// Datagrams the loss rule dropped so far.
    pub fn dropped(&self) -> u64 {
        let table = self.nft(&["list", "table", "inet", "vasloss"]);
        table
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
