//! The kiosk link: how the Hallmark agent and the controller beside the scanner talk over a serial line.
//!
//! - [`message`] — what is said: hello, show verdict, status, reject, trigger, heartbeat; on a conveyor
//!   the belt count and the reject gate's entries, decisions and reports.
//! - [`frame`] — how one message becomes bytes on the wire and back: postcard payload behind a
//!   protocol-version byte, a CRC-32, COBS stuffing, `0x00` delimiters.
//! - [`decoder`] — the receiving side of a byte stream: accumulates bytes, tells "need more bytes"
//!   apart from "corrupt frame", and resynchronises on the next delimiter after garbage.
//! - [`error`] — what can go wrong, one enum per direction.
//! - [`pacing`] — how a receive loop pauses after failed reads, so a stream of UART errors cannot
//!   starve the tasks beside it.
//!
//! `no_std`, no allocator: the controller firmware and the host agent use this same crate, so the two
//! ends cannot drift apart.
#![no_std]
#![forbid(unsafe_code)]

pub mod decoder;
pub mod error;
pub mod frame;
pub mod message;
pub mod pacing;

pub use decoder::Decoder;
pub use error::{EncodeError, FrameError};
pub use frame::{decode_frame, encode, MAX_FRAME_LEN, MAX_WIRE_LEN, PROTOCOL_VERSION};
pub use message::{
    text_truncated, BeltCount, Confidence, GateDecision, GateEntry, GateOutcome, GateReport,
    Heartbeat, Hello, Inspected, Message, OnLate, Progress, Reject, Role, ShowVerdict, Status,
    Text, Trigger, UnknownVerdict, Verdict, BRAND_LEN, DETAIL_LEN, PRODUCT_LEN, VERSION_LEN,
};
pub use pacing::{Pause, ReadPacer};
