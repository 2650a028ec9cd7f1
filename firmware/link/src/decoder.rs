//! The receiving side of the link: bytes in, messages (or reasons for dropping a frame) out.
//!
//! [`Decoder::push`] takes one byte and answers `None` ("need more bytes") or `Some(result)` when a
//! frame ended: `Ok(message)`, or `Err(why)` for a corrupt frame that has been skipped. The decoder then
//! carries on with the next frame, so one bad frame costs exactly that frame.
//!
//! Design: a fixed buffer of [`MAX_FRAME_LEN`] bytes and no allocation, so the same code runs in the
//! controller's static RAM. A run longer than the buffer is reported once, as soon as it overflows,
//! and the rest of it is discarded up to the next delimiter.

use crate::error::FrameError;
use crate::frame::{decode_frame, MAX_FRAME_LEN};
use crate::message::Message;

/// Stream decoder for the link's framing.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: [u8; MAX_FRAME_LEN],
    len: usize,
    /// Inside an over-long run: discard until the next delimiter.
    skipping: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub const fn new() -> Self {
        Decoder {
            buf: [0; MAX_FRAME_LEN],
            len: 0,
            skipping: false,
        }
    }

    /// Feeds one byte. `None`: need more bytes. `Some(Ok)`: a message. `Some(Err)`: a frame was dropped.
    pub fn push(&mut self, byte: u8) -> Option<Result<Message, FrameError>> {
        if byte == 0 {
            let len = core::mem::take(&mut self.len);
            if core::mem::take(&mut self.skipping) || len == 0 {
                // The end of a run already reported as oversize, or an empty frame (idle fill).
                return None;
            }
            return Some(decode_frame(&mut self.buf[..len]));
        }
        if self.skipping {
            return None;
        }
        if self.len == MAX_FRAME_LEN {
            self.skipping = true;
            self.len = 0;
            return Some(Err(FrameError::Oversize));
        }
        self.buf[self.len] = byte;
        self.len += 1;
        None
    }

    /// Feeds a chunk of bytes; the iterator yields each finished frame's result in order.
    pub fn feed<'d, 'b>(&'d mut self, bytes: &'b [u8]) -> Feed<'d, 'b> {
        Feed {
            decoder: self,
            bytes: bytes.iter(),
        }
    }

    /// True when the decoder holds part of a frame.
    pub fn is_mid_frame(&self) -> bool {
        self.len > 0 || self.skipping
    }
}

/// Iterator returned by [`Decoder::feed`].
pub struct Feed<'d, 'b> {
    decoder: &'d mut Decoder,
    bytes: core::slice::Iter<'b, u8>,
}

impl Iterator for Feed<'_, '_> {
    type Item = Result<Message, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        for &b in self.bytes.by_ref() {
            if let Some(r) = self.decoder.push(b) {
                return Some(r);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::frame::{encode, MAX_WIRE_LEN};
    use crate::message::*;
    use std::vec::Vec;

    fn wire(m: &Message) -> Vec<u8> {
        let mut out = [0u8; MAX_WIRE_LEN];
        let n = encode(m, &mut out).unwrap();
        out[..n].to_vec()
    }

    #[test]
    fn bytes_one_at_a_time_need_more_until_the_delimiter() {
        let m = Message::Heartbeat(Heartbeat { seq: 9 });
        let w = wire(&m);
        let mut d = Decoder::new();
        for &b in &w[..w.len() - 1] {
            assert_eq!(d.push(b), None);
        }
        assert!(d.is_mid_frame());
        assert_eq!(d.push(0), Some(Ok(m)));
        assert!(!d.is_mid_frame());
    }

    #[test]
    fn a_truncated_frame_is_corrupt_and_the_next_one_survives() {
        let a = wire(&Message::Trigger(Trigger { seq: 1 }));
        let b = Message::Heartbeat(Heartbeat { seq: 2 });
        let mut stream = a[..a.len() - 3].to_vec(); // cut short, no closing delimiter
        stream.extend(wire(&b)); // whose leading 0x00 ends the cut frame
        let got: Vec<_> = Decoder::new().feed(&stream).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_err(), "{:?}", got[0]);
        assert_eq!(got[1], Ok(b));
    }

    #[test]
    fn an_oversize_run_is_reported_once_then_skipped() {
        let m = Message::Status(Status::Scanning);
        let mut stream = std::vec![0x55u8; MAX_FRAME_LEN * 3];
        stream.extend(wire(&m));
        let got: Vec<_> = Decoder::new().feed(&stream).collect();
        assert_eq!(got, std::vec![Err(FrameError::Oversize), Ok(m)]);
    }
}
