//! Which verdict a broker acknowledgement is for — the pure core of delivery.
//!
//! rumqttc hands out packet ids itself and `publish()` does not return one: the only link between a
//! request and its id is the event loop's `Outgoing::Publish(pkid)` event, yielded once per request in
//! request order. So each request made on a connection is remembered here in order; an `Outgoing`
//! event takes the oldest and learns its packet id; a `PubAck` then names the verdict.
//!
//! Guarantee: a verdict is reported acknowledged only for a `PubAck` of a packet id that was learned
//! for it on the same connection. Anything unexpected (an event with no request, a kind mismatch, a
//! packet-id collision) is a [`Desync`]: the caller drops the connection, calls [`Outbox::reset`],
//! and re-sends everything still spooled — a duplicate on the wire is possible, a loss is not.

use std::collections::{HashMap, VecDeque};

/// A request made to the MQTT client, in the order it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A spooled verdict (QoS 1), by spool sequence number.
    Verdict(u64),
    /// A retained status (QoS 1): `online`, or a model update's status.
    Status,
    /// Telemetry (QoS 0: no packet id, no acknowledgement).
    Telemetry,
    Subscribe,
}

/// The event loop and the requests disagree: the connection must be reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desync(pub String);

#[derive(Debug)]
pub struct Outbox {
    /// Requests made whose `Outgoing` event has not been seen yet.
    requested: VecDeque<Request>,
    /// Packet id → the QoS 1 publish waiting for its `PubAck`.
    awaiting: HashMap<u16, Request>,
    /// The newest verdict requested on this connection (the next ones come after it).
    last_verdict: Option<u64>,
    /// Verdicts requested and not yet acknowledged, at most.
    window: usize,
}

impl Outbox {
    pub fn new(window: usize) -> Outbox {
        Outbox {
            requested: VecDeque::new(),
            awaiting: HashMap::new(),
            last_verdict: None,
            window: window.max(1),
        }
    }

    /// A new connection (or a lost one): nothing in flight, everything spooled is to be sent again.
    pub fn reset(&mut self) {
        self.requested.clear();
        self.awaiting.clear();
        self.last_verdict = None;
    }

    /// The newest verdict already requested on this connection.
    pub fn last_verdict(&self) -> Option<u64> {
        self.last_verdict
    }

    /// How many more verdicts may be requested now.
    pub fn room(&self) -> usize {
        let verdicts = |r: &Request| matches!(r, Request::Verdict(_));
        let open = self.requested.iter().filter(|r| verdicts(r)).count()
            + self.awaiting.values().filter(|r| verdicts(r)).count();
        self.window.saturating_sub(open)
    }

    /// A retained status is requested and not yet acknowledged.
    pub fn awaits_status(&self) -> bool {
        self.requested.contains(&Request::Status)
            || self.awaiting.values().any(|r| *r == Request::Status)
    }

    /// Records a request just handed to the client.
    pub fn requested(&mut self, r: Request) {
        if let Request::Verdict(seq) = r {
            self.last_verdict = Some(seq);
        }
        self.requested.push_back(r);
    }

    /// `Outgoing::Publish(pkid)`: the oldest request went out with this packet id.
    pub fn on_publish(&mut self, pkid: u16) -> Result<(), Desync> {
        let r = self.requested.pop_front().ok_or_else(|| {
            Desync(format!(
                "a publish (packet id {pkid}) that was not requested"
            ))
        })?;
        match r {
            Request::Telemetry if pkid == 0 => Ok(()),
            Request::Verdict(_) | Request::Status if pkid != 0 => {
                if let Some(old) = self.awaiting.insert(pkid, r) {
                    return Err(Desync(format!(
                        "packet id {pkid} reused while {old:?} was unacknowledged"
                    )));
                }
                Ok(())
            }
            other => Err(Desync(format!(
                "expected {other:?} to go out, saw a publish with packet id {pkid}"
            ))),
        }
    }

    /// `Outgoing::Subscribe`.
    pub fn on_subscribe(&mut self) -> Result<(), Desync> {
        match self.requested.pop_front() {
            Some(Request::Subscribe) => Ok(()),
            other => Err(Desync(format!(
                "expected {other:?} to go out, saw a subscribe"
            ))),
        }
    }

    /// `PubAck(pkid)`: the acknowledged request, if it was one of ours.
    pub fn on_puback(&mut self, pkid: u16) -> Option<Request> {
        self.awaiting.remove(&pkid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_name_the_verdict_they_are_for() {
        let mut o = Outbox::new(3);
        o.requested(Request::Status);
        o.requested(Request::Subscribe);
        o.requested(Request::Verdict(7));
        o.requested(Request::Telemetry);
        o.requested(Request::Verdict(8));
        assert_eq!(o.room(), 1);
        assert_eq!(o.last_verdict(), Some(8));
        o.on_publish(1).unwrap();
        o.on_subscribe().unwrap();
        o.on_publish(2).unwrap();
        o.on_publish(0).unwrap();
        o.on_publish(3).unwrap();
        // Out of order acknowledgements are fine; each names its own verdict.
        assert_eq!(o.on_puback(3), Some(Request::Verdict(8)));
        assert_eq!(o.on_puback(1), Some(Request::Status));
        assert_eq!(o.on_puback(2), Some(Request::Verdict(7)));
        assert_eq!(o.on_puback(2), None, "a second ack of one id names nothing");
        assert_eq!(o.room(), 3);
    }

    #[test]
    fn anything_unexpected_is_a_desync_not_a_guess() {
        let mut o = Outbox::new(4);
        assert!(o.on_publish(1).is_err(), "an event with no request");
        o.requested(Request::Verdict(1));
        assert!(o.on_publish(0).is_err(), "a verdict cannot go out at QoS 0");
        o.reset();
        o.requested(Request::Verdict(1));
        o.requested(Request::Verdict(2));
        o.on_publish(5).unwrap();
        assert!(
            o.on_publish(5).is_err(),
            "a packet id in use cannot name a second verdict"
        );
        o.reset();
        o.requested(Request::Verdict(3));
        assert!(o.on_subscribe().is_err());
        o.reset();
        assert_eq!(
            (o.room(), o.last_verdict(), o.on_puback(5)),
            (4, None, None)
        );
    }
}
