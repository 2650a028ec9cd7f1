//! The agent's end of the kiosk link.
//!
//! - [`client`] — [`LinkClient`]: a background thread that owns the serial port, says hello, sends
//!   heartbeats and queued messages, decodes what the controller says into [`Event`]s, and reopens the
//!   port when it disappears (USB cable pulled, controller reset).
//! - `backoff` — the reconnect delay: doubling while attempts fail, reset only by a connection on
//!   which the controller spoke.
//! - [`port`] — opening a serial device (or a pseudo-terminal) in raw mode.
//! - [`error`] — what the caller can get wrong.
//!
//! The codec itself is [`hallmark_link`], re-exported as [`link`], shared with the firmware.

mod backoff;
pub mod client;
pub mod error;
pub mod port;

pub use client::{Event, LinkClient, Options};
pub use error::LinkError;
pub use hallmark_link as link;
