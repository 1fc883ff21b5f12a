//! The model side of the protocol: listen on a Unix socket, serve each connection (one per
//! Ruth subscription) on its own thread, read each requested frame from the export and answer
//! with what the model computed.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use frames::{monotonic_now_ns, ExportReader};
use serde_json::Value;

use crate::frame::Frame;
use crate::protocol::{FrameRequest, Reply, MAX_REQUEST_BYTES};

/// What a model computes. One value per connection: a connection carries the frames of one
/// subscription, so of one camera, in increasing frame order, and the value may keep state
/// between frames (a previous frame for motion, a tracker).
///
/// `process` runs on the connection's thread; a slow `process` makes Ruth skip frames for
/// this subscription, never queue them. Return `Err` with a message for a frame the model
/// cannot handle: Ruth counts it and goes on.
pub trait Model: Send + 'static {
    fn process(&mut self, frame: &Frame<'_>) -> Result<Value, String>;
}

impl<F> Model for F
where
    F: FnMut(&Frame<'_>) -> Result<Value, String> + Send + 'static,
{
    fn process(&mut self, frame: &Frame<'_>) -> Result<Value, String> {
        self(frame)
    }
}

/// A bound model socket. Dropping it removes the socket file (if it is still ours).
pub struct ModelServer {
    listener: UnixListener,
    path: PathBuf,
    inode: u64,
}

impl ModelServer {
    /// Listens on `path`. A socket file left by a model that died is replaced; a socket that
    /// something still listens on, or a path that is not a socket, is an error.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<ModelServer> {
        let path = path.as_ref().to_path_buf();
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            if UnixStream::connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another process listens on {}", path.display()),
                ));
            }
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", path.display()),
            )
        })?;
        let inode = std::fs::metadata(&path)?.ino();
        Ok(ModelServer {
            listener,
            path,
            inode,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections forever, each on a thread named `conn-<n>` with its own model
    /// from `new_model`. Returns only on an accept error.
    pub fn run<M, F>(self, new_model: F) -> io::Result<()>
    where
        M: Model,
        F: Fn() -> M,
    {
        for (n, conn) in self.listener.incoming().enumerate() {
            let stream = match conn {
                Ok(s) => s,
                // A peer that went away between connect and accept.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            let mut model = new_model();
            std::thread::Builder::new()
                .name(format!("conn-{n}"))
                .spawn(move || {
                    if let Err(e) = serve_connection(stream, &mut model) {
                        eprintln!("vas-model: connection {n} ended: {e}");
                    }
                })?;
        }
        Ok(())
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Serves one connection until Ruth closes it: read a request line, read the frame from the
/// export, run the model, write the reply line. Returns `Ok` when Ruth closes the connection,
/// `Err` on an I/O error or a request line that is not a request (the connection is then
/// closed: without an id there is nothing to answer).
///
/// Use it directly to run connections your own way (a thread pool, one process each).
pub fn serve_connection<M: Model + ?Sized>(stream: UnixStream, model: &mut M) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = Vec::with_capacity(1024);
    let mut frames = FrameSource::default();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_REQUEST_BYTES as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            if n == MAX_REQUEST_BYTES {
                return Err(invalid(format!(
                    "a request line is longer than {MAX_REQUEST_BYTES} bytes"
                )));
            }
            return Ok(()); // closed in the middle of a line
        }
        let received_mono_ns = monotonic_now_ns();
        let request: FrameRequest = serde_json::from_slice(&line[..line.len() - 1])
            .map_err(|e| invalid(format!("not a frame request: {e}")))?;
        let reply = frames.answer(&request, received_mono_ns, model);
        writer.write_all(&reply.to_line())?;
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The export attachment of one connection, re-made when a request names another camera,
/// root or generation, and the buffer frames are copied into.
#[derive(Default)]
struct FrameSource {
    reader: Option<ExportReader>,
    pixels: Vec<u8>,
}

impl FrameSource {
    fn answer<M: Model + ?Sized>(
        &mut self,
        request: &FrameRequest,
        received_mono_ns: i64,
        model: &mut M,
    ) -> Reply {
        if let Some(why) = request.unsupported() {
            return Reply::error(request.id, why);
        }
        let reader = match reader_for(&mut self.reader, request) {
            Ok(r) => r,
            Err(e) => return Reply::error(request.id, e),
        };
        // A validated copy: the model may take its time over the pixels, the writer cannot
        // change them under it.
        match reader.read_frame_into(&request.frame_ref(), &mut self.pixels) {
            Ok(meta) => {
                let frame = Frame::new(request, meta, &self.pixels, received_mono_ns);
                match model.process(&frame) {
                    Ok(result) => Reply::result(request.id, result),
                    Err(e) => Reply::error(request.id, e),
                }
            }
            Err(e) => Reply::error(request.id, e.to_string()),
        }
    }
}

/// The attachment for `request`, re-made when it names another camera, root or generation.
fn reader_for<'a>(
    slot: &'a mut Option<ExportReader>,
    request: &FrameRequest,
) -> Result<&'a ExportReader, String> {
    let usable = slot.as_ref().is_some_and(|r| {
        r.camera_id() == request.camera
            && r.root() == Path::new(&request.root)
            && r.generation() == request.generation
    });
    if !usable {
        *slot = None;
        let reader = ExportReader::attach(Path::new(&request.root), &request.camera)
            .map_err(|e| e.to_string())?;
        *slot = Some(reader);
    }
    slot.as_ref()
        .ok_or_else(|| "no export attached".to_string())
}
