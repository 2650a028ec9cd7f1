//! GS1 numbers and element strings, pure: the mod-10 check digit of any GTIN length, GTINs normalised
//! to their 14-digit form, the GS1 company-prefix test, and the parsing of GS1 element strings (what a
//! GS1 DataMatrix carries) into GTIN, expiry, batch and serial. No I/O, no clock.

use std::fmt;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// What can be wrong with a GS1 number or element string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Gs1Error {
    #[error("a GS1 number must be digits only, got {0:?}")]
    NotDigits(String),
    #[error("a GTIN has 8, 12, 13 or 14 digits, got {0}")]
    BadLength(usize),
    #[error("wrong check digit: {found}, expected {expected}")]
    CheckDigit { expected: u8, found: u8 },
    #[error("empty element string")]
    Empty,
    #[error("unknown application identifier at {0:?}")]
    UnknownAi(String),
    #[error("AI ({ai}) needs {expected} characters, got {found}")]
    Truncated {
        ai: String,
        expected: usize,
        found: usize,
    },
    #[error("AI ({ai}) takes at most {max} characters, got {found}")]
    TooLong {
        ai: String,
        max: usize,
        found: usize,
    },
    #[error("AI ({ai}) has an empty value")]
    EmptyValue { ai: String },
    #[error("AI ({ai}) must be numeric, got {value:?}")]
    NotNumeric { ai: String, value: String },
    #[error("AI ({ai}) is not a valid YYMMDD date: {value:?}")]
    BadDate { ai: String, value: String },
    #[error("AI ({ai}) appears twice with different values")]
    Duplicate { ai: String },
}

/// GS1 mod-10 check digit of `body` (every digit of the number but the check digit), any GTIN length:
/// weights 3, 1, 3, … from the right.
pub fn check_digit(body: &str) -> Result<u8, Gs1Error> {
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Gs1Error::NotDigits(body.to_string()));
    }
    let total: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    Ok(((10 - total % 10) % 10) as u8)
}

/// The 14-digit form of a GTIN-8, -12 (UPC-A), -13 (EAN-13) or -14, zero-padded on the left. Checks the
/// shape only (digits, length), not the check digit: see [`Gtin::parse`] for that.
pub fn to_gtin14(number: &str) -> Result<String, Gs1Error> {
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Gs1Error::NotDigits(number.to_string()));
    }
    match number.len() {
        8 | 12 | 13 | 14 => Ok(format!("{number:0>14}")),
        n => Err(Gs1Error::BadLength(n)),
    }
}

/// A GTIN with a correct check digit, held in its 14-digit form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin(String);

impl Gtin {
    /// Parses a GTIN-8/12/13/14. `NotDigits`/`BadLength` say the input is no GTIN at all;
    /// `CheckDigit` says it is shaped like one but its check digit is wrong (a misprint or a forgery).
    pub fn parse(number: &str) -> Result<Gtin, Gs1Error> {
        let gtin14 = to_gtin14(number)?;
        let (body, last) = gtin14.split_at(13);
        let expected = check_digit(body)?;
        let found = last.as_bytes()[0] - b'0';
        if expected != found {
            return Err(Gs1Error::CheckDigit { expected, found });
        }
        Ok(Gtin(gtin14))
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when the GTIN (any length; 14-digit form expected) belongs to the GS1 company prefix `prefix`,
/// written as in a GTIN-13 (`9501101`, or `0614141` for a UPC company `614141`).
///
/// Design: the 14-digit form starts with an indicator digit (0 for a GTIN-13/12/8), so the company
/// prefix is compared from the second digit on; a GTIN-12 gained one more leading zero, which is the
/// leading 0 of its GTIN-13 form, so the same prefix matches the UPC-A and the EAN-13 spelling.
pub fn in_prefix(gtin14: &str, prefix: &str) -> bool {
    let Ok(gtin14) = to_gtin14(gtin14) else {
        return false;
    };
    !prefix.is_empty()
        && prefix.len() <= 12
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && gtin14[1..].starts_with(prefix)
}

/// A calendar date (GS1 dates are YYMMDD). Orders chronologically; shows and serialises as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// A GS1 `YYMMDD` date; day `00` means the last day of the month.
    ///
    /// Design: years are read as 2000–2099. GS1's rule picks the century from the current year (a
    /// window of 49 years back, 50 ahead), which needs a clock; every date a pack carries today falls
    /// in 2000–2099 under that rule until 2050.
    pub fn from_yymmdd(value: &str) -> Option<Date> {
        if value.len() != 6 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| value[r].parse::<u8>().ok();
        let (yy, month, day) = (num(0..2)?, num(2..4)?, num(4..6)?);
        let year = 2000 + u16::from(yy);
        if !(1..=12).contains(&month) {
            return None;
        }
        let last = days_in_month(year, month);
        let day = if day == 0 { last } else { day };
        (day <= last).then_some(Date { year, month, day })
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// ASCII 29, the group separator that stands for FNC1 between variable-length fields.
pub const GS: char = '\u{1d}';

/// One application identifier and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Element {
    pub ai: String,
    pub value: String,
}

/// A parsed GS1 element string: the fields Hallmark uses, and every element in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ElementString {
    /// AI (01), 14 digits, as printed: its check digit is not enforced here (see [`Gtin::parse`]).
    pub gtin: Option<String>,
    /// AI (17).
    pub expiry: Option<Date>,
    /// AI (10).
    pub batch: Option<String>,
    /// AI (21).
    pub serial: Option<String>,
    pub elements: Vec<Element>,
}

impl ElementString {
    /// The human-readable form, `(01)…(17)…(10)…(21)…`.
    pub fn to_hri(&self) -> String {
        self.elements
            .iter()
            .map(|e| format!("({}){}", e.ai, e.value))
            .collect()
    }
}

/// How an AI's value ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Len {
    /// Exactly n numeric characters, no separator needed after it.
    Fixed(usize),
    /// Up to n characters, ended by GS or the end of the string.
    Var(usize),
}

/// What the value means, for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Numeric,
    Date,
    Text,
}

/// The AIs this parser knows: (AI digits, value length, kind). A 3- or 4-digit AI is listed by its
/// digits; the `n` of 310n–369n (decimal point position) is matched by the 3-digit head (`310`…`369`).
///
/// Design: the table holds the AIs of GS1's predefined-length list (00–04, 11–20, 31–36, 41) as
/// `Fixed`, since those are never followed by a separator; every other AI is `Var` up to its maximum.
const AIS: &[(&str, Len, Kind)] = &[
    ("00", Len::Fixed(18), Kind::Numeric),
    ("01", Len::Fixed(14), Kind::Numeric),
    ("02", Len::Fixed(14), Kind::Numeric),
    ("10", Len::Var(20), Kind::Text),
    ("11", Len::Fixed(6), Kind::Date),
    ("12", Len::Fixed(6), Kind::Date),
    ("13", Len::Fixed(6), Kind::Date),
    ("15", Len::Fixed(6), Kind::Date),
    ("16", Len::Fixed(6), Kind::Date),
    ("17", Len::Fixed(6), Kind::Date),
    ("20", Len::Fixed(2), Kind::Numeric),
    ("21", Len::Var(20), Kind::Text),
    ("22", Len::Var(20), Kind::Text),
    ("240", Len::Var(30), Kind::Text),
    ("241", Len::Var(30), Kind::Text),
    ("250", Len::Var(30), Kind::Text),
    ("30", Len::Var(8), Kind::Numeric),
    ("37", Len::Var(8), Kind::Numeric),
    ("400", Len::Var(30), Kind::Text),
    ("410", Len::Fixed(13), Kind::Numeric),
    ("411", Len::Fixed(13), Kind::Numeric),
    ("412", Len::Fixed(13), Kind::Numeric),
    ("413", Len::Fixed(13), Kind::Numeric),
    ("414", Len::Fixed(13), Kind::Numeric),
    ("415", Len::Fixed(13), Kind::Numeric),
    ("416", Len::Fixed(13), Kind::Numeric),
    ("422", Len::Var(3), Kind::Numeric),
    ("7003", Len::Var(10), Kind::Numeric),
    ("8004", Len::Var(30), Kind::Text),
    ("90", Len::Var(30), Kind::Text),
    ("91", Len::Var(90), Kind::Text),
    ("92", Len::Var(90), Kind::Text),
    ("93", Len::Var(90), Kind::Text),
    ("94", Len::Var(90), Kind::Text),
    ("95", Len::Var(90), Kind::Text),
    ("96", Len::Var(90), Kind::Text),
    ("97", Len::Var(90), Kind::Text),
    ("98", Len::Var(90), Kind::Text),
    ("99", Len::Var(90), Kind::Text),
];

/// The AI at the start of `s`: its digits (4 for the measures 310n–369n) and spec.
fn lookup_ai(s: &str) -> Option<(&str, Len, Kind)> {
    // Measures: 31nn–36nn, 4-digit AIs with 6 digits of value.
    if s.len() >= 4
        && s.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && ("31".."37").contains(&&s[..2])
    {
        return Some((&s[..4], Len::Fixed(6), Kind::Numeric));
    }
    AIS.iter()
        .find(|(ai, _, _)| s.starts_with(ai))
        .map(|&(ai, len, kind)| (&s[..ai.len()], len, kind))
}

/// Parses a GS1 element string, as a GS1 DataMatrix / GS1-128 / QR reader returns it:
/// - raw: AIs and values back to back, variable-length values ended by GS (ASCII 29, the FNC1
///   separator), possibly led by a GS (the leading FNC1) and/or a symbology identifier (`]d2`, `]C1`,
///   `]Q3`, `]e0`);
/// - or human-readable: `(01)09501101010215(17)281130(10)B1001(21)SN00000001`.
pub fn parse_element_string(s: &str) -> Result<ElementString, Gs1Error> {
    let mut rest = s;
    if rest.starts_with(']') && rest.len() >= 3 && rest.is_char_boundary(3) {
        rest = &rest[3..];
    }
    rest = rest.trim_start_matches(GS);
    if rest.is_empty() {
        return Err(Gs1Error::Empty);
    }
    let pairs = if rest.starts_with('(') {
        split_hri(rest)?
    } else {
        split_raw(rest)?
    };
    let mut out = ElementString::default();
    for (ai, value) in pairs {
        if let Some(prev) = out.elements.iter().find(|e| e.ai == ai) {
            if prev.value != value {
                return Err(Gs1Error::Duplicate { ai: ai.to_string() });
            }
            continue;
        }
        let (_, _, kind) = lookup_ai(ai).ok_or_else(|| Gs1Error::UnknownAi(ai.to_string()))?;
        match ai {
            "01" => out.gtin = Some(value.to_string()),
            "17" => out.expiry = Date::from_yymmdd(value),
            "10" => out.batch = Some(value.to_string()),
            "21" => out.serial = Some(value.to_string()),
            _ => {}
        }
        if kind == Kind::Date && Date::from_yymmdd(value).is_none() {
            return Err(Gs1Error::BadDate {
                ai: ai.to_string(),
                value: value.to_string(),
            });
        }
        out.elements.push(Element {
            ai: ai.to_string(),
            value: value.to_string(),
        });
    }
    Ok(out)
}

/// Checks a value against its AI's spec.
fn check_value(ai: &str, value: &str, len: Len, kind: Kind) -> Result<(), Gs1Error> {
    let n = value.chars().count();
    match len {
        Len::Fixed(want) if n != want => {
            return Err(Gs1Error::Truncated {
                ai: ai.to_string(),
                expected: want,
                found: n,
            });
        }
        Len::Var(max) if n > max => {
            return Err(Gs1Error::TooLong {
                ai: ai.to_string(),
                max,
                found: n,
            })
        }
        _ => {}
    }
    if n == 0 {
        return Err(Gs1Error::EmptyValue { ai: ai.to_string() });
    }
    if kind != Kind::Text && !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Gs1Error::NotNumeric {
            ai: ai.to_string(),
            value: value.to_string(),
        });
    }
    Ok(())
}

fn split_raw(mut rest: &str) -> Result<Vec<(&str, &str)>, Gs1Error> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (ai, len, kind) =
            lookup_ai(rest).ok_or_else(|| Gs1Error::UnknownAi(rest.chars().take(4).collect()))?;
        let after = &rest[ai.len()..];
        let (value, next) = match len {
            Len::Fixed(n) => {
                let end = after.char_indices().nth(n).map_or(after.len(), |(i, _)| i);
                (&after[..end], &after[end..])
            }
            Len::Var(_) => after.split_once(GS).unwrap_or((after, "")),
        };
        check_value(ai, value, len, kind)?;
        out.push((ai, value));
        // A separator after a fixed-length value is allowed (some encoders put one anyway).
        rest = next.trim_start_matches(GS);
    }
    Ok(out)
}

fn split_hri(s: &str) -> Result<Vec<(&str, &str)>, Gs1Error> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(body) = rest.strip_prefix('(') {
        let (ai, after) = body
            .split_once(')')
            .ok_or_else(|| Gs1Error::UnknownAi(body.to_string()))?;
        let (spec_ai, len, kind) =
            lookup_ai(ai).ok_or_else(|| Gs1Error::UnknownAi(ai.to_string()))?;
        if spec_ai != ai {
            return Err(Gs1Error::UnknownAi(ai.to_string()));
        }
        let end = after.find('(').unwrap_or(after.len());
        let value = &after[..end];
        check_value(ai, value, len, kind)?;
        out.push((ai, value));
        rest = &after[end..];
    }
    if !rest.is_empty() {
        return Err(Gs1Error::UnknownAi(rest.chars().take(4).collect()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digit_matches_gs1_examples_for_every_length() {
        for (body, want) in [
            ("950110101021", 5),  // GTIN-13 9501101010215 (Northwind Earl Grey)
            ("950110101038", 3),  // Green Jasmine
            ("061414120011", 5),  // Aurora Ibuprofen, GTIN-13 form
            ("61414120011", 5),   // the same as a GTIN-12 (UPC-A) body
            ("0950110101021", 5), // GTIN-14 body with indicator 0
            ("9638507", 4),       // GTIN-8 96385074
            ("400638100001", 7),  // a 4006381 GTIN-13
            ("0000000000000", 0),
        ] {
            assert_eq!(check_digit(body), Ok(want), "body {body}");
        }
    }

    #[test]
    fn check_digit_refuses_what_is_not_digits() {
        for body in ["", "95011O1", "12 34", "-1"] {
            assert_eq!(
                check_digit(body),
                Err(Gs1Error::NotDigits(body.to_string())),
                "body {body:?}"
            );
        }
    }

    #[test]
    fn gtin_parse_tells_a_wrong_check_digit_from_a_malformed_number() {
        let cases: &[(&str, Result<&str, Gs1Error>)] = &[
            ("9501101010215", Ok("09501101010215")),
            ("09501101010215", Ok("09501101010215")),
            ("614141200115", Ok("00614141200115")),
            ("96385074", Ok("00000096385074")),
            // Earl Grey counterfeit: check digit 5 printed as 8.
            (
                "9501101010218",
                Err(Gs1Error::CheckDigit {
                    expected: 5,
                    found: 8,
                }),
            ),
            (
                "0614141200288",
                Err(Gs1Error::CheckDigit {
                    expected: 3,
                    found: 8,
                }),
            ),
            // 12 digits read as a GTIN-12: shaped right, check digit wrong.
            (
                "950110101021",
                Err(Gs1Error::CheckDigit {
                    expected: 2,
                    found: 1,
                }),
            ),
            (
                "95011010102155",
                Err(Gs1Error::CheckDigit {
                    expected: 6,
                    found: 5,
                }),
            ),
            ("9501101", Err(Gs1Error::BadLength(7))),
            ("950110101021500", Err(Gs1Error::BadLength(15))),
            (
                "95011010102x5",
                Err(Gs1Error::NotDigits("95011010102x5".into())),
            ),
            ("", Err(Gs1Error::NotDigits(String::new()))),
        ];
        for (input, want) in cases {
            let got = Gtin::parse(input);
            match want {
                Ok(g) => assert_eq!(got.as_ref().map(Gtin::as_str), Ok(*g), "input {input}"),
                Err(e) => assert_eq!(got.as_ref().err(), Some(e), "input {input}"),
            }
        }
    }

    #[test]
    fn in_prefix_skips_the_indicator_and_accepts_every_gtin_spelling() {
        for (gtin, prefix, want) in [
            ("09501101010215", "9501101", true),
            ("9501101010215", "9501101", true),
            ("19501101010212", "9501101", true), // GTIN-14 with indicator 1
            ("00614141200115", "0614141", true),
            ("614141200115", "0614141", true),    // UPC-A
            ("0614141200115", "0614141", true),   // its EAN-13 form
            ("04006381010215", "9501101", false), // Chai Spice counterfeit: another company
            ("09501101010215", "0614141", false),
            ("09501101010215", "", false),
            ("09501101010215", "95O1101", false),
            ("0950110", "9501101", false), // not a GTIN
        ] {
            assert_eq!(in_prefix(gtin, prefix), want, "{gtin} in {prefix}");
        }
    }

    #[test]
    fn dates_read_yymmdd_with_day_zero_as_the_end_of_the_month() {
        let d = |y, m, day| {
            Some(Date {
                year: y,
                month: m,
                day,
            })
        };
        for (value, want) in [
            ("281130", d(2028, 11, 30)),
            ("281100", d(2028, 11, 30)),
            ("280200", d(2028, 2, 29)), // leap year
            ("270200", d(2027, 2, 28)),
            ("000200", d(2000, 2, 29)),
            ("251231", d(2025, 12, 31)),
            ("271301", None),
            ("270001", None),
            ("270230", None),
            ("2702", None),
            ("27a201", None),
        ] {
            assert_eq!(Date::from_yymmdd(value), want, "value {value}");
        }
    }

    #[test]
    fn dates_order_chronologically_and_show_as_iso() {
        let a = Date {
            year: 2027,
            month: 12,
            day: 31,
        };
        let b = Date {
            year: 2028,
            month: 1,
            day: 1,
        };
        assert!(a < b);
        assert_eq!(b.to_string(), "2028-01-01");
        assert_eq!(
            serde_json::to_string(&a).ok().as_deref(),
            Some("\"2027-12-31\"")
        );
    }

    fn fields(
        s: &str,
    ) -> (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        let e = parse_element_string(s).unwrap_or_else(|err| panic!("{s:?}: {err}"));
        (e.gtin, e.expiry.map(|d| d.to_string()), e.batch, e.serial)
    }

    #[test]
    fn element_strings_parse_in_every_form_a_reader_returns() {
        let want = (
            Some("09501101010215".to_string()),
            Some("2028-11-30".to_string()),
            Some("B1001".to_string()),
            Some("SN00000001".to_string()),
        );
        for s in [
            // artwork.py's `datamatrix_text`, the human-readable form.
            "(01)09501101010215(17)281130(10)B1001(21)SN00000001",
            // raw, as a DataMatrix carries it: FNC1 separators after variable-length values.
            "01095011010102151728113010B1001\u{1d}21SN00000001",
            "\u{1d}010950110101021517281130\u{1d}10B1001\u{1d}21SN00000001",
            "]d2010950110101021517281130\u{1d}10B1001\u{1d}21SN00000001",
            "]d2\u{1d}0109501101010215\u{1d}17281130\u{1d}10B1001\u{1d}21SN00000001\u{1d}",
            // another order.
            "]C121SN00000001\u{1d}01095011010102151728113010B1001",
        ] {
            assert_eq!(fields(s), want, "{s:?}");
        }
    }

    #[test]
    fn element_strings_from_the_aurora_artwork_keep_every_field() {
        // `datamatrix_text(AURORA, paracetamol, "counterfeit", 42)`: the DataMatrix of a counterfeit with
        // a wrong EAN-13 check digit carries the real GTIN (an encoder refuses a bad one).
        let e = parse_element_string("(01)00614141200283(17)281130(10)B1042(21)SN00000042");
        let e = e.unwrap_or_default();
        assert_eq!(e.gtin.as_deref(), Some("00614141200283"));
        assert_eq!(
            e.expiry,
            Some(Date {
                year: 2028,
                month: 11,
                day: 30
            })
        );
        assert_eq!(e.batch.as_deref(), Some("B1042"));
        assert_eq!(e.serial.as_deref(), Some("SN00000042"));
        assert_eq!(
            e.to_hri(),
            "(01)00614141200283(17)281130(10)B1042(21)SN00000042"
        );
        // Cetirizine counterfeit: a foreign GTIN, still parsed; the prefix test catches it.
        let e = parse_element_string("(01)04006381200357(17)281130(10)B1007(21)SN00000007")
            .unwrap_or_default();
        assert_eq!(e.gtin.as_deref(), Some("04006381200357"));
        assert!(!in_prefix("04006381200357", "0614141"));
    }

    #[test]
    fn element_strings_with_measures_and_other_ais() {
        let e = parse_element_string("]d2010950110101021531030001251523123110ABC\u{1d}400PO-7");
        let e = e.unwrap_or_default();
        let ais: Vec<_> = e
            .elements
            .iter()
            .map(|e| (e.ai.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            ais,
            [
                ("01", "09501101010215"),
                ("3103", "000125"),
                ("15", "231231"),
                ("10", "ABC"),
                ("400", "PO-7")
            ]
        );
        assert_eq!(e.expiry, None);
    }

    #[test]
    fn malformed_element_strings_say_what_is_wrong() {
        let cases: &[(&str, Gs1Error)] = &[
            ("", Gs1Error::Empty),
            ("]d2", Gs1Error::Empty),
            (
                "01095011010102",
                Gs1Error::Truncated {
                    ai: "01".into(),
                    expected: 14,
                    found: 12,
                },
            ),
            (
                "0109501101010215172811",
                Gs1Error::Truncated {
                    ai: "17".into(),
                    expected: 6,
                    found: 4,
                },
            ),
            (
                "0109501101010215171399",
                Gs1Error::Truncated {
                    ai: "17".into(),
                    expected: 6,
                    found: 4,
                },
            ),
            (
                "010950110101021517131301",
                Gs1Error::BadDate {
                    ai: "17".into(),
                    value: "131301".into(),
                },
            ),
            (
                "01095011010102X5",
                Gs1Error::NotNumeric {
                    ai: "01".into(),
                    value: "095011010102X5".into(),
                },
            ),
            (
                "21123456789012345678901",
                Gs1Error::TooLong {
                    ai: "21".into(),
                    max: 20,
                    found: 21,
                },
            ),
            ("10\u{1d}21X", Gs1Error::EmptyValue { ai: "10".into() }),
            ("8xyz", Gs1Error::UnknownAi("8xyz".into())),
            ("(01)09501101010215(5)1", Gs1Error::UnknownAi("5".into())),
            (
                "(0109501101010215",
                Gs1Error::UnknownAi("0109501101010215".into()),
            ),
            ("10A\u{1d}10B", Gs1Error::Duplicate { ai: "10".into() }),
            ("hello", Gs1Error::UnknownAi("hell".into())),
        ];
        for (input, want) in cases {
            let got = parse_element_string(input);
            assert_eq!(got, Err(want.clone()), "input {input:?}");
        }
    }
}
