//! Audio of a recording. AAC is written as the camera sent it. G.711 (PCMA, PCMU), which the
//! MP4 muxer refuses and no browser plays from MP4, becomes AAC with FFmpeg's own encoder at
//! the camera's sample rate (8 kHz mono: about 1 ms of CPU per second of audio, see
//! benches/cpu.py). The transcoder runs on the recorder's thread, never the camera's.

use ffmpeg::codec::Id;
use ffmpeg::{ChannelLayout, Packet, Rational};
use ffmpeg_next as ffmpeg;

/// What a recording does with a camera's audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPlan {
    Copy,
    ToAac,
    /// Neither kept nor transcoded (a codec the MP4 muxer and browsers cannot take).
    Drop,
}

pub fn plan(id: Id) -> AudioPlan {
    match id {
        Id::AAC => AudioPlan::Copy,
        Id::PCM_ALAW | Id::PCM_MULAW => AudioPlan::ToAac,
        _ => AudioPlan::Drop,
    }
}

/// AAC bit rate for G.711 speech: 32 kbit/s at 8 kHz mono is transparent for a 64 kbit/s
/// G.711 source.
const AAC_BIT_RATE: usize = 32_000;

/// G.711 in, AAC out. Timestamps are in samples (time base 1/rate) throughout.
pub struct ToAac {
    decoder: ffmpeg::decoder::Audio,
    encoder: ffmpeg::encoder::Audio,
    decoded: ffmpeg::frame::Audio,
    /// Decoded mono samples not yet encoded, and the timestamp of the first.
    pending: Vec<f32>,
    pending_pts: Option<i64>,
    frame_size: usize,
}

impl ToAac {
    /// `input` is the camera's audio track.
    pub fn new(input: &ffmpeg::codec::Parameters) -> Result<ToAac, String> {
        let mut decoder = ffmpeg::codec::Context::from_parameters(input.clone())
            .and_then(|c| c.decoder().audio())
            .map_err(|e| format!("cannot open a {:?} decoder: {e}", input.id()))?;
        let rate = decoder.rate().max(8000);
        decoder.set_packet_time_base(Rational::new(1, rate as i32));
        let codec = ffmpeg::encoder::find(Id::AAC).ok_or("FFmpeg has no AAC encoder")?;
        let mut enc = ffmpeg::codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| format!("cannot create the AAC encoder: {e}"))?;
        enc.set_rate(rate as i32);
        enc.set_channel_layout(ChannelLayout::MONO);
        enc.set_format(ffmpeg::format::Sample::F32(
            ffmpeg::format::sample::Type::Planar,
        ));
        enc.set_bit_rate(AAC_BIT_RATE);
        enc.set_time_base(Rational::new(1, rate as i32));
        // The MP4 muxer wants the AudioSpecificConfig in the sample entry, not in band.
        // SAFETY: a plain flag write on a context we own and have not opened.
        unsafe {
            (*enc.as_mut_ptr()).flags |= ffmpeg::ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32;
        }
        let encoder = enc
            .open_as(codec)
            .map_err(|e| format!("cannot open the AAC encoder: {e}"))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        Ok(ToAac {
            decoder,
            encoder,
            decoded: ffmpeg::frame::Audio::empty(),
            pending: Vec::new(),
            pending_pts: None,
            frame_size,
        })
    }

    /// Parameters of the AAC track, for the muxer.
    pub fn parameters(&self) -> ffmpeg::codec::Parameters {
        ffmpeg::codec::Parameters::from(&*self.encoder)
    }

    pub fn time_base(&self) -> Rational {
        self.encoder.time_base()
    }

    /// Transcodes one packet whose timestamp `pts` is in samples; AAC packets go to `out`.
    pub fn push(&mut self, packet: &Packet, pts: i64, out: &mut dyn FnMut(Packet)) {
        if self.decoder.send_packet(packet).is_err() {
            return;
        }
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            let n = self.decoded.samples();
            let channels = self.decoded.channels().max(1) as usize;
            // The timeline runs on the samples decoded; lost packets (UDP) or a clock step of
            // more than half a second start it over at the packet's own timestamp.
            let expected = self.pending_pts.map(|p| p + self.pending.len() as i64);
            if expected.is_none_or(|e| (e - pts).abs() > i64::from(self.encoder.rate() / 2)) {
                self.pending.clear();
                self.pending_pts = Some(pts);
            }
            // G.711 decodes to packed signed 16-bit; the AAC encoder takes float planar.
            // Several channels (rare for G.711) are mixed down.
            let data = self.decoded.data(0);
            for i in 0..n {
                let mut sum = 0f32;
                for c in 0..channels {
                    let at = (i * channels + c) * 2;
                    sum += i16::from_ne_bytes([data[at], data[at + 1]]) as f32;
                }
                self.pending.push(sum / (channels as f32 * 32768.0));
            }
        }
        while self.pending.len() >= self.frame_size {
            let mut frame = ffmpeg::frame::Audio::new(
                ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
                self.frame_size,
                ChannelLayout::MONO,
            );
            frame.set_rate(self.encoder.rate());
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
}
