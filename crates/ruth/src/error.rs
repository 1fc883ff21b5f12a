//! The one error type of Ruth. Each variant is something the user can act on, and its message
//! says what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value in ruth.toml is wrong; names the file, line, column and key.
    #[error("{}:{line}:{column}: {key}: {message}", .file.display())]
    BadConfig {
        file: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },

    /// The config file could not be read at all.
    #[error("{}: {message}", .file.display())]
    ConfigFile { file: PathBuf, message: String },

    /// A socket Ruth serves (events, status) could not be created.
    #[error("cannot listen on {}: {message}", .path.display())]
    Listen { path: PathBuf, message: String },

    /// Ruth's status socket did not answer (`ruth status`).
    #[error("cannot read the status from {}: {message}", .path.display())]
    Status { path: PathBuf, message: String },

    /// An operating-system call failed outside any camera or model.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
