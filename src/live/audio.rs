//! One camera's audio turned into its live RTP stream. WebRTC receivers decode Opus, PCMA and
//! PCMU (RFC 7874 5.1), so those go out as the camera sent them; AAC, the other codec cameras
//! send, is transcoded to Opus (`crate::audio`). All of it happens only while at least one
//! viewer receives the audio: without listeners an audio unit is dropped as it arrives, and
//! the transcoder is closed, so an unwatched camera costs nothing for its audio.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use ffmpeg_next::codec::Id;
use mediasoup::prelude::MimeTypeAudio;

use super::packetizer::{Packetizer, MAX_PAYLOAD_BYTES};
use super::status::LiveStatus;
use super::timeline::{to_clock, RtpTimeline};
use crate::audio::{Target, Transcoder};
use crate::camera::fanout::AccessUnit;

/// The payload type of the audio RTP we hand to mediasoup; it rewrites it per viewer.
pub const PAYLOAD_TYPE: u8 = 97;

/// The codec a camera's audio reaches viewers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioOut {
    Pcma,
    Pcmu,
    Opus,
}

impl AudioOut {
    /// What viewers get for a camera codec, and whether it needs transcoding; `None` for a
    /// codec neither WebRTC nor our transcoder takes (G.726, for one).
    pub fn for_camera(codec: Id) -> Option<(AudioOut, bool)> {
        match codec {
            Id::PCM_ALAW => Some((AudioOut::Pcma, false)),
            Id::PCM_MULAW => Some((AudioOut::Pcmu, false)),
            Id::OPUS => Some((AudioOut::Opus, false)),
            Id::AAC => Some((AudioOut::Opus, true)),
            _ => None,
        }
    }

    /// The name in SDP `a=rtpmap` lines.
    pub fn sdp_name(self) -> &'static str {
        match self {
            AudioOut::Pcma => "PCMA",
            AudioOut::Pcmu => "PCMU",
            AudioOut::Opus => "opus",
        }
    }

    pub fn mime_type(self) -> MimeTypeAudio {
        match self {
            AudioOut::Pcma => MimeTypeAudio::Pcma,
            AudioOut::Pcmu => MimeTypeAudio::Pcmu,
            AudioOut::Opus => MimeTypeAudio::Opus,
        }
    }

    /// The RTP clock: G.711's sample rate, and 48 kHz for Opus whatever it encodes.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioOut::Pcma | AudioOut::Pcmu => 8000,
            AudioOut::Opus => 48_000,
        }
    }

    /// Channels as SDP declares them: Opus is always `opus/48000/2` (RFC 7587 7), even for
    /// the mono we send.
    pub fn channels(self) -> u8 {
        match self {
            AudioOut::Pcma | AudioOut::Pcmu => 1,
            AudioOut::Opus => 2,
        }
    }
}

/// How a camera's audio reaches viewers, for status: `pcma`, `aac->opus`, ...
pub fn describe(codec: Id) -> Option<String> {
    let (out, transcoded) = AudioOut::for_camera(codec)?;
    let name = out.sdp_name().to_ascii_lowercase();
    Some(if transcoded {
        format!("{}->{name}", crate::camera::session::codec_name(codec))
    } else {
        name
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent(usize),
    /// Nobody listens, or the codec cannot be sent.
    Idle,
}

pub struct AudioFeed {
    /// The camera id, for log lines.
    camera: String,
    status: Arc<LiveStatus>,
    /// The timeline follows the output clock; a camera switching codec gets a new one.
    timeline: Option<(AudioOut, RtpTimeline)>,
    packetizer: Packetizer,
    seed: u32,
    /// Open only while someone listens to a transcoded camera.
    transcoder: Option<(u64, Transcoder)>,
    /// The transcoder of this session could not be opened: said once, not retried per unit.
    failed_session: Option<u64>,
    /// The next packet starts a talkspurt (RFC 3551 4.1): the first after a pause.
    marker: bool,
}

impl AudioFeed {
    pub fn new(camera: &str, ssrc: u32, seed: u64, status: Arc<LiveStatus>) -> AudioFeed {
        AudioFeed {
            camera: camera.to_string(),
            status,
            timeline: None,
            packetizer: Packetizer::new(PAYLOAD_TYPE, ssrc, seed as u16),
            seed: (seed >> 16) as u32,
            transcoder: None,
            failed_session: None,
            marker: true,
        }
    }

    /// Handles one audio unit: packets go to `out` when `sending` (someone listens).
    pub fn push(
        &mut self,
        unit: &AccessUnit,
        sending: bool,
        now: Instant,
        out: &mut dyn FnMut(Vec<u8>),
    ) -> Outcome {
        LiveStatus::add(&self.status.audio_units_received, 1);
        let Some(track) = unit.stream.audio.as_ref() else {
            return Outcome::Idle;
        };
        let codec = track.parameters.id();
        let Some((kind, transcode)) = AudioOut::for_camera(codec) else {
            return Outcome::Idle;
        };
        if !sending {
            self.no_listeners();
            return Outcome::Idle;
        }
        let Some(pts) = unit.packet.pts().or(unit.packet.dts()) else {
            return Outcome::Idle;
        };
        let tb = unit.time_base;
        let Some(ticks) = to_clock(pts, tb.numerator(), tb.denominator(), kind.clock_rate()) else {
            return Outcome::Idle;
        };
        if self.timeline.as_ref().is_none_or(|(k, _)| *k != kind) {
            self.timeline = Some((kind, RtpTimeline::new(kind.clock_rate(), self.seed)));
        }
        // Frames to send: (payload, timestamp in clock ticks).
        let mut frames: Vec<(Vec<u8>, i64)> = Vec::new();
        if transcode {
            if self
                .transcoder
                .as_ref()
                .is_some_and(|(s, _)| *s != unit.session)
            {
                self.close_transcoder();
            }
            if self.transcoder.is_none() && self.failed_session != Some(unit.session) {
                match Transcoder::new(&track.parameters, Target::LIVE_OPUS) {
                    Ok(t) => {
                        log::info!(
                            target: "live",
                            "camera {}: transcoding its {} audio to Opus for its listeners",
                            self.camera,
                            crate::camera::session::codec_name(codec)
                        );
                        self.status.audio_transcoding.store(true, Ordering::Relaxed);
                        self.transcoder = Some((unit.session, t));
                    }
                    Err(e) => {
                        log::warn!(
                            target: "live",
                            "camera {}: its audio cannot be sent: {e}",
                            self.camera
                        );
                        self.failed_session = Some(unit.session);
                    }
                }
            }
            let Some((_, t)) = self.transcoder.as_mut() else {
                return Outcome::Idle;
            };
            t.push(&unit.packet, ticks, &mut |p| {
                if let (Some(data), Some(pts)) = (p.data(), p.pts()) {
                    frames.push((data.to_vec(), pts));
                }
            });
        } else {
            let data = unit.packet.data().unwrap_or(&[]);
            if kind == AudioOut::Opus {
                frames.push((data.to_vec(), ticks));
            } else {
                // G.711 is one byte per sample: a long packet is split on sample boundaries.
                for (n, chunk) in data.chunks(MAX_PAYLOAD_BYTES).enumerate() {
                    frames.push((chunk.to_vec(), ticks + (n * MAX_PAYLOAD_BYTES) as i64));
                }
            }
        }
        let Some((_, timeline)) = self.timeline.as_mut() else {
            return Outcome::Idle;
        };
        let mut bytes = 0;
        for (payload, ticks) in &frames {
            let ts = timeline.stamp(unit.session, *ticks, now);
            let packet = self.packetizer.packet(payload, ts, self.marker);
            self.marker = false;
            bytes += packet.len();
            out(packet);
        }
        LiveStatus::add(&self.status.audio_rtp_packets, frames.len() as u64);
        LiveStatus::add(&self.status.rtp_bytes, bytes as u64);
        Outcome::Sent(frames.len())
    }

    /// The last listener left: the transcoder closes, the next packet starts a talkspurt.
    pub fn no_listeners(&mut self) {
        self.close_transcoder();
        self.marker = true;
    }

    fn close_transcoder(&mut self) {
        if self.transcoder.take().is_some() {
            self.status
                .audio_transcoding
                .store(false, Ordering::Relaxed);
            log::info!(
                target: "live",
                "camera {}: no listeners, audio transcoding stopped",
                self.camera
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_camera_codec_has_its_webrtc_codec() {
        // (camera codec, viewers get, transcoded, status text)
        let table = [
            (Id::PCM_ALAW, Some((AudioOut::Pcma, false)), Some("pcma")),
            (Id::PCM_MULAW, Some((AudioOut::Pcmu, false)), Some("pcmu")),
            (Id::OPUS, Some((AudioOut::Opus, false)), Some("opus")),
            (Id::AAC, Some((AudioOut::Opus, true)), Some("aac->opus")),
            (Id::ADPCM_G726, None, None),
        ];
        for (codec, want, text) in table {
            assert_eq!(AudioOut::for_camera(codec), want, "{codec:?}");
            assert_eq!(describe(codec).as_deref(), text, "{codec:?}");
        }
        assert_eq!(
            (AudioOut::Opus.clock_rate(), AudioOut::Opus.channels()),
            (48_000, 2)
        );
        assert_eq!(
            (AudioOut::Pcma.clock_rate(), AudioOut::Pcma.channels()),
            (8000, 1)
        );
    }
}
