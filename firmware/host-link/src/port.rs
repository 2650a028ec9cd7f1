//! Opening the serial device that leads to the controller.
//!
//! `serialport` puts the line in raw 8N1 mode, which also works on a pseudo-terminal (the simulator's
//! link). The read timeout is short so the client's loop can interleave reads with queued writes and
//! heartbeats without a second thread.

use std::path::Path;
use std::time::Duration;

use serialport::SerialPort;

use crate::error::LinkError;

/// How long one read waits for bytes before the loop turns to its other duties.
pub const READ_TIMEOUT: Duration = Duration::from_millis(20);

/// Opens `path` at `baud`, raw, with the loop's read timeout.
pub fn open(path: &Path, baud: u32) -> Result<Box<dyn SerialPort>, LinkError> {
    serialport::new(path.to_string_lossy(), baud)
        .timeout(READ_TIMEOUT)
        .open()
        .map_err(|source| LinkError::Open {
            path: path.to_path_buf(),
            source,
        })
}
