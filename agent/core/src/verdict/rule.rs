//! The per-item rule: an item's best genuine-role and best counterfeit-role detections, the manifest's
//! thresholds, and the barcode signals found inside the item → one verdict.
//!
//! Visual evidence (`g`, `c` the best genuine and counterfeit scores, 0 when absent; thresholds `T_g`,
//! `T_c` and the margin `m` from the manifest):
//! 1. `c ≥ T_c`: counterfeit when `c ≥ g + m`, otherwise inconclusive (a near tie is never an accusation,
//!    and counterfeit evidence is never outvoted into genuine);
//! 2. else `g ≥ T_g`: genuine;
//! 3. else inconclusive (too weak to call).
//!
//! Barcodes then: any counterfeit signal ([`Signal::Counterfeit`]) makes the item counterfeit
//! (confidence at least 0.99: a wrong check digit or another product's GTIN is not a matter of degree);
//! an inconclusive signal turns a genuine verdict inconclusive. A barcode never makes an item genuine:
//! a counterfeiter can copy a valid code.

use std::collections::BTreeSet;

use super::code::{Code, Sgtin, Signal};
use super::serial::{self, Partner};
use super::{Context, VerdictKind};
use hallmark_detect::Detection;
use hallmark_proto::manifest::{Manifest, Role};

/// Confidence of a verdict decided by a barcode fact.
pub const BARCODE_CONFIDENCE: f32 = 0.99;

/// The visual evidence of one item: best (class, score) per role, and the class of its best detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    pub genuine: Option<(u32, f32)>,
    pub counterfeit: Option<(u32, f32)>,
    pub anchor_class: u32,
}

impl Evidence {
    /// From an item's members (indices into `detections`, best first).
    pub fn of(members: &[usize], detections: &[Detection], manifest: &Manifest) -> Evidence {
        let best = |role: Role| {
            members
                .iter()
                .map(|&i| &detections[i])
                .filter(|d| manifest.class(d.class).map(|c| c.role) == Some(role))
                .fold(None, |acc: Option<(u32, f32)>, d| match acc {
                    Some((_, s)) if s >= d.score => acc,
                    _ => Some((d.class, d.score)),
                })
        };
        Evidence {
            genuine: best(Role::Genuine),
            counterfeit: best(Role::Counterfeit),
            anchor_class: members.first().map_or(0, |&i| detections[i].class),
        }
    }
}

/// An item's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: VerdictKind,
    pub confidence: f32,
    /// The product the pack shows (of the deciding detection, else of the item's best detection).
    pub product: String,
    /// The manifest GTIN of that product.
    pub gtin: String,
    pub reason: String,
}

/// The verdict for one item from its evidence and the barcode signals found inside it.
pub fn decide(e: &Evidence, signals: &[Signal], manifest: &Manifest) -> Decision {
    let visual = visual(e, manifest);
    if let Some(reason) = signals.iter().find_map(|s| match s {
        Signal::Counterfeit(r) => Some(r),
        Signal::Inconclusive(_) => None,
    }) {
        let c = e.counterfeit.map_or(0.0, |(_, s)| s);
        return Decision {
            verdict: VerdictKind::Counterfeit,
            confidence: if c < BARCODE_CONFIDENCE {
                BARCODE_CONFIDENCE
            } else {
                c
            },
            reason: reason.clone(),
            ..visual
        };
    }
    if visual.verdict == VerdictKind::Genuine {
        if let Some(Signal::Inconclusive(reason)) = signals
            .iter()
            .find(|s| matches!(s, Signal::Inconclusive(_)))
        {
            return Decision {
                verdict: VerdictKind::Inconclusive,
                reason: format!("{reason}; the pack looks genuine"),
                ..visual
            };
        }
    }
    visual
}

fn visual(e: &Evidence, m: &Manifest) -> Decision {
    let t = &m.thresholds;
    let (g, c) = (
        e.genuine.map_or(0.0, |(_, s)| s),
        e.counterfeit.map_or(0.0, |(_, s)| s),
    );
    let name = |class: u32| {
        m.class(class)
            .map_or_else(|| format!("class-{class}"), |c| c.name.clone())
    };
    let decision = |verdict, confidence, class: u32, reason: String| {
        let spec = m.class(class);
        Decision {
            verdict,
            confidence,
            product: spec.map_or_else(String::new, |c| c.product.clone()),
            gtin: spec.map_or_else(String::new, |c| c.gtin.clone()),
            reason,
        }
    };
    match (e.genuine, e.counterfeit) {
        (_, Some((cc, c))) if c >= t.counterfeit && c >= g + t.margin => decision(
            VerdictKind::Counterfeit,
            c,
            cc,
            match e.genuine {
                Some((gc, g)) => format!("looks like a counterfeit '{}' at {c:.2} (threshold {:.2}); genuine '{}' only {g:.2}", name(cc), t.counterfeit, name(gc)),
                None => format!("looks like a counterfeit '{}' at {c:.2} (threshold {:.2})", name(cc), t.counterfeit),
            },
        ),
        (Some((gc, g)), Some((cc, c))) if c >= t.counterfeit => decision(
            VerdictKind::Inconclusive,
            g.max(c),
            e.anchor_class,
            format!("near tie: genuine '{}' {g:.2} vs counterfeit '{}' {c:.2} (needs a margin of {:.2}); scan again", name(gc), name(cc), t.margin),
        ),
        (Some((gc, g)), _) if g >= t.genuine => decision(
            VerdictKind::Genuine,
            g,
            gc,
            format!("genuine '{}' at {g:.2} (threshold {:.2})", name(gc), t.genuine),
        ),
        _ => {
            let (class, score, threshold, role) = match (e.genuine, e.counterfeit) {
                (Some((gc, g)), Some((_, c))) if g >= c => (gc, g, t.genuine, "genuine"),
                (_, Some((cc, c))) => (cc, c, t.counterfeit, "counterfeit"),
                (Some((gc, g)), None) => (gc, g, t.genuine, "genuine"),
                (None, None) => (e.anchor_class, 0.0, t.genuine, "genuine"),
            };
            // Rounded down, so a score just under its threshold never reads as equal to it (0.9085
            // against 0.91 said "0.91 is below the threshold 0.91").
            let shown = (score * 100.0).floor() / 100.0;
            decision(
                VerdictKind::Inconclusive,
                g.max(c),
                e.anchor_class,
                format!("too weak to call: best '{}' at {shown:.2} is below the {role} threshold {threshold:.2}; scan again", name(class)),
            )
        }
    }
}

/// The signals of an item's codes that concern it alone: each code's GTIN and expiry facts.
fn own_signals(e: &Evidence, codes: &[&Code], manifest: &Manifest, today: &str) -> Vec<Signal> {
    let product = visual(e, manifest).product;
    codes
        .iter()
        .flat_map(|c| c.signals(&product, manifest, today))
        .collect()
}

/// Whether the item, judged on its own (the detector and its codes' GTIN facts, no serials), is
/// counterfeit: how a pack in a clone pair looks to the rule.
pub fn looks_counterfeit(e: &Evidence, codes: &[&Code], manifest: &Manifest, today: &str) -> bool {
    decide(e, &own_signals(e, codes, manifest, today), manifest).verdict == VerdictKind::Counterfeit
}

/// An item's verdict from its evidence and the codes read on it: each code's GTIN and expiry facts, and
/// its SGTINs against the `partners` in view and the memory in `ctx`.
pub fn decide_item(
    e: &Evidence,
    codes: &[&Code],
    partners: &[Partner],
    manifest: &Manifest,
    ctx: &Context<'_>,
) -> Decision {
    let mut signals = own_signals(e, codes, manifest, ctx.today);
    let alone = decide(e, &signals, manifest);
    let mine: BTreeSet<Sgtin> = serial::sgtins(codes.iter().copied());
    signals.extend(serial::signals(
        &mine,
        alone.verdict == VerdictKind::Counterfeit,
        partners,
        ctx.seen,
    ));
    decide(e, &signals, manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_just_under_its_threshold_never_reads_as_equal_to_it() {
        let m = crate::verdict::test_manifest();
        let counterfeit = m
            .classes
            .iter()
            .find(|c| c.role == Role::Counterfeit)
            .unwrap()
            .id;
        let just_under = m.thresholds.counterfeit - 0.0015;
        let e = Evidence {
            genuine: None,
            counterfeit: Some((counterfeit, just_under)),
            anchor_class: counterfeit,
        };
        let d = decide(&e, &[], &m);
        assert_eq!(d.verdict, VerdictKind::Inconclusive);
        let threshold = format!("{:.2}", m.thresholds.counterfeit);
        assert!(
            !d.reason.contains(&format!("at {threshold} ")),
            "{}",
            d.reason
        );
        assert!(
            d.reason.contains(&format!("threshold {threshold}")),
            "{}",
            d.reason
        );
    }
}
