//! Serialised codes (GS1 SGTIN: a GTIN and its serial) as verdict signals.
//!
//! - **A clone pair** — one SGTIN on two packs in view at once — proves that at least one of them carries
//!   a copied code, but not which. So it never accuses a pack that, judged on its own (the detector and
//!   its codes' GTIN facts: a wrong check digit, another product's GTIN), is not counterfeit:
//!   - a pack that looks counterfeit is COUNTERFEIT: it carries a copy of the code on the pack beside it;
//!   - a pack that does not, beside one that does, is inconclusive: its code was copied; check it by hand;
//!   - packs that all look genuine are each inconclusive, the reason naming the pair (a conveyor diverts
//!     inconclusive packs by default, so a clone still leaves the line).
//! - **An SGTIN seen before** (remembered from a pack decided genuine from live capture, past the
//!   re-scan window) cannot tell a cloned code from the same pack brought back: it sends a
//!   genuine-looking pack to a person.
//!
//! A serial without its GTIN proves nothing: two products may print the same serial.

use std::collections::BTreeSet;

use super::code::{Code, Sgtin, Signal};
use super::rule::Decision;
use super::VerdictKind;

/// Another pack in view that carries one of this pack's SGTINs, and whether it is counterfeit judged on
/// its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub sgtin: Sgtin,
    pub looks_counterfeit: bool,
}

/// The distinct SGTINs among `codes` (a code read twice on one pack counts once).
pub fn sgtins<'a>(codes: impl IntoIterator<Item = &'a Code>) -> BTreeSet<Sgtin> {
    codes.into_iter().filter_map(Code::sgtin).collect()
}

/// The partners of pack `me` among packs in view together: `sgtins[i]` and `looks_counterfeit[i]` are
/// pack `i`'s SGTINs and look.
pub fn partners(me: usize, sgtins: &[BTreeSet<Sgtin>], looks_counterfeit: &[bool]) -> Vec<Partner> {
    let Some(mine) = sgtins.get(me) else {
        return Vec::new();
    };
    sgtins
        .iter()
        .zip(looks_counterfeit)
        .enumerate()
        .filter(|&(other, _)| other != me)
        .flat_map(|(_, (theirs, &looks))| {
            mine.intersection(theirs).map(move |s| Partner {
                sgtin: s.clone(),
                looks_counterfeit: looks,
            })
        })
        .collect()
}

/// The SGTINs a verdict adds to the memory: those of a pack decided genuine (a doubtful pack's code
/// must never make a later genuine pack look copied). The daemon also remembers only live capture.
pub fn remembered(decision: &Decision, codes: &[Code]) -> BTreeSet<Sgtin> {
    if decision.verdict == VerdictKind::Genuine {
        sgtins(codes)
    } else {
        BTreeSet::new()
    }
}

/// The signals of a pack's SGTINs. `looks_counterfeit`: this pack judged on its own is counterfeit;
/// `partners`: other packs in view with one of its SGTINs; `seen`: whether an SGTIN was remembered.
pub fn signals(
    mine: &BTreeSet<Sgtin>,
    looks_counterfeit: bool,
    partners: &[Partner],
    seen: &dyn Fn(&Sgtin) -> bool,
) -> Vec<Signal> {
    mine.iter()
        .filter_map(|s| {
            let pair: Vec<&Partner> = partners.iter().filter(|p| &p.sgtin == s).collect();
            if pair.is_empty() {
                return seen(s).then(|| {
                    Signal::Inconclusive(format!(
                        "the code ({s}) was seen on a pack before: a cloned code, or this pack scanned again; check it by hand"
                    ))
                });
            }
            let beside_a_fake = pair.iter().any(|p| p.looks_counterfeit);
            Some(if looks_counterfeit {
                Signal::Counterfeit(format!(
                    "looks counterfeit and carries a copy of the code on the pack beside it ({s})"
                ))
            } else if beside_a_fake {
                Signal::Inconclusive(format!(
                    "its code ({s}) was copied onto another pack in view, which looks counterfeit; check it by hand"
                ))
            } else {
                Signal::Inconclusive(format!(
                    "the same code ({s}) is on another pack in view: one of them carries a copy; check both by hand"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(gtin: &str, serial: &str) -> Sgtin {
        Sgtin {
            gtin: gtin.into(),
            serial: serial.into(),
        }
    }

    fn set(items: &[Sgtin]) -> BTreeSet<Sgtin> {
        items.iter().cloned().collect()
    }

    #[test]
    fn one_serial_under_different_gtins_pairs_nobody() {
        let packs = [
            set(&[s("09501101010215", "SN1")]),
            set(&[s("09501101010383", "SN1")]),
        ];
        assert!(partners(0, &packs, &[false, false]).is_empty());
        assert!(partners(1, &packs, &[false, false]).is_empty());
    }

    #[test]
    fn a_clone_pair_accuses_only_the_pack_that_looks_counterfeit() {
        let code = s("09501101010215", "SN1");
        let packs = [
            set(std::slice::from_ref(&code)),
            set(std::slice::from_ref(&code)),
        ];
        let looks = [false, true];
        let never = |_: &Sgtin| false;
        let genuine_side = signals(&packs[0], looks[0], &partners(0, &packs, &looks), &never);
        let fake_side = signals(&packs[1], looks[1], &partners(1, &packs, &looks), &never);
        assert!(
            matches!(&genuine_side[..], [Signal::Inconclusive(r)] if r.contains("was copied onto another pack") && r.contains("check it by hand")),
            "{genuine_side:?}"
        );
        assert!(
            matches!(&fake_side[..], [Signal::Counterfeit(r)] if r.contains("carries a copy of the code")),
            "{fake_side:?}"
        );
    }

    #[test]
    fn a_pair_that_both_look_genuine_sends_both_to_a_person() {
        let code = s("09501101010215", "SN1");
        let packs = [
            set(std::slice::from_ref(&code)),
            set(std::slice::from_ref(&code)),
        ];
        for me in 0..2 {
            let got = signals(
                &packs[me],
                false,
                &partners(me, &packs, &[false, false]),
                &|_| false,
            );
            assert!(
                matches!(&got[..], [Signal::Inconclusive(r)] if r.contains("check both by hand")),
                "{got:?}"
            );
        }
    }

    #[test]
    fn a_remembered_sgtin_is_inconclusive_only_for_its_own_gtin() {
        let remembered = s("09501101010215", "SN1");
        let seen = |x: &Sgtin| x == &remembered;
        let same = signals(&set(std::slice::from_ref(&remembered)), false, &[], &seen);
        assert!(
            matches!(&same[..], [Signal::Inconclusive(r)] if r.contains("seen on a pack before"))
        );
        let other = signals(&set(&[s("09501101010383", "SN1")]), false, &[], &seen);
        assert!(other.is_empty(), "{other:?}");
    }
}
