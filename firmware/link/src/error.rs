//! What can go wrong on the link, one enum per direction.
//!
//! Decoding errors say *which* check failed, so a log line tells a technician whether the line is noisy
//! (CRC), the peers disagree on the protocol (version), or the peer speaks something else entirely.

use core::fmt;

/// A frame arrived but is not a valid message. The decoder has already skipped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// More than [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN) bytes before a delimiter; dropped up to the
    /// next delimiter.
    Oversize,
    /// The COBS stuffing is broken (a zero where none may be, or a code byte past the end).
    Cobs,
    /// Too short to hold a version byte and a checksum.
    TooShort { len: usize },
    /// The CRC-32 over version and payload does not match.
    Crc { expected: u32, actual: u32 },
    /// The peer speaks another protocol version.
    Version { got: u8 },
    /// The checksum was right but the payload is not a message this version knows.
    Payload,
    /// A field is out of range (e.g. confidence above 1000 per mille).
    Invalid(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Oversize => {
                write!(
                    f,
                    "frame longer than {} bytes, dropped",
                    crate::MAX_FRAME_LEN
                )
            }
            FrameError::Cobs => f.write_str("broken COBS stuffing"),
            FrameError::TooShort { len } => write!(f, "frame of {len} bytes is too short"),
            FrameError::Crc { expected, actual } => {
                write!(
                    f,
                    "CRC mismatch: frame says {expected:#010x}, content gives {actual:#010x}"
                )
            }
            FrameError::Version { got } => write!(
                f,
                "protocol version {got}, this end speaks {}",
                crate::PROTOCOL_VERSION
            ),
            FrameError::Payload => f.write_str("checksum fine but payload is not a known message"),
            FrameError::Invalid(why) => write!(f, "invalid message: {why}"),
        }
    }
}

impl core::error::Error for FrameError {}

/// A message could not be put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is smaller than the encoded frame.
    BufferTooSmall { need_at_most: usize, have: usize },
    /// The message itself is out of range (see [`Message::validate`](crate::Message::validate)).
    Invalid(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { need_at_most, have } => {
                write!(
                    f,
                    "output buffer of {have} bytes, frame needs up to {need_at_most}"
                )
            }
            EncodeError::Invalid(why) => write!(f, "invalid message: {why}"),
        }
    }
}

impl core::error::Error for EncodeError {}
