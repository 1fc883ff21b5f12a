//! A viewer's WHEP offer: the SDP a browser or WHEP player POSTs, read with the `sdp` crate
//! and checked for what this server needs (a video section it can send H.264 to, ICE and DTLS
//! credentials), plus the audio section it may have. Every refusal says what was missing, for
//! the 400 reply; an audio section we cannot serve is not a refusal, it is answered rejected.

use std::io::Cursor;
use std::num::NonZeroU32;
use std::str::FromStr;

use mediasoup::prelude::*;
use mediasoup::types::data_structures::{DtlsFingerprint, DtlsRole};
use mediasoup::types::rtp_parameters::{RtpHeaderExtension, RtpHeaderExtensionDirection};
use sdp::description::common::Attribute;
use sdp::description::media::MediaDescription;
use sdp::SessionDescription;

use super::audio::AudioOut;

/// One `m=` section of the offer, kept so the answer can mirror (and reject) every one.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: String,
    pub protocol: String,
    pub formats: Vec<String>,
    pub mid: Option<String>,
    /// Its `a=rtpmap` values: a rejected section repeats them, since strict clients (aiortc)
    /// refuse an answer section without a codec in common.
    pub rtpmaps: Vec<String>,
}

/// An audio codec of the offer that we can send.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedAudio {
    pub kind: AudioOut,
    pub payload_type: u8,
    pub rtcp_feedback: Vec<RtcpFeedback>,
}

/// The offer's audio section, if it has one a viewer can receive on.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSection {
    /// Index in `Offer::sections`.
    pub index: usize,
    pub mid: String,
    pub codecs: Vec<OfferedAudio>,
    pub header_extensions: Vec<(u16, RtpHeaderExtensionUri)>,
}

/// An H.264 codec the viewer can receive, with `packetization-mode=1` (FU-A and STAP-A).
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedCodec {
    pub payload_type: u8,
    /// As offered; `None` means the RFC 6184 default (Constrained Baseline for WebRTC).
    pub profile_level_id: Option<String>,
    pub rtcp_feedback: Vec<RtcpFeedback>,
}

#[derive(Debug, Clone)]
pub struct Offer {
    pub sections: Vec<Section>,
    /// Index in `sections` of the video section we answer.
    pub video: usize,
    /// Its `a=mid`.
    pub mid: String,
    /// The viewer's DTLS certificate fingerprints and the role it takes (from `a=setup`).
    pub remote_dtls: DtlsParameters,
    /// Whether our answer says `a=setup:active` (the viewer asked to be the DTLS server).
    pub we_are_dtls_client: bool,
    /// The H.264 codecs of the video section, in the viewer's order of preference.
    pub codecs: Vec<OfferedCodec>,
    /// `a=extmap` of the video section that mediasoup knows: (id, URI).
    pub header_extensions: Vec<(u16, RtpHeaderExtensionUri)>,
    pub audio: Option<AudioSection>,
}

/// The H.264 codec to send to a viewer and the `profile-level-id` to declare for it.
#[derive(Debug, Clone, PartialEq)]
pub struct CodecChoice {
    pub codec: OfferedCodec,
    pub profile_level_id: String,
    /// True when the viewer offered the stream's own profile; false when it offered only
    /// other profiles and the stream is declared with the viewer's (see [`Offer::choose`]).
    pub exact: bool,
}

impl Offer {
    /// Parses and checks an offer. The error is a sentence for the viewer.
    pub fn parse(text: &str) -> Result<Offer, String> {
        if text.trim().is_empty() {
            return Err("the request body is empty: send the SDP offer as the body".into());
        }
        // The parser is a third-party crate fed with whatever a client sends; a panic in it
        // must cost this request, not the API thread.
        let parsed = std::panic::catch_unwind(|| {
            SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        })
        .map_err(|_| "the body is not valid SDP (the parser gave up)".to_string())?
        .map_err(|e| format!("the body is not valid SDP: {e}"))?;
        Offer::from_description(&parsed)
    }

    fn from_description(sd: &SessionDescription) -> Result<Offer, String> {
        let sections: Vec<Section> = sd
            .media_descriptions
            .iter()
            .map(|m| Section {
                kind: m.media_name.media.clone(),
                protocol: m.media_name.protos.join("/"),
                formats: m.media_name.formats.clone(),
                mid: value(&m.attributes, "mid").map(str::to_string),
                rtpmaps: m
                    .attributes
                    .iter()
                    .filter(|a| a.key == "rtpmap")
                    .filter_map(|a| a.value.clone())
                    .collect(),
            })
            .collect();
        if !sections.iter().any(|s| s.kind == "video") {
            return Err(
                "the offer has no video section (m=video): add a video transceiver \
                        with direction recvonly"
                    .into(),
            );
        }
        let mut reasons = Vec::new();
        let mut chosen = None;
        for (i, m) in sd.media_descriptions.iter().enumerate() {
            if m.media_name.media != "video" {
                continue;
            }
            match usable_video(m) {
                Ok(codecs) => {
                    chosen = Some((i, m, codecs));
                    break;
                }
                Err(why) => reasons.push(why),
            }
        }
        let Some((video, media, codecs)) = chosen else {
            return Err(format!(
                "no video section can be answered: {}",
                reasons.join("; ")
            ));
        };
        let mid = value(&media.attributes, "mid")
            .filter(|m| !m.is_empty())
            .ok_or("the video section has no a=mid (needed for BUNDLE)")?
            .to_string();
        let attr = |key: &str| value(&media.attributes, key).or_else(|| value(&sd.attributes, key));
        if attr("ice-ufrag").is_none() || attr("ice-pwd").is_none() {
            return Err("the offer has no ICE credentials (a=ice-ufrag and a=ice-pwd)".into());
        }
        let mut fingerprints = Vec::new();
        for a in media.attributes.iter().chain(&sd.attributes) {
            if a.key == "fingerprint" {
                fingerprints.push(parse_fingerprint(a.value.as_deref().unwrap_or(""))?);
            }
        }
        if fingerprints.is_empty() {
            return Err("the offer has no DTLS fingerprint (a=fingerprint)".into());
        }
        // RFC 5763: the offerer says actpass (or active/passive); we take the other side.
        let (role, we_are_dtls_client) = match attr("setup").unwrap_or("actpass") {
            "actpass" | "active" => (DtlsRole::Client, false),
            "passive" => (DtlsRole::Server, true),
            other => {
                return Err(format!(
                    "a=setup:{other} is not a DTLS role: use actpass, active or passive"
                ))
            }
        };
        let header_extensions = extmaps(media);
        let audio = sd
            .media_descriptions
            .iter()
            .enumerate()
            .filter(|(_, m)| m.media_name.media == "audio")
            .find_map(|(index, m)| usable_audio(index, m));
        Ok(Offer {
            sections,
            video,
            mid,
            remote_dtls: DtlsParameters { role, fingerprints },
            we_are_dtls_client,
            codecs,
            header_extensions,
            audio,
        })
    }

    /// The offered codec to send a camera's audio `kind` with, if the viewer takes it.
    pub fn audio_codec(&self, kind: AudioOut) -> Option<&OfferedAudio> {
        self.audio.as_ref()?.codecs.iter().find(|c| c.kind == kind)
    }

    /// The viewer's audio receive capabilities for `codec`, for mediasoup's `consume`.
    pub fn audio_capabilities(&self, codec: &OfferedAudio) -> RtpCapabilities {
        let extensions = self
            .audio
            .as_ref()
            .map_or(&[][..], |a| &a.header_extensions[..]);
        RtpCapabilities {
            codecs: vec![RtpCodecCapability::Audio {
                mime_type: codec.kind.mime_type(),
                preferred_payload_type: Some(codec.payload_type),
                clock_rate: NonZeroU32::new(codec.kind.clock_rate()).expect("non-zero"),
                channels: std::num::NonZeroU8::new(codec.kind.channels()).expect("non-zero"),
                parameters: RtpCodecParametersParameters::default(),
                rtcp_feedback: codec.rtcp_feedback.clone(),
            }],
            header_extensions: header_extensions(MediaKind::Audio, extensions),
        }
    }

    /// The codec to send a stream of `stream_profile` (the SPS's profile-level-id) with.
    ///
    /// The first offered codec of the same H.264 profile wins, declared with the stream's own
    /// profile-level-id (levels may differ: we answer `level-asymmetry-allowed=1`). A viewer
    /// offering no such profile (Firefox and aiortc offer Constrained Baseline only) gets its
    /// first codec and the stream under that codec's profile-level-id: every WebRTC H.264
    /// decoder (FFmpeg, OpenH264 in decode-only use, hardware) reads the real profile from the
    /// in-band SPS, which is what go2rtc and MediaMTX rely on as well. `None` without any
    /// H.264 codec.
    pub fn choose(&self, stream_profile: &str) -> Option<CodecChoice> {
        let same = self.codecs.iter().find(|c| {
            h264_profile_level_id::is_same_profile(
                Some(stream_profile),
                c.profile_level_id.as_deref(),
            )
            .is_some()
        });
        match same {
            Some(c) => Some(CodecChoice {
                codec: c.clone(),
                profile_level_id: stream_profile.to_string(),
                exact: true,
            }),
            None => self.codecs.first().map(|c| CodecChoice {
                codec: c.clone(),
                profile_level_id: c
                    .profile_level_id
                    .clone()
                    .unwrap_or_else(|| "42e01f".to_string()),
                exact: false,
            }),
        }
    }

    /// The viewer's receive capabilities for mediasoup's `consume`: the chosen codec under its
    /// own payload type, and the offered header extensions with their ids.
    pub fn capabilities(&self, choice: &CodecChoice) -> RtpCapabilities {
        RtpCapabilities {
            codecs: vec![RtpCodecCapability::Video {
                mime_type: MimeTypeVideo::H264,
                preferred_payload_type: Some(choice.codec.payload_type),
                clock_rate: NonZeroU32::new(90_000).expect("non-zero"),
                parameters: h264_parameters(&choice.profile_level_id),
                rtcp_feedback: choice.codec.rtcp_feedback.clone(),
            }],
            header_extensions: header_extensions(MediaKind::Video, &self.header_extensions),
        }
    }
}

fn header_extensions(
    kind: MediaKind,
    offered: &[(u16, RtpHeaderExtensionUri)],
) -> Vec<RtpHeaderExtension> {
    offered
        .iter()
        .map(|&(id, uri)| RtpHeaderExtension {
            kind,
            uri,
            preferred_id: id,
            preferred_encrypt: false,
            direction: RtpHeaderExtensionDirection::default(),
        })
        .collect()
}

/// `a=extmap` lines of a section that mediasoup knows: (id, URI).
fn extmaps(m: &MediaDescription) -> Vec<(u16, RtpHeaderExtensionUri)> {
    m.attributes
        .iter()
        .filter(|a| a.key == "extmap")
        .filter_map(|a| parse_extmap(a.value.as_deref()?))
        .collect()
}

/// An audio section a viewer receives on, with the codecs of it we can send; `None` when it
/// cannot be answered (then it is answered rejected, and the video still plays).
fn usable_audio(index: usize, m: &MediaDescription) -> Option<AudioSection> {
    let protocol = m.media_name.protos.join("/");
    if !matches!(protocol.as_str(), "UDP/TLS/RTP/SAVPF" | "UDP/TLS/RTP/SAVP")
        || m.media_name.port.value == 0
        || m.has_attribute("sendonly")
        || m.has_attribute("inactive")
    {
        return None;
    }
    let mid = value(&m.attributes, "mid").filter(|m| !m.is_empty())?;
    let mut codecs = Vec::new();
    for format in &m.media_name.formats {
        let Ok(pt) = format.parse::<u8>() else {
            continue;
        };
        let prefix = format!("{pt} ");
        let rtpmap = m
            .attributes
            .iter()
            .filter(|a| a.key == "rtpmap")
            .find_map(|a| a.value.as_deref()?.strip_prefix(&prefix).map(str::trim));
        // The static payload types of RFC 3551 may come without a rtpmap.
        let name = match (rtpmap, pt) {
            (Some(r), _) => r.to_ascii_lowercase(),
            (None, 0) => "pcmu/8000".into(),
            (None, 8) => "pcma/8000".into(),
            (None, _) => continue,
        };
        let kind = match name.as_str() {
            "opus/48000/2" => AudioOut::Opus,
            "pcma/8000" | "pcma/8000/1" => AudioOut::Pcma,
            "pcmu/8000" | "pcmu/8000/1" => AudioOut::Pcmu,
            _ => continue,
        };
        codecs.push(OfferedAudio {
            kind,
            payload_type: pt,
            rtcp_feedback: rtcp_feedback(m, pt),
        });
    }
    Some(AudioSection {
        index,
        mid: mid.to_string(),
        codecs,
        header_extensions: extmaps(m),
    })
}

/// The fmtp parameters we send H.264 with: RFC 6184 non-interleaved mode, and the level may
/// differ between the directions.
pub fn h264_parameters(profile_level_id: &str) -> RtpCodecParametersParameters {
    RtpCodecParametersParameters::from([
        ("packetization-mode", 1_u32.into()),
        ("level-asymmetry-allowed", 1_u32.into()),
        ("profile-level-id", profile_level_id.to_string().into()),
    ])
}

fn value<'a>(attributes: &'a [Attribute], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_deref().unwrap_or("").trim())
}

/// The H.264 packetization-mode=1 codecs of a video section we can send to, or why not.
fn usable_video(m: &MediaDescription) -> Result<Vec<OfferedCodec>, String> {
    let protocol = m.media_name.protos.join("/");
    if !matches!(protocol.as_str(), "UDP/TLS/RTP/SAVPF" | "UDP/TLS/RTP/SAVP") {
        return Err(format!(
            "m=video uses {protocol}, not UDP/TLS/RTP/SAVPF (WebRTC)"
        ));
    }
    if m.media_name.port.value == 0 {
        return Err("m=video has port 0 (rejected)".into());
    }
    for dir in ["sendonly", "inactive"] {
        if m.has_attribute(dir) {
            return Err(format!(
                "the video section is {dir}: a viewer must offer recvonly or sendrecv"
            ));
        }
    }
    let mut h264: Vec<u8> = Vec::new();
    for a in m.attributes.iter().filter(|a| a.key == "rtpmap") {
        let v = a.value.as_deref().unwrap_or("");
        let (pt, rest) = v.split_once(' ').unwrap_or((v, ""));
        let name = rest.split('/').next().unwrap_or("").trim();
        if let (Ok(pt), true) = (pt.trim().parse::<u8>(), name.eq_ignore_ascii_case("H264")) {
            if m.media_name.formats.iter().any(|f| f == &pt.to_string()) {
                h264.push(pt);
            }
        }
    }
    if h264.is_empty() {
        return Err("the video section offers no H.264 (a=rtpmap:<pt> H264/90000)".into());
    }
    let mut codecs = Vec::new();
    for pt in h264 {
        let params = fmtp(m, pt);
        let mode = params
            .iter()
            .find(|(k, _)| k == "packetization-mode")
            .map_or("0", |(_, v)| v.as_str());
        if mode != "1" {
            continue;
        }
        codecs.push(OfferedCodec {
            payload_type: pt,
            profile_level_id: params
                .iter()
                .find(|(k, _)| k == "profile-level-id")
                .map(|(_, v)| v.to_ascii_lowercase()),
            rtcp_feedback: rtcp_feedback(m, pt),
        });
    }
    // Offer order is the viewer's preference (RFC 3264); keep it.
    let order = |pt: u8| {
        m.media_name
            .formats
            .iter()
            .position(|f| f == &pt.to_string())
    };
    codecs.sort_by_key(|c| order(c.payload_type));
    if codecs.is_empty() {
        return Err(
            "the video section offers H.264 only with packetization-mode=0 \
                    (single NAL unit), but camera frames need FU-A: offer packetization-mode=1"
                .into(),
        );
    }
    Ok(codecs)
}

/// `a=fmtp:<pt> k=v;k=v` of a payload type.
fn fmtp(m: &MediaDescription, pt: u8) -> Vec<(String, String)> {
    let prefix = format!("{pt} ");
    m.attributes
        .iter()
        .filter(|a| a.key == "fmtp")
        .filter_map(|a| a.value.as_deref()?.strip_prefix(&prefix))
        .flat_map(|params| params.split(';'))
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// `a=rtcp-fb:<pt> ...` and `a=rtcp-fb:* ...` that mediasoup understands.
fn rtcp_feedback(m: &MediaDescription, pt: u8) -> Vec<RtcpFeedback> {
    let pt = pt.to_string();
    let mut out = Vec::new();
    for a in m.attributes.iter().filter(|a| a.key == "rtcp-fb") {
        let v = a.value.as_deref().unwrap_or("");
        let mut words = v.split_whitespace();
        let Some(target) = words.next() else { continue };
        if target != pt && target != "*" {
            continue;
        }
        let kind = words.next().unwrap_or("");
        let param = words.next().unwrap_or("");
        if let Ok(fb) = RtcpFeedback::from_type_parameter(kind, param) {
            if fb != RtcpFeedback::Unsupported && !out.contains(&fb) {
                out.push(fb);
            }
        }
    }
    out
}

/// `a=extmap:<id>[/<direction>] <uri> [attributes]` for an extension mediasoup knows.
fn parse_extmap(v: &str) -> Option<(u16, RtpHeaderExtensionUri)> {
    let mut words = v.split_whitespace();
    let id = words.next()?.split('/').next()?.parse::<u16>().ok()?;
    let uri = RtpHeaderExtensionUri::from_str(words.next()?).ok()?;
    (1..=255).contains(&id).then_some((id, uri))
}

/// `a=fingerprint:<hash> <hex bytes separated by colons>` (RFC 8122).
fn parse_fingerprint(v: &str) -> Result<DtlsFingerprint, String> {
    let bad = || format!("a=fingerprint:{v} is not a certificate fingerprint");
    let (algorithm, hex) = v.trim().split_once(' ').ok_or_else(bad)?;
    let bytes: Vec<u8> = hex
        .trim()
        .split(':')
        .map(|b| {
            if b.len() == 2 {
                u8::from_str_radix(b, 16).ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    fn array<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
        bytes.try_into().ok()
    }
    let fp = match algorithm.to_ascii_lowercase().as_str() {
        "sha-1" => array(&bytes).map(|value| DtlsFingerprint::Sha1 { value }),
        "sha-224" => array(&bytes).map(|value| DtlsFingerprint::Sha224 { value }),
        "sha-256" => array(&bytes).map(|value| DtlsFingerprint::Sha256 { value }),
        "sha-384" => array(&bytes).map(|value| DtlsFingerprint::Sha384 { value }),
        "sha-512" => array(&bytes).map(|value| DtlsFingerprint::Sha512 { value }),
        other => {
            return Err(format!(
                "a=fingerprint uses {other}: use sha-256 (or sha-1, sha-384, sha-512)"
            ))
        }
    };
    fp.ok_or_else(bad)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An offer like Chromium's for `addTransceiver('video', {direction: 'recvonly'})`,
    /// trimmed to what matters here.
    pub(crate) const CHROME: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 112\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Vd+3\r\n\
a=ice-pwd:2Jw3uyeK0bcn7k6NbTOgfQCV\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:toffset\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 goog-remb\r\n\
a=rtcp-fb:102 transport-cc\r\n\
a=rtcp-fb:102 ccm fir\r\n\
a=rtcp-fb:102 nack\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 rtx/90000\r\n\
a=fmtp:103 apt=102\r\n\
a=rtpmap:104 H264/90000\r\n\
a=rtcp-fb:104 nack\r\n\
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
a=rtpmap:105 rtx/90000\r\n\
a=fmtp:105 apt=104\r\n\
a=rtpmap:106 H264/90000\r\n\
a=rtcp-fb:106 nack pli\r\n\
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n\
a=rtpmap:107 rtx/90000\r\n\
a=fmtp:107 apt=106\r\n\
a=rtpmap:112 H264/90000\r\n\
a=rtcp-fb:112 nack\r\n\
a=rtcp-fb:112 nack pli\r\n\
a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032\r\n";

    #[test]
    fn reads_a_browser_offer() {
        let o = Offer::parse(CHROME).unwrap();
        assert_eq!(o.mid, "0");
        assert_eq!(o.video, 0);
        assert_eq!(o.remote_dtls.role, DtlsRole::Client);
        assert!(!o.we_are_dtls_client);
        assert!(matches!(
            o.remote_dtls.fingerprints[..],
            [DtlsFingerprint::Sha256 { value }] if value[0] == 0x0f && value[31] == 0x8e
        ));
        let pts: Vec<u8> = o.codecs.iter().map(|c| c.payload_type).collect();
        assert_eq!(
            pts,
            vec![102, 106, 112],
            "packetization-mode=0 (104) is left out"
        );
        assert_eq!(
            o.codecs[0].rtcp_feedback,
            vec![
                RtcpFeedback::GoogRemb,
                RtcpFeedback::TransportCc,
                RtcpFeedback::CcmFir,
                RtcpFeedback::Nack,
                RtcpFeedback::NackPli
            ]
        );
        // toffset is unknown to mediasoup and skipped
        assert_eq!(
            o.header_extensions,
            vec![
                (2, RtpHeaderExtensionUri::AbsSendTime),
                (3, RtpHeaderExtensionUri::TransportWideCcDraft01),
                (4, RtpHeaderExtensionUri::Mid)
            ]
        );
    }

    #[test]
    fn codec_choice_prefers_the_streams_profile() {
        let o = Offer::parse(CHROME).unwrap();
        // (stream profile-level-id, chosen payload type, declared profile-level-id, exact)
        let table = [
            ("640028", 112, "640028", true),
            ("4d401f", 106, "4d401f", true),
            ("42001f", 102, "42001f", true),
            // Constrained Baseline is not Baseline: no exact match in this offer
            ("42e01f", 102, "42001f", false),
            // an SPS whose constraint flags make it unknown to WebRTC: first codec, its id
            ("6e0028", 102, "42001f", false),
        ];
        for (stream, pt, declared, exact) in table {
            let c = o.choose(stream).unwrap();
            assert_eq!(
                (c.codec.payload_type, c.profile_level_id.as_str(), c.exact),
                (pt, declared, exact),
                "stream {stream}"
            );
        }
        let caps = o.capabilities(&o.choose("640028").unwrap());
        assert_eq!(caps.codecs[0].preferred_payload_type(), Some(112));
        assert_eq!(caps.header_extensions.len(), 3);
    }

    #[test]
    fn refusals_say_what_is_missing() {
        let without = |needle: &str| -> String {
            CHROME
                .split("\r\n")
                .filter(|l| !l.is_empty() && !l.contains(needle))
                .map(|l| format!("{l}\r\n"))
                .collect()
        };
        let replace = |from: &str, to: &str| CHROME.replace(from, to);
        // (offer, expected substring of the refusal)
        let table: Vec<(String, &str)> = vec![
            (String::new(), "the request body is empty"),
            ("hello".into(), "not valid SDP"),
            (
                "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n".into(),
                "not valid SDP",
            ),
            (
                replace("m=video", "m=audio"),
                "the offer has no video section",
            ),
            (without("ice-pwd"), "no ICE credentials"),
            (without("fingerprint"), "no DTLS fingerprint"),
            (
                replace("a=fingerprint:sha-256 0F", "a=fingerprint:sha-256 0"),
                "is not a certificate fingerprint",
            ),
            (
                replace("a=fingerprint:sha-256", "a=fingerprint:md5"),
                "uses md5",
            ),
            (without("a=mid"), "no a=mid"),
            (replace("a=recvonly", "a=sendonly"), "is sendonly"),
            (
                replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"),
                "uses RTP/AVP, not UDP/TLS/RTP/SAVPF",
            ),
            (
                replace("packetization-mode=1", "packetization-mode=0"),
                "only with packetization-mode=0",
            ),
            (replace("H264/90000", "VP9/90000"), "offers no H.264"),
            (
                replace("a=setup:actpass", "a=setup:sideways"),
                "not a DTLS role",
            ),
        ];
        for (offer, want) in table {
            let got = Offer::parse(&offer).unwrap_err();
            assert!(got.contains(want), "want {want:?}, got {got:?}");
        }
        // The viewer asking to be the DTLS server makes us the client.
        let o = Offer::parse(&replace("a=setup:actpass", "a=setup:passive")).unwrap();
        assert!(o.we_are_dtls_client);
        assert_eq!(o.remote_dtls.role, DtlsRole::Server);
    }

    #[test]
    fn reads_the_audio_section_and_the_codecs_we_can_send() {
        let with_audio = |section: &str| format!("{CHROME}{section}");
        let audio = "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13\r\nc=IN IP4 0.0.0.0\r\n\
             a=mid:1\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
             a=recvonly\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
             a=rtpmap:63 red/48000/2\r\na=rtpmap:9 G722/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:13 CN/8000\r\n";
        let o = Offer::parse(&with_audio(audio)).unwrap();
        let a = o.audio.as_ref().expect("an audio section");
        assert_eq!((a.index, a.mid.as_str()), (1, "1"));
        // (kind, payload type): PCMU came without a rtpmap (static type 0)
        let codecs: Vec<(AudioOut, u8)> =
            a.codecs.iter().map(|c| (c.kind, c.payload_type)).collect();
        assert_eq!(
            codecs,
            vec![
                (AudioOut::Opus, 111),
                (AudioOut::Pcmu, 0),
                (AudioOut::Pcma, 8)
            ]
        );
        assert_eq!(a.codecs[0].rtcp_feedback, vec![RtcpFeedback::TransportCc]);
        assert_eq!(
            a.header_extensions,
            vec![(1, RtpHeaderExtensionUri::SsrcAudioLevel)]
        );
        assert_eq!(
            o.audio_codec(AudioOut::Pcma).map(|c| c.payload_type),
            Some(8)
        );
        assert_eq!(o.sections[1].rtpmaps.len(), 5);
        // Sections a viewer cannot receive audio on are no refusal, just no audio.
        for unusable in [
            audio.replace("a=recvonly", "a=inactive"),
            audio.replace("m=audio 9", "m=audio 0"),
            audio.replace("a=mid:1\r\n", ""),
            audio.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"),
        ] {
            let o = Offer::parse(&with_audio(&unusable)).unwrap();
            assert_eq!(o.audio, None, "{unusable}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // Prefixes of a valid offer and some hostile lines: each parses or is refused.
        let mut inputs: Vec<String> = (0..CHROME.len())
            .step_by(7)
            .map(|n| CHROME[..n].to_string())
            .collect();
        inputs.extend(
            [
                "v=0\r\nm=video\r\n",
                "v=x\r\n",
                "\u{0}\u{1}\u{2}",
                "v=0\r\no=\r\ns=\r\nt=0 0\r\nm=video 99999999999999999999 UDP 96\r\n",
                "v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:\r\na=fmtp:\r\na=extmap:\r\n",
            ]
            .map(String::from),
        );
        for input in inputs {
            let _ = Offer::parse(&input);
        }
    }
}
