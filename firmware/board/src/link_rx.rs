//! Receiving side of the link on the board: UART bytes → [`Decoder`] → the controller's in-tray.
//!
//! Damaged frames are counted and otherwise skipped; the decoder resynchronises on the next delimiter,
//! so line noise never stops the kiosk. Failed reads are counted too, and each one pauses as
//! [`ReadPacer`] says (a yield, then growing sleeps), so a stream of UART errors cannot starve the
//! other tasks on the executor.

use core::sync::atomic::{AtomicU32, Ordering};

use embassy_time::Timer;
use embedded_io_async::Read;
use hallmark_link::{Decoder, Pause, ReadPacer};

use crate::inputs::{Input, Inputs};

/// Damaged frames skipped since power-on (read it with a debugger).
pub static DROPPED_FRAMES: AtomicU32 = AtomicU32::new(0);
/// Reads that failed (noise, framing, overrun) or brought no bytes since power-on.
pub static READ_ERRORS: AtomicU32 = AtomicU32::new(0);

/// Reads `rx` forever, forwarding each valid message.
///
/// Design: `BufferedUartRx` (embassy-stm32 0.6) drops bad bytes in its interrupt and never returns
/// an error, but any `Read` may — a DMA ring buffer reports an overrun on every read until it is
/// drained — and a read that fails at once completes without ever returning to the executor. So
/// every failed read pauses before the next one, through the same policy the tests check.
pub async fn run<R: Read>(mut rx: R, inputs: &Inputs) {
    let mut decoder = Decoder::new();
    let mut pacer = ReadPacer::new();
    let mut buf = [0u8; 64];
    loop {
        let n = match rx.read(&mut buf).await {
            Ok(n) if n > 0 => {
                pacer.on_data();
                n
            }
            // An error (the bytes are gone; the decoder will see a damaged frame and resynchronise)
            // or an empty read: pause before trying again.
            _ => {
                READ_ERRORS.fetch_add(1, Ordering::Relaxed);
                match pacer.on_error() {
                    Pause::Yield => embassy_futures::yield_now().await,
                    Pause::Sleep { ms } => Timer::after_millis(u64::from(ms)).await,
                }
                continue;
            }
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
