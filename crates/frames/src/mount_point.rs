//! Which mount a path lives on, so a "shm full" message can name the filesystem to grow.

use std::path::{Path, PathBuf};

/// The mount point holding `path` (the longest mount point in /proc/self/mounts that is an
/// ancestor of it), or `path` itself when /proc is unavailable.
pub(crate) fn mount_point_of(path: &Path) -> PathBuf {
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return resolved;
    };
    mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(unescape_octal)
        .filter(|mount| resolved.starts_with(mount))
        .max_by_key(|mount| mount.components().count())
        .unwrap_or(resolved)
}

/// /proc/self/mounts writes space, tab, newline and backslash as \040, \011, \012, \134.
fn unescape_octal(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_shm_is_its_own_mount() {
        assert_eq!(
            mount_point_of(Path::new("/dev/shm")),
            PathBuf::from("/dev/shm")
        );
        assert_eq!(mount_point_of(Path::new("/")), PathBuf::from("/"));
    }

    #[test]
    fn unescape_table() {
        let table = [
            ("/dev/shm", "/dev/shm"),
            ("/mnt/a\\040b", "/mnt/a b"),
            ("/x\\134y", "/x\\y"),
            ("/tail\\04", "/tail\\04"),
        ];
        for (raw, expected) in table {
            assert_eq!(unescape_octal(raw), PathBuf::from(expected), "{raw}");
        }
    }
}
