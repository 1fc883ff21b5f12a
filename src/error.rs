//! The one error type of the daemon. Every variant is a kind a user can act on, and its message
//! says what to do.

use std::path::PathBuf;

/// Why a camera is not streaming. Shown in status and logs; drives nothing but the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraFault {
    /// Nothing answered: connection refused, no route, or DNS failure.
    Unreachable,
    /// The server answered but has no such stream (RTSP 404).
    NotFound,
    /// The server wants other credentials (RTSP 401/403).
    Unauthorized,
    /// Something answered that does not speak RTSP, or sent bytes FFmpeg cannot parse.
    Protocol,
    /// The stream has no video track VAS can use.
    NoVideo,
    /// No data for longer than the I/O timeout.
    Stalled,
    /// The server ended the stream.
    Ended,
    /// Anything else FFmpeg reported.
    Other,
}

impl std::fmt::Display for CameraFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The same words as the status API's "fault" field.
        f.write_str(match self {
            CameraFault::Unreachable => "unreachable",
            CameraFault::NotFound => "not_found",
            CameraFault::Unauthorized => "unauthorized",
            CameraFault::Protocol => "protocol",
            CameraFault::NoVideo => "no_video",
            CameraFault::Stalled => "stalled",
            CameraFault::Ended => "ended",
            CameraFault::Other => "other",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value in a config file is wrong; names the file, line, column and key.
    #[error("{file}:{line}:{column}: {key}: {message}")]
    BadConfig {
        file: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },

    /// A config file could not be read at all.
    #[error("{file}: {message}")]
    ConfigFile { file: PathBuf, message: String },

    /// An environment variable that overrides the config holds a value we cannot accept.
    #[error("{name}={value:?} is not valid: {message}")]
    BadEnvironment {
        name: &'static str,
        value: String,
        message: String,
    },

    /// The API server could not bind its address.
    #[error("cannot listen on {addr}: {message}; change [server] listen or stop what uses it")]
    Listen { addr: String, message: String },

    /// An operating-system call failed outside any camera.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::CameraFault::*;

    #[test]
    fn fault_words_in_logs_match_the_status_api() {
        for f in [
            Unreachable,
            NotFound,
            Unauthorized,
            Protocol,
            NoVideo,
            Stalled,
            Ended,
            Other,
        ] {
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
        }
    }
}
