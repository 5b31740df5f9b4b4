//! Clock and the date formats of the host messages (UTC).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use pos_hal::calendar::civil_from_unix;

/// The service's clock: the system clock, or a settable one for tests of backoff.
#[derive(Clone)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("now_ms", &self.now_ms())
            .finish()
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock that shows `ms` until moved with [`Clock::advance`].
    pub fn manual(ms: i64) -> Clock {
        Clock {
            fixed: Some(Arc::new(AtomicI64::new(ms))),
        }
    }

    /// Move a manual clock forward (no effect on the system clock).
    pub fn advance(&self, ms: i64) {
        if let Some(f) = &self.fixed {
            f.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.fixed {
            Some(f) => f.load(Ordering::SeqCst),
            None => crate::journal::now_ms(),
        }
    }

    /// Seconds since the epoch.
    pub fn now_secs(&self) -> u64 {
        u64::try_from(self.now_ms() / 1000).unwrap_or(0)
    }
}

/// Field 7, `MMDDhhmmss`.
pub fn transmission_time(secs: u64) -> String {
    let (_, mo, d, h, mi, s) = civil_from_unix(secs);
    format!("{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// Fields 12 (`hhmmss`) and 13 (`MMDD`).
pub fn local_time(secs: u64) -> (String, String) {
    let (_, mo, d, h, mi, s) = civil_from_unix(secs);
    (format!("{h:02}{mi:02}{s:02}"), format!("{mo:02}{d:02}"))
}

/// The days since 1970-01-01 of the civil date `y-m-d`:
/// [`pos_hal::calendar::days_from_civil`].
pub use pos_hal::calendar::days_from_civil;

/// `(year, month)` (UTC) of `ms` since the epoch; before the epoch, January 1970.
pub fn year_month(ms: i64) -> (u32, u32) {
    let (y, m, ..) = civil_from_unix(u64::try_from(ms.max(0) / 1000).unwrap_or(0));
    (y, m)
}

/// `YYYY-MM-DD hh:mm:ss UTC` for people.
pub fn human(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(u64::try_from(ms / 1000).unwrap_or(0));
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// True when a card expiry `YYMM` is before the month of `secs` (a card is valid through
/// the end of its expiry month). Unreadable expiries are not "expired" here: the host
/// decides.
pub fn expired(expiry: &str, secs: u64) -> bool {
    let b = expiry.as_bytes();
    if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let yy = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let mm = u32::from(b[2] - b'0') * 10 + u32::from(b[3] - b'0');
    let (y, mo, ..) = civil_from_unix(secs);
    let card = (2000 + yy) * 12 + mm;
    card < y * 12 + mo
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23 10:15:30 UTC
    const T: u64 = 1_795_428_930;

    #[test]
    fn formats() {
        assert_eq!(transmission_time(T), "1123101530");
        assert_eq!(local_time(T), ("101530".into(), "1123".into()));
        assert_eq!(human(T as i64 * 1000), "2026-11-23 10:15:30 UTC");
    }

    #[test]
    fn expiry() {
        assert!(expired("2610", T));
        assert!(!expired("2611", T));
        assert!(!expired("2812", T));
        assert!(expired("2212", T));
        assert!(!expired("xx12", T));
        assert!(!expired("", T));
    }

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in [0_i64, 59, 365, 11_016, 20_000, 20_454] {
            let (y, m, d, ..) = civil_from_unix(u64::try_from(days * 86_400).unwrap_or(0));
            assert_eq!(days_from_civil(i64::from(y), m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(year_month(T as i64 * 1000), (2026, 11));
    }

    #[test]
    fn manual_clock() {
        let c = Clock::manual(1000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1500);
        assert_eq!(c.now_secs(), 1);
    }
}
