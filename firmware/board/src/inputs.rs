//! The controller task's in-tray: messages from the link task and presses from the button task meet
//! in one channel, so the controller handles one input at a time, in arrival order.

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use hallmark_link::Message;

/// Something for the controller.
pub enum Input {
    Message(Message),
    Button,
}

/// Depth of the in-tray. Design: a full tray makes the link task wait (back-pressure into the UART's
/// receive buffer) rather than dropping a message such as a reject.
pub const DEPTH: usize = 4;

/// The in-tray.
pub type Inputs = Channel<CriticalSectionRawMutex, Input, DEPTH>;
