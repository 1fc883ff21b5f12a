//! One recording segment: a fragmented MP4 file, written under a temporary name and renamed
//! when closed.
//!
//! Fragmented MP4 (`frag_keyframe+empty_moov+default_base_moof`) writes a self-contained
//! fragment per GOP and flushes it at once, so a crash, a SIGKILL or a power cut loses at most
//! the fragment being written: everything before it plays. Packets are copied as they came
//! from the camera (remux, no re-encode).

use std::path::{Path, PathBuf};

use ffmpeg::format::context::Output;
use ffmpeg::{Dictionary, Rational, Rescale};
use ffmpeg_next as ffmpeg;

use super::audio::{self, AudioPlan};
use crate::audio::{Target, Transcoder};
use crate::bitstream::{Codec, ParameterSets};
use crate::camera::fanout::{set_extradata, share, AccessUnit};
use crate::playback::index::part_of;

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
    /// Bytes of media handed to the muxer.
    pub media_bytes: u64,
    /// Wall-clock time of the first unit (the file name's, to the millisecond).
    pub start_unix_ms: u64,
    audio: Option<AudioOut>,
}

/// The audio track of a segment.
struct AudioOut {
    index: usize,
    in_time_base: Rational,
    out_time_base: Rational,
    /// The segment's start (its first video unit) in the input audio time base.
    origin: i64,
    last_dts: Option<i64>,
    transcoder: Option<Transcoder>,
    /// Audio packets written.
    packets: u64,
}

/// `<dir>/<camera>/<YYYY-MM-DD>/<HH-MM-SS.mmm>.mp4` for a UTC start time (read back by
/// `playback::index::start_time_ms`); `-1`, `-2`... are added when a segment of the same
/// millisecond exists.
pub fn segment_path(dir: &Path, camera: &str, start_unix_ms: u64) -> PathBuf {
    let t = time::OffsetDateTime::from_unix_timestamp((start_unix_ms / 1000) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let day = dir.join(camera).join(format!(
        "{:04}-{:02}-{:02}",
        t.year(),
        t.month() as u8,
        t.day()
    ));
    let stem = format!(
        "{:02}-{:02}-{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        start_unix_ms % 1000
    );
    let mut path = day.join(format!("{stem}.mp4"));
    let mut n = 1;
    while path.exists() || part_of(&path).exists() {
        path = day.join(format!("{stem}-{n}.mp4"));
        n += 1;
    }
    path
}

impl Segment {
    /// Starts a segment at `first`, which must be a key frame with a timestamp; with the
    /// camera's audio track when `audio` (and the track can be recorded: see `audio::plan`).
    pub fn open(
        dir: &Path,
        camera: &str,
        first: &AccessUnit,
        audio: bool,
    ) -> Result<Segment, String> {
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
        let codec = Codec::from_ffmpeg(params.id());
        // SAFETY: we own `params`; plain field writes on a valid AVCodecParameters. The tag is
        // the RTSP demuxer's; zero lets the MP4 muxer choose (`avc1` for H.264). For H.265 it
        // would choose `hev1`, which Safari refuses; `hvc1` (parameter sets in the sample
        // entry, which is where ours are) plays everywhere.
        unsafe {
            (*params.as_mut_ptr()).codec_tag = match codec {
                Some(Codec::H265) => u32::from_le_bytes(*b"hvc1"),
                _ => 0,
            }
        };
        if let (true, Some(codec)) = (first.stream.extradata.is_empty(), codec) {
            // Cheap cameras leave the parameter sets out of the SDP; the MP4 header needs
            // them, and the key frame carries them in band.
            let mut sets = ParameterSets::new(codec);
            sets.learn_access_unit(first.packet.data().unwrap_or(&[]));
            if sets.is_complete() {
                set_extradata(&mut params, &sets.to_annex_b());
            }
        }
        {
            let mut stream = output
                .add_stream(Option::<ffmpeg::Codec>::None)
                .map_err(|e| format!("cannot add the video stream: {e}"))?;
            stream.set_parameters(params);
            stream.set_time_base(first.time_base);
        }
        let mut audio_out = None;
        if let Some(track) = first.stream.audio.as_ref().filter(|_| audio) {
            let (params, in_tb, transcoder) = match audio::plan(track.parameters.id()) {
                AudioPlan::Copy => {
                    let mut p = track.parameters.clone();
                    // SAFETY: plain field write on parameters we own; zero lets the muxer
                    // choose the tag (mp4a).
                    unsafe { (*p.as_mut_ptr()).codec_tag = 0 };
                    (Some(p), track.time_base, None)
                }
                AudioPlan::ToAac => {
                    let t = Transcoder::new(&track.parameters, Target::RECORDING_AAC)?;
                    (Some(t.parameters()), track.time_base, Some(t))
                }
                AudioPlan::Drop => (None, track.time_base, None),
            };
            if let Some(params) = params {
                let mut stream = output
                    .add_stream(Option::<ffmpeg::Codec>::None)
                    .map_err(|e| format!("cannot add the audio stream: {e}"))?;
                stream.set_parameters(params);
                let tb = transcoder.as_ref().map_or(in_tb, |t| t.time_base());
                stream.set_time_base(tb);
                audio_out = Some(AudioOut {
                    index: stream.index(),
                    in_time_base: tb,
                    out_time_base: tb,
                    origin: first_dts.rescale(first.time_base, track.time_base),
                    last_dts: None,
                    transcoder,
                    packets: 0,
                });
            }
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
        if let Some(a) = audio_out.as_mut() {
            a.out_time_base = output
                .stream(a.index)
                .map(|s| s.time_base())
                .unwrap_or(a.in_time_base);
        }
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
            media_bytes: 0,
            start_unix_ms: first.received_unix_ms,
            audio: audio_out,
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
        let mut packet = share(&unit.packet);
        packet.set_dts(Some(dts));
        packet.set_pts(Some(pts));
        packet.set_stream(0);
        packet.set_position(-1);
        packet.rescale_ts(self.in_time_base, self.out_time_base);
        self.media_bytes += packet.size() as u64;
        packet
            .write(&mut self.output)
            .map_err(|e| format!("writing {}: {e}", self.part_path.display()))?;
        if unit.key {
            self.durable_units = self.units;
        }
        self.units += 1;
        Ok(())
    }

    /// Appends one audio unit of the camera (its timestamps in the audio track's time base).
    /// Audio from before the segment's first video unit, or not after the previous audio
    /// packet, is left out: players start a file on its video.
    pub fn write_audio(&mut self, unit: &AccessUnit) -> Result<(), String> {
        let Some(a) = self.audio.as_mut() else {
            return Ok(());
        };
        let Some(ts) = unit.packet.pts().or(unit.packet.dts()) else {
            return Ok(());
        };
        let ts = ts - a.origin;
        if ts < 0 {
            return Ok(());
        }
        let mut encoded = Vec::new();
        match a.transcoder.as_mut() {
            Some(t) => {
                // The transcoder's clock is in samples; the input's time base is 1/rate too
                // for RTP G.711, but rescale in case it is not.
                let samples = ts.rescale(unit.time_base, a.in_time_base);
                t.push(&unit.packet, samples, &mut |p| encoded.push(p));
            }
            None => {
                let mut p = share(&unit.packet);
                p.set_pts(Some(ts));
                p.set_dts(Some(ts));
                encoded.push(p);
            }
        }
        for mut packet in encoded {
            let dts = packet.dts().or(packet.pts()).unwrap_or(0);
            if a.last_dts.is_some_and(|last| dts <= last) {
                continue;
            }
            a.last_dts = Some(dts);
            packet.set_stream(a.index);
            packet.set_position(-1);
            packet.rescale_ts(a.in_time_base, a.out_time_base);
            self.media_bytes += packet.size() as u64;
            packet
                .write(&mut self.output)
                .map_err(|e| format!("writing audio to {}: {e}", self.part_path.display()))?;
            a.packets += 1;
        }
        Ok(())
    }

    /// The temporary name the segment is written under.
    pub fn part_path(&self) -> &Path {
        &self.part_path
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_camera_day_and_utc_start() {
        let dir = tempfile::tempdir().unwrap();
        // 2026-11-25 17:04:09.500 UTC
        let ms = 1_795_626_249_500;
        let p = segment_path(dir.path(), "front", ms);
        assert_eq!(p, dir.path().join("front/2026-11-25/17-04-09.500.mp4"));
        let day = "2026-11-25";
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            crate::playback::index::start_time_ms(day, name),
            Some(ms as i64),
            "the index reads back the name's start"
        );
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"x").unwrap();
        let q = segment_path(dir.path(), "front", ms);
        assert_eq!(q, dir.path().join("front/2026-11-25/17-04-09.500-1.mp4"));
        std::fs::write(part_of(&q), b"x").unwrap();
        let r = segment_path(dir.path(), "front", ms);
        assert_eq!(r, dir.path().join("front/2026-11-25/17-04-09.500-2.mp4"));
    }
}
