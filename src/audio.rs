//! Audio transcoding, for the two consumers whose outputs cannot carry a camera's codec:
//! recordings turn G.711 (which the MP4 muxer refuses and no browser plays from MP4) into AAC,
//! and the live view turns AAC (which WebRTC does not carry) into Opus. One path for both:
//! FFmpeg decodes, swresample mixes down to mono float at the target rate, and the encoder
//! takes frames of its own fixed size. A transcoder runs on its consumer's thread, never the
//! camera's.
//!
//! Cameras send speech-grade mono (a stereo camera is rare and its channels are near copies),
//! so the output is mono: half the encoder's work, and every player upmixes.

use ffmpeg::codec::Id;
use ffmpeg::format::sample::Type as SampleType;
use ffmpeg::format::Sample;
use ffmpeg::software::resampling;
use ffmpeg::{ChannelLayout, Packet, Rational};
use ffmpeg_next as ffmpeg;

/// What to encode to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// FFmpeg's name of the encoder: `aac` (FFmpeg's own) or `libopus`.
    pub encoder: &'static str,
    /// Output sample rate; `None` keeps the input's.
    pub rate: Option<u32>,
    pub bit_rate: usize,
    /// The codec configuration goes out of band (the MP4 sample entry), not in the packets.
    pub global_header: bool,
}

impl Target {
    /// AAC for a recording of G.711 speech: 32 kbit/s at the camera's 8 kHz mono is
    /// transparent for a 64 kbit/s G.711 source.
    pub const RECORDING_AAC: Target = Target {
        encoder: "aac",
        rate: None,
        bit_rate: 32_000,
        global_header: true,
    };
    /// Opus for a live viewer: WebRTC's Opus runs at 48 kHz (RFC 7587), and 32 kbit/s mono is
    /// what WebRTC itself uses for speech.
    pub const LIVE_OPUS: Target = Target {
        encoder: "libopus",
        rate: Some(48_000),
        bit_rate: 32_000,
        global_header: false,
    };
}

/// The layout FFmpeg means when a decoder leaves it unset: the default for the count.
fn layout_of(frame: &ffmpeg::frame::Audio) -> ChannelLayout {
    let layout = frame.channel_layout();
    if layout.is_empty() || layout.channels() != i32::from(frame.channels()) {
        ChannelLayout::default(i32::from(frame.channels().max(1)))
    } else {
        layout
    }
}

/// The input a resampler was made for; a decoder that changes it (rare: an AAC stream that
/// switches configuration) gets a new one.
type ResamplerKey = (Sample, u64, u32);

/// One audio track in, `Target` out. Timestamps are in output samples (time base 1/rate).
pub struct Transcoder {
    decoder: ffmpeg::decoder::Audio,
    resampler: Option<(ResamplerKey, resampling::Context)>,
    encoder: ffmpeg::encoder::Audio,
    decoded: ffmpeg::frame::Audio,
    /// The sample format the encoder takes, mono: F32 planar for `aac`, F32 packed for
    /// `libopus` (one channel lays out the same either way).
    format: Sample,
    rate: u32,
    /// Converted samples not yet encoded, and the timestamp of the first.
    pending: Vec<f32>,
    pending_pts: Option<i64>,
    frame_size: usize,
}

impl Transcoder {
    /// `input` is the camera's audio track.
    pub fn new(input: &ffmpeg::codec::Parameters, target: Target) -> Result<Transcoder, String> {
        let mut decoder = ffmpeg::codec::Context::from_parameters(input.clone())
            .and_then(|c| c.decoder().audio())
            .map_err(|e| format!("cannot open a {:?} decoder: {e}", input.id()))?;
        let in_rate = decoder.rate().max(8000);
        decoder.set_packet_time_base(Rational::new(1, in_rate as i32));
        let rate = target.rate.unwrap_or(in_rate);
        let codec = ffmpeg::encoder::find_by_name(target.encoder)
            .ok_or_else(|| format!("FFmpeg has no {} encoder", target.encoder))?;
        let format = match codec.id() {
            Id::AAC => Sample::F32(SampleType::Planar),
            _ => Sample::F32(SampleType::Packed),
        };
        let mut enc = ffmpeg::codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| format!("cannot create the {} encoder: {e}", target.encoder))?;
        enc.set_rate(rate as i32);
        enc.set_channel_layout(ChannelLayout::MONO);
        enc.set_format(format);
        enc.set_bit_rate(target.bit_rate);
        enc.set_time_base(Rational::new(1, rate as i32));
        if target.global_header {
            // SAFETY: a plain flag write on a context we own and have not opened.
            unsafe {
                (*enc.as_mut_ptr()).flags |= ffmpeg::ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32;
            }
        }
        let encoder = enc
            .open_as(codec)
            .map_err(|e| format!("cannot open the {} encoder: {e}", target.encoder))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        Ok(Transcoder {
            decoder,
            resampler: None,
            encoder,
            decoded: ffmpeg::frame::Audio::empty(),
            format,
            rate,
            pending: Vec::new(),
            pending_pts: None,
            frame_size,
        })
    }

    /// Parameters of the output track, for a muxer.
    pub fn parameters(&self) -> ffmpeg::codec::Parameters {
        ffmpeg::codec::Parameters::from(&*self.encoder)
    }

    pub fn time_base(&self) -> Rational {
        self.encoder.time_base()
    }

    /// Transcodes one packet whose timestamp `pts` is in output samples; encoded packets go
    /// to `out` with their timestamps in output samples.
    pub fn push(&mut self, packet: &Packet, pts: i64, out: &mut dyn FnMut(Packet)) {
        if self.decoder.send_packet(packet).is_err() {
            return;
        }
        let mut first = true;
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            let Some(samples) = self.convert() else {
                continue;
            };
            // The timeline runs on the samples converted; lost packets (UDP) or a clock step
            // of more than half a second start it over at the packet's own timestamp.
            if first {
                first = false;
                let expected = self.pending_pts.map(|p| p + self.pending.len() as i64);
                if expected.is_none_or(|e| (e - pts).abs() > i64::from(self.rate / 2)) {
                    self.pending.clear();
                    self.pending_pts = Some(pts);
                }
            }
            self.pending.extend_from_slice(&samples);
        }
        while self.pending.len() >= self.frame_size {
            let mut frame =
                ffmpeg::frame::Audio::new(self.format, self.frame_size, ChannelLayout::MONO);
            frame.set_rate(self.rate);
            let start = self.pending_pts.unwrap_or(0);
            frame.set_pts(Some(start));
            frame
                .plane_mut::<f32>(0)
                .copy_from_slice(&self.pending[..self.frame_size]);
            self.pending.drain(..self.frame_size);
            self.pending_pts = Some(start + self.frame_size as i64);
            if self.encoder.send_frame(&frame).is_err() {
                continue;
            }
            let mut encoded = Packet::empty();
            while self.encoder.receive_packet(&mut encoded).is_ok() {
                out(encoded.clone());
            }
        }
    }

    /// The decoded frame as mono f32 at the output rate, or `None` if swresample refuses it.
    fn convert(&mut self) -> Option<Vec<f32>> {
        let layout = layout_of(&self.decoded);
        let key = (self.decoded.format(), layout.bits(), self.decoded.rate());
        if self.resampler.as_ref().is_none_or(|(k, _)| *k != key) {
            let context = resampling::Context::get(
                key.0,
                layout,
                key.2,
                Sample::F32(SampleType::Packed),
                ChannelLayout::MONO,
                self.rate,
            )
            .map_err(|e| log::debug!("audio: no resampler for {key:?}: {e}"))
            .ok()?;
            self.resampler = Some((key, context));
        }
        let (_, resampler) = self.resampler.as_mut()?;
        self.decoded.set_channel_layout(layout);
        // Room for every sample the input makes at the new rate plus what swresample holds
        // back from the previous call (its filter is 32 taps at most).
        let capacity =
            self.decoded.samples() * self.rate as usize / self.decoded.rate().max(1) as usize + 64;
        let mut converted = ffmpeg::frame::Audio::new(
            Sample::F32(SampleType::Packed),
            capacity,
            ChannelLayout::MONO,
        );
        resampler.run(&self.decoded, &mut converted).ok()?;
        let n = converted.samples();
        Some(converted.plane::<f32>(0)[..n].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `seconds` of a 440 Hz tone with FFmpeg's encoder `name` at `rate` Hz and
    /// `channels`, returning the encoder's parameters and its packets with pts in samples.
    fn tone(
        name: &str,
        rate: u32,
        channels: i32,
        seconds: f32,
    ) -> (ffmpeg::codec::Parameters, Vec<Packet>) {
        ffmpeg::init().unwrap();
        let codec = ffmpeg::encoder::find_by_name(name).unwrap();
        let format = match codec.id() {
            Id::AAC => Sample::F32(SampleType::Planar),
            _ => Sample::I16(SampleType::Packed),
        };
        let layout = ChannelLayout::default(channels);
        let mut enc = ffmpeg::codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .unwrap();
        enc.set_rate(rate as i32);
        enc.set_channel_layout(layout);
        enc.set_format(format);
        enc.set_bit_rate(64_000);
        enc.set_time_base(Rational::new(1, rate as i32));
        let mut enc = enc.open_as(codec).unwrap();
        let frame_size = if enc.frame_size() > 0 {
            enc.frame_size() as usize
        } else {
            160
        };
        let total = (rate as f32 * seconds) as usize;
        let mut packets = Vec::new();
        let mut at = 0;
        while at + frame_size <= total {
            let mut frame = ffmpeg::frame::Audio::new(format, frame_size, layout);
            frame.set_rate(rate);
            frame.set_pts(Some(at as i64));
            let value = |i: usize| {
                ((at + i) as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5
            };
            for plane in 0..frame.planes() {
                match format {
                    Sample::F32(_) => {
                        for (i, s) in frame.plane_mut::<f32>(plane).iter_mut().enumerate() {
                            *s = value(i);
                        }
                    }
                    _ => {
                        let data = frame.data_mut(plane);
                        for i in 0..frame_size * channels as usize {
                            let v = (value(i / channels as usize) * 32767.0) as i16;
                            data[i * 2..i * 2 + 2].copy_from_slice(&v.to_ne_bytes());
                        }
                    }
                }
            }
            enc.send_frame(&frame).unwrap();
            let mut p = Packet::empty();
            while enc.receive_packet(&mut p).is_ok() {
                packets.push(p.clone());
            }
            at += frame_size;
        }
        (ffmpeg::codec::Parameters::from(&*enc), packets)
    }

    /// Decodes `packets` of `params` and returns the RMS of the samples (any sample format).
    fn rms(params: &ffmpeg::codec::Parameters, packets: &[Packet]) -> f32 {
        let mut dec = ffmpeg::codec::Context::from_parameters(params.clone())
            .unwrap()
            .decoder()
            .audio()
            .unwrap();
        let mut frame = ffmpeg::frame::Audio::empty();
        let (mut sum, mut n) = (0f64, 0usize);
        for p in packets {
            if dec.send_packet(p).is_err() {
                continue;
            }
            while dec.receive_frame(&mut frame).is_ok() {
                for plane in 0..frame.planes() {
                    let values: Vec<f32> = match frame.format() {
                        Sample::F32(_) => frame.plane::<f32>(plane).to_vec(),
                        Sample::I16(_) => {
                            let per_plane = if frame.is_planar() {
                                1
                            } else {
                                frame.channels()
                            };
                            frame
                                .data(plane)
                                .chunks_exact(2)
                                .take(frame.samples() * per_plane as usize)
                                .map(|b| i16::from_ne_bytes([b[0], b[1]]) as f32 / 32768.0)
                                .collect()
                        }
                        other => panic!("unexpected {other:?}"),
                    };
                    n += values.len();
                    sum += values.iter().map(|v| f64::from(v * v)).sum::<f64>();
                }
            }
        }
        (sum / n.max(1) as f64).sqrt() as f32
    }

    #[test]
    fn transcodes_the_cameras_codecs_to_each_target_keeping_the_signal() {
        // (input encoder, rate, channels, target, output rate, output codec)
        let table = [
            ("pcm_alaw", 8000, 1, Target::RECORDING_AAC, 8000, Id::AAC),
            ("pcm_mulaw", 8000, 1, Target::RECORDING_AAC, 8000, Id::AAC),
            ("aac", 16_000, 1, Target::LIVE_OPUS, 48_000, Id::OPUS),
            ("aac", 44_100, 2, Target::LIVE_OPUS, 48_000, Id::OPUS),
            ("pcm_alaw", 8000, 1, Target::LIVE_OPUS, 48_000, Id::OPUS),
        ];
        for (name, rate, channels, target, out_rate, out_codec) in table {
            let what = format!("{name} {rate} Hz x{channels} -> {}", target.encoder);
            let (params, packets) = tone(name, rate, channels, 2.0);
            let mut t = Transcoder::new(&params, target).unwrap();
            assert_eq!(
                (t.time_base(), t.parameters().id()),
                (Rational::new(1, out_rate as i32), out_codec),
                "{what}"
            );
            let mut out = Vec::new();
            let mut pts = Vec::new();
            for p in &packets {
                let at = p.pts().unwrap() * i64::from(out_rate) / i64::from(rate);
                t.push(p, at, &mut |e| {
                    pts.push(e.pts());
                    out.push(e)
                });
            }
            // Nearly two seconds come out (the encoders hold back a frame or two) ...
            let produced = out.len() as f32 * t.frame_size as f32 / out_rate as f32;
            assert!(produced > 1.7 && produced <= 2.0, "{what}: {produced} s");
            // ... timed in output samples, one frame apart ...
            for w in pts.windows(2) {
                assert_eq!(w[1].unwrap() - w[0].unwrap(), t.frame_size as i64, "{what}");
            }
            // ... and the tone (RMS 0.35 at amplitude 0.5) survives.
            let level = rms(&t.parameters(), &out);
            assert!(level > 0.2 && level < 0.5, "{what}: RMS {level}");
        }
    }
}
