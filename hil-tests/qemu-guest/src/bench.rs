//! Latency statistics for the benchmarks (`apdu.direct`, `apdu.pcsc`): count, median,
//! 99th percentile and mean, in nanoseconds, and the `PCSC-BENCH` line of `pcsc-bench`.

use std::time::Duration;

/// The summary of one benchmark's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Number of samples.
    pub count: u32,
    /// Median (nearest rank), nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile (nearest rank), nanoseconds.
    pub p99_ns: u64,
    /// Mean, nanoseconds.
    pub mean_ns: u64,
}

/// The nearest-rank percentile `p` (0 to 100) of sorted samples; 0 for none.
fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    // Nearest rank: ceil(p/100 * n), from 1.
    let rank = (p * n).div_ceil(100).clamp(1, n);
    let index = usize::try_from(rank - 1).unwrap_or(0);
    sorted.get(index).copied().unwrap_or(0)
}

impl Stats {
    /// Summarize `samples` (any order). `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut ns: Vec<u64> = samples
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect();
        ns.sort_unstable();
        let sum: u128 = ns.iter().map(|v| u128::from(*v)).sum();
        let count = u32::try_from(ns.len()).unwrap_or(u32::MAX);
        let mean = sum / ns.len() as u128;
        Some(Stats {
            count,
            p50_ns: percentile(&ns, 50),
            p99_ns: percentile(&ns, 99),
            mean_ns: u64::try_from(mean).unwrap_or(u64::MAX),
        })
    }

    /// The line `pcsc-bench` prints: `PCSC-BENCH count p50 p99 mean`.
    pub fn pcsc_line(&self) -> String {
        format!(
            "PCSC-BENCH {} {} {} {}",
            self.count, self.p50_ns, self.p99_ns, self.mean_ns
        )
    }

    /// Read the `PCSC-BENCH` line out of `pcsc-bench`'s output (other lines are ignored).
    ///
    /// Errors: no such line, or one with missing or bad numbers, in words.
    pub fn parse_pcsc_output(output: &str) -> Result<Stats, String> {
        let line = output
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("PCSC-BENCH"))
            .ok_or_else(|| "pcsc-bench printed no PCSC-BENCH line".to_string())?;
        let fields: Vec<&str> = line.split_whitespace().skip(1).collect();
        let bad = || format!("pcsc-bench printed a bad line: {line:?}");
        let [count, p50, p99, mean] = fields.as_slice() else {
            return Err(bad());
        };
        Ok(Stats {
            count: count.parse().map_err(|_| bad())?,
            p50_ns: p50.parse().map_err(|_| bad())?,
            p99_ns: p99.parse().map_err(|_| bad())?,
            mean_ns: mean.parse().map_err(|_| bad())?,
        })
    }

    /// `n=300 p50=176.0 us p99=400.0 us mean=180.0 us`, for people.
    pub fn describe(&self) -> String {
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "n={} p50={:.1} us p99={:.1} us mean={:.1} us",
            self.count,
            us(self.p50_ns),
            us(self.p99_ns),
            us(self.mean_ns)
        )
    }
}

/// Parse an APDU written in hex (spaces allowed): `00A4040007A000000004101000`.
///
/// Errors: an odd number of digits, a non-hex character, or fewer than 4 bytes (no
/// header), in words.
pub fn parse_hex_apdu(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("{text:?}: an odd number of hex digits"));
    }
    let nibble = |b: u8| -> Result<u8, String> {
        (b as char)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| format!("{text:?}: {:?} is not a hex digit", b as char))
    };
    let bytes = digits
        .chunks_exact(2)
        .map(|p| Ok(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect::<Result<Vec<u8>, String>>()?;
    if bytes.len() < 4 {
        return Err(format!("{text:?}: an APDU has at least CLA INS P1 P2"));
    }
    Ok(bytes)
}

/// Upper-case hex of `bytes`, no spaces.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_nanos).collect();
        let s = Stats::from_samples(&samples).unwrap();
        assert_eq!((s.count, s.p50_ns, s.p99_ns), (100, 50, 99));
        assert_eq!(s.mean_ns, 50); // 50.5 rounded down
        let one = Stats::from_samples(&[Duration::from_micros(7)]).unwrap();
        assert_eq!((one.p50_ns, one.p99_ns, one.mean_ns), (7000, 7000, 7000));
        assert!(Stats::from_samples(&[]).is_none());
    }

    #[test]
    fn the_pcsc_line_round_trips_and_bad_output_is_an_error() {
        let s = Stats {
            count: 300,
            p50_ns: 176_000,
            p99_ns: 400_000,
            mean_ns: 180_000,
        };
        let out = format!("reader: QEMU USB CCID\n{}\n", s.pcsc_line());
        assert_eq!(Stats::parse_pcsc_output(&out), Ok(s));
        assert!(Stats::parse_pcsc_output("nothing").is_err());
        assert!(Stats::parse_pcsc_output("PCSC-BENCH 1 2 3").is_err());
        assert!(Stats::parse_pcsc_output("PCSC-BENCH 1 2 x 4").is_err());
        assert!(s.describe().contains("p50=176.0 us"));
    }

    #[test]
    fn hex_apdus() {
        assert_eq!(
            parse_hex_apdu("00A40400 07A0000000041010 00").unwrap(),
            [0, 0xA4, 4, 0, 7, 0xA0, 0, 0, 0, 4, 0x10, 0x10, 0]
        );
        assert!(parse_hex_apdu("00A").is_err());
        assert!(parse_hex_apdu("00G0").is_err());
        assert!(parse_hex_apdu("00A4").is_err());
        assert_eq!(hex(&[0x9F, 0x36]), "9F36");
    }

    proptest! {
        #[test]
        fn stats_are_ordered(v in proptest::collection::vec(0u64..10_000_000, 1..200)) {
            let d: Vec<Duration> = v.iter().copied().map(Duration::from_nanos).collect();
            let s = Stats::from_samples(&d).unwrap();
            let min = *v.iter().min().unwrap();
            let max = *v.iter().max().unwrap();
            prop_assert!(min <= s.p50_ns && s.p50_ns <= s.p99_ns && s.p99_ns <= max);
            prop_assert!(min <= s.mean_ns && s.mean_ns <= max);
        }
    }
}
