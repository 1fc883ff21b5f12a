//! `vas-frames snapshot`: the latest frame of a camera as a PNG.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, Instant};

use frames::{ExportReader, FrameMeta, FramesError, WaitOutcome};

use crate::rgb::nv12_to_rgb;

/// Reads attempted before giving up when every one is torn or lapped. Each read of a 1080p
/// frame takes well under a millisecond against a frame period of 33 ms, so even one success
/// in 20 would mean a machine too loaded to matter.
const READ_ATTEMPTS: usize = 20;

pub fn run(root: &Path, camera: &str, output: &Path, timeout: Duration) -> Result<(), String> {
    let reader = ExportReader::attach(root, camera).map_err(|e| e.to_string())?;
    let (meta, pixels) = latest_frame(&reader, timeout)?;
    let rgb = nv12_to_rgb(&meta, &pixels);
    write_png(output, meta.width, meta.height, &rgb)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    println!(
        "{}: frame {} of camera '{camera}', {}x{}, pts {} ns",
        output.display(),
        meta.frame_id,
        meta.width,
        meta.height,
        meta.pts_ns
    );
    Ok(())
}

fn latest_frame(reader: &ExportReader, timeout: Duration) -> Result<(FrameMeta, Vec<u8>), String> {
    // None: a timeout too long for an Instant, i.e. no deadline.
    let deadline = Instant::now().checked_add(timeout);
    let mut pixels = Vec::new();
    let mut attempts = 0;
    loop {
        let counter = reader.publish_counter();
        if let Some(latest) = reader.latest() {
            attempts += 1;
            match reader.read_slot_into(latest.slot, latest.sequence, &mut pixels) {
                Ok(meta) => return Ok((meta, pixels)),
                Err(e) if attempts >= READ_ATTEMPTS => {
                    return Err(format!(
                        "camera '{}': {READ_ATTEMPTS} reads in a row were rejected ({e}); the \
                         machine is too loaded to copy a frame",
                        reader.camera_id()
                    ))
                }
                Err(_) => continue,
            }
        }
        let remaining = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        match reader.wait_for_publish(counter, remaining) {
            WaitOutcome::Published { .. } => continue,
            WaitOutcome::Closed => {
                return Err(FramesError::WriterClosed {
                    camera: reader.camera_id().to_string(),
                }
                .to_string())
            }
            WaitOutcome::TimedOut => {
                return Err(format!(
                    "camera '{}' has published no frame in {} ms: is the camera connected? \
                     (vasd logs why not)",
                    reader.camera_id(),
                    timeout.as_millis()
                ))
            }
        }
    }
}

fn write_png(
    path: &Path,
    width: u32,
    height: u32,
    rgb: &[u8],
) -> Result<(), Box<dyn std::error::Error>> {
    let file = BufWriter::new(File::create(path)?);
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(())
}
