//! The connection of one subscription to its model: a non-blocking Unix stream socket that
//! Ruth opens to the model's listening socket. Nothing on it ever blocks Ruth: the connect,
//! every write and every read are non-blocking, and a model that does not keep up loses
//! frames, never delays them.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use crate::line_buffer::{LineBuffer, TooLong};

/// Bytes read from one connection per wake of the replies thread, so that a model flooding
/// its socket cannot hold that thread (the rest is read at the next wake).
const READ_BUDGET: usize = 256 * 1024;

/// The request on a connection that has not been answered yet (at most one).
#[derive(Debug, Clone)]
pub struct InFlight {
    pub id: u64,
    pub frame_id: u64,
    pub pts_ns: i64,
    /// Capture time of the frame, ns since the epoch.
    pub wall_ns: i64,
    pub dispatched: Instant,
    pub deadline: Instant,
}

/// What a non-blocking write of one request did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The whole line is in the socket buffer.
    Whole,
    /// Nothing was written: the model has not read its earlier requests. The frame is
    /// skipped, the connection stays.
    WouldBlock,
    /// The connection is unusable (closed, or a request was cut in half).
    Failed(String),
}

/// What reading the available bytes found.
#[derive(Debug, Default)]
pub struct Received {
    pub lines: Vec<Vec<u8>>,
    /// Why the connection is over, if it is: closed by the model, an error, a line too long.
    pub ended: Option<String>,
}

/// A connection, or the lack of one.
#[derive(Debug, Default)]
pub struct Link {
    stream: Option<UnixStream>,
    /// Counts connections, so the replies thread can tell a descriptor it polled from a newer
    /// one that reused its number.
    pub epoch: u64,
    pub in_flight: Option<InFlight>,
    inbox: LineBuffer,
}

impl Link {
    pub fn is_up(&self) -> bool {
        self.stream.is_some()
    }

    pub fn raw_fd(&self) -> Option<RawFd> {
        self.stream.as_ref().map(|s| s.as_raw_fd())
    }

    /// Connects to `socket` without blocking. A plain connect(2) on a Unix stream socket
    /// blocks while the listener's backlog is full, which is exactly what a hung model that
    /// stopped accepting looks like; on a non-blocking socket it fails with EAGAIN instead.
    pub fn connect(&mut self, socket: &Path) -> Result<(), String> {
        self.close();
        let stream = connect_nonblocking(socket).map_err(|e| match e.raw_os_error() {
            Some(libc::EAGAIN) => "the model accepts no connections (its backlog is full)".into(),
            Some(libc::ENOENT) => format!(
                "{} does not exist (is the model running?)",
                socket.display()
            ),
            Some(libc::ECONNREFUSED) => format!(
                "nothing listens on {} (is the model running?)",
                socket.display()
            ),
            _ => format!("cannot connect to {}: {e}", socket.display()),
        })?;
        self.stream = Some(stream);
        self.epoch += 1;
        Ok(())
    }

    /// Drops the connection, the request in flight (its reply will never be read) and any
    /// partial reply.
    pub fn close(&mut self) {
        if self.stream.take().is_some() {
            self.epoch += 1;
        }
        self.in_flight = None;
        self.inbox.clear();
    }

    /// Writes one request line without blocking.
    pub fn send(&mut self, line: &[u8]) -> Sent {
        let Some(stream) = self.stream.as_ref() else {
            return Sent::Failed("not connected".into());
        };
        // MSG_NOSIGNAL: a model that died gives EPIPE, not a SIGPIPE for the whole of Ruth.
        // SAFETY: sends from a live buffer of line.len() bytes on our own descriptor.
        let n = unsafe {
            libc::send(
                stream.as_raw_fd(),
                line.as_ptr().cast(),
                line.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Sent::WouldBlock,
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                    Sent::Failed("the model closed the connection".into())
                }
                _ => Sent::Failed(format!("cannot send to the model: {e}")),
            };
        }
        if n as usize == line.len() {
            Sent::Whole
        } else {
            // Half a request is on its way; the rest can never follow without waiting for the
            // model, and anything else written after it would corrupt the stream.
            Sent::Failed(format!(
                "the model does not read its socket: only {n} of {} bytes of a request fit",
                line.len()
            ))
        }
    }

    /// Reads what the model sent (up to [`READ_BUDGET`]) and splits it into lines of at most
    /// `max_line` bytes.
    pub fn receive(&mut self, max_line: usize) -> Received {
        let mut out = Received::default();
        let Some(stream) = self.stream.as_mut() else {
            return out;
        };
        let mut chunk = [0u8; 16 * 1024];
        let mut total = 0;
        while total < READ_BUDGET {
            match stream.read(&mut chunk) {
                Ok(0) => {
                    out.ended = Some("the model closed the connection".into());
                    break;
                }
                Ok(n) => {
                    total += n;
                    self.inbox.extend(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Linux resets the peer of a Unix socket closed with unread data: a model
                // that died before reading its last request.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    out.ended = Some("the model closed the connection (reset)".into());
                    break;
                }
                Err(e) => {
                    out.ended = Some(format!("cannot read from the model: {e}"));
                    break;
                }
            }
        }
        loop {
            match self.inbox.next_line(max_line) {
                Ok(Some(line)) => out.lines.push(line),
                Ok(None) => break,
                Err(TooLong { limit }) => {
                    out.ended = Some(format!(
                        "the model sent a line longer than {limit} bytes (max_reply_bytes)"
                    ));
                    break;
                }
            }
        }
        out
    }
}

fn connect_nonblocking(path: &Path) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: socket(2) has no memory arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns; from here the stream closes it.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: addr is a valid sockaddr_un and len does not exceed its size.
    let rc = unsafe {
        libc::connect(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    fn pair() -> (Link, UnixStream, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut link = Link::default();
        link.connect(&path).unwrap();
        let (model, _) = listener.accept().unwrap();
        (link, model, dir)
    }

    #[test]
    fn connect_failures_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let mut link = Link::default();
        let e = link.connect(&dir.path().join("none.sock")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        // A socket file whose listener is gone (a model killed with -9).
        let path = dir.path().join("dead.sock");
        drop(UnixListener::bind(&path).unwrap());
        let e = link.connect(&path).unwrap_err();
        assert!(e.contains("nothing listens"), "{e}");
        assert!(!link.is_up());
    }

    /// A model that never accepts: once its backlog is full, connecting fails at once
    /// instead of blocking Ruth.
    #[test]
    fn connecting_to_a_model_that_never_accepts_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        let listener = UnixListener::bind(&path).unwrap();
        // A backlog of 1 (listen again to change it), so it fills after a couple of connects.
        // SAFETY: listen(2) on our own listening descriptor.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 1) }, 0);
        let mut links: Vec<Link> = Vec::new();
        let mut refused = None;
        for _ in 0..100 {
            let mut link = Link::default();
            match link.connect(&path) {
                Ok(()) => links.push(link),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let e = refused.expect("the backlog never filled");
        assert!(e.contains("backlog is full"), "{e}");
        drop(listener);
    }

    /// A model that never reads: requests fill its socket buffer, then a write reports
    /// WouldBlock (or a cut request) at once; it never waits.
    #[test]
    fn a_model_that_never_reads_never_blocks_a_write() {
        let (mut link, _model, _dir) = pair();
        let line = vec![b'x'; 500];
        let mut outcomes = Vec::new();
        for _ in 0..100_000 {
            let sent = link.send(&line);
            if sent != Sent::Whole {
                outcomes.push(sent);
                break;
            }
        }
        match outcomes.pop() {
            Some(Sent::WouldBlock) => {}
            Some(Sent::Failed(why)) => assert!(why.contains("does not read"), "{why}"),
            other => panic!("the buffer never filled: {other:?}"),
        }
    }

    #[test]
    fn replies_are_split_and_bounded() {
        let (mut link, mut model, _dir) = pair();
        model.write_all(b"{\"id\":1}\n{\"id\"").unwrap();
        let got = link.receive(1024);
        assert_eq!(got.lines, vec![b"{\"id\":1}".to_vec()]);
        assert_eq!(got.ended, None);
        model.write_all(b":2}\n").unwrap();
        assert_eq!(link.receive(1024).lines, vec![b"{\"id\":2}".to_vec()]);
        model.write_all(&vec![b'a'; 2000]).unwrap();
        let got = link.receive(1024);
        assert!(got.ended.unwrap().contains("longer than 1024 bytes"));
        drop(model);
        let (mut link, model, _dir) = pair();
        drop(model);
        assert_eq!(
            link.receive(1024).ended.as_deref(),
            Some("the model closed the connection")
        );
        assert!(matches!(link.send(b"x\n"), Sent::Failed(_)));
        // A model that dies with a request unread: Linux resets the connection.
        let (mut link, model, _dir) = pair();
        assert_eq!(link.send(b"{\"id\":1}\n"), Sent::Whole);
        drop(model);
        assert_eq!(
            link.receive(1024).ended.as_deref(),
            Some("the model closed the connection (reset)")
        );
    }
}
