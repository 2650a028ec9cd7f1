//! Commands from the fleet (`{prefix}/things/{thing}/commands`): parsed strictly, rejected with a
//! reason and counted, never trusted.

use serde::{Deserialize, Serialize};

/// Larger payloads are rejected unread (a command is a few bytes).
pub const MAX_COMMAND_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start a kiosk scan (as the controller's button does).
    Scan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    TooLarge(usize),
    Malformed(String),
    Unknown(String),
}

impl Rejected {
    /// The `outcome` label of the commands metric.
    pub fn outcome(&self) -> &'static str {
        match self {
            Rejected::TooLarge(_) => "too_large",
            Rejected::Malformed(_) => "malformed",
            Rejected::Unknown(_) => "unknown",
        }
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::TooLarge(n) => write!(f, "command of {n} bytes (limit {MAX_COMMAND_BYTES})"),
            Rejected::Malformed(why) => write!(f, "malformed command: {why}"),
            Rejected::Unknown(c) => write!(f, "unknown command {c:?}"),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    command: String,
}

impl Command {
    /// The command's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Scan => "scan",
        }
    }

    /// The payload that asks for this command (what an operator's tool sends).
    pub fn to_json(self) -> Vec<u8> {
        // A struct of plain fields always serialises.
        serde_json::to_vec(&Wire {
            command: self.as_str().to_string(),
        })
        .unwrap_or_default()
    }
}

pub fn parse(payload: &[u8]) -> Result<Command, Rejected> {
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(Rejected::TooLarge(payload.len()));
    }
    let wire: Wire =
        serde_json::from_slice(payload).map_err(|e| Rejected::Malformed(e.to_string()))?;
    match wire.command.as_str() {
        c if c == Command::Scan.as_str() => Ok(Command::Scan),
        other => Err(Rejected::Unknown(other.chars().take(64).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_known_commands_pass() {
        assert_eq!(parse(br#"{"command":"scan"}"#), Ok(Command::Scan));
        assert_eq!(
            parse(br#"{"command":"reboot"}"#),
            Err(Rejected::Unknown("reboot".into()))
        );
        for bad in [
            &b"scan"[..],
            b"",
            b"{}",
            br#"{"command":1}"#,
            br#"{"command":"scan","x":1}"#,
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse(bad).map_err(|e| e.outcome()),
                Err("malformed"),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse(&Command::Scan.to_json()),
            Ok(Command::Scan),
            "a round trip"
        );
        let big = vec![b' '; 1 << 20];
        assert_eq!(parse(&big), Err(Rejected::TooLarge(1 << 20)));
    }
}
