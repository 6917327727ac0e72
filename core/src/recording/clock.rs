//! UTC calendar dates and RFC 3339 timestamps from `SystemTime`, for folder names and
//! the facts files (no time-zone database: recordings are filed by UTC day).

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC instant broken down to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

/// Milliseconds since the Unix epoch, negative before it.
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

impl UtcTime {
    pub fn from_system(t: SystemTime) -> Self {
        let ms = unix_ms(t);
        let days = ms.div_euclid(86_400_000);
        let in_day = ms.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: (in_day / 3_600_000) as u32,
            minute: (in_day / 60_000 % 60) as u32,
            second: (in_day / 1000 % 60) as u32,
            millis: (in_day % 1000) as u32,
        }
    }

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `YYYY-MM-DDThh:mm:ss.mmmZ`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{}T{:02}:{:02}:{:02}.{:03}Z",
            self.date(),
            self.hour,
            self.minute,
            self.second,
            self.millis
        )
    }
}

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01, after
/// Howard Hinnant's `civil_from_days` (eras of 400 years starting on March 1st).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64) -> UtcTime {
        UtcTime::from_system(UNIX_EPOCH + Duration::from_millis(ms))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0).rfc3339(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789
        assert_eq!(at(951_827_696_789).rfc3339(), "2000-02-29T12:34:56.789Z");
        // 2024-12-31 23:59:59.999, then the next millisecond is a new year.
        assert_eq!(at(1_735_689_599_999).rfc3339(), "2024-12-31T23:59:59.999Z");
        assert_eq!(at(1_735_689_600_000).date(), "2025-01-01");
        let before = UtcTime::from_system(UNIX_EPOCH - Duration::from_millis(1));
        assert_eq!(before.rfc3339(), "1969-12-31T23:59:59.999Z");
    }
}
