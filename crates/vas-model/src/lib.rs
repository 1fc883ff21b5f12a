//! The VAS model SDK: what a model process needs to take frames from Ruth.
//!
//! Ruth (the VAS AI control plane) connects to a model's Unix socket once per subscription
//! and sends frame references, one JSON line each; the model reads the frame from the shared
//! memory export itself, computes, and answers with one JSON line. The protocol is
//! vas-model(7); [`protocol`] is its Rust form.
//!
//! ```no_run
//! use serde_json::json;
//! use vas_model::{Frame, ModelServer};
//!
//! let server = ModelServer::bind("/run/vas/models/brightness.sock")?;
//! server.run(|| {
//!     |frame: &Frame<'_>| {
//!         let row = frame.y_row(frame.height() / 2);
//!         let mean = row.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / row.len() as f64;
//!         Ok(json!({ "middle_row_luma": mean }))
//!     }
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Links only the `frames` reader and serde: no FFmpeg, no mediasoup, no async runtime.

mod frame;
pub mod protocol;
mod server;

pub use frame::Frame;
pub use protocol::{FrameRequest, Reply};
pub use server::{serve_connection, Model, ModelServer};
