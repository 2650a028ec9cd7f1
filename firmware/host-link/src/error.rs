//! Errors the link client reports to its caller.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The message cannot be put on the wire (a field out of range).
    #[error("message cannot be sent: {0}")]
    Encode(#[from] hallmark_link::EncodeError),
    /// The client's thread has stopped (it was dropped, or it panicked).
    #[error("the link client has stopped")]
    Stopped,
    /// Nothing arrived within the wait.
    #[error("no link event within the wait")]
    Timeout,
    /// The serial device could not be opened.
    #[error("cannot open serial port {path}: {source}")]
    Open {
        path: PathBuf,
        source: serialport::Error,
    },
}
