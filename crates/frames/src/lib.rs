//! The VAS frame export: decoded frames of each camera as raw NV12 in shared memory.
//!
//! Per camera, vasd (the [`SlotWriter`]) keeps `<root>/<camera_id>/frame.meta` (a header and
//! one seqlocked record per slot) and `frame.data` (a ring of page-aligned NV12 slots). Any
//! number of local processes attach with an [`ExportReader`], wait on the publish counter
//! futex, and copy or borrow frames, rejecting torn and lapped reads. The byte layout is a
//! public contract documented in vas-frames(7) and defined in [`layout`].
//!
//! This crate links neither FFmpeg nor mediasoup, so Ruth and model processes can use it.
//!
//! Tests worth knowing (see each file's header):
//! - `RUSTFLAGS="--cfg loom" cargo test -p frames --release --test loom`: model check of the
//!   seqlock in [`seqlock`], including three deliberately broken variants loom must catch.
//! - `cargo test -p frames --release --test stress -- --nocapture`: 10^6 verified reads each
//!   against a writer thread and a writer process, with the torn and lapped counts.
//! - `cargo test -p frames --release --test copy_cost -- --nocapture`: 1080p copy costs.
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//! use frames::{ExportReader, WaitOutcome};
//!
//! let reader = ExportReader::attach(Path::new("/dev/shm/vas"), "front")?;
//! let mut counter = reader.publish_counter();
//! let mut pixels = Vec::new();
//! loop {
//!     match reader.wait_for_publish(counter, Duration::from_secs(1)) {
//!         WaitOutcome::Published { counter: now } => counter = now,
//!         WaitOutcome::TimedOut if !reader.is_stale() => continue,
//!         _ => break, // re-attach
//!     }
//!     let Some(latest) = reader.latest() else { continue };
//!     match reader.read_slot_into(latest.slot, latest.sequence, &mut pixels) {
//!         Ok(meta) => println!("frame {} {}x{}", meta.frame_id, meta.width, meta.height),
//!         Err(_) => continue, // torn or lapped: skip it
//!     }
//! }
//! # Ok::<(), frames::FramesError>(())
//! ```

mod atomic_copy;
mod camera_id;
mod clock;
mod error;
mod export_files;
mod file_id;
mod frame_meta;
mod futex;
mod geometry;
mod header;
pub mod layout;
mod leftover;
mod liveness;
mod meta_view;
mod mount_point;
mod reader;
pub mod seqlock;
mod writer;

pub use camera_id::{validate_camera_id, MAX_CAMERA_ID_LEN};
pub use clock::{monotonic_now_ns, wall_clock_now_ns};
pub use error::{human_bytes, ErrorKind, FramesError, ReadError};
pub use frame_meta::{FrameMeta, FrameRef, SlotRef};
pub use geometry::Nv12Geometry;
pub use header::ExportInfo;
pub use layout::{FORMAT_NV12, LAYOUT_VERSION};
pub use reader::{ExportReader, ReadStats, StaleReason, WaitOutcome};
pub use writer::{FrameInfo, SlotFill, SlotWriter, WriterOptions};

/// Default export root, `[export] shm_dir` in vas.toml.
pub const DEFAULT_ROOT: &str = "/dev/shm/vas";
