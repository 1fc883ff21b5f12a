//! File modes and ownership, and the reader's read-only mapping.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{pattern, TestRoot};
use frames::{ExportReader, SlotWriter, StaleReason, WriterOptions};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn files_are_0640_and_dirs_0750_whatever_the_umask_and_carry_the_group() {
    // SAFETY: umask has no preconditions. It is process-wide; the other test in this binary
    // does not depend on it (the writer sets modes explicitly, which is what is tested).
    let old = unsafe { libc::umask(0o077) };
    let root = TestRoot::new("modes");
    // SAFETY: getegid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    // As root any group works; otherwise only our own.
    let group = if is_root {
        65534
    } else {
        unsafe { libc::getegid() }
    };
    let opts = WriterOptions {
        group: Some(group),
        ..WriterOptions::new(64, 48)
    };
    let nested_root = root.path().join("vas");
    let writer = SlotWriter::create(&nested_root, "cam", &opts).unwrap();
    // SAFETY: restoring the previous mask.
    unsafe { libc::umask(old) };
    let dir = nested_root.join("cam");
    for (path, expected) in [
        (dir.join("frame.meta"), 0o640),
        (dir.join("frame.data"), 0o640),
        (dir.clone(), 0o750),
        (nested_root.clone(), 0o750),
    ] {
        assert_eq!(mode(&path), expected, "{}", path.display());
        assert_eq!(
            std::fs::metadata(&path).unwrap().gid(),
            group,
            "{}",
            path.display()
        );
    }
    // Fully allocated up front, not sparse: blocks cover the whole length.
    let data = std::fs::metadata(dir.join("frame.data")).unwrap();
    assert!(data.blocks() * 512 >= data.len(), "frame.data is sparse");
    drop(writer);
}

/// The reader's mappings of both files, as listed in /proc/self/maps: (start, end, perms).
fn mappings_of(path: &Path) -> Vec<(usize, usize, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let name = path.to_str().unwrap();
    maps.lines()
        .filter(|l| l.ends_with(name))
        .map(|l| {
            let mut cols = l.split_whitespace();
            let (start, end) = cols.next().unwrap().split_once('-').unwrap();
            let perms = cols.next().unwrap().to_string();
            (
                usize::from_str_radix(start, 16).unwrap(),
                usize::from_str_radix(end, 16).unwrap(),
                perms,
            )
        })
        .collect()
}

#[test]
fn reader_maps_read_only_and_cannot_be_made_writable() {
    let root = TestRoot::new("read-only");
    let mut writer = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    let mut scratch = Vec::new();
    let mut fill = writer.begin();
    pattern::fill(&mut fill, &mut scratch);
    let id = fill.frame_id();
    fill.publish(pattern::info(id));
    let dir = root.path().join("cam");
    let meta_path = dir.join("frame.meta");
    let data_path = dir.join("frame.data");
    let writer_maps: Vec<_> = [&meta_path, &data_path]
        .iter()
        .map(|p| mappings_of(p))
        .collect();

    let reader = ExportReader::attach(root.path(), "cam").unwrap();
    for (path, before) in [&meta_path, &data_path].iter().zip(&writer_maps) {
        let after = mappings_of(path);
        let added: Vec<_> = after.iter().filter(|m| !before.contains(m)).collect();
        assert_eq!(added.len(), 1, "{}: {after:?}", path.display());
        let (start, end, perms) = added[0];
        // r--s: readable, not writable, not executable, shared.
        assert_eq!(perms, "r--s", "{}", path.display());
        // The descriptor was opened O_RDONLY, so the kernel refuses to make the mapping
        // writable: a reader cannot write even with unsafe code and mprotect.
        // SAFETY: mprotect on a mapping this process owns; it fails, so nothing changes.
        let rc = unsafe {
            libc::mprotect(
                *start as *mut libc::c_void,
                end - start,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        let errno = std::io::Error::last_os_error().raw_os_error();
        assert_eq!((rc, errno), (-1, Some(libc::EACCES)), "{}", path.display());
    }

    // The writer leaves while the reader holds its mappings: the writer's drop completes,
    // and the reader still reads its (now stale) frames without a fault.
    let latest = reader.latest().unwrap();
    drop(writer);
    assert_eq!(reader.stale_reason(), Some(StaleReason::Closed));
    assert!(!meta_path.exists() && !data_path.exists());
    let mut buf = Vec::new();
    let meta = reader
        .read_slot_into(latest.slot, latest.sequence, &mut buf)
        .unwrap();
    assert!(pattern::verify(&meta, &buf));
    assert!(reader
        .with_slot(latest.slot, latest.sequence, pattern::verify)
        .unwrap());
}
