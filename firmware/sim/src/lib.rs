//! The Hallmark controller, simulated on a PC.
//!
//! It runs the very controller state machine and screens the board runs ([`hallmark_ui`]), speaks the
//! real link ([`hallmark_link`]) and shows the panel as a PNG file, so the agent can be developed and
//! tested end to end without the hardware.
//!
//! - [`pty`] — a pseudo-terminal pair: the agent opens its slave side like a USB serial port.
//! - [`framebuffer`] — the 320×240 panel in memory, saved as PNG.
//! - [`sim`] — the loop: link bytes, console commands (`press`, `quit`) and time in; controller
//!   effects out (screen → PNG, actuator → log, messages → link). Every event is one line on stderr.

pub mod framebuffer;
pub mod pty;
pub mod sim;

pub use sim::{run, Belt, LinkMode, SimOptions};
