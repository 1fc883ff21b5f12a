//! RTP packets of the live streams. Audio frames go one per packet ([`Packetizer::packet`]);
//! H.264 access units are packetized in RFC 6184 non-interleaved mode
//! (`packetization-mode=1`): a NAL unit that fits is sent alone, small neighbours (SPS, PPS,
//! SEI before a slice) share one STAP-A, a large one is split into FU-A fragments. The last
//! packet of an access unit carries the marker bit.
//!
//! Ours rather than a crate's: webrtc-rs's `rtp` pulls in tokio through `webrtc-util`, its
//! sans-I/O successor `rtc-rtp` needs a newer Rust than this workspace's 1.85, and `rtp-rs`
//! has no H.264 payloader. The format is small and the tests below pin it down byte by byte;
//! the integration tests decode the result with aiortc's and Chromium's depacketizers.

/// Largest RTP payload we send, in bytes. mediasoup adds header extensions (MID, abs-send-time,
/// transport-cc: about 20 bytes) and SRTP its 10-byte tag; with IPv4/UDP that stays under
/// 1,250 bytes per datagram, safely below the 1,280-byte IPv6 minimum MTU of most paths.
pub const MAX_PAYLOAD_BYTES: usize = 1150;

const RTP_HEADER_BYTES: usize = 12;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// One RTP stream's packet writer: fixed payload type and SSRC, its own sequence numbers.
#[derive(Debug)]
pub struct Packetizer {
    payload_type: u8,
    ssrc: u32,
    next_sequence: u16,
    max_payload: usize,
}

impl Packetizer {
    pub fn new(payload_type: u8, ssrc: u32, first_sequence: u16) -> Packetizer {
        Packetizer {
            payload_type,
            ssrc,
            next_sequence: first_sequence,
            max_payload: MAX_PAYLOAD_BYTES,
        }
    }

    #[cfg(test)]
    fn with_max_payload(mut self, bytes: usize) -> Packetizer {
        self.max_payload = bytes;
        self
    }

    /// Writes the RTP packets of one access unit made of `nals` (without start codes) with
    /// `timestamp`, handing each to `out` in order. Returns the number of packets.
    pub fn packetize(
        &mut self,
        nals: &[&[u8]],
        timestamp: u32,
        out: &mut dyn FnMut(Vec<u8>),
    ) -> usize {
        let nals: Vec<&[u8]> = nals.iter().copied().filter(|n| !n.is_empty()).collect();
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut i = 0;
        while i < nals.len() {
            // Aggregate as many following units as fit into one STAP-A, two at least.
            let mut size = 1 + 2 + nals[i].len();
            let mut end = i + 1;
            while end < nals.len() && size + 2 + nals[end].len() <= self.max_payload {
                size += 2 + nals[end].len();
                end += 1;
            }
            if end - i >= 2 {
                payloads.push(stap_a(&nals[i..end]));
                i = end;
            } else if nals[i].len() <= self.max_payload {
                payloads.push(nals[i].to_vec());
                i += 1;
            } else {
                fu_a(nals[i], self.max_payload, &mut payloads);
                i += 1;
            }
        }
        let count = payloads.len();
        for (n, payload) in payloads.into_iter().enumerate() {
            out(self.packet(&payload, timestamp, n + 1 == count));
        }
        count
    }

    /// One RTP packet carrying `payload` as it is: how audio is sent, one frame (or a run of
    /// G.711 samples) per packet (RFC 3551 4.5.14, RFC 7587 4.2).
    pub fn packet(&mut self, payload: &[u8], timestamp: u32, marker: bool) -> Vec<u8> {
        let mut p = Vec::with_capacity(RTP_HEADER_BYTES + payload.len());
        p.push(0x80); // version 2, no padding, no extension, no CSRC
        p.push(u8::from(marker) << 7 | (self.payload_type & 0x7f));
        p.extend_from_slice(&self.next_sequence.to_be_bytes());
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.next_sequence = self.next_sequence.wrapping_add(1);
        p
    }
}

/// One STAP-A payload: F is the OR and NRI the highest of the units' (RFC 6184 5.7.1).
fn stap_a(nals: &[&[u8]]) -> Vec<u8> {
    let f = nals.iter().fold(0, |f, n| f | (n[0] & 0x80));
    let nri = nals.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
    let mut p = vec![f | nri | STAP_A];
    for nal in nals {
        p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        p.extend_from_slice(nal);
    }
    p
}

/// FU-A fragments of `nal`: the indicator keeps F and NRI, the FU header the type with the
/// start and end bits; the NAL header byte itself is not repeated (RFC 6184 5.8).
fn fu_a(nal: &[u8], max_payload: usize, payloads: &mut Vec<Vec<u8>>) {
    let indicator = (nal[0] & 0xe0) | FU_A;
    let kind = nal[0] & 0x1f;
    let body = &nal[1..];
    let chunk = max_payload - 2;
    let last = body.len().div_ceil(chunk) - 1;
    for (n, part) in body.chunks(chunk).enumerate() {
        let mut header = kind;
        if n == 0 {
            header |= 0x80;
        }
        if n == last {
            header |= 0x40;
        }
        let mut p = Vec::with_capacity(2 + part.len());
        p.push(indicator);
        p.push(header);
        p.extend_from_slice(part);
        payloads.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Packetizer, nals: &[&[u8]], ts: u32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let n = p.packetize(nals, ts, &mut |pkt| out.push(pkt));
        assert_eq!(n, out.len());
        out
    }

    /// (sequence, marker, payload) of an RTP packet, after checking the fixed header fields.
    fn parse(pkt: &[u8], ts: u32) -> (u16, bool, Vec<u8>) {
        assert_eq!(pkt[0], 0x80);
        assert_eq!(pkt[1] & 0x7f, 102);
        assert_eq!(&pkt[4..8], &ts.to_be_bytes());
        assert_eq!(&pkt[8..12], &0x1234_5678_u32.to_be_bytes());
        (
            u16::from_be_bytes([pkt[2], pkt[3]]),
            pkt[1] & 0x80 != 0,
            pkt[12..].to_vec(),
        )
    }

    /// A minimal depacketizer, written from RFC 6184 independently of the code above.
    fn depacketize(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut fragment: Option<Vec<u8>> = None;
        for p in payloads {
            match p[0] & 0x1f {
                24 => {
                    let mut at = 1;
                    while at + 2 <= p.len() {
                        let len = u16::from_be_bytes([p[at], p[at + 1]]) as usize;
                        nals.push(p[at + 2..at + 2 + len].to_vec());
                        at += 2 + len;
                    }
                }
                28 => {
                    if p[1] & 0x80 != 0 {
                        fragment = Some(vec![(p[0] & 0xe0) | (p[1] & 0x1f)]);
                    }
                    let f = fragment.as_mut().expect("FU-A without start");
                    f.extend_from_slice(&p[2..]);
                    if p[1] & 0x40 != 0 {
                        nals.push(fragment.take().unwrap());
                    }
                }
                _ => nals.push(p.clone()),
            }
        }
        assert!(fragment.is_none(), "unterminated FU-A");
        nals
    }

    #[test]
    fn layouts() {
        let sps: &[u8] = &[0x67, 0x64, 0x00, 0x28];
        let pps: &[u8] = &[0x68, 0xee];
        let idr: Vec<u8> = std::iter::once(0x65)
            .chain((0..250).map(|i| i as u8))
            .collect();
        let small: &[u8] = &[0x41, 9, 9];
        // (NAL units, expected payloads as (type of the first byte, length))
        type Layout<'a> = (Vec<&'a [u8]>, Vec<(u8, usize)>);
        let table: Vec<Layout> = vec![
            (vec![small], vec![(1, 3)]),
            // SPS + PPS aggregate, the IDR is fragmented into 100-byte payloads
            (
                vec![sps, pps, &idr],
                vec![(24, 1 + 2 + 4 + 2 + 2), (28, 100), (28, 100), (28, 56)],
            ),
            // three small units share one STAP-A
            (vec![sps, pps, small], vec![(24, 1 + 6 + 4 + 5)]),
            // a unit of exactly the limit goes alone
            (vec![&idr[..100]], vec![(5, 100)]),
            (vec![], vec![]),
        ];
        for (units, want) in table {
            let mut p = Packetizer::new(102, 0x1234_5678, 65534).with_max_payload(100);
            let pkts = run(&mut p, &units, 7);
            let got: Vec<(u8, usize)> = pkts.iter().map(|k| (k[12] & 0x1f, k.len() - 12)).collect();
            assert_eq!(got, want, "units {units:02x?}");
            let parsed: Vec<_> = pkts.iter().map(|k| parse(k, 7)).collect();
            // Sequence numbers count up and wrap; only the last packet has the marker.
            for (n, (seq, marker, _)) in parsed.iter().enumerate() {
                assert_eq!(*seq, 65534_u16.wrapping_add(n as u16));
                assert_eq!(*marker, n + 1 == parsed.len());
            }
            let payloads: Vec<Vec<u8>> = parsed.into_iter().map(|(_, _, p)| p).collect();
            let want_units: Vec<Vec<u8>> = units.iter().map(|u| u.to_vec()).collect();
            assert_eq!(depacketize(&payloads), want_units);
        }
    }

    #[test]
    fn header_bits() {
        // STAP-A: F is the OR, NRI the highest of the aggregated units.
        let stap = stap_a(&[&[0x06, 1], &[0xe8, 2], &[0x41, 3]]);
        assert_eq!(stap[0], 0x80 | 0x60 | 24);
        // FU-A: indicator keeps F and NRI, header start/end bits and the type.
        let mut out = Vec::new();
        fu_a(&[0x65, 1, 2, 3, 4, 5], 4, &mut out);
        assert_eq!(
            out,
            vec![
                vec![0x60 | 28, 0x80 | 5, 1, 2],
                vec![0x60 | 28, 5, 3, 4],
                vec![0x60 | 28, 0x40 | 5, 5]
            ]
        );
    }

    #[test]
    fn sequence_numbers_continue_across_access_units() {
        let mut p = Packetizer::new(102, 0x1234_5678, 10);
        let a = run(&mut p, &[&[0x41, 1]], 1000);
        let b = run(&mut p, &[&[0x41, 2], &vec![0x41; 3000]], 4000);
        let seqs: Vec<u16> = a
            .iter()
            .map(|k| parse(k, 1000).0)
            .chain(b.iter().map(|k| parse(k, 4000).0))
            .collect();
        assert_eq!(seqs, (10..10 + seqs.len() as u16).collect::<Vec<_>>());
        assert!(b.iter().all(|k| k.len() <= 12 + MAX_PAYLOAD_BYTES));
    }
}
