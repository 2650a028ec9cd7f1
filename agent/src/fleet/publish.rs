//! One-shot MQTT: publish one retained message and wait for its PUBACK, or collect what a broker
//! holds (retained) on some topic filters for a while. Plain TCP, or TLS (mutual with a client
//! certificate) from the same `mqtt.ca`/`cert`/`key` settings the agent uses; a clean session,
//! bounded waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{Client, Connection, Event, Incoming, MqttOptions, QoS, TlsConfiguration, Transport};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PublishError {
    #[error("MQTT broker {broker}: {message}")]
    Connection { broker: String, message: String },
    #[error("MQTT broker {broker}: no acknowledgement for {topic} within {waited:?}")]
    Timeout {
        broker: String,
        topic: String,
        waited: Duration,
    },
    #[error("MQTT broker {broker}: {what} refused: {message}")]
    Refused {
        broker: String,
        what: &'static str,
        message: String,
    },
}

/// One message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    /// Empty when the message was larger than [`collect`]'s `max_payload` (see `oversize`).
    pub payload: Vec<u8>,
    pub retain: bool,
    /// The size of a payload too large to keep, which was dropped on arrival.
    pub oversize: Option<usize>,
}

/// The largest packet MQTT can carry (a remaining length of 268,435,455 bytes, plus the fixed header).
/// Design: the one-shot reader takes whatever the broker delivers, so that one device's oversized
/// retained message is read past (and reported) instead of ending the connection with it, and with it
/// the whole fleet's view; [`collect`] keeps only what is small enough to be a real message.
const MQTT_MAX_PACKET: usize = 268_435_455 + 5;

/// TLS for the one-shot connections (`None`: plain TCP).
pub type Tls = Option<Arc<rustls::ClientConfig>>;

fn client(host: &str, port: u16, role: &str, tls: &Tls, incoming: usize) -> (Client, Connection) {
    let id = format!("hallmark-{role}-{}", uuid::Uuid::now_v7().simple());
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_clean_session(true)
        .set_keep_alive(Duration::from_secs(10))
        .set_max_packet_size(incoming, 1 << 20);
    if let Some(config) = tls {
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            config.clone(),
        )));
    }
    Client::new(opts, 16)
}

/// Publishes `payload` on `topic` at QoS 1 with `retain`, and returns once the broker has
/// acknowledged it (PUBACK), or fails after `timeout`.
pub fn publish(
    host: &str,
    port: u16,
    topic: &str,
    payload: &[u8],
    retain: bool,
    timeout: Duration,
    tls: &Tls,
) -> Result<(), PublishError> {
    let broker = format!("{host}:{port}");
    let (client, mut connection) = client(host, port, "publish", tls, 1 << 20);
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
        .map_err(|e| PublishError::Connection {
            broker: broker.clone(),
            message: e.to_string(),
        })?;
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PublishError::Timeout {
                broker,
                topic: topic.to_string(),
                waited: timeout,
            });
        }
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Incoming::ConnAck(ack)))) => {
                if ack.code != rumqttc::ConnectReturnCode::Success {
                    return Err(PublishError::Refused {
                        broker,
                        what: "connection",
                        message: format!("{:?}", ack.code),
                    });
                }
            }
            Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => break,
            Ok(Ok(_)) => {}
            // Design: a one-shot command fails on the first connection error instead of retrying:
            // the operator sees the cause at once and runs it again.
            Ok(Err(e)) => {
                return Err(PublishError::Connection {
                    broker,
                    message: e.to_string(),
                })
            }
            Err(_) => {}
        }
    }
    let _ = client.disconnect();
    // Let the DISCONNECT go out (bounded); the message is already acknowledged.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        match connection.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))) | Ok(Err(_)) => break,
            _ => {}
        }
    }
    Ok(())
}

/// Subscribes to `filters` (QoS 1) and returns every non-empty message received within `wait`
/// after the subscription is acknowledged (retained ones arrive first), in arrival order. A payload
/// over `max_payload` bytes is dropped on arrival and comes back as its topic and size
/// ([`Received::oversize`]): one oversized message never ends the collection.
pub fn collect(
    host: &str,
    port: u16,
    filters: &[String],
    wait: Duration,
    connect_timeout: Duration,
    tls: &Tls,
    max_payload: usize,
) -> Result<Vec<Received>, PublishError> {
    let broker = format!("{host}:{port}");
    let (client, mut connection) = client(host, port, "status", tls, MQTT_MAX_PACKET);
    for f in filters {
        client
            .subscribe(f.clone(), QoS::AtLeastOnce)
            .map_err(|e| PublishError::Connection {
                broker: broker.clone(),
                message: e.to_string(),
            })?;
    }
    let mut got = Vec::new();
    let mut acked = 0;
    let started = Instant::now();
    let mut until = started + connect_timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Incoming::ConnAck(ack))))
                if ack.code != rumqttc::ConnectReturnCode::Success =>
            {
                return Err(PublishError::Refused {
                    broker,
                    what: "connection",
                    message: format!("{:?}", ack.code),
                });
            }
            Ok(Ok(Event::Incoming(Incoming::SubAck(ack)))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    return Err(PublishError::Refused {
                        broker,
                        what: "subscription",
                        message: format!("{filters:?}"),
                    });
                }
                acked += 1;
                if acked == filters.len() {
                    // From here on, the collection window.
                    until = Instant::now() + wait;
                }
            }
            Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => {
                let len = p.payload.len();
                if len > max_payload {
                    got.push(Received {
                        topic: p.topic.clone(),
                        payload: Vec::new(),
                        retain: p.retain,
                        oversize: Some(len),
                    });
                } else if len > 0 {
                    got.push(Received {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                        oversize: None,
                    });
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(PublishError::Connection {
                    broker,
                    message: e.to_string(),
                })
            }
            Err(_) => {}
        }
    }
    if acked < filters.len() {
        return Err(PublishError::Timeout {
            broker,
            topic: filters.join(", "),
            waited: connect_timeout,
        });
    }
    let _ = client.disconnect();
    Ok(got)
}
