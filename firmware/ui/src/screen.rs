//! The screens, as data. The controller decides which one is up; [`render`](crate::render) draws it.
//!
//! Keeping the screen a value (not drawing calls) means the controller's decisions are testable by
//! comparing values, and a redraw happens only when the value changes.

use hallmark_link::{Confidence, Text, Verdict, BRAND_LEN, DETAIL_LEN, PRODUCT_LEN};

/// One item's verdict as the screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictView {
    pub item_id: u32,
    pub verdict: Verdict,
    pub brand: Text<BRAND_LEN>,
    pub product: Text<PRODUCT_LEN>,
    pub confidence: Confidence,
    /// The agent went silent while this verdict was up (only ever set on a counterfeit, which the
    /// controller keeps on screen through a link drop): the screen carries a "link lost" marker.
    pub link_lost: bool,
}

/// Everything the panel can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Ready: "Scan an item".
    Idle,
    /// The agent is looking at an item.
    Scanning,
    /// The outcome for one item.
    Verdict(VerdictView),
    /// A new detection model is being installed; progress in percent (0..=100).
    Updating {
        brand: Text<BRAND_LEN>,
        progress: u8,
    },
    /// The agent reported a fault.
    AgentError { detail: Text<DETAIL_LEN> },
    /// No word from the agent within the heartbeat timeout (also the screen at power-on).
    Offline,
}

impl Screen {
    /// A short stable name, for logs and the simulator's state file.
    pub fn name(&self) -> &'static str {
        match self {
            Screen::Idle => "idle",
            Screen::Scanning => "scanning",
            Screen::Verdict(v) => match v.verdict {
                Verdict::Genuine => "genuine",
                Verdict::Counterfeit if v.link_lost => "counterfeit_link_lost",
                Verdict::Counterfeit => "counterfeit",
                Verdict::Inconclusive => "inconclusive",
                Verdict::NoProduct => "no_product",
            },
            Screen::Updating { .. } => "updating",
            Screen::AgentError { .. } => "agent_error",
            Screen::Offline => "offline",
        }
    }
}
