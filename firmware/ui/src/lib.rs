//! What the person at the kiosk sees, and the small brain that decides it.
//!
//! - [`screen`] — the screens as plain data ([`Screen`]): idle, scanning, a verdict, model updating,
//!   agent error, agent offline.
//! - [`render`] — draws a [`Screen`] onto any RGB565 `DrawTarget` (the ST7789 panel on the board, a
//!   framebuffer in the simulator and the golden tests). Layout for a 320×240 landscape panel.
//! - [`theme`], [`text`], [`icons`] — colours and fonts, fitting text to a width (ellipsis), and the
//!   check / cross / question marks.
//! - [`band`] — a `DrawTarget` over a slice of rows, so the board can render a full screen through a
//!   small RAM buffer, band by band (the simulator uses one band as tall as the screen), and
//!   [`BandPainter`], which does it one band per call so the board's executor runs between bands.
//! - [`controller`] — the controller state machine: link messages, button presses and time in; screen,
//!   actuator commands and link messages out. No I/O, so it is tested here on the host.
//! - [`gate`] — the conveyor's reject gate: packs queued by the belt count at which they reach the gate,
//!   fired when they do, pending ones handled fail-safe.
//!
//! `no_std`, no allocator.
#![no_std]
#![forbid(unsafe_code)]

pub mod band;
pub mod controller;
pub mod gate;
pub mod icons;
pub mod render;
pub mod screen;
pub mod text;
pub mod theme;

pub use band::{Band, BandPainter, BandTarget};
pub use controller::{Actuator, Config, Controller, CountSource, Effects, GateConfig, SEND_MAX};
pub use gate::{Gate, GateStats};
pub use render::{draw, HEIGHT, WIDTH};
pub use screen::{Screen, VerdictView};
