//! A writer in a child process: the test binary re-runs itself with one test selected and
//! `VAS_FRAMES_CHILD` set, and that test turns into the writer.
//!
//! Modes (`VAS_FRAMES_CHILD=<mode>:<root>:<camera>:<width>x<height>:<slots>`):
//! - `stress`: publish pattern frames as fast as possible until stdin closes.
//! - `step`: publish one pattern frame per line read on stdin, until stdin closes.
//!
//! The child prints `vas-child: ready <generation>` once the export exists, and
//! `vas-child: published <frame_id>` after each `step` publish.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use frames::{SlotWriter, WriterOptions};

use super::pattern;

const ENV: &str = "VAS_FRAMES_CHILD";

/// Call from a `#[test]` named `test_name`: does nothing unless this process is the child.
pub fn run_if_requested() {
    let Ok(spec) = std::env::var(ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (mode, root, camera, size, slots) = (parts[0], parts[1], parts[2], parts[3], parts[4]);
    let (w, h) = size.split_once('x').unwrap();
    let opts = WriterOptions {
        slots: slots.parse().unwrap(),
        width: w.parse().unwrap(),
        height: h.parse().unwrap(),
        group: None,
    };
    let mut writer = SlotWriter::create(Path::new(root), camera, &opts).expect("child writer");
    let mut out = std::io::stdout();
    writeln!(out, "vas-child: ready {}", writer.generation()).unwrap();
    out.flush().unwrap();
    let mut scratch = Vec::new();
    match mode {
        "stress" => {
            let stdin_open = Arc::new(AtomicBool::new(true));
            let flag = stdin_open.clone();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                // Relaxed: a stop request, no data travels with it.
                flag.store(false, Ordering::Relaxed);
            });
            // Relaxed: see above.
            while stdin_open.load(Ordering::Relaxed) {
                let mut fill = writer.begin();
                pattern::fill(&mut fill, &mut scratch);
                let id = fill.frame_id();
                fill.publish(pattern::info(id));
            }
        }
        "step" => {
            for line in std::io::stdin().lock().lines() {
                if line.is_err() {
                    break;
                }
                let mut fill = writer.begin();
                pattern::fill(&mut fill, &mut scratch);
                let id = fill.frame_id();
                fill.publish(pattern::info(id));
                writeln!(out, "vas-child: published {id}").unwrap();
                out.flush().unwrap();
            }
        }
        other => panic!("unknown child mode {other}"),
    }
    drop(writer);
    std::process::exit(0);
}

/// A running child writer.
pub struct ChildWriter {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub generation: u64,
}

impl ChildWriter {
    /// Starts this test binary as a child writer, running `test_name` (which must call
    /// [`run_if_requested`]), and waits until its export exists.
    pub fn spawn(
        test_name: &str,
        mode: &str,
        root: &Path,
        camera: &str,
        size: (u32, u32),
        slots: u32,
    ) -> ChildWriter {
        let spec = format!(
            "{mode}:{}:{camera}:{}x{}:{slots}",
            root.display(),
            size.0,
            size.1
        );
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(ENV, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child writer");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut writer = ChildWriter {
            child,
            stdin,
            stdout,
            generation: 0,
        };
        let ready = writer.expect_line("ready");
        writer.generation = ready.parse().unwrap();
        writer
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads child output until a `vas-child: <word> <value>` line and returns the value.
    pub fn expect_line(&mut self, word: &str) -> String {
        let prefix = format!("vas-child: {word} ");
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "child writer exited before printing {prefix:?}");
            // libtest prints "test NAME ... " without a newline before the test's own output.
            if let Some(at) = line.find(&prefix) {
                return line[at + prefix.len()..].trim_end().to_string();
            }
        }
    }

    /// In `step` mode: asks the child to publish one frame and returns its frame id.
    pub fn step(&mut self) -> u64 {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
        self.expect_line("published").parse().unwrap()
    }

    /// Sends the line of a `step` without waiting for the answer.
    pub fn step_async(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin, which makes the child drop its writer cleanly and exit; waits up to 20 s.
    pub fn stop(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "child writer failed: {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!("child writer did not exit within 20 s of stdin closing");
    }

    /// SIGKILL: the crash case, files left behind with state LIVE.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildWriter {
    fn drop(&mut self) {
        // Only reached on a failing test or after stop/kill; never leave the child running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
