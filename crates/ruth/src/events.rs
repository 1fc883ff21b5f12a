//! Events: each model result becomes one JSON line, written to standard output and to every
//! subscriber of the events socket. Publishing never waits: a subscriber whose socket buffer
//! is full is disconnected, and lines for a standard output that does not keep up are dropped
//! and counted.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::config::EventsConfig;
use crate::error::{Error, Result};
use crate::socket_file::SocketFile;

/// Most subscribers at once; more are refused (closed at once) and logged.
pub const MAX_SUBSCRIBERS: usize = 64;

/// Event lines waiting for the standard-output thread. 1024 lines is seconds of events at
/// any sane rate; beyond it the output is not being read and lines are dropped.
const STDOUT_QUEUE: usize = 1024;

struct Subscriber {
    stream: UnixStream,
    number: u64,
}

pub struct Events {
    subscribers: Mutex<Vec<Subscriber>>,
    stdout: Option<SyncSender<String>>,
    socket: SocketFile,
    // Relaxed counters: status figures only.
    published: AtomicU64,
    stdout_dropped: AtomicU64,
    subscribers_dropped: AtomicU64,
}

impl Events {
    /// Binds the events socket and starts the threads that accept subscribers (`events`)
    /// and write standard output (`stdout`).
    pub fn start(cfg: &EventsConfig) -> Result<Arc<Events>> {
        let (listener, socket) = SocketFile::bind(&cfg.socket)?;
        let stdout = if cfg.stdout {
            let (tx, rx) = mpsc::sync_channel::<String>(STDOUT_QUEUE);
            spawn("stdout", move || {
                let out = std::io::stdout();
                for line in rx {
                    let mut out = out.lock();
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        log::error!(target: "events", "standard output is closed: events go to the socket only");
                        return;
                    }
                }
            })?;
            Some(tx)
        } else {
            None
        };
        let events = Arc::new(Events {
            subscribers: Mutex::new(Vec::new()),
            stdout,
            socket,
            published: AtomicU64::new(0),
            stdout_dropped: AtomicU64::new(0),
            subscribers_dropped: AtomicU64::new(0),
        });
        let acceptor = Arc::clone(&events);
        spawn("events", move || acceptor.accept_forever(listener))?;
        Ok(events)
    }

    fn accept_forever(&self, listener: UnixListener) {
        for (number, conn) in (1u64..).zip(listener.incoming()) {
            let stream = match conn {
                Ok(s) => s,
                Err(e) => {
                    log::warn!(target: "events", "accept: {e}");
                    continue;
                }
            };
            let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
            if subs.len() >= MAX_SUBSCRIBERS {
                log::warn!(target: "events", "subscriber {number} refused: {MAX_SUBSCRIBERS} already connected");
                continue;
            }
            if let Err(e) = stream.set_nonblocking(true) {
                log::warn!(target: "events", "subscriber {number}: {e}");
                continue;
            }
            log::info!(target: "events", "subscriber {number} connected");
            subs.push(Subscriber { stream, number });
        }
    }

    /// Sends one event line (without its newline) to standard output and every subscriber.
    pub fn publish(&self, line: &str) {
        // Relaxed: status counter.
        self.published.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &self.stdout {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                tx.try_send(line.to_string())
            {
                self.stdout_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| match send_all_now(&s.stream, &bytes) {
            Ok(()) => true,
            // A reader that closed its end is a normal end, seen at the first line after it.
            Err(SendFailure::Left) => {
                log::info!(target: "events", "subscriber {} left (closed its connection)", s.number);
                false
            }
            Err(SendFailure::Dropped(why)) => {
                log::warn!(target: "events", "subscriber {} disconnected: {why}", s.number);
                self.subscribers_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        });
    }

    pub fn remove_socket(&self) {
        self.socket.remove();
    }

    pub fn status(&self) -> Value {
        let subscribers = self.subscribers.lock().map(|s| s.len()).unwrap_or(0);
        json!({
            "socket": self.socket.path,
            "subscribers": subscribers,
            "published": self.published.load(Ordering::Relaxed),
            "stdout_dropped": self.stdout_dropped.load(Ordering::Relaxed),
            "subscribers_dropped": self.subscribers_dropped.load(Ordering::Relaxed),
        })
    }
}

/// Why a line did not reach a subscriber.
#[derive(Debug, PartialEq)]
enum SendFailure {
    /// The subscriber closed its end (EPIPE, or ECONNRESET when it left unread lines behind).
    Left,
    /// Ruth drops it: it does not keep up, or the send failed otherwise.
    Dropped(String),
}

impl SendFailure {
    fn of(e: &std::io::Error) -> SendFailure {
        match e.raw_os_error() {
            Some(libc::EPIPE | libc::ECONNRESET) => SendFailure::Left,
            Some(libc::EAGAIN) => {
                SendFailure::Dropped("it does not keep up (its socket buffer is full)".into())
            }
            _ => SendFailure::Dropped(e.to_string()),
        }
    }
}

/// The whole line into the socket buffer at once, or an error: a subscriber that cannot take
/// a line right now is too slow (a partial line would corrupt its stream anyway).
fn send_all_now(stream: &UnixStream, bytes: &[u8]) -> std::result::Result<(), SendFailure> {
    // SAFETY: sends from a live buffer on a descriptor the stream owns.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(SendFailure::of(&std::io::Error::last_os_error()));
    }
    if n as usize == bytes.len() {
        Ok(())
    } else {
        Err(SendFailure::Dropped(
            "it does not keep up (only part of a line fit in its socket buffer)".into(),
        ))
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| Error::Io {
            what: format!("starting the {name} thread"),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    fn started(dir: &std::path::Path) -> Arc<Events> {
        Events::start(&EventsConfig {
            socket: dir.join("events.sock"),
            stdout: false,
        })
        .unwrap()
    }

    fn wait_subscribers(events: &Events, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while events.subscribers.lock().unwrap().len() != n {
            assert!(Instant::now() < deadline, "never {n} subscribers");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One subscriber reads, one never does: publishing never waits for the second, which
    /// is disconnected once its buffer is full, and the first gets every line in order.
    #[test]
    fn a_subscriber_that_does_not_read_is_dropped_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let events = started(dir.path());
        let reader = UnixStream::connect(dir.path().join("events.sock")).unwrap();
        let _stuck = UnixStream::connect(dir.path().join("events.sock")).unwrap();
        wait_subscribers(&events, 2);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        let payload = "x".repeat(200);
        // 20,000 lines of 200 bytes are far more than a Unix socket buffer holds, so the stuck
        // subscriber's fills up; the reader gets each batch of 100 before the next is sent,
        // so it keeps up.
        for batch in 0..200 {
            for i in batch * 100..(batch + 1) * 100 {
                events.publish(&format!("{i} {payload}"));
            }
            for i in batch * 100..(batch + 1) * 100 {
                let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
                assert!(line.starts_with(&format!("{i} ")), "line {i}: {line}");
            }
        }
        assert_eq!(events.subscribers.lock().unwrap().len(), 1);
        assert_eq!(events.status()["subscribers_dropped"], 1);
        events.remove_socket();
        assert!(!dir.path().join("events.sock").exists());
    }

    #[test]
    fn send_failures_table() {
        let slow = "it does not keep up (its socket buffer is full)";
        // (errno, failure)
        let table = [
            (libc::EPIPE, SendFailure::Left),
            (libc::ECONNRESET, SendFailure::Left),
            (libc::EAGAIN, SendFailure::Dropped(slow.into())),
            (
                libc::ENOBUFS,
                SendFailure::Dropped(std::io::Error::from_raw_os_error(libc::ENOBUFS).to_string()),
            ),
        ];
        for (errno, failure) in table {
            let e = std::io::Error::from_raw_os_error(errno);
            assert_eq!(SendFailure::of(&e), failure, "{e}");
        }
    }

    /// A subscriber that closes its connection leaves at the next line: it is gone from the
    /// list and not counted as dropped (ruth did not drop it).
    #[test]
    fn a_subscriber_that_leaves_is_not_counted_as_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let events = started(dir.path());
        let stays = UnixStream::connect(dir.path().join("events.sock")).unwrap();
        let leaves = UnixStream::connect(dir.path().join("events.sock")).unwrap();
        wait_subscribers(&events, 2);
        drop(leaves);
        events.publish("one");
        assert_eq!(events.subscribers.lock().unwrap().len(), 1);
        assert_eq!(events.status()["subscribers_dropped"], 0);
        let mut line = String::new();
        BufReader::new(stays).read_line(&mut line).unwrap();
        assert_eq!(line, "one\n");
        events.remove_socket();
    }
}
