//! One recording segment: a fragmented MP4 file, written under a temporary name and renamed
//! when closed.
//!
//! Fragmented MP4 (`frag_keyframe+empty_moov+default_base_moof`) writes a self-contained
//! fragment per GOP and flushes it at once, so a crash, a SIGKILL or a power cut loses at most
//! the fragment being written: everything before it plays. Packets are copied as they came
//! from the camera (remux, no re-encode).

use std::path::{Path, PathBuf};

use ffmpeg::format::context::Output;
use ffmpeg::{Dictionary, Rational};
use ffmpeg_next as ffmpeg;

use crate::camera::fanout::AccessUnit;

/// Suffix of a segment being written.
pub const PART_SUFFIX: &str = ".part";

pub struct Segment {
    output: Output,
    part_path: PathBuf,
    pub path: PathBuf,
    in_time_base: Rational,
    out_time_base: Rational,
    /// DTS of the segment's first unit (its key frame), in the input time base.
    first_dts: i64,
    last_dts: Option<i64>,
    pub units: u64,
    /// Units known to be on disk: the muxer writes a fragment out when the next key frame
    /// arrives, so a key frame accepted without error means every unit before it was written.
    durable_units: u64,
    /// Units whose DTS was not after the previous one and was moved forward.
    pub fixed_dts: u64,
}

/// `<dir>/<camera>/<YYYY-MM-DD>/<HH-MM-SS>.mp4` for a UTC start time; `-1`, `-2`... are added
/// when a segment of the same second exists (a reconnect within the second).
pub fn segment_path(dir: &Path, camera: &str, start_unix_ms: u64) -> PathBuf {
    let t = time::OffsetDateTime::from_unix_timestamp((start_unix_ms / 1000) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let day = dir.join(camera).join(format!(
        "{:04}-{:02}-{:02}",
        t.year(),
        t.month() as u8,
        t.day()
    ));
    let stem = format!("{:02}-{:02}-{:02}", t.hour(), t.minute(), t.second());
    let mut path = day.join(format!("{stem}.mp4"));
    let mut n = 1;
    while path.exists() || part_of(&path).exists() {
        path = day.join(format!("{stem}-{n}.mp4"));
        n += 1;
    }
    path
}

/// The temporary name of `path` while it is written.
pub fn part_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

impl Segment {
    /// Starts a segment at `first`, which must be a key frame with a timestamp.
    pub fn open(dir: &Path, camera: &str, first: &AccessUnit) -> Result<Segment, String> {
        let first_dts = first
            .packet
            .dts()
            .or(first.packet.pts())
            .ok_or("the key frame has no timestamp")?;
        let path = segment_path(dir, camera, first.received_unix_ms);
        let part_path = part_of(&path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut output = ffmpeg::format::output_as(&part_path, "mp4")
            .map_err(|e| format!("cannot create {}: {e}", part_path.display()))?;
        let mut params = first.stream.parameters().clone();
        // SAFETY: we own `params`; plain field writes on a valid AVCodecParameters. The tag is
        // the RTSP demuxer's; zero lets the MP4 muxer choose `avc1`.
        unsafe { (*params.as_mut_ptr()).codec_tag = 0 };
        if first.stream.extradata.is_empty() {
            // Cheap cameras leave SPS/PPS out of the SDP; the MP4 header needs them, and the
            // key frame carries them in band.
            let extradata = parameter_sets(first.packet.data().unwrap_or(&[]));
            if !extradata.is_empty() {
                set_extradata(&mut params, &extradata);
            }
        }
        {
            let mut stream = output
                .add_stream(Option::<ffmpeg::Codec>::None)
                .map_err(|e| format!("cannot add the video stream: {e}"))?;
            stream.set_parameters(params);
            stream.set_time_base(first.time_base);
        }
        let mut options = Dictionary::new();
        options.set("movflags", "frag_keyframe+empty_moov+default_base_moof");
        // Hand every fragment to the kernel as soon as it is complete.
        options.set("flush_packets", "1");
        output.set_metadata({
            let mut m = Dictionary::new();
            let t = time::OffsetDateTime::from_unix_timestamp_nanos(
                first.received_unix_ms as i128 * 1_000_000,
            )
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            if let Ok(s) = t.format(&time::format_description::well_known::Rfc3339) {
                m.set("creation_time", &s);
            }
            m
        });
        output
            .write_header_with(options)
            .map_err(|e| format!("cannot write the header of {}: {e}", part_path.display()))?;
        let out_time_base = output
            .stream(0)
            .map(|s| s.time_base())
            .unwrap_or(first.time_base);
        Ok(Segment {
            output,
            part_path,
            path,
            in_time_base: first.time_base,
            out_time_base,
            first_dts,
            last_dts: None,
            units: 0,
            durable_units: 0,
            fixed_dts: 0,
        })
    }

    /// Seconds from the segment's first unit to `unit`.
    pub fn seconds_to(&self, unit: &AccessUnit) -> f64 {
        let dts = unit
            .packet
            .dts()
            .or(unit.packet.pts())
            .unwrap_or(self.first_dts);
        (dts - self.first_dts) as f64 * f64::from(self.in_time_base)
    }

    /// Appends one unit. Timestamps are rebased to start at zero and kept strictly increasing.
    pub fn write(&mut self, unit: &AccessUnit) -> Result<(), String> {
        let Some(dts) = unit.packet.dts().or(unit.packet.pts()) else {
            return Ok(());
        };
        let mut dts = dts - self.first_dts;
        let mut pts = unit.packet.pts().map_or(dts, |p| p - self.first_dts);
        if let Some(last) = self.last_dts {
            if dts <= last {
                // A camera clock that steps back or repeats: the MP4 muxer refuses it, so the
                // unit is moved just after its predecessor.
                dts = last + 1;
                pts = pts.max(dts);
                self.fixed_dts += 1;
            }
        }
        self.last_dts = Some(dts);
        let mut packet = unit.packet.clone();
        packet.set_dts(Some(dts));
        packet.set_pts(Some(pts));
        packet.set_stream(0);
        packet.set_position(-1);
        packet.rescale_ts(self.in_time_base, self.out_time_base);
        packet
            .write(&mut self.output)
            .map_err(|e| format!("writing {}: {e}", self.part_path.display()))?;
        if unit.key {
            self.durable_units = self.units;
        }
        self.units += 1;
        Ok(())
    }

    /// Finishes the file and gives it its final name. Returns its size in bytes. Even when
    /// the trailer cannot be written (disk full), the fragments already written stay playable,
    /// so the file is kept unless no frame of it reached the disk.
    pub fn close(mut self) -> Result<u64, String> {
        let trailer = self.output.write_trailer();
        if trailer.is_ok() {
            self.durable_units = self.units;
        }
        drop(self.output);
        let size = std::fs::metadata(&self.part_path).map_or(0, |m| m.len());
        if self.durable_units == 0 {
            let _ = std::fs::remove_file(&self.part_path);
            return Err(format!(
                "no frame of {} reached the disk; the file was removed",
                self.path.display()
            ));
        }
        std::fs::rename(&self.part_path, &self.path)
            .map_err(|e| format!("cannot rename {}: {e}", self.part_path.display()))?;
        match trailer {
            Ok(()) => Ok(size),
            Err(e) => Err(format!(
                "closing {} ({e}); its first {} frames stay playable",
                self.path.display(),
                self.durable_units
            )),
        }
    }
}

/// Whether an access unit holds a coded picture: in an Annex B H.264 or H.265 stream, a VCL
/// NAL unit. A stream cut mid-frame (a server that ends the session) leaves a last unit with
/// only an access unit delimiter; written to a segment it is a sample every decoder reports as
/// "no frame". Units of other codecs, or not in Annex B, are taken as pictures.
pub fn carries_picture(data: &[u8], codec: ffmpeg::codec::Id) -> bool {
    use ffmpeg::codec::Id;
    let is_vcl: fn(u8) -> bool = match codec {
        Id::H264 => |header| matches!(header & 0x1f, 1..=5),
        Id::HEVC => |header| (header >> 1) & 0x3f < 32,
        _ => return true,
    };
    if !(data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])) {
        return true;
    }
    // Parameter sets, SEI and delimiters come before the slices: the scan ends early.
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if is_vcl(data[i + 3]) {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

/// The SPS and PPS NAL units of an Annex B access unit, each with a start code.
fn parameter_sets(annex_b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in annex_b_units(annex_b) {
        if let Some(&header) = nal.first() {
            if matches!(header & 0x1f, 7 | 8) {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(nal);
            }
        }
    }
    out
}

/// Splits an Annex B byte stream at its start codes (00 00 01 or 00 00 00 01).
fn annex_b_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            // The next unit's start code begins 3 bytes before it, 4 with a leading zero.
            let mut e = s - 3;
            while e > 0 && data[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |(s, e)| &data[s..e.max(s)])
}

fn set_extradata(params: &mut ffmpeg::codec::Parameters, data: &[u8]) {
    // SAFETY: FFmpeg requires extradata to be allocated with av_malloc and padded; we free any
    // previous buffer with av_free and own the parameters exclusively.
    unsafe {
        let p = params.as_mut_ptr();
        let padding = ffmpeg::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffmpeg::ffi::av_mallocz(data.len() + padding) as *mut u8;
        if buf.is_null() {
            return;
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        ffmpeg::ffi::av_free((*p).extradata as *mut _);
        (*p).extradata = buf;
        (*p).extradata_size = data.len() as i32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_camera_day_and_utc_start() {
        let dir = tempfile::tempdir().unwrap();
        // 2026-11-25 17:04:09.500 UTC
        let ms = 1_795_626_249_500;
        let p = segment_path(dir.path(), "front", ms);
        assert_eq!(p, dir.path().join("front/2026-11-25/17-04-09.mp4"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"x").unwrap();
        let q = segment_path(dir.path(), "front", ms);
        assert_eq!(q, dir.path().join("front/2026-11-25/17-04-09-1.mp4"));
        std::fs::write(part_of(&q), b"x").unwrap();
        let r = segment_path(dir.path(), "front", ms);
        assert_eq!(r, dir.path().join("front/2026-11-25/17-04-09-2.mp4"));
    }

    #[test]
    fn units_without_a_slice_carry_no_picture() {
        use ffmpeg::codec::Id;
        // (unit, codec, carries a picture)
        let table: [(&[u8], Id, bool); 8] = [
            // H.264: access unit delimiter only (what a cut stream leaves)
            (&[0, 0, 0, 1, 0x09, 0x10], Id::H264, false),
            // AUD, SPS, PPS, IDR slice
            (
                &[
                    0, 0, 0, 1, 0x09, 0x10, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3,
                ],
                Id::H264,
                true,
            ),
            // a non-IDR slice
            (&[0, 0, 1, 0x41, 0x9a], Id::H264, true),
            // SEI only
            (&[0, 0, 0, 1, 0x06, 0x05, 0x80], Id::H264, false),
            // H.265: AUD (type 35), then a TRAIL_R slice (type 1)
            (&[0, 0, 0, 1, 0x46, 0x01, 0x50], Id::HEVC, false),
            (
                &[0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x02, 0x01, 0xd0],
                Id::HEVC,
                true,
            ),
            // not Annex B (length-prefixed): cannot tell, taken as a picture
            (&[0, 0, 0, 2, 0x09, 0x10], Id::H264, true),
            // another codec
            (&[0, 0, 1, 0x09], Id::MPEG4, true),
        ];
        for (unit, codec, expected) in table {
            assert_eq!(carries_picture(unit, codec), expected, "{unit:02x?}");
        }
    }

    #[test]
    fn parameter_sets_are_found_in_band() {
        // (access unit, expected extradata)
        let sps = [0x67, 0x64, 0x00, 0x28];
        let pps = [0x68, 0xee, 0x3c, 0x80];
        let idr = [0x65, 0x88, 0x84, 0x00, 0x00];
        let mut au = vec![0, 0, 0, 1];
        au.extend_from_slice(&sps);
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(&pps);
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(&idr);
        let mut want = vec![0, 0, 0, 1];
        want.extend_from_slice(&sps);
        want.extend_from_slice(&[0, 0, 0, 1]);
        want.extend_from_slice(&pps);
        let table: [(&[u8], Vec<u8>); 3] = [
            (&au, want),
            (&[0, 0, 0, 1, 0x65, 1, 2], vec![]),
            (&[], vec![]),
        ];
        for (input, expected) in table {
            assert_eq!(parameter_sets(input), expected);
        }
    }
}
