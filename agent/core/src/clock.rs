//! The calendar date, for expiry checks: the system clock at the edge, the conversion pure.

use std::time::{SystemTime, UNIX_EPOCH};

/// Today's date in UTC as `YYYY-MM-DD`.
pub fn today_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(secs)
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-27T10:15:00.123Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let day = secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        civil_date(secs),
        day / 3600,
        day % 3600 / 60,
        day % 60,
        d.subsec_millis()
    )
}

/// `YYYY-MM-DD` of a Unix time (proleptic Gregorian, UTC), by Howard Hinnant's days-to-civil algorithm.
pub fn civil_date(unix_secs: u64) -> String {
    let z = (unix_secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
        assert_eq!(civil_date(1_795_737_600), "2026-11-27");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_737_600_000 + 3_723_045);
        assert_eq!(rfc3339_utc(t), "2026-11-27T01:02:03.045Z");
    }
}
