//! A *flavor* of a camera's live stream: one mediasoup router with a DirectTransport producer
//! for the viewers who negotiated the same H.264 payload type and declared profile-level-id.
//!
//! mediasoup sends a consumer's RTP with the payload type of its router, while with WHEP the
//! viewer's offer dictates it (a browser drops packets of a payload type it did not offer, and
//! per-consumer payload types are mediasoup issue #1126). So each flavor gets a router whose
//! H.264 codec has the viewers' payload type; the camera's feed sends every RTP packet to each
//! flavor in use, in practice one or two (one per browser engine).

use std::sync::Arc;

use futures_lite::future::block_on;
use mediasoup::prelude::*;
use mediasoup::producer::{DirectProducer, Producer};

use super::feed::PAYLOAD_TYPE;
use super::offer::h264_parameters;
use super::rtcp::key_frame_requests;
use super::status::LiveStatus;

/// A router and producer for the viewers who negotiated one payload type and profile.
pub(super) struct Flavor {
    pub payload_type: u8,
    pub profile_level_id: String,
    /// Declared with the stream's own profile-level-id (vs. a viewer's, see `Offer::choose`).
    pub exact: bool,
    pub router: Router,
    pub producer: Producer,
    pub direct: DirectProducer,
    pub viewers: usize,
    _transport: DirectTransport,
}

impl Flavor {
    /// Creates the router, its DirectTransport and producer for `camera`'s RTP (SSRC `ssrc`).
    pub(super) fn create(
        worker: &Worker,
        camera: &str,
        ssrc: u32,
        payload_type: u8,
        profile_level_id: &str,
        exact: bool,
        status: &Arc<LiveStatus>,
    ) -> Result<Flavor, String> {
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
        let router = block_on(worker.create_router(RouterOptions::new(vec![codec])))
            .map_err(|e| e.to_string())?;
        let transport = block_on(router.create_direct_transport(DirectTransportOptions::default()))
            .map_err(|e| e.to_string())?;
        let producer = block_on(transport.produce(ProducerOptions::new(
            MediaKind::Video,
            RtpParameters {
                codecs: vec![RtpCodecParameters::Video {
                    mime_type: MimeTypeVideo::H264,
                    payload_type: PAYLOAD_TYPE,
                    clock_rate: clock,
                    parameters: h264_parameters(profile_level_id),
                    rtcp_feedback: vec![RtcpFeedback::NackPli, RtcpFeedback::CcmFir],
                }],
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
        let direct = match &producer {
            Producer::Direct(p) => p.clone(),
            _ => return Err("mediasoup made a non-direct producer on a DirectTransport".into()),
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
             {profile_level_id}",
            router.id()
        );
        Ok(Flavor {
            payload_type,
            profile_level_id: profile_level_id.to_string(),
            exact,
            router,
            producer,
            direct,
            viewers: 0,
            _transport: transport,
        })
    }
}
