//! `hallmark fleet status`: the fleet as its retained topics tell it. Reads only the broker from the
//! configuration.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::publish::operator_tls;
use crate::config::Operator;
use crate::fleet;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Each device: online, the revision active per brand, the last update state and its cause, and
    /// whether it is BEHIND the release meant for it.
    Status {
        /// The MQTT broker (default: mqtt.host:mqtt.port); TLS from mqtt.ca, mqtt.cert, mqtt.key.
        #[arg(long, value_name = "HOST:PORT")]
        broker: Option<String>,
        /// Topic prefix (default: mqtt.prefix).
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// How long to collect the retained messages, in milliseconds.
        #[arg(long, default_value_t = 1500, value_name = "MS")]
        wait_ms: u64,
        /// Print the view as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: FleetCommand, operator: &Operator) -> anyhow::Result<ExitCode> {
    let FleetCommand::Status {
        broker,
        prefix,
        wait_ms,
        json,
    } = command;
    let broker =
        broker.unwrap_or_else(|| format!("{}:{}", operator.broker.host, operator.broker.port));
    let (host, port) = fleet::parse_broker(&broker).map_err(anyhow::Error::msg)?;
    let prefix = prefix.unwrap_or_else(|| operator.broker.prefix.clone());
    let messages = fleet::publish::collect(
        &host,
        port,
        &fleet::status::filters(&prefix),
        Duration::from_millis(wait_ms),
        Duration::from_secs(10),
        &operator_tls(operator, port)?,
        fleet::status::MAX_PAYLOAD,
    )?;
    let view = fleet::status::build(&prefix, &messages);
    for skipped in &view.skipped {
        eprintln!("hallmark: fleet status: {skipped}");
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&view)?)?;
    } else {
        write!(out, "{}", fleet::status::table(&view))?;
    }
    Ok(ExitCode::SUCCESS)
}
