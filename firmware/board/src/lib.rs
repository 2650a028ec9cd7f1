//! Board support for the Hallmark kiosk controller on an STM32F411 "black pill".
//!
//! Wiring (also in `firmware/README.md`):
//!
//! | what | pins |
//! |---|---|
//! | link to the agent, USART1 115200 8N1 (USB-serial adapter) | PA9 TX, PA10 RX |
//! | ST7789 320×240 panel, SPI1 | PA5 SCK, PA7 MOSI, PA4 CS, PB0 DC, PB1 RST, PB10 backlight |
//! | kiosk button to GND (internal pull-up; the board's KEY button) | PA0 |
//! | reject relay driver, active high | PB12 |
//!
//! All decisions live in the host-tested crates (`hallmark-link`, `hallmark-ui`); this crate only
//! moves bytes and pixels between them and the pins:
//! - [`inputs`] — the two things that wake the controller: link messages and button presses.
//! - [`link_rx`] — bytes from the UART through the decoder into [`inputs`].
//! - [`clocks`] — 25 MHz crystal → 96 MHz system clock.
//! - [`panic`] — on a panic: relay off at the register level, then reset.
#![no_std]

pub mod clocks;
pub mod inputs;
pub mod link_rx;
pub mod panic;

/// Rows in the display band buffer: 320 × 24 × 2 bytes = 15 KiB of RAM instead of a 150 KiB frame.
pub const BAND_ROWS: usize = 24;
