//! The broker connection (rumqttc), on its own thread with a single-threaded tokio runtime.
//!
//! Three loops share one task, so they interleave only at `.await` points and share plain state:
//! - events: drives rumqttc's event loop — connects, matches acknowledgements ([`Outbox`]), removes
//!   acknowledged verdicts from the spool, takes commands, and on any error forgets everything in
//!   flight (rumqttc's own replay queue included), waits a capped, jittered backoff and reconnects;
//! - pump: on each connect and each new verdict, publishes from the spool in order, a window at a
//!   time;
//! - telemetry: every `mqtt.telemetry_interval_s` while connected.
//!
//! The session is persistent (`clean_session = false`, a stable client id), so the broker queues
//! commands while the device is away; verdicts never rely on it — the spool is the truth, and
//! everything unacknowledged is sent again after a reconnect (a duplicate is possible, a loss is not).
//!
//! Hostile or broken input never costs the connection: every packet up to `mqtt.max_incoming_mib`
//! (the broker's own limit) is read whole, so a message too large for its topic (a release over
//! [`MAX_RELEASE`], a command over its limit) is acknowledged, refused and counted instead of being
//! delivered again after every reconnect. A packet over even that limit ends the connection; the
//! backoff then keeps growing (it resets only after a connection stayed up [`STABLE`]), and after
//! [`OVERSIZED_IN_A_ROW`] such ends the agent connects with a clean session and no subscriptions for
//! [`INBOUND_PAUSE`]: verdicts keep flowing while commands and releases wait.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS,
    TlsConfiguration, Transport,
};

use super::outbox::{Outbox, Request};
use super::tls::{self, TlsFiles};
use super::{DeliveryError, Shared, Topics};
use super::{MqttConfig, Settings};
use crate::observe::Stage;
use hallmark_core::backoff::Backoff;
use hallmark_proto::command::{self, Command};

/// Largest release message taken (a release is a few hundred bytes): larger ones are refused and
/// counted, never queued.
pub const MAX_RELEASE: usize = 64 << 10;
/// A connection that stayed up this long resets the reconnect backoff.
pub const STABLE: Duration = Duration::from_secs(30);
/// Connections ended in a row by a packet over `mqtt.max_incoming_mib` before inbound is paused.
pub const OVERSIZED_IN_A_ROW: u32 = 3;
/// How long inbound (subscriptions, the persistent session) stays paused after that.
pub const INBOUND_PAUSE: Duration = Duration::from_secs(600);
/// How long shutdown waits for `online: false` to be acknowledged and for the disconnect to go out.
const GOODBYE_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct Connection {
    options: MqttOptions,
    settings: MqttConfig,
    topics: Topics,
    shared: Arc<Shared>,
    triggers: Sender<()>,
    /// Model releases go here (none: the agent takes no updates).
    releases: Option<Arc<crate::update::Inbox>>,
}

/// What the three loops share (one task: a `RefCell` is enough; never held across `.await`).
struct State {
    outbox: Outbox,
    connected: bool,
    /// Shutdown said goodbye: no more verdicts go out on this connection.
    goodbye: bool,
    /// The disconnect went out (shutdown).
    disconnected: bool,
    backoff: Backoff,
    /// When the current connection came up.
    connected_at: Option<Instant>,
    /// Connections ended in a row by a packet over the incoming limit.
    oversized: u32,
    /// Until when connections carry no subscriptions and a clean session.
    inbound_paused_until: Option<Instant>,
    /// The pause is over: the next connect asks for the persistent session again.
    restore_session: bool,
}

impl Connection {
    pub fn new(
        settings: &Settings,
        models: BTreeMap<String, u64>,
        shared: Arc<Shared>,
        triggers: Sender<()>,
        releases: Option<Arc<crate::update::Inbox>>,
    ) -> Result<Connection, DeliveryError> {
        let m = &settings.mqtt;
        if m.host.trim().is_empty() {
            return Err(DeliveryError::Setup("mqtt.host is empty".into()));
        }
        let topics = Topics::new(&m.prefix, &settings.thing);
        let mut options = MqttOptions::new(m.client_id.clone(), m.host.clone(), m.port);
        options
            .set_clean_session(false)
            .set_keep_alive(m.keep_alive)
            .set_inflight(m.max_inflight.saturating_add(8))
            .set_request_channel_capacity(usize::from(m.max_inflight) + 16)
            .set_max_packet_size(m.max_incoming_bytes, 1 << 20)
            .set_last_will(LastWill::new(
                topics.online.clone(),
                online_payload(false, &models, &BTreeMap::new()),
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(ca) = &m.ca {
            let files = TlsFiles {
                ca,
                client: m.cert.as_deref().zip(m.key.as_deref()),
                alpn_443: m.port == 443,
            };
            let config = tls::client_config(&files)?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
        } else if m.cert.is_some() {
            return Err(DeliveryError::Setup(
                "mqtt.cert is set but mqtt.ca is not: mutual TLS needs the CA that signed the broker's certificate".into(),
            ));
        }
        Ok(Connection {
            options,
            settings: m.clone(),
            topics,
            shared,
            triggers,
            releases,
        })
    }

    /// Runs until shutdown has said goodbye (or could not).
    pub fn run(self) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the MQTT runtime; verdicts stay in the spool");
                return;
            }
        };
        rt.block_on(self.serve());
    }

    async fn serve(self) {
        let cap = usize::from(self.settings.max_inflight) + 16;
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), cap);
        // Design: without TCP_NODELAY a publish written while the previous one is unacknowledged
        // waits for the broker's delayed ACK (Nagle): ~40 ms added to every other verdict.
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let state = RefCell::new(State {
            outbox: Outbox::new(usize::from(self.settings.max_inflight)),
            connected: false,
            goodbye: false,
            disconnected: false,
            backoff: Backoff::new(Duration::from_millis(500), self.settings.backoff_max),
            connected_at: None,
            oversized: 0,
            inbound_paused_until: None,
            restore_session: false,
        });
        tracing::info!(
            broker = %format!("{}:{}", self.settings.host, self.settings.port),
            client_id = %self.options.client_id(),
            tls = self.settings.ca.is_some(),
            "mqtt: connecting"
        );
        tokio::select! {
            _ = self.events(&mut eventloop, &client, &state) => {}
            _ = self.pump(&client, &state) => {}
            _ = self.telemetry(&client, &state) => {}
            _ = self.respool() => {}
            _ = self.resume_inbound(&client, &state) => {}
            _ = self.closing(&client, &state) => {}
        }
    }

    async fn events(
        &self,
        eventloop: &mut EventLoop,
        client: &AsyncClient,
        state: &RefCell<State>,
    ) {
        let broker = format!("{}:{}", self.settings.host, self.settings.port);
        loop {
            let event = eventloop.poll().await;
            let desync = match event {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    let attempts = {
                        let mut s = state.borrow_mut();
                        s.connected = true;
                        s.connected_at = Some(Instant::now());
                        s.outbox.reset();
                        // Design: the backoff resets only once this connection has proved itself
                        // (`lost`): a connection the broker ends at once (a message it delivers again
                        // on every connect) must not reconnect at the shortest delay forever.
                        s.backoff.attempt()
                    };
                    tracing::info!(%broker, session_present = ack.session_present, after_failures = attempts, "mqtt: connected");
                    self.shared.observer.mqtt_connected(true);
                    self.on_connected(client, state);
                    None
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    state.borrow_mut().outbox.on_publish(pkid).err()
                }
                Ok(Event::Outgoing(Outgoing::Subscribe(_))) => {
                    state.borrow_mut().outbox.on_subscribe().err()
                }
                Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => Some(super::outbox::Desync(
                    format!("packet id {pkid} collided with an unacknowledged publish"),
                )),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    state.borrow_mut().disconnected = true;
                    None
                }
                Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                    let acked = state.borrow_mut().outbox.on_puback(ack.pkid);
                    if let Some(Request::Verdict(seq)) = acked {
                        self.acknowledged(seq);
                    }
                    None
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    if p.topic == self.topics.commands {
                        self.command(&p.payload);
                    } else if let Some(releases) = self
                        .releases
                        .as_ref()
                        .filter(|_| self.is_release_topic(&p.topic))
                    {
                        if p.payload.len() > MAX_RELEASE {
                            self.shared.observer.mqtt_refused("too_large");
                            tracing::warn!(topic = %p.topic, bytes = p.payload.len(), limit = MAX_RELEASE, "mqtt: release message too large; refused");
                        } else {
                            releases.put(p.topic.clone(), p.payload.to_vec());
                        }
                    } else {
                        tracing::debug!(topic = %p.topic, "mqtt: message on a topic not ours; ignored");
                    }
                    None
                }
                Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        tracing::warn!(topic = %self.topics.commands, "mqtt: the broker refused the command subscription (check its policy)");
                    }
                    None
                }
                Ok(_) => None,
                Err(e) => {
                    self.lost(eventloop, state, &broker, &e).await;
                    continue;
                }
            };
            if let Some(d) = desync {
                tracing::error!(reason = %d.0, "mqtt: acknowledgements no longer match requests; reconnecting and sending the spool again");
                eventloop.clean();
                let e = ConnectionError::Io(std::io::Error::other("reset after a desync"));
                self.lost(eventloop, state, &broker, &e).await;
            }
        }
    }

    /// The connection ended: forget what was in flight, back off, and let `poll` reconnect.
    async fn lost(
        &self,
        eventloop: &mut EventLoop,
        state: &RefCell<State>,
        broker: &str,
        e: &ConnectionError,
    ) {
        // Design: rumqttc keeps unacknowledged publishes and queued requests to replay on the next
        // connection, and events it queued before the failure (an `Outgoing::Publish` whose write
        // then failed, acknowledgements read before the socket closed) would be yielded after the
        // next ConnAck. Dropping both keeps every request-to-event pairing on one connection; the
        // spool re-sends all of it.
        eventloop.pending.clear();
        eventloop.state.events.clear();
        if state.borrow().goodbye {
            // Our own disconnect at shutdown: the broker closing the socket is the expected end.
            state.borrow_mut().connected = false;
            self.shared.observer.mqtt_connected(false);
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        let oversized = is_oversized(e);
        let (was_connected, delay, attempt, pause) = {
            let mut s = state.borrow_mut();
            let was = s.connected;
            s.connected = false;
            s.outbox.reset();
            if s.connected_at
                .take()
                .is_some_and(|at| at.elapsed() >= STABLE)
            {
                s.backoff.reset();
            }
            s.oversized = if oversized { s.oversized + 1 } else { 0 };
            let pause = s.oversized >= OVERSIZED_IN_A_ROW && s.inbound_paused_until.is_none();
            if pause {
                s.inbound_paused_until = Some(Instant::now() + INBOUND_PAUSE);
            }
            if std::mem::take(&mut s.restore_session) && !pause {
                eventloop.mqtt_options.set_clean_session(false);
            }
            let attempt = s.backoff.attempt();
            (was, s.backoff.next(rand::random::<f64>()), attempt, pause)
        };
        if oversized {
            self.shared.observer.mqtt_refused("oversized_packet");
        }
        if pause {
            // Design: a clean session drops what the broker queued for this client, and no
            // subscription means no retained release arrives: verdicts go out meanwhile.
            eventloop.mqtt_options.set_clean_session(true);
            self.shared.observer.mqtt_inbound_paused(true);
            tracing::error!(limit_bytes = self.settings.max_incoming_bytes, pause_s = INBOUND_PAUSE.as_secs(), "mqtt: the broker keeps sending a packet over mqtt.max_incoming_mib; connecting without subscriptions for a while, so verdicts still go out (raise mqtt.max_incoming_mib to the broker's limit)");
        }
        if was_connected {
            self.shared.observer.mqtt_connected(false);
            self.shared.observer.mqtt_reconnect();
        }
        if self.shared.closing.load(Ordering::SeqCst) && !was_connected {
            // Shutting down with no broker: nothing to wait for (`closing` ends the task).
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        let message = explain(e, self.settings.cert.is_some());
        // Design: every failure of a long outage would flood the log; the first few and then each
        // power of two are enough to see it.
        if was_connected || attempt < 3 || attempt.is_power_of_two() {
            tracing::warn!(%broker, error = %message, retry_in_ms = delay.as_millis() as u64, attempt, "mqtt: connection lost or refused; verdicts wait in the spool");
        }
        tokio::time::sleep(delay).await;
    }

    /// Just connected: the retained statuses (`online` first), the subscriptions (unless inbound is
    /// paused), then the spool.
    fn on_connected(&self, client: &AsyncClient, state: &RefCell<State>) {
        if let Ok(mut r) = self.shared.retained.lock() {
            r.mark_all();
        }
        let paused = state
            .borrow()
            .inbound_paused_until
            .is_some_and(|until| Instant::now() < until);
        if !paused {
            self.subscribe(client, state);
        }
        self.shared.wake.notify_one();
    }

    /// Subscribes to the commands and, when updates are on, the release topics.
    fn subscribe(&self, client: &AsyncClient, state: &RefCell<State>) {
        let mut s = state.borrow_mut();
        let mut topics = vec![self.topics.commands.clone()];
        if self.releases.is_some() {
            topics.push(self.topics.fleet_releases.clone());
            topics.push(self.topics.device_releases.clone());
        }
        for t in topics {
            if client.try_subscribe(&t, QoS::AtLeastOnce).is_ok() {
                s.outbox.requested(Request::Subscribe);
            }
        }
    }

    /// Ends a pause of inbound once it is over: the subscriptions now if connected, and a persistent
    /// session again from the next connect.
    async fn resume_inbound(&self, client: &AsyncClient, state: &RefCell<State>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let over = {
                let s = state.borrow();
                s.inbound_paused_until
                    .is_some_and(|until| Instant::now() >= until)
            };
            if over {
                {
                    let mut s = state.borrow_mut();
                    s.inbound_paused_until = None;
                    s.restore_session = true;
                }
                self.shared.observer.mqtt_inbound_paused(false);
                tracing::info!("mqtt: inbound pause over; subscribing again");
                if state.borrow().connected {
                    self.subscribe(client, state);
                }
            }
        }
    }

    /// `{prefix}/fleet/models/{brand}` or `{prefix}/things/{thing}/models/{brand}` (not `…/status`).
    fn is_release_topic(&self, topic: &str) -> bool {
        [&self.topics.fleet_releases, &self.topics.device_releases]
            .iter()
            .any(|pattern| {
                let stem = pattern.trim_end_matches('+');
                topic
                    .strip_prefix(stem)
                    .is_some_and(|brand| !brand.is_empty() && !brand.contains('/'))
            })
    }

    /// Publishes the retained statuses that are due.
    fn request_statuses(&self, client: &AsyncClient, state: &RefCell<State>) {
        let due = match self.shared.retained.lock() {
            Ok(mut r) => r.take_due(),
            Err(_) => return,
        };
        let mut s = state.borrow_mut();
        for (topic, payload) in due {
            if client
                .try_publish(&topic, QoS::AtLeastOnce, true, payload.clone())
                .is_ok()
            {
                s.outbox.requested(Request::Status);
            } else if let Ok(mut r) = self.shared.retained.lock() {
                // The request channel is full: keep it due (unless a newer one came meanwhile).
                r.latest.entry(topic).or_insert((payload, true)).1 = true;
            }
        }
    }

    fn acknowledged(&self, seq: u64) {
        if let Err(e) = self.shared.spool.remove(&[seq]) {
            // The verdict stays spooled and is sent again: a duplicate, not a loss.
            tracing::error!(error = %e, seq, "cannot remove an acknowledged verdict from the spool");
        }
        let spooled = self
            .shared
            .spooled_at
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&seq));
        if let Some(at) = spooled {
            self.shared.observer.stage(Stage::Publish, at.elapsed());
        }
        self.shared.observer.published();
        self.shared.report_level();
        self.shared.wake.notify_one();
    }

    fn command(&self, payload: &[u8]) {
        match command::parse(payload) {
            Ok(Command::Scan) => {
                self.shared.observer.command("accepted");
                tracing::info!("mqtt: scan command");
                let _ = self.triggers.send(());
            }
            Err(rejected) => {
                self.shared.observer.command(rejected.outcome());
                tracing::warn!(reason = %rejected, "mqtt: command rejected");
            }
        }
    }

    /// Publishes spooled verdicts in order while connected and the window has room.
    async fn pump(&self, client: &AsyncClient, state: &RefCell<State>) {
        loop {
            self.shared.wake.notified().await;
            loop {
                let (room, after) = {
                    let s = state.borrow();
                    if !s.connected || s.goodbye {
                        break;
                    }
                    (s.outbox.room(), s.outbox.last_verdict())
                };
                self.request_statuses(client, state);
                if room == 0 {
                    break;
                }
                let batch = match self.shared.spool.after(after, room) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the verdict spool");
                        break;
                    }
                };
                if batch.is_empty() {
                    break;
                }
                self.request_verdicts(client, state, batch);
                // Let the event loop take what was queued before reading the spool again.
                tokio::task::yield_now().await;
            }
        }
    }

    fn request_verdicts(
        &self,
        client: &AsyncClient,
        state: &RefCell<State>,
        batch: Vec<(u64, Vec<u8>)>,
    ) {
        let mut s = state.borrow_mut();
        for (seq, payload) in batch {
            if client
                .try_publish(&self.topics.verdicts, QoS::AtLeastOnce, false, payload)
                .is_err()
            {
                // The request channel is full: the next acknowledgement wakes us again.
                break;
            }
            s.outbox.requested(Request::Verdict(seq));
        }
    }

    /// While the spool cannot write, tries again every [`super::spool::REOPEN_EVERY`] to append the
    /// verdicts waiting in memory (connected or not).
    async fn respool(&self) {
        let mut tick = tokio::time::interval(super::spool::REOPEN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.shared.respool();
        }
    }

    async fn telemetry(&self, client: &AsyncClient, state: &RefCell<State>) {
        let period = self.settings.telemetry_interval;
        if period.is_zero() {
            return std::future::pending().await;
        }
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !state.borrow().connected {
                continue;
            }
            let mut telemetry = self.shared.observer.snapshot();
            telemetry.ts = Some(hallmark_core::clock::rfc3339_utc(
                std::time::SystemTime::now(),
            ));
            let bytes = telemetry.to_json();
            if client
                .try_publish(&self.topics.telemetry, QoS::AtMostOnce, false, bytes)
                .is_ok()
            {
                state.borrow_mut().outbox.requested(Request::Telemetry);
            }
        }
    }

    /// Waits for shutdown, then: drain the spool while connected (bounded), `online: false`,
    /// disconnect. Returning ends the task.
    async fn closing(&self, client: &AsyncClient, state: &RefCell<State>) {
        while !self.shared.closing.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = Instant::now() + self.settings.drain_timeout;
        while state.borrow().connected
            && self.shared.spool.level().depth > 0
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = self.shared.spool.level().depth;
        if !state.borrow().connected {
            tracing::info!(
                spooled = left,
                "mqtt: shutting down while disconnected; the spool is sent on the next start"
            );
            return;
        }
        if left > 0 {
            tracing::warn!(
                spooled = left,
                "mqtt: shutdown drain timed out; the rest is sent on the next start"
            );
        }
        state.borrow_mut().goodbye = true;
        self.shared.set_online(false);
        self.request_statuses(client, state);
        let sent = state.borrow().outbox.awaits_status();
        let until = Instant::now() + GOODBYE_WAIT;
        // Wait for `online: false` to be acknowledged (retained on the broker), then disconnect.
        while sent
            && state.borrow().connected
            && state.borrow().outbox.awaits_status()
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = client.try_disconnect();
        while !state.borrow().disconnected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!("mqtt: disconnected");
    }
}

/// The retained status (`hallmark_proto::online`), with this agent's version; `providers` (brand → the
/// execution provider its model really runs on) once any is known.
pub fn online_payload(
    online: bool,
    models: &BTreeMap<String, u64>,
    providers: &BTreeMap<String, String>,
) -> Vec<u8> {
    hallmark_proto::Online {
        online,
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        models: models.clone(),
        providers: providers.clone(),
    }
    .to_json()
}

/// A connection ended by a packet larger than `mqtt.max_incoming_mib`.
fn is_oversized(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::MqttState(rumqttc::StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(_)
        ))
    )
}

/// A connection error in words an operator can act on.
fn explain(e: &ConnectionError, client_cert: bool) -> String {
    let text = e.to_string();
    let hint = if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        Some("the broker's certificate is not signed by mqtt.ca (or names another host)")
    } else if text.contains("alert") && client_cert {
        Some("the broker refused the TLS handshake: is the client certificate (mqtt.cert) issued by a CA the broker trusts?")
    } else if text.contains("alert") || text.contains("CertificateRequired") {
        Some("the broker refused the TLS handshake: does it require a client certificate (mqtt.cert, mqtt.key)?")
    } else if matches!(e, ConnectionError::ConnectionRefused(_)) {
        Some("the broker refused the client (credentials, client id or policy)")
    } else {
        None
    };
    match hint {
        Some(h) => format!("{text} — {h}"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_online_status_names_the_providers_only_once_known() {
        let models = BTreeMap::from([("northwind".to_string(), 7)]);
        let v: serde_json::Value =
            serde_json::from_slice(&online_payload(true, &models, &BTreeMap::new())).unwrap();
        assert_eq!(v["models"]["northwind"], 7);
        assert!(v.get("providers").is_none(), "{v}");
        let providers = BTreeMap::from([("northwind".to_string(), "cpu".to_string())]);
        let v: serde_json::Value =
            serde_json::from_slice(&online_payload(true, &models, &providers)).unwrap();
        assert_eq!(v["providers"]["northwind"], "cpu");
        assert_eq!(v["online"], true);
    }
}
