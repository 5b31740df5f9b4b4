//! UTC calendar arithmetic for the dates devices and hosts exchange (EMV `9A`/`9F21`, ISO 8583
//! field 7, receipts, journal days): proleptic Gregorian, no time zones, no leap seconds. One
//! implementation for every crate (H. Hinnant's `days_from_civil` / `civil_from_days`).

/// `(year, month, day, hours, minutes, seconds)` in UTC of `secs` seconds since
/// 1970-01-01 00:00:00 UTC.
///
/// ```
/// assert_eq!(pos_hal::calendar::civil_from_unix(951_827_696), (2000, 2, 29, 12, 34, 56));
/// ```
pub fn civil_from_unix(secs: u64) -> (u32, u32, u32, u32, u32, u32) {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let small = |v: u64| u32::try_from(v).unwrap_or(0);
    (
        u32::try_from(year).unwrap_or(u32::MAX),
        month,
        day,
        small(rem / 3600),
        small(rem % 3600 / 60),
        small(rem % 60),
    )
}

/// `(year, month, day)` of day `days` since 1970-01-01 (negative before it).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The days since 1970-01-01 of the civil date `y-m-d` (negative before it).
///
/// ```
/// assert_eq!(pos_hal::calendar::days_from_civil(2000, 3, 1), 11_017);
/// ```
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_unix(951_827_696), (2000, 2, 29, 12, 34, 56));
        assert_eq!(civil_from_unix(1_735_689_599), (2024, 12, 31, 23, 59, 59));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn days_round_trip_over_four_centuries() {
        for days in (-146_097..146_097 * 2).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }
}
