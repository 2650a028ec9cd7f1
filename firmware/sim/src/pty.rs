//! A pseudo-terminal pair that stands in for the USB serial cable.
//!
//! The simulator keeps the master side; the agent opens the slave's path (e.g. `/dev/pts/7`) exactly as
//! it would open `/dev/ttyACM0`.
//!
//! Design: the simulator keeps its own handle on the slave open for its whole life. Without it, reads
//! on the master fail with EIO whenever no agent has the port open, and the link thread would have to
//! tell "nobody there yet" from a real failure. The slave is put in raw mode at once, so nothing the
//! simulator writes is echoed or translated before an agent sets its own mode.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::Context;
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use nix::unistd::ttyname;

/// An open pseudo-terminal pair.
pub struct Pty {
    /// The simulator's end.
    pub master: File,
    /// Where the agent connects.
    pub path: PathBuf,
    _slave: OwnedFd,
}

impl Pty {
    pub fn open() -> anyhow::Result<Pty> {
        let pair = openpty(None, None).context("openpty")?;
        let mut t = tcgetattr(&pair.slave).context("tcgetattr on the pty slave")?;
        cfmakeraw(&mut t);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &t).context("raw mode on the pty slave")?;
        let path = ttyname(&pair.slave).context("name of the pty slave")?;
        Ok(Pty {
            master: File::from(pair.master),
            path,
            _slave: pair.slave,
        })
    }
}
