//! Listening Unix sockets that Ruth serves (events, status): created at start, a stale file
//! from a crashed run replaced, removed again at exit.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Mode of the sockets: the owner and its group may connect (connecting needs write access).
const SOCKET_MODE: u32 = 0o660;

/// A bound socket file; [`SocketFile::remove`] deletes it if it is still ours.
pub struct SocketFile {
    pub path: PathBuf,
    inode: u64,
}

impl SocketFile {
    /// Binds `path`. A socket file nobody listens on (left by a Ruth that was killed) is
    /// replaced; a live one means another Ruth runs, which is an error.
    pub fn bind(path: &Path) -> Result<(UnixListener, SocketFile)> {
        let fail = |message: String| Error::Listen {
            path: path.to_path_buf(),
            message,
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(fail(
                    "the path exists and is not a socket: remove it or choose another".into(),
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(fail(
                    "another process listens on it: is another ruth running?".into(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
        }
        let listener = UnixListener::bind(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                ": its directory does not exist (create it, e.g. RuntimeDirectory=vas in the unit)"
            } else {
                ""
            };
            fail(format!("{e}{hint}"))
        })?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE));
        let inode = std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
        Ok((
            listener,
            SocketFile {
                path: path.to_path_buf(),
                inode,
            },
        ))
    }

    pub fn remove(&self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
