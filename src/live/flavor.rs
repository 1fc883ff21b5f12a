//! A *flavor* of a camera's live stream: one mediasoup router with DirectTransport producers
//! for the viewers who negotiated the same H.264 payload type and declared profile-level-id,
//! and the same audio codec and payload type (or no audio).
//!
//! mediasoup sends a consumer's RTP with the payload type of its router, while with WHEP the
//! viewer's offer dictates it (a browser drops packets of a payload type it did not offer, and
//! per-consumer payload types are mediasoup issue #1126). So each flavor gets a router whose
//! codecs have the viewers' payload types; the camera's feeds send every RTP packet to each
//! flavor in use, in practice one or two (one per browser engine).

use std::sync::Arc;

use futures_lite::future::block_on;
use mediasoup::prelude::*;
use mediasoup::producer::{DirectProducer, Producer};

use super::audio::{self, AudioOut};
use super::feed::PAYLOAD_TYPE;
use super::offer::h264_parameters;
use super::rtcp::key_frame_requests;
use super::status::LiveStatus;

/// What viewers of one flavor negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct FlavorKey {
    pub payload_type: u8,
    pub profile_level_id: String,
    /// The audio codec and its payload type; `None` for viewers without audio.
    pub audio: Option<(AudioOut, u8)>,
}

/// A router and producers for the viewers who negotiated one [`FlavorKey`].
pub(super) struct Flavor {
    pub key: FlavorKey,
    /// Declared with the stream's own profile-level-id (vs. a viewer's, see `Offer::choose`).
    pub exact: bool,
    pub router: Router,
    pub producer: Producer,
    pub direct: DirectProducer,
    /// The audio producer, when the key has audio.
    pub audio: Option<(Producer, DirectProducer)>,
    pub viewers: usize,
    _transport: DirectTransport,
}

/// A producer of `codec` on `transport`, writing with `ssrc`. Audio and video of a camera
/// share its CNAME: receivers synchronise the streams of one CNAME (RFC 3550 6.5.1).
fn produce(
    transport: &DirectTransport,
    kind: MediaKind,
    codec: RtpCodecParameters,
    ssrc: u32,
    camera: &str,
) -> Result<(Producer, DirectProducer), String> {
    let producer = block_on(transport.produce(ProducerOptions::new(
        kind,
        RtpParameters {
            codecs: vec![codec],
            encodings: vec![RtpEncodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            }],
            rtcp: RtcpParameters {
                cname: Some(format!("vas-{camera}")),
                ..Default::default()
            },
            ..Default::default()
        },
    )))
    .map_err(|e| e.to_string())?;
    match &producer {
        Producer::Direct(p) => {
            let direct = p.clone();
            Ok((producer, direct))
        }
        _ => Err("mediasoup made a non-direct producer on a DirectTransport".into()),
    }
}

impl Flavor {
    /// Creates the router, its DirectTransport and producers for `camera`'s RTP (SSRCs
    /// `ssrc` for video, `audio_ssrc` for audio).
    pub(super) fn create(
        worker: &Worker,
        camera: &str,
        (ssrc, audio_ssrc): (u32, u32),
        key: FlavorKey,
        exact: bool,
        status: &Arc<LiveStatus>,
    ) -> Result<Flavor, String> {
        let (payload_type, profile_level_id) = (key.payload_type, key.profile_level_id.as_str());
        let clock = std::num::NonZeroU32::new(90_000).expect("non-zero");
        let codec = RtpCodecCapability::Video {
            mime_type: MimeTypeVideo::H264,
            preferred_payload_type: Some(payload_type),
            clock_rate: clock,
            parameters: h264_parameters(profile_level_id),
            rtcp_feedback: vec![
                RtcpFeedback::Nack,
                RtcpFeedback::NackPli,
                RtcpFeedback::CcmFir,
                RtcpFeedback::GoogRemb,
                RtcpFeedback::TransportCc,
            ],
        };
        let mut codecs = vec![codec];
        if let Some((kind, pt)) = key.audio {
            codecs.push(RtpCodecCapability::Audio {
                mime_type: kind.mime_type(),
                preferred_payload_type: Some(pt),
                clock_rate: std::num::NonZeroU32::new(kind.clock_rate()).expect("non-zero"),
                channels: std::num::NonZeroU8::new(kind.channels()).expect("non-zero"),
                parameters: RtpCodecParametersParameters::default(),
                rtcp_feedback: vec![RtcpFeedback::TransportCc],
            });
        }
        let router = block_on(worker.create_router(RouterOptions::new(codecs)))
            .map_err(|e| e.to_string())?;
        let transport = block_on(router.create_direct_transport(DirectTransportOptions::default()))
            .map_err(|e| e.to_string())?;
        let video = RtpCodecParameters::Video {
            mime_type: MimeTypeVideo::H264,
            payload_type: PAYLOAD_TYPE,
            clock_rate: clock,
            parameters: h264_parameters(profile_level_id),
            rtcp_feedback: vec![RtcpFeedback::NackPli, RtcpFeedback::CcmFir],
        };
        let (producer, direct_video) = produce(&transport, MediaKind::Video, video, ssrc, camera)?;
        let audio = match key.audio {
            None => None,
            Some((kind, _)) => {
                let codec = RtpCodecParameters::Audio {
                    mime_type: kind.mime_type(),
                    payload_type: audio::PAYLOAD_TYPE,
                    clock_rate: std::num::NonZeroU32::new(kind.clock_rate()).expect("non-zero"),
                    channels: std::num::NonZeroU8::new(kind.channels()).expect("non-zero"),
                    parameters: RtpCodecParametersParameters::default(),
                    rtcp_feedback: Vec::new(),
                };
                Some(produce(
                    &transport,
                    MediaKind::Audio,
                    codec,
                    audio_ssrc,
                    camera,
                )?)
            }
        };
        let counter = status.clone();
        transport
            .on_rtcp(move |packet| {
                LiveStatus::add(&counter.key_frame_requests, key_frame_requests(packet));
            })
            .detach();
        log::debug!(
            target: "live",
            "camera {camera}: router {} for payload type {payload_type}, profile-level-id \
             {profile_level_id}, audio {:?}",
            router.id(),
            key.audio
        );
        Ok(Flavor {
            key,
            exact,
            router,
            producer,
            direct: direct_video,
            audio,
            viewers: 0,
            _transport: transport,
        })
    }
}
