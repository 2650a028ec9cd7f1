//! One message ⇄ one frame of bytes on the wire.
//!
//! Wire layout of a frame: `0x00, COBS(version ‖ postcard(message) ‖ crc32_le(version ‖ payload)), 0x00`.
//!
//! - COBS removes every `0x00` from the body, so `0x00` only ever marks frame boundaries and a receiver
//!   that joins mid-stream (or sees line noise) resynchronises at the next one.
//! - The leading `0x00` flushes whatever half-frame a receiver holds from before a reconnect; a
//!   receiver ignores the empty frame that two adjacent delimiters make.
//! - The version byte is inside the checksum: a mismatched peer is reported as such, not as noise.
//! - CRC-32 (ISO-HDLC, as in Ethernet/zlib) catches every error of up to three bits in frames this
//!   short, and anything else with probability 1 − 2⁻³².

use crate::error::{EncodeError, FrameError};
use crate::message::Message;

/// The link protocol version, first byte of every decoded frame body.
pub const PROTOCOL_VERSION: u8 = 1;

/// Largest postcard payload of any [`Message`] (checked by a test against the largest message).
pub const MAX_PAYLOAD_LEN: usize = 96;
const HEADER_LEN: usize = 1;
const CRC_LEN: usize = 4;
const MAX_RAW_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN + CRC_LEN;

/// Largest COBS-encoded frame body (between delimiters) a receiver accepts; longer runs are dropped as
/// [`FrameError::Oversize`].
pub const MAX_FRAME_LEN: usize = 128;
/// Largest frame on the wire, delimiters included: the buffer size for [`encode`].
pub const MAX_WIRE_LEN: usize = MAX_FRAME_LEN + 2;

// Design: the longest raw frame must fit the receiver's buffer once stuffed.
const _: () = assert!(cobs::max_encoding_length(MAX_RAW_LEN) <= MAX_FRAME_LEN);

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Encodes `msg` as one complete frame (both delimiters) into `out`; returns the number of bytes.
pub fn encode(msg: &Message, out: &mut [u8]) -> Result<usize, EncodeError> {
    msg.validate().map_err(EncodeError::Invalid)?;
    let mut raw = [0u8; MAX_RAW_LEN];
    raw[0] = PROTOCOL_VERSION;
    let payload_len = postcard::to_slice(msg, &mut raw[HEADER_LEN..HEADER_LEN + MAX_PAYLOAD_LEN])
        .map_err(|_| EncodeError::Invalid("message larger than the frame payload"))?
        .len();
    let body_len = HEADER_LEN + payload_len;
    let crc = CRC.checksum(&raw[..body_len]);
    raw[body_len..body_len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    let raw = &raw[..body_len + CRC_LEN];

    let need_at_most = cobs::max_encoding_length(raw.len()) + 2;
    if out.len() < need_at_most {
        return Err(EncodeError::BufferTooSmall {
            need_at_most,
            have: out.len(),
        });
    }
    out[0] = 0;
    let n = cobs::try_encode(raw, &mut out[1..need_at_most - 1]).map_err(|_| {
        EncodeError::BufferTooSmall {
            need_at_most,
            have: out.len(),
        }
    })?;
    out[1 + n] = 0;
    Ok(n + 2)
}

/// Decodes one frame body (the bytes between two delimiters, without them), in place.
///
/// Checks, in order: length, COBS stuffing, CRC, protocol version, payload, field ranges.
pub fn decode_frame(body: &mut [u8]) -> Result<Message, FrameError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::Oversize);
    }
    let n = cobs::decode_in_place(body).map_err(|_| FrameError::Cobs)?;
    // Design: decode_in_place never reports more bytes than it was given; `.get` keeps that an
    // error rather than a panic should it ever change.
    let raw = body.get(..n).ok_or(FrameError::Cobs)?;
    if raw.len() < HEADER_LEN + CRC_LEN + 1 {
        return Err(FrameError::TooShort { len: raw.len() });
    }
    let (content, crc_bytes) = raw.split_at(raw.len() - CRC_LEN);
    let expected = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    let actual = CRC.checksum(content);
    if expected != actual {
        return Err(FrameError::Crc { expected, actual });
    }
    if content[0] != PROTOCOL_VERSION {
        return Err(FrameError::Version { got: content[0] });
    }
    let (msg, rest) = postcard::take_from_bytes::<Message>(&content[HEADER_LEN..])
        .map_err(|_| FrameError::Payload)?;
    if !rest.is_empty() {
        return Err(FrameError::Payload);
    }
    msg.validate().map_err(FrameError::Invalid)?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::*;

    fn largest_verdict() -> Message {
        Message::ShowVerdict(ShowVerdict {
            item_id: u32::MAX,
            verdict: Verdict::Inconclusive,
            brand: text_truncated(&"B".repeat(100)),
            product: text_truncated(&"P".repeat(100)),
            confidence: Confidence(1000),
        })
    }

    #[test]
    fn largest_message_fits_the_payload_limit() {
        let mut buf = [0u8; 256];
        let payload = postcard::to_slice(&largest_verdict(), &mut buf)
            .unwrap()
            .len();
        assert!(
            payload <= MAX_PAYLOAD_LEN,
            "payload {payload} > {MAX_PAYLOAD_LEN}"
        );
        let err = Message::Status(Status::AgentError {
            detail: text_truncated(&"e".repeat(99)),
        });
        let payload = postcard::to_slice(&err, &mut buf).unwrap().len();
        assert!(payload <= MAX_PAYLOAD_LEN);
    }

    #[test]
    fn frame_has_delimiters_and_no_inner_zero() {
        let mut out = [0u8; MAX_WIRE_LEN];
        let n = encode(&largest_verdict(), &mut out).unwrap();
        assert_eq!(out[0], 0);
        assert_eq!(out[n - 1], 0);
        assert!(out[1..n - 1].iter().all(|&b| b != 0));
        let mut body = out[1..n - 1].to_vec();
        assert_eq!(decode_frame(&mut body), Ok(largest_verdict()));
    }

    #[test]
    fn encode_reports_a_small_buffer() {
        let mut out = [0u8; 10];
        assert!(matches!(
            encode(&largest_verdict(), &mut out),
            Err(EncodeError::BufferTooSmall { have: 10, .. })
        ));
    }

    #[test]
    fn encode_refuses_out_of_range_fields() {
        let mut out = [0u8; MAX_WIRE_LEN];
        let m = Message::Status(Status::ModelUpdating {
            brand: text_truncated("A"),
            progress: Progress(200),
        });
        assert_eq!(
            encode(&m, &mut out),
            Err(EncodeError::Invalid("progress above 100 percent"))
        );
    }

    /// Builds a frame by hand with the given version and payload, checksummed correctly.
    fn hand_frame(version: u8, payload: &[u8]) -> std::vec::Vec<u8> {
        let mut raw = std::vec![version];
        raw.extend_from_slice(payload);
        let crc = CRC.checksum(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        let mut out = std::vec![0u8; cobs::max_encoding_length(raw.len())];
        let n = cobs::encode(&raw, &mut out);
        out.truncate(n);
        out
    }

    extern crate std;

    #[test]
    fn another_protocol_version_is_named_as_such() {
        let mut payload = [0u8; 16];
        let p =
            postcard::to_slice(&Message::Heartbeat(Heartbeat { seq: 3 }), &mut payload).unwrap();
        let mut body = hand_frame(2, p);
        assert_eq!(decode_frame(&mut body), Err(FrameError::Version { got: 2 }));
    }

    #[test]
    fn unknown_variant_and_trailing_bytes_are_payload_errors() {
        let mut body = hand_frame(PROTOCOL_VERSION, &[42]);
        assert_eq!(decode_frame(&mut body), Err(FrameError::Payload));
        let mut body = hand_frame(PROTOCOL_VERSION, &[5, 3, 99]); // heartbeat seq=3, then junk
        assert_eq!(decode_frame(&mut body), Err(FrameError::Payload));
        let mut body = hand_frame(PROTOCOL_VERSION, &[5, 3]);
        assert_eq!(
            decode_frame(&mut body),
            Ok(Message::Heartbeat(Heartbeat { seq: 3 }))
        );
    }

    #[test]
    fn out_of_range_confidence_on_the_wire_is_invalid() {
        // ShowVerdict: tag 1, item 7, Genuine 0, brand "A", product "B", confidence 1200 (varint b0 09)
        let mut body = hand_frame(PROTOCOL_VERSION, &[1, 7, 0, 1, b'A', 1, b'B', 0xb0, 0x09]);
        assert_eq!(
            decode_frame(&mut body),
            Err(FrameError::Invalid("confidence above 1000 per mille"))
        );
    }

    #[test]
    fn short_and_broken_bodies_are_errors() {
        assert_eq!(
            decode_frame(&mut [2, 1]),
            Err(FrameError::TooShort { len: 1 })
        );
        assert_eq!(decode_frame(&mut [9, 1, 2]), Err(FrameError::Cobs));
        assert_eq!(
            decode_frame(&mut [1u8; MAX_FRAME_LEN + 1]),
            Err(FrameError::Oversize)
        );
    }
}
