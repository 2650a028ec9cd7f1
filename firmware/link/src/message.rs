//! What the agent and the controller say to each other.
//!
//! Every message is a variant of [`Message`]; both directions share the one enum so a single decoder
//! serves both ends. Texts are bounded (`heapless::String`) so a message always fits a fixed-size frame
//! buffer on the microcontroller. Numbers that a screen shows are integers with a stated range
//! (confidence in per mille, progress in percent), checked by [`Message::validate`] after decoding.
//!
//! Design: the serde layout *is* the wire format (postcard). Append new variants at the end of an enum
//! and new messages as new variants; changing or reordering existing fields needs a new
//! [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).

use serde::{Deserialize, Serialize};

/// Longest brand name carried, in bytes.
pub const BRAND_LEN: usize = 24;
/// Longest product name carried, in bytes (the screen shortens it further with an ellipsis).
pub const PRODUCT_LEN: usize = 48;
/// Longest free-text detail (agent error message), in bytes.
pub const DETAIL_LEN: usize = 48;
/// Longest software version string in a hello, in bytes.
pub const VERSION_LEN: usize = 16;

/// A bounded UTF-8 string as carried on the link.
pub type Text<const N: usize> = heapless::String<N>;

/// One message on the link, in either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First word after (re)connecting, both ways: who is speaking and which versions.
    Hello(Hello),
    /// Agent → controller: show this item's verdict.
    ShowVerdict(ShowVerdict),
    /// Agent → controller: what the agent is doing now.
    Status(Status),
    /// Agent → controller: pulse the reject actuator for this item.
    Reject(Reject),
    /// Controller → agent: the button was pressed (scan now).
    Trigger(Trigger),
    /// Both ways, periodically: "I am still here".
    Heartbeat(Heartbeat),
    /// Controller → agent (conveyor): the belt's position now, in encoder counts (or, on a line
    /// without an encoder, the controller's milliseconds at a fixed belt speed), every few tens of
    /// milliseconds, so the agent can tell where on the belt each frame was taken.
    BeltCount(BeltCount),
    /// Agent → controller (conveyor): a pack entered the view and reaches the reject gate at
    /// `arrives_at`; until its [`GateDecision`] comes it is pending, and a pending pack at the gate is
    /// handled fail-safe (`on_late`). Sent again with the same `item_id` to refine the estimate.
    GateEntry(GateEntry),
    /// Agent → controller (conveyor): the verdict's consequence for a pack the gate is waiting for.
    GateDecision(GateDecision),
    /// Controller → agent (conveyor): what the gate did with a pack, and at which count.
    GateReport(GateReport),
    /// Agent → controller (conveyor): the belt that reaches the gate up to count `through` has been
    /// inspected (sent with each judged frame). Belt past it reaches the gate uninspected — the agent
    /// stalled, the camera stopped, the line was cut — and the gate diverts everything on it.
    Inspected(Inspected),
}

/// Which end of the link is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Agent,
    Controller,
}

/// Version handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub role: Role,
    /// The sender's link protocol version (also carried in every frame header).
    pub protocol: u8,
    /// The sender's software version, e.g. `"0.1.0"`.
    pub software: Text<VERSION_LEN>,
}

/// The four outcomes of a scan, as in the shared conventions. The agent uses this one type everywhere
/// (JSON, MQTT, the link).
///
/// Design: postcard encodes a variant by its index, so the snake_case names (what self-describing
/// formats such as JSON see) do not change the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Genuine,
    Counterfeit,
    Inconclusive,
    NoProduct,
}

impl Verdict {
    /// The name used everywhere else in Hallmark (JSON, MQTT): `genuine`, `counterfeit`,
    /// `inconclusive`, `no_product`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Genuine => "genuine",
            Verdict::Counterfeit => "counterfeit",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NoProduct => "no_product",
        }
    }
}

/// A verdict name that is not one of the four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownVerdict;

impl core::fmt::Display for UnknownVerdict {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("unknown verdict (expected genuine, counterfeit, inconclusive or no_product)")
    }
}

impl core::error::Error for UnknownVerdict {}

impl core::str::FromStr for Verdict {
    type Err = UnknownVerdict;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "genuine" => Ok(Verdict::Genuine),
            "counterfeit" => Ok(Verdict::Counterfeit),
            "inconclusive" => Ok(Verdict::Inconclusive),
            "no_product" => Ok(Verdict::NoProduct),
            _ => Err(UnknownVerdict),
        }
    }
}

/// A confidence in per mille (0..=1000), so the wire never carries NaN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Confidence(pub u16);

impl Confidence {
    pub const MAX: u16 = 1000;

    /// From a probability in `0.0..=1.0`; out-of-range and NaN values are clamped (NaN → 0).
    pub fn from_unit(p: f32) -> Self {
        if p.is_nan() || p <= 0.0 {
            Confidence(0)
        } else if p >= 1.0 {
            Confidence(Self::MAX)
        } else {
            // Design: p in (0, 1) so the product is in (0, 1000.5) and the cast cannot overflow.
            Confidence((p * 1000.0 + 0.5) as u16)
        }
    }

    /// Whole percent, rounded down (what the screen shows).
    pub fn percent(self) -> u16 {
        self.0 / 10
    }
}

/// A percentage, 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Progress(pub u8);

/// Show one item's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowVerdict {
    /// The agent's per-item counter; a later [`Reject`] names the same id.
    pub item_id: u32,
    pub verdict: Verdict,
    pub brand: Text<BRAND_LEN>,
    pub product: Text<PRODUCT_LEN>,
    pub confidence: Confidence,
}

impl ShowVerdict {
    /// From the agent's own values: names too long for the link are cut (the screen then shows them
    /// with an ellipsis), the confidence is clamped into 0..=1 (NaN → 0).
    pub fn new(
        item_id: u32,
        verdict: Verdict,
        brand: &str,
        product: &str,
        confidence: f32,
    ) -> Self {
        ShowVerdict {
            item_id,
            verdict,
            brand: text_truncated(brand),
            product: text_truncated(product),
            confidence: Confidence::from_unit(confidence),
        }
    }
}

/// What the agent is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Idle,
    Scanning,
    ModelUpdating {
        brand: Text<BRAND_LEN>,
        progress: Progress,
    },
    AgentError {
        detail: Text<DETAIL_LEN>,
    },
}

/// Pulse the reject actuator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub item_id: u32,
    /// How long to hold the actuator on, in milliseconds.
    pub pulse_ms: u16,
}

/// The kiosk button was pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Counts presses since the controller started, so the agent can spot lost ones.
    pub seq: u32,
}

/// Liveness, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub seq: u32,
}

/// The belt's position (see [`Message::BeltCount`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeltCount {
    pub seq: u32,
    pub count: u64,
}

/// See [`Message::Inspected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspected {
    pub through: u64,
}

/// What the gate does with a pack whose decision has not come when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnLate {
    /// Divert it (the default): an unchecked pack never passes.
    Reject,
    Pass,
}

/// A pack the gate must expect (see [`Message::GateEntry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateEntry {
    pub item_id: u32,
    /// The count at which the pack's leading edge reaches the gate.
    pub arrives_at: u64,
    /// How long to hold the actuator on for it, in milliseconds.
    pub pulse_ms: u16,
    pub on_late: OnLate,
}

/// The decision for a pack (see [`Message::GateDecision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateDecision {
    pub item_id: u32,
    pub reject: bool,
}

/// What the gate did (see [`Message::GateReport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GateOutcome {
    /// Decided reject in time: the actuator fired.
    Rejected,
    /// Decided pass in time.
    Passed,
    /// No decision when it arrived: fired fail-safe (`on_late = reject`).
    LateRejected,
    /// No decision when it arrived, let through (`on_late = pass`).
    LatePassed,
    /// The entry did not fit the gate's queue; the gate diverts everything until it has room.
    Refused,
    /// A decision for a pack the gate does not know (already gone by, or sent before a reboot).
    Unknown,
}

/// See [`Message::GateReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateReport {
    pub item_id: u32,
    pub outcome: GateOutcome,
    /// The belt count when it happened.
    pub count: u64,
}

impl Message {
    /// Checks the ranges that the types alone do not: confidence ≤ 1000 ‰, progress ≤ 100 %.
    pub fn validate(&self) -> Result<(), &'static str> {
        match self {
            Message::ShowVerdict(v) if v.confidence.0 > Confidence::MAX => {
                Err("confidence above 1000 per mille")
            }
            Message::Status(Status::ModelUpdating { progress, .. }) if progress.0 > 100 => {
                Err("progress above 100 percent")
            }
            _ => Ok(()),
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::ShowVerdict(_) => "show_verdict",
            Message::Status(_) => "status",
            Message::Reject(_) => "reject",
            Message::Trigger(_) => "trigger",
            Message::Heartbeat(_) => "heartbeat",
            Message::BeltCount(_) => "belt_count",
            Message::GateEntry(_) => "gate_entry",
            Message::GateDecision(_) => "gate_decision",
            Message::GateReport(_) => "gate_report",
            Message::Inspected(_) => "inspected",
        }
    }
}

/// Copies `s` into a bounded text, cutting at a character boundary when it is too long.
///
/// The sender side uses this so that an over-long product name still reaches the screen (which
/// shortens it again, visibly, with an ellipsis) instead of failing the whole message.
pub fn text_truncated<const N: usize>(s: &str) -> Text<N> {
    let mut cut = s.len().min(N);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut t = Text::new();
    // Design: `cut <= N` bytes on a char boundary, so the push cannot fail.
    let _ = t.push_str(&s[..cut]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_from_unit_clamps_and_rounds() {
        assert_eq!(Confidence::from_unit(f32::NAN), Confidence(0));
        assert_eq!(Confidence::from_unit(-0.5), Confidence(0));
        assert_eq!(Confidence::from_unit(0.9874), Confidence(987));
        assert_eq!(Confidence::from_unit(0.9876), Confidence(988));
        assert_eq!(Confidence::from_unit(7.0), Confidence(1000));
        assert_eq!(Confidence(987).percent(), 98);
    }

    #[test]
    fn text_truncated_cuts_on_a_char_boundary() {
        let t: Text<5> = text_truncated("héllo wörld");
        assert_eq!(t.as_str(), "héll"); // 'é' is two bytes: h(1) é(2) l(1) l(1) = 5
        let t: Text<4> = text_truncated("héllo");
        assert_eq!(t.as_str(), "hél");
        let t: Text<2> = text_truncated("hé");
        assert_eq!(t.as_str(), "h");
    }

    #[test]
    fn verdict_names_match_the_rest_of_hallmark() {
        for v in [
            Verdict::Genuine,
            Verdict::Counterfeit,
            Verdict::Inconclusive,
            Verdict::NoProduct,
        ] {
            assert_eq!(v.as_str().parse::<Verdict>(), Ok(v));
        }
        assert_eq!("fake".parse::<Verdict>(), Err(UnknownVerdict));
        assert_eq!("Genuine".parse::<Verdict>(), Err(UnknownVerdict));
    }

    #[test]
    fn show_verdict_new_fits_anything_the_agent_has() {
        let long = "x".repeat(200);
        let v = ShowVerdict::new(3, Verdict::Genuine, &long, "Montre Élégante", 1.7);
        assert_eq!(v.brand.len(), BRAND_LEN);
        assert_eq!(v.product.as_str(), "Montre Élégante");
        assert_eq!(v.confidence, Confidence(1000));
        assert!(Message::ShowVerdict(v).validate().is_ok());
    }

    #[test]
    fn validate_rejects_out_of_range_numbers() {
        let mut v = ShowVerdict {
            item_id: 1,
            verdict: Verdict::Genuine,
            brand: text_truncated("Acme"),
            product: text_truncated("Widget"),
            confidence: Confidence(1000),
        };
        assert!(Message::ShowVerdict(v.clone()).validate().is_ok());
        v.confidence = Confidence(1001);
        assert!(Message::ShowVerdict(v).validate().is_err());
        let s = Status::ModelUpdating {
            brand: text_truncated("Acme"),
            progress: Progress(101),
        };
        assert!(Message::Status(s).validate().is_err());
    }
}
