//! Receiving side of the link on the board: UART bytes → [`Decoder`] → the controller's in-tray.
//!
//! Damaged frames are counted and otherwise skipped; the decoder resynchronises on the next delimiter,
//! so line noise never stops the kiosk.

use core::sync::atomic::{AtomicU32, Ordering};

use embedded_io_async::Read;
use hallmark_link::Decoder;

use crate::inputs::{Input, Inputs};

/// Reads `rx` forever, forwarding each valid message. Returns only if the UART reports an error that
/// reading again cannot clear (it never does on this board: overrun/framing errors are reported once
/// and reading continues).
/// Damaged frames skipped since power-on (read it with a debugger).
pub static DROPPED_FRAMES: AtomicU32 = AtomicU32::new(0);

pub async fn run<R: Read>(mut rx: R, inputs: &Inputs) {
    let mut decoder = Decoder::new();
    let mut buf = [0u8; 64];
    loop {
        let n = match rx.read(&mut buf).await {
            Ok(n) => n,
            // Overrun, framing or noise error: the bytes are gone; the decoder will see a damaged
            // frame and resynchronise.
            Err(_) => continue,
        };
        for byte in &buf[..n] {
            match decoder.push(*byte) {
                None => {}
                Some(Ok(msg)) => inputs.send(Input::Message(msg)).await,
                Some(Err(_)) => {
                    DROPPED_FRAMES.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
