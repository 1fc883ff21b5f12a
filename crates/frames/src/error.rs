//! The crate's error type. Every message says what happened and what to do about it.

use std::path::PathBuf;

/// What kind of failure a [`FramesError`] is, for callers that branch on it (vasd disables the
/// export of one camera on `ShmFull`; a reader retries `NoExport` and `WriterClosed` later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidCameraId,
    InvalidOptions,
    NoExport,
    Corrupt,
    UnsupportedVersion,
    WriterClosed,
    ShmFull,
    PermissionDenied,
    Io,
    Read,
}

#[derive(Debug, thiserror::Error)]
pub enum FramesError {
    #[error(
        "invalid camera id {id:?}: camera ids are 1 to 64 characters from a-z, 0-9, '_' and '-' \
         (they become directory names); rename the camera in vas.toml"
    )]
    InvalidCameraId { id: String },

    #[error("invalid export options for camera '{camera}': {reason}")]
    InvalidOptions { camera: String, reason: String },

    #[error(
        "no export for camera '{camera}' under {}: is vasd running with export enabled for it?",
        .root.display()
    )]
    NoExport { camera: String, root: PathBuf },

    #[error(
        "{} is not a usable VAS frame export: {reason}; vasd replaces it when it next starts \
         the camera, or remove it by hand if vasd no longer exports this camera",
        .path.display()
    )]
    Corrupt { path: PathBuf, reason: String },

    #[error(
        "{} uses frame layout version {found}, this reader understands only version {supported}: \
         upgrade the reader (the frames crate, vas-frames or the vas_frames Python package) to \
         the version that matches vasd",
        .path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error(
        "the export of camera '{camera}' was closed by its writer while attaching (vasd is \
         restarting the camera or changing its resolution): attach again"
    )]
    WriterClosed { camera: String },

    #[error(
        "{} has {} free, camera '{camera}' needs {} for {slots} slots of {geometry} NV12: \
         raise the size of {} (mount -o remount,size=<bytes> {}) or lower [export] slots",
        .mount.display(), human_bytes(*.available_bytes), human_bytes(*.needed_bytes),
        .mount.display(), .mount.display()
    )]
    ShmFull {
        /// The filesystem that is full (its mount point).
        mount: PathBuf,
        camera: String,
        needed_bytes: u64,
        available_bytes: u64,
        slots: u32,
        geometry: String,
    },

    #[error("permission denied: cannot {action} {}: {hint}", .path.display())]
    PermissionDenied {
        action: &'static str,
        path: PathBuf,
        hint: &'static str,
    },

    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Read(#[from] ReadError),
}

impl FramesError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            FramesError::InvalidCameraId { .. } => ErrorKind::InvalidCameraId,
            FramesError::InvalidOptions { .. } => ErrorKind::InvalidOptions,
            FramesError::NoExport { .. } => ErrorKind::NoExport,
            FramesError::Corrupt { .. } => ErrorKind::Corrupt,
            FramesError::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            FramesError::WriterClosed { .. } => ErrorKind::WriterClosed,
            FramesError::ShmFull { .. } => ErrorKind::ShmFull,
            FramesError::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            FramesError::Io { .. } => ErrorKind::Io,
            FramesError::Read(_) => ErrorKind::Read,
        }
    }

    /// An I/O failure on `path`, turned into `PermissionDenied` with `hint` when it is EACCES
    /// or EPERM, since that is the one a user can fix.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
        permission_hint: &'static str,
    ) -> FramesError {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            FramesError::PermissionDenied {
                action,
                path,
                hint: permission_hint,
            }
        } else {
            FramesError::Io {
                action,
                path,
                source,
            }
        }
    }
}

/// Why a frame read was rejected. These are expected outcomes, not faults: frames are skipped
/// freely, so the caller drops the frame and takes the next published one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(
        "the frame was overwritten before the read began (lapped): skip it and read the latest"
    )]
    Lapped,

    #[error(
        "the writer overwrote the slot while it was being read (torn): the data was discarded, \
         skip it and read the latest"
    )]
    Torn,

    #[error("slot {slot} does not exist: the export has {slots} slots")]
    NoSuchSlot { slot: u32, slots: u32 },

    #[error(
        "sequence {sequence} names no published frame: published sequences are even and non-zero"
    )]
    InvalidSequence { sequence: u64 },

    #[error(
        "the frame reference is for generation {reference}, the attached export is generation \
         {attached}: re-attach to read newer frames"
    )]
    WrongGeneration { reference: u64, attached: u64 },

    #[error(
        "slot {slot} holds an inconsistent record ({reason}): the export is corrupt, re-attach"
    )]
    CorruptRecord { slot: u32, reason: &'static str },
}

/// "95.0 MiB (99614720 bytes)": readable, and exact for those who compute sizes.
pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_full_names_bytes_and_fix() {
        let err = FramesError::ShmFull {
            mount: PathBuf::from("/dev/shm"),
            camera: "front".into(),
            needed_bytes: 12_455_936,
            available_bytes: 4_194_304,
            slots: 4,
            geometry: "1920x1080".into(),
        };
        assert_eq!(err.kind(), ErrorKind::ShmFull);
        assert_eq!(
            err.to_string(),
            "/dev/shm has 4.0 MiB (4194304 bytes) free, camera 'front' needs 11.9 MiB \
             (12455936 bytes) for 4 slots of 1920x1080 NV12: raise the size of /dev/shm \
             (mount -o remount,size=<bytes> /dev/shm) or lower [export] slots"
        );
    }

    #[test]
    fn no_export_tells_what_to_check() {
        let err = FramesError::NoExport {
            camera: "x".into(),
            root: PathBuf::from("/dev/shm/vas"),
        };
        assert_eq!(
            err.to_string(),
            "no export for camera 'x' under /dev/shm/vas: is vasd running with export enabled for it?"
        );
    }
}
