//! Which release wins for a brand: the latest fleet and device release per brand, as the retained
//! topics say (the release message itself and the topic layout are `hallmark_proto`'s). The device
//! topic wins over the fleet topic.

use std::collections::BTreeMap;

pub use hallmark_proto::release::{parse, redact_url, Release, ReleaseError};
pub use hallmark_proto::topics::{release_brand as topic_brand, Scope};

/// What changed for a brand after a message on a release topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub scope: Scope,
    pub brand: String,
    /// `false` when the message cleared that scope's release (an empty retained payload).
    pub set: bool,
}

/// The latest fleet and device release per brand, as the retained topics say.
#[derive(Debug, Clone, Default)]
pub struct Releases {
    fleet: BTreeMap<String, Release>,
    device: BTreeMap<String, Release>,
}

impl Releases {
    pub fn new() -> Releases {
        Releases::default()
    }

    /// Sets (or with `None` clears) the release of one scope for one brand.
    pub fn set(&mut self, scope: Scope, brand: &str, release: Option<Release>) {
        let map = match scope {
            Scope::Fleet => &mut self.fleet,
            Scope::Device => &mut self.device,
        };
        match release {
            Some(r) => {
                map.insert(brand.to_owned(), r);
            }
            None => {
                map.remove(brand);
            }
        }
    }

    /// The release that applies to `brand`: the device's when there is one, else the fleet's.
    pub fn effective(&self, brand: &str) -> Option<&Release> {
        self.device.get(brand).or_else(|| self.fleet.get(brand))
    }

    /// The release of one scope, whether or not it is the effective one.
    pub fn get(&self, scope: Scope, brand: &str) -> Option<&Release> {
        match scope {
            Scope::Fleet => self.fleet.get(brand),
            Scope::Device => self.device.get(brand),
        }
    }

    /// Every brand with a release in either scope, sorted.
    pub fn brands(&self) -> Vec<&str> {
        let mut brands: Vec<&str> = self
            .fleet
            .keys()
            .chain(self.device.keys())
            .map(String::as_str)
            .collect();
        brands.sort_unstable();
        brands.dedup();
        brands
    }

    /// Applies one MQTT message: `None` when the topic is not a release topic of this device;
    /// otherwise what changed, or why the payload was refused (the previous release of that scope
    /// then stays, so a bad publish does not undo a good one).
    pub fn on_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        prefix: &str,
        thing: &str,
        max_size: u64,
    ) -> Option<Result<Change, ReleaseError>> {
        let (scope, brand) = topic_brand(topic, prefix, thing)?;
        if payload.is_empty() {
            // An empty retained message is how MQTT deletes a retained release.
            self.set(scope, &brand, None);
            return Some(Ok(Change {
                scope,
                brand,
                set: false,
            }));
        }
        let release = match parse(payload, max_size) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        if release.brand != brand {
            return Some(Err(ReleaseError::BrandMismatch {
                topic: brand,
                payload: release.brand,
            }));
        }
        self.set(scope, &brand, Some(release));
        Some(Ok(Change {
            scope,
            brand,
            set: true,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const LIMIT: u64 = 268_435_456;

    fn payload(extra: &str) -> String {
        format!(
            r#"{{"schema":"hallmark.release/1","brand":"northwind","revision":3,"url":"https://cdn.example.com/northwind-3.tar","sha256":"{SHA}","size":1000{extra}}}"#
        )
    }

    fn release(brand: &str, revision: u64) -> Release {
        Release {
            brand: brand.into(),
            revision,
            url: "http://h/x.tar".into(),
            sha256: SHA.into(),
            size: 10,
            rollback: false,
            statement: None,
        }
    }

    #[test]
    fn the_device_release_wins_and_an_empty_payload_clears() {
        let mut r = Releases::new();
        assert_eq!(r.effective("a"), None);
        r.set(Scope::Fleet, "a", Some(release("a", 2)));
        assert_eq!(r.effective("a").map(|r| r.revision), Some(2));
        r.set(Scope::Device, "a", Some(release("a", 3)));
        assert_eq!(r.effective("a").map(|r| r.revision), Some(3));
        // A newer fleet release does not override the canary: the device topic wins while it is set.
        r.set(Scope::Fleet, "a", Some(release("a", 4)));
        assert_eq!(r.effective("a").map(|r| r.revision), Some(3));
        r.set(Scope::Device, "a", None);
        assert_eq!(r.effective("a").map(|r| r.revision), Some(4));
        r.set(Scope::Fleet, "b", Some(release("b", 1)));
        assert_eq!(r.brands(), vec!["a", "b"]);
        assert_eq!(r.effective("b").map(|r| r.revision), Some(1));
    }

    #[test]
    fn on_message() {
        let mut r = Releases::new();
        let body = payload("");
        assert_eq!(
            r.on_message("hallmark/things/k/online", b"{}", "hallmark", "k", LIMIT),
            None
        );
        let change = r.on_message(
            "hallmark/fleet/models/northwind",
            body.as_bytes(),
            "hallmark",
            "k",
            LIMIT,
        );
        assert_eq!(
            change,
            Some(Ok(Change {
                scope: Scope::Fleet,
                brand: "northwind".into(),
                set: true
            }))
        );
        // A release whose brand differs from its topic's is refused; the previous one stays.
        let other = body.replace("\"northwind\"", "\"acme\"");
        let err = r.on_message(
            "hallmark/fleet/models/northwind",
            other.as_bytes(),
            "hallmark",
            "k",
            LIMIT,
        );
        assert!(
            matches!(err, Some(Err(ReleaseError::BrandMismatch { .. }))),
            "{err:?}"
        );
        let err = r.on_message(
            "hallmark/fleet/models/northwind",
            b"{",
            "hallmark",
            "k",
            LIMIT,
        );
        assert!(matches!(err, Some(Err(ReleaseError::Json(_)))));
        assert_eq!(r.effective("northwind").map(|r| r.revision), Some(3));
        let change = r.on_message(
            "hallmark/things/k/models/northwind",
            b"",
            "hallmark",
            "k",
            LIMIT,
        );
        assert_eq!(
            change,
            Some(Ok(Change {
                scope: Scope::Device,
                brand: "northwind".into(),
                set: false
            }))
        );
        let change = r.on_message(
            "hallmark/fleet/models/northwind",
            b"",
            "hallmark",
            "k",
            LIMIT,
        );
        assert_eq!(
            change,
            Some(Ok(Change {
                scope: Scope::Fleet,
                brand: "northwind".into(),
                set: false
            }))
        );
        assert_eq!(r.effective("northwind"), None);
    }
}
