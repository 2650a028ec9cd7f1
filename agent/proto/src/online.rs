//! The retained `online` status on `{prefix}/things/{thing}/online`, also the connection's last will:
//! `{"online": bool, "version", "models": {brand: revision}}`, and `"providers": {brand: provider}`
//! once the execution provider of each brand's model is known.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Online {
    pub online: bool,
    /// The agent's version. A reader takes a status without it.
    #[serde(default)]
    pub version: Option<String>,
    /// The active revision of each brand served.
    #[serde(default)]
    pub models: BTreeMap<String, u64>,
    /// The execution provider each brand's model runs on (absent until known).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, String>,
}

impl Online {
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of plain fields always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(payload: &[u8]) -> Result<Online, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_online_status_names_the_providers_only_once_known_and_reads_back() {
        let mut o = Online {
            online: true,
            version: Some("0.1.0".into()),
            models: BTreeMap::from([("northwind".to_string(), 7)]),
            providers: BTreeMap::new(),
        };
        let v: serde_json::Value = serde_json::from_slice(&o.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"online": true, "version": "0.1.0", "models": {"northwind": 7}})
        );
        assert_eq!(Online::parse(&o.to_json()).unwrap(), o);
        o.providers.insert("northwind".into(), "cpu".into());
        let v: serde_json::Value = serde_json::from_slice(&o.to_json()).unwrap();
        assert_eq!(v["providers"]["northwind"], "cpu");
        assert_eq!(Online::parse(&o.to_json()).unwrap(), o);
        let bare = Online::parse(br#"{"online": false}"#).unwrap();
        assert_eq!(
            (bare.online, bare.version, bare.models.len()),
            (false, None, 0)
        );
    }
}
