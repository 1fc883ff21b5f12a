//! Attaching to exports that are missing, garbage, truncated, of another layout version or
//! otherwise wrong: always a clear error, never a panic or a SIGBUS.

mod common;

use std::path::Path;

use common::TestRoot;
use frames::layout::{header, HEADER_SIZE, RECORD_SIZE, STATE_CLOSED};
use frames::{ErrorKind, ExportReader, SlotWriter, WriterOptions};

/// A valid export's meta file, captured while its writer was live (state LIVE, writer pid =
/// this test), and its data length, so damaged variants can be planted under other names.
struct Valid {
    meta: Vec<u8>,
    data_len: u64,
}

fn capture_valid(root: &Path) -> Valid {
    let writer = SlotWriter::create(root, "source", &WriterOptions::new(64, 48)).unwrap();
    let meta = std::fs::read(writer.dir().join("frame.meta")).unwrap();
    let data_len = std::fs::metadata(writer.dir().join("frame.data"))
        .unwrap()
        .len();
    drop(writer);
    Valid { meta, data_len }
}

fn plant(root: &Path, camera: &str, meta: &[u8], data_len: Option<u64>) {
    let dir = root.join(camera);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("frame.meta"), meta).unwrap();
    if let Some(len) = data_len {
        let data = std::fs::File::create(dir.join("frame.data")).unwrap();
        data.set_len(len).unwrap();
    }
}

fn with_u32(meta: &[u8], offset: usize, value: u32) -> Vec<u8> {
    let mut m = meta.to_vec();
    m[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    m
}

#[test]
fn broken_exports_give_clear_errors() {
    let root = TestRoot::new("attach-errors");
    let valid = capture_valid(root.path());
    let full = Some(valid.data_len);
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut bad_magic = valid.meta.clone();
    bad_magic[0..8].copy_from_slice(b"NOTVAS!!");
    // (camera, meta bytes, data length, expected kind, words the message must contain)
    type Case = (&'static str, Vec<u8>, Option<u64>, ErrorKind, &'static str);
    let cases: Vec<Case> = vec![
        (
            "closed",
            with_u32(&valid.meta, header::STATE, STATE_CLOSED),
            full,
            ErrorKind::WriterClosed,
            "attach again",
        ),
        (
            "empty",
            vec![],
            full,
            ErrorKind::Corrupt,
            "frame.meta is 0 bytes",
        ),
        (
            "garbage",
            garbage,
            full,
            ErrorKind::Corrupt,
            "not the magic",
        ),
        (
            "short-header",
            valid.meta[..100].to_vec(),
            full,
            ErrorKind::Corrupt,
            "frame.meta is 100 bytes",
        ),
        (
            "short-records",
            valid.meta[..HEADER_SIZE + RECORD_SIZE].to_vec(),
            full,
            ErrorKind::Corrupt,
            "4 slots need exactly 768",
        ),
        (
            "bad-magic",
            bad_magic,
            full,
            ErrorKind::Corrupt,
            "not the magic",
        ),
        (
            "newer-version",
            with_u32(&valid.meta, header::LAYOUT_VERSION, 2),
            full,
            ErrorKind::UnsupportedVersion,
            "layout version 2, this reader understands only version 1: upgrade the reader",
        ),
        (
            "version-zero",
            with_u32(&valid.meta, header::LAYOUT_VERSION, 0),
            full,
            ErrorKind::Corrupt,
            "version 0",
        ),
        (
            "one-slot",
            with_u32(&valid.meta, header::SLOT_COUNT, 1),
            full,
            ErrorKind::Corrupt,
            "slot_count 1",
        ),
        (
            "huge-slots",
            with_u32(&valid.meta, header::SLOT_COUNT, u32::MAX),
            full,
            ErrorKind::Corrupt,
            "slot_count",
        ),
        (
            "huge-width",
            with_u32(&valid.meta, header::WIDTH, 1 << 30),
            full,
            ErrorKind::Corrupt,
            "out of range",
        ),
        (
            "no-data",
            valid.meta.clone(),
            None,
            ErrorKind::Corrupt,
            "frame.meta exists without it",
        ),
        (
            "short-data",
            valid.meta.clone(),
            Some(valid.data_len - 4096),
            ErrorKind::Corrupt,
            "the header says",
        ),
        (
            "long-data",
            valid.meta.clone(),
            Some(valid.data_len + 4096),
            ErrorKind::Corrupt,
            "the header says",
        ),
    ];
    for (camera, meta, data_len, kind, words) in cases {
        plant(root.path(), camera, &meta, data_len);
        let err = match ExportReader::attach(root.path(), camera) {
            Ok(_) => panic!("{camera}: attach accepted a broken export"),
            Err(e) => e,
        };
        let message = err.to_string();
        assert_eq!(err.kind(), kind, "{camera}: {message}");
        assert!(
            message.contains(words),
            "{camera}: {message:?} lacks {words:?}"
        );
        println!("{camera}: {message}");
    }
}

#[test]
fn a_live_copy_of_a_valid_export_attaches() {
    // The control for the test above: the same planting with a live header does attach, so
    // the failures there come from the damage, not from the planting.
    let root = TestRoot::new("attach-control");
    let writer = SlotWriter::create(root.path(), "source", &WriterOptions::new(64, 48)).unwrap();
    let meta = std::fs::read(writer.dir().join("frame.meta")).unwrap();
    let data_len = std::fs::metadata(writer.dir().join("frame.data"))
        .unwrap()
        .len();
    plant(root.path(), "copy", &meta, Some(data_len));
    let reader = ExportReader::attach(root.path(), "copy").expect("a live copy attaches");
    assert_eq!(reader.info().width, 64);
    assert!(reader.latest().is_none());
}

#[test]
fn missing_exports_and_bad_ids_say_what_to_do() {
    let root = TestRoot::new("attach-missing");
    let err = ExportReader::attach(root.path(), "x").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NoExport);
    assert_eq!(
        err.to_string(),
        format!(
            "no export for camera 'x' under {}: is vasd running with export enabled for it?",
            root.path().display()
        )
    );
    for id in ["../etc", "Front", "", "a/b"] {
        let err = ExportReader::attach(root.path(), id).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidCameraId, "{id:?}");
        let err = SlotWriter::create(root.path(), id, &WriterOptions::new(64, 48))
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidCameraId, "{id:?}");
    }
    assert!(!root
        .path()
        .join("..")
        .join("etc")
        .join("frame.meta")
        .exists());
}

#[test]
fn bad_writer_options_are_refused() {
    let root = TestRoot::new("writer-options");
    // (slots, width, height) -> words in the message
    let table = [
        ((1, 64, 48), "1 slots: set [export] slots between 2 and 64"),
        ((65, 64, 48), "65 slots"),
        ((4, 0, 48), "frame size 0x48"),
        ((4, 64, 20000), "frame size 64x20000"),
    ];
    for ((slots, width, height), words) in table {
        let opts = WriterOptions {
            slots,
            width,
            height,
            group: None,
        };
        let err = SlotWriter::create(root.path(), "cam", &opts).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidOptions);
        assert!(err.to_string().contains(words), "{err}");
    }
}
