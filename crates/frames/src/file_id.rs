//! Identity of a file (device and inode), to tell whether a path still names the file we
//! mapped or a replacement.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(crate) fn of_file(file: &File) -> std::io::Result<FileId> {
        file.metadata().map(|m| FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    pub(crate) fn of_path(path: &Path) -> std::io::Result<FileId> {
        std::fs::metadata(path).map(|m| FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}
