//! A device's model-update status, retained on `{prefix}/things/{thing}/models/{brand}/status`:
//! `{"revision", "state", "detail", "progress"}`. The agent's updater writes it at every step;
//! `hallmark fleet status` reads it back.

use serde::{Deserialize, Serialize};

/// A brand's update state, as the status topic spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    Downloading,
    Verifying,
    /// TensorRT is building (or loading) the model's engine: minutes on a first build on a Jetson. The
    /// model is not `active` before its engine exists, so its first verdict is never that late.
    BuildingEngine,
    Active,
    /// A transient failure (network, server, disk): retried, then left here with its cause.
    Failed,
    /// The bundle itself is bad (digest, signature, size, self-test): that sha256 is never retried.
    Rejected,
    /// The revision was activated and then failed at run time; the previous one serves again.
    RolledBack,
}

impl UpdateState {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Downloading => "downloading",
            UpdateState::Verifying => "verifying",
            UpdateState::BuildingEngine => "building_engine",
            UpdateState::Active => "active",
            UpdateState::Failed => "failed",
            UpdateState::Rejected => "rejected",
            UpdateState::RolledBack => "rolled_back",
        }
    }

    /// Downloading, verifying and building the engine are the only states in which work is under way.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            UpdateState::Downloading | UpdateState::Verifying | UpdateState::BuildingEngine
        )
    }
}

/// The retained status payload. A reader takes a status without `revision` or `detail` (they read as
/// 0 and empty: no release has revision 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatus {
    #[serde(default)]
    pub revision: u64,
    pub state: UpdateState,
    #[serde(default)]
    pub detail: String,
    /// 0.0..=1.0 while downloading, else `None` (`null`).
    #[serde(default)]
    pub progress: Option<f64>,
}

impl ModelStatus {
    /// The payload; a progress outside 0..=1 is clamped, one that is not a number is `null`.
    pub fn to_json(&self) -> Vec<u8> {
        let progress = self
            .progress
            .filter(|p| p.is_finite())
            .map(|p| p.clamp(0.0, 1.0));
        let status = ModelStatus {
            progress,
            ..self.clone()
        };
        // A struct of plain fields always serialises.
        serde_json::to_vec(&status).unwrap_or_default()
    }

    /// Reads a payload.
    pub fn parse(payload: &[u8]) -> Result<ModelStatus, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json() {
        use UpdateState as State;
        #[rustfmt::skip]
        let cases = [
            (State::Downloading, Some(0.25), r#"{"revision":4,"state":"downloading","detail":"d","progress":0.25}"#),
            (State::Downloading, Some(1.5), r#"{"revision":4,"state":"downloading","detail":"d","progress":1.0}"#),
            (State::Downloading, Some(f64::NAN), r#"{"revision":4,"state":"downloading","detail":"d","progress":null}"#),
            (State::Verifying, None, r#"{"revision":4,"state":"verifying","detail":"d","progress":null}"#),
            (State::BuildingEngine, None, r#"{"revision":4,"state":"building_engine","detail":"d","progress":null}"#),
            (State::Active, None, r#"{"revision":4,"state":"active","detail":"d","progress":null}"#),
            (State::Failed, None, r#"{"revision":4,"state":"failed","detail":"d","progress":null}"#),
            (State::Rejected, None, r#"{"revision":4,"state":"rejected","detail":"d","progress":null}"#),
            (State::RolledBack, None, r#"{"revision":4,"state":"rolled_back","detail":"d","progress":null}"#),
        ];
        for (state, progress, want) in cases {
            let s = ModelStatus {
                revision: 4,
                state,
                detail: "d".into(),
                progress,
            };
            let written = s.to_json();
            assert_eq!(String::from_utf8(written.clone()).unwrap(), want);
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            let back = ModelStatus::parse(&written).unwrap();
            assert_eq!(
                (back.revision, back.state, back.detail.as_str()),
                (4, state, "d"),
                "a round trip"
            );
        }
        assert!(!State::Active.in_progress() && State::Verifying.in_progress());
    }

    #[test]
    fn a_status_without_revision_or_detail_reads() {
        let s = ModelStatus::parse(br#"{"state":"downloading","progress":0.5}"#).unwrap();
        assert_eq!(
            (s.revision, s.detail.as_str(), s.progress),
            (0, "", Some(0.5))
        );
        assert!(ModelStatus::parse(br#"{"state":"sleeping"}"#).is_err());
    }
}
