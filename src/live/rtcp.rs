//! Key frame requests in the RTCP that mediasoup sends back to a camera's producer.
//!
//! When a viewer joins or loses a picture, mediasoup asks the producer for a key frame with a
//! PLI or FIR (RFC 4585 6.3.1, RFC 5104 4.3.1). An RTSP camera cannot be asked for one, so the
//! viewer waits for the next key frame of the GOP; the requests are only counted, which shows
//! in status how often viewers had to wait.

/// Payload-specific feedback (RFC 4585), the RTCP packet type carrying PLI (FMT 1) and FIR
/// (FMT 4).
const PSFB: u8 = 206;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;

/// The number of PLI and FIR packets in a compound RTCP packet. Parsing stops at the first
/// malformed header, counting what came before it.
pub fn key_frame_requests(mut compound: &[u8]) -> u64 {
    let mut count = 0;
    while compound.len() >= 4 {
        let version = compound[0] >> 6;
        let fmt = compound[0] & 0x1f;
        let packet_type = compound[1];
        let words = u16::from_be_bytes([compound[2], compound[3]]) as usize;
        let len = (words + 1) * 4;
        if version != 2 || len > compound.len() {
            break;
        }
        if packet_type == PSFB && (fmt == FMT_PLI || fmt == FMT_FIR) {
            count += 1;
        }
        compound = &compound[len..];
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLI: [u8; 12] = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
    const FIR: [u8; 20] = [
        0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 7, 0, 0, 0,
    ];
    const RR: [u8; 8] = [0x80, 201, 0, 1, 0, 0, 0, 1];
    const REMB: [u8; 12] = [0x8f, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];

    #[test]
    fn counts_pli_and_fir_only() {
        let cat = |parts: &[&[u8]]| parts.concat();
        // (compound packet, key frame requests)
        let table: Vec<(Vec<u8>, u64)> = vec![
            (PLI.to_vec(), 1),
            (FIR.to_vec(), 1),
            (RR.to_vec(), 0),
            (REMB.to_vec(), 0),
            (cat(&[&RR, &PLI, &FIR, &PLI]), 3),
            // a truncated tail is not counted and does not stop what came before
            (cat(&[&PLI, &PLI[..6]]), 1),
            (cat(&[&[0x41, 206, 0, 2], &PLI]), 0),
            (vec![], 0),
        ];
        for (packet, want) in table {
            assert_eq!(key_frame_requests(&packet), want, "{packet:02x?}");
        }
    }
}
