//! The SDP answer to a WHEP offer, written with the `sdp` crate from what mediasoup created
//! for the viewer: the WebRTC transport's ICE and DTLS parameters and the consumer's RTP
//! parameters. mediasoup is ICE-lite (it never gathers or checks; the viewer does), so the
//! answer carries every candidate and the viewer's own candidates are not needed.

use mediasoup::prelude::*;
use mediasoup::types::data_structures::DtlsFingerprint;
use mediasoup::types::rtp_parameters::RtpCodecParametersParametersValue;
use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaDescription, MediaName, RangedPort};
use sdp::SessionDescription;

use super::offer::Offer;

/// What the server side of one viewer looks like.
pub struct Local<'a> {
    pub ice: &'a IceParameters,
    pub candidates: &'a [IceCandidate],
    /// The transport's certificate fingerprints; the answer names the SHA-256 one.
    pub fingerprints: &'a [DtlsFingerprint],
    /// The video consumer's RTP parameters: payload type, SSRC, CNAME, header extensions.
    pub rtp: &'a RtpParameters,
    /// The audio consumer's, when the viewer gets the camera's audio.
    pub audio: Option<&'a RtpParameters>,
    /// The `msid` stream id, e.g. the camera id.
    pub stream_id: &'a str,
}

/// The answer to `offer`: its video section, and its audio section when the viewer gets
/// audio, sendonly with our streams in one BUNDLE; every other section rejected (port 0,
/// inactive), as RFC 8829 5.3.1 and RFC 8843 describe.
///
/// The ICE and DTLS attributes are also given at session level, where they apply to every
/// section: a rejected section then still has them, which strict clients require (aiortc
/// refuses a whole answer whose rejected `m=audio` lacks ICE credentials, rtcp-mux or a
/// codec in common, video included).
pub fn answer(offer: &Offer, local: &Local) -> String {
    let audio = offer.audio.as_ref().filter(|_| local.audio.is_some());
    let mut bundle: Vec<(usize, &str)> = vec![(offer.video, offer.mid.as_str())];
    if let Some(a) = audio {
        bundle.push((a.index, a.mid.as_str()));
    }
    bundle.sort();
    let mids: Vec<&str> = bundle.iter().map(|(_, mid)| *mid).collect();
    let mut sd = SessionDescription::new_jsep_session_description(false)
        .with_property_attribute("ice-lite".into())
        .with_value_attribute("group".into(), format!("BUNDLE {}", mids.join(" ")))
        .with_value_attribute("msid-semantic".into(), format!(" WMS {}", local.stream_id));
    for (key, value) in transport_attributes(offer, local) {
        sd = sd.with_value_attribute(key.into(), value);
    }
    for (i, section) in offer.sections.iter().enumerate() {
        let media = if i == offer.video {
            stream_section(offer, local, "video", &offer.mid, local.rtp, i)
        } else if let (Some(a), Some(rtp)) = (audio.filter(|a| a.index == i), local.audio) {
            stream_section(offer, local, "audio", &a.mid, rtp, i)
        } else {
            rejected(
                &section.kind,
                &section.protocol,
                &section.formats,
                section.mid.as_deref(),
                &section.rtpmaps,
            )
        };
        sd = sd.with_media(media);
    }
    sd.marshal()
}

fn attr(m: &mut MediaDescription, key: &str, value: Option<String>) {
    m.attributes.push(Attribute::new(key.to_string(), value));
}

fn connection(address: &str) -> ConnectionInformation {
    let (address_type, address) = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(a)) => ("IP6", a.to_string()),
        Ok(std::net::IpAddr::V4(a)) => ("IP4", a.to_string()),
        // A host name announced for NAT: the candidates carry it; c= needs an address.
        Err(_) => ("IP4", "0.0.0.0".to_string()),
    };
    ConnectionInformation {
        network_type: "IN".into(),
        address_type: address_type.into(),
        address: Some(Address {
            address,
            ttl: None,
            range: None,
        }),
    }
}

fn media_name(kind: &str, port: u16, protocol: &str, formats: Vec<String>) -> MediaName {
    MediaName {
        media: kind.to_string(),
        port: RangedPort {
            value: port as isize,
            range: None,
        },
        protos: protocol.split('/').map(str::to_string).collect(),
        formats,
    }
}

fn rejected(
    kind: &str,
    protocol: &str,
    formats: &[String],
    mid: Option<&str>,
    rtpmaps: &[String],
) -> MediaDescription {
    let mut m = MediaDescription {
        media_name: media_name(kind, 0, protocol, formats.to_vec()),
        connection_information: Some(connection("0.0.0.0")),
        ..Default::default()
    };
    if let Some(mid) = mid {
        attr(&mut m, "mid", Some(mid.to_string()));
    }
    attr(&mut m, "inactive", None);
    // aiortc also wants rtcp-mux in every section, rejected or not ("RTCP mux is not
    // enabled"); harmless for a section that carries nothing.
    attr(&mut m, "rtcp-mux", None);
    for rtpmap in rtpmaps {
        attr(&mut m, "rtpmap", Some(rtpmap.clone()));
    }
    m
}

/// ICE credentials, the SHA-256 certificate fingerprint and the DTLS role of the transport.
fn transport_attributes(offer: &Offer, local: &Local) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("ice-ufrag", local.ice.username_fragment.clone()),
        ("ice-pwd", local.ice.password.clone()),
    ];
    if let Some(fp) = local
        .fingerprints
        .iter()
        .find(|f| matches!(f, DtlsFingerprint::Sha256 { .. }))
    {
        out.push(("fingerprint", format!("sha-256 {}", fp.value_string())));
    }
    let setup = if offer.we_are_dtls_client {
        "active"
    } else {
        "passive"
    };
    out.push(("setup", setup.into()));
    out
}

/// An answered section: `kind` sendonly with the consumer's `rtp`, on the shared transport.
fn stream_section(
    offer: &Offer,
    local: &Local,
    kind: &str,
    mid: &str,
    rtp: &RtpParameters,
    index: usize,
) -> MediaDescription {
    let first = local.candidates.first();
    let port = first.map_or(9, |c| c.port);
    let formats = rtp
        .codecs
        .iter()
        .map(|c| c.payload_type().to_string())
        .collect();
    let protocol = &offer.sections[index].protocol;
    let mut m = MediaDescription {
        media_name: media_name(kind, port, protocol, formats),
        connection_information: Some(connection(first.map_or("0.0.0.0", |c| &c.address))),
        ..Default::default()
    };
    attr(&mut m, "mid", Some(mid.to_string()));
    attr(&mut m, "sendonly", None);
    attr(&mut m, "rtcp-mux", None);
    if rtp.rtcp.reduced_size {
        attr(&mut m, "rtcp-rsize", None);
    }
    for (key, value) in transport_attributes(offer, local) {
        attr(&mut m, key, Some(value));
    }
    for (n, c) in local.candidates.iter().enumerate() {
        let protocol = match c.protocol {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        };
        let tcp = if c.protocol == Protocol::Tcp {
            " tcptype passive"
        } else {
            ""
        };
        attr(
            &mut m,
            "candidate",
            Some(format!(
                "{} {} {} {} {} {} typ host{tcp}",
                c.foundation,
                n + 1,
                protocol,
                c.priority,
                c.address,
                c.port
            )),
        );
    }
    attr(&mut m, "end-of-candidates", None);
    for codec in &rtp.codecs {
        let (mime, pt, clock_rate) = (
            codec.mime_type().as_str(),
            codec.payload_type(),
            codec.clock_rate(),
        );
        let (parameters, rtcp_feedback) = (codec.parameters(), codec.rtcp_feedback());
        let channels = match codec {
            RtpCodecParameters::Audio { channels, .. } => channels.get(),
            RtpCodecParameters::Video { .. } => 1,
        };
        let name = mime.split('/').nth(1).unwrap_or("H264");
        let channels = if channels > 1 {
            format!("/{channels}")
        } else {
            String::new()
        };
        attr(
            &mut m,
            "rtpmap",
            Some(format!("{pt} {name}/{clock_rate}{channels}")),
        );
        let fmtp: Vec<String> = parameters
            .iter()
            .map(|(k, v)| match v {
                RtpCodecParametersParametersValue::String(s) => format!("{k}={s}"),
                RtpCodecParametersParametersValue::Number(n) => format!("{k}={n}"),
            })
            .collect();
        if !fmtp.is_empty() {
            attr(&mut m, "fmtp", Some(format!("{pt} {}", fmtp.join(";"))));
        }
        for fb in rtcp_feedback {
            let (kind, param) = fb.as_type_parameter();
            let line = if param.is_empty() {
                format!("{pt} {kind}")
            } else {
                format!("{pt} {kind} {param}")
            };
            attr(&mut m, "rtcp-fb", Some(line));
        }
    }
    for ext in &rtp.header_extensions {
        let uri = serde_json::to_value(ext.uri)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        if let Some(uri) = uri {
            attr(&mut m, "extmap", Some(format!("{} {uri}", ext.id)));
        }
    }
    let track = format!("{}-{kind}", local.stream_id);
    attr(&mut m, "msid", Some(format!("{} {track}", local.stream_id)));
    if let Some(ssrc) = rtp.encodings.first().and_then(|e| e.ssrc) {
        let cname = rtp.rtcp.cname.clone().unwrap_or_else(|| "vas".into());
        attr(&mut m, "ssrc", Some(format!("{ssrc} cname:{cname}")));
        attr(
            &mut m,
            "ssrc",
            Some(format!("{ssrc} msid:{} {track}", local.stream_id)),
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::offer::tests::CHROME;
    use crate::live::offer::{h264_parameters, Offer};
    use mediasoup::types::data_structures::IceCandidateType;
    use std::io::Cursor;
    use std::num::NonZeroU32;

    fn local_parts() -> (
        IceParameters,
        Vec<IceCandidate>,
        Vec<DtlsFingerprint>,
        RtpParameters,
    ) {
        let ice = IceParameters {
            username_fragment: "ufrag1".into(),
            password: "secretpassword".into(),
            ice_lite: Some(true),
        };
        let candidates = vec![IceCandidate {
            foundation: "udpcandidate".into(),
            priority: 1076302079,
            address: "192.0.2.7".into(),
            protocol: Protocol::Udp,
            port: 40012,
            r#type: IceCandidateType::Host,
            tcp_type: None,
        }];
        let fingerprints = vec![
            DtlsFingerprint::Sha1 { value: [1; 20] },
            DtlsFingerprint::Sha256 { value: [0xab; 32] },
        ];
        let rtp = RtpParameters {
            mid: Some("0".into()),
            codecs: vec![RtpCodecParameters::Video {
                mime_type: MimeTypeVideo::H264,
                payload_type: 112,
                clock_rate: NonZeroU32::new(90_000).unwrap(),
                parameters: h264_parameters("640028"),
                rtcp_feedback: vec![RtcpFeedback::NackPli, RtcpFeedback::CcmFir],
            }],
            header_extensions: vec![RtpHeaderExtensionParameters {
                uri: RtpHeaderExtensionUri::Mid,
                id: 4,
                encrypt: false,
            }],
            encodings: vec![RtpEncodingParameters {
                ssrc: Some(424242),
                ..Default::default()
            }],
            rtcp: RtcpParameters {
                cname: Some("vas-front".into()),
                reduced_size: true,
            },
            msid: None,
        };
        (ice, candidates, fingerprints, rtp)
    }

    /// The answer to `offer` from the transport of `local_parts`, with `audio` if given.
    fn answer_for(offer: &Offer, audio: Option<&RtpParameters>) -> String {
        let (ice, candidates, fingerprints, rtp) = local_parts();
        answer(
            offer,
            &Local {
                ice: &ice,
                candidates: &candidates,
                fingerprints: &fingerprints,
                rtp: &rtp,
                audio,
                stream_id: "front",
            },
        )
    }

    #[test]
    fn answers_the_video_section_and_rejects_the_rest() {
        // A generic WHEP player offers audio too; this camera has none to give.
        let offer_text = format!(
            "{}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n\
             a=rtpmap:111 opus/48000/2\r\n",
            CHROME
        );
        let offer = Offer::parse(&offer_text).unwrap();
        let text = answer_for(&offer, None);
        for line in [
            "a=ice-lite\r\n",
            "a=group:BUNDLE 0\r\n",
            "m=video 40012 UDP/TLS/RTP/SAVPF 112\r\n",
            "c=IN IP4 192.0.2.7\r\n",
            "a=mid:0\r\n",
            "a=sendonly\r\n",
            "a=rtcp-mux\r\n",
            "a=ice-ufrag:ufrag1\r\n",
            "a=ice-pwd:secretpassword\r\n",
            "a=setup:passive\r\n",
            "a=candidate:udpcandidate 1 udp 1076302079 192.0.2.7 40012 typ host\r\n",
            "a=end-of-candidates\r\n",
            "a=rtpmap:112 H264/90000\r\n",
            "a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640028\r\n",
            "a=rtcp-fb:112 nack pli\r\n",
            "a=rtcp-fb:112 ccm fir\r\n",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
            "a=ssrc:424242 cname:vas-front\r\n",
            "a=msid:front front-video\r\n",
            "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n",
            "a=mid:1\r\n",
            "a=inactive\r\n",
            // what strict clients need of a rejected section: a codec in common, rtcp-mux ...
            "a=rtpmap:111 opus/48000/2\r\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        let fp = format!("a=fingerprint:sha-256 {}\r\n", ["AB"; 32].join(":"));
        assert!(text.contains(&fp), "{text}");
        // ... and ICE and DTLS attributes that apply to it: at session level, before the
        // first m= line.
        let session = &text[..text.find("m=").unwrap()];
        for line in [
            "a=ice-ufrag:ufrag1\r\n",
            "a=ice-pwd:secretpassword\r\n",
            &fp,
            "a=setup:passive\r\n",
        ] {
            assert!(
                session.contains(line),
                "missing {line:?} at session level:\n{text}"
            );
        }
        // The answer is itself valid SDP with the sections in the offer's order.
        let back = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes())).unwrap();
        let kinds: Vec<&str> = back
            .media_descriptions
            .iter()
            .map(|m| m.media_name.media.as_str())
            .collect();
        assert_eq!(kinds, ["video", "audio"]);
    }

    #[test]
    fn audio_is_answered_in_the_same_bundle() {
        let offer_text = format!(
            "{}m=audio 9 UDP/TLS/RTP/SAVPF 111 8 0\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
             a=recvonly\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:8 PCMA/8000\r\n",
            CHROME.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1")
        );
        let offer = Offer::parse(&offer_text).unwrap();
        let (_, _, _, rtp) = local_parts();
        let audio = RtpParameters {
            mid: Some("1".into()),
            codecs: vec![RtpCodecParameters::Audio {
                mime_type: MimeTypeAudio::Opus,
                payload_type: 111,
                clock_rate: NonZeroU32::new(48_000).unwrap(),
                channels: std::num::NonZeroU8::new(2).unwrap(),
                parameters: Default::default(),
                rtcp_feedback: vec![],
            }],
            encodings: vec![RtpEncodingParameters {
                ssrc: Some(777),
                ..Default::default()
            }],
            rtcp: rtp.rtcp.clone(),
            ..Default::default()
        };
        let text = answer_for(&offer, Some(&audio));
        let audio_section = &text[text.find("m=audio").expect("an audio section")..];
        for line in [
            "m=audio 40012 UDP/TLS/RTP/SAVPF 111\r\n",
            "a=mid:1\r\n",
            "a=sendonly\r\n",
            "a=rtpmap:111 opus/48000/2\r\n",
            "a=ice-ufrag:ufrag1\r\n",
            "a=ssrc:777 cname:vas-front\r\n",
            "a=msid:front front-audio\r\n",
        ] {
            assert!(audio_section.contains(line), "missing {line:?} in:\n{text}");
        }
        assert!(text.contains("a=group:BUNDLE 0 1\r\n"), "{text}");
    }

    #[test]
    fn a_viewer_that_wants_to_be_the_dtls_server_gets_an_active_answer() {
        let offer = Offer::parse(&CHROME.replace("a=setup:actpass", "a=setup:passive")).unwrap();
        let text = answer_for(&offer, None);
        assert!(text.contains("a=setup:active\r\n"), "{text}");
    }
}
