//! The guest's logger: warnings and errors on standard error (the guest console), and the
//! CCID driver's informational lines kept for the scenarios, which report what the driver
//! negotiated (PPS, parameters, protocol) as steps. The driver says it only in its log.
//!
//! Only `pos_ccid` lines are kept; the driver logs no card data at `info`.

use std::sync::{Mutex, OnceLock, PoisonError};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// At most this many kept lines; older ones are dropped.
const KEEP: usize = 256;

/// The logger (see the [module](self) documentation).
#[derive(Debug)]
pub struct LogTap {
    kept: Mutex<Vec<String>>,
    echo: LevelFilter,
}

impl LogTap {
    /// A logger that writes records up to `echo` to standard error.
    pub fn new(echo: LevelFilter) -> Self {
        LogTap {
            kept: Mutex::new(Vec::new()),
            echo,
        }
    }

    /// The kept lines since the last call, oldest first.
    pub fn drain(&self) -> Vec<String> {
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Log for LogTap {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.echo || keeps(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() <= self.echo {
            eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
        }
        if keeps(record.metadata()) {
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.len() >= KEEP {
                kept.remove(0);
            }
            kept.push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn keeps(metadata: &Metadata<'_>) -> bool {
    metadata.level() <= Level::Info && metadata.target().starts_with("pos_ccid")
}

static TAP: OnceLock<LogTap> = OnceLock::new();

/// Install the logger for the process (once; later calls do nothing).
pub fn install(echo: LevelFilter) {
    let tap = TAP.get_or_init(|| LogTap::new(echo));
    if log::set_logger(tap).is_ok() {
        log::set_max_level(echo.max(LevelFilter::Info));
    }
}

/// The driver lines kept since the last call (empty when the logger is not installed).
pub fn drain() -> Vec<String> {
    TAP.get().map(LogTap::drain).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_driver_info_lines_only_and_bounded() {
        let tap = LogTap::new(LevelFilter::Off);
        let rec = |target: &'static str, level: Level, text: &'static str| {
            tap.log(
                &Record::builder()
                    .target(target)
                    .level(level)
                    .args(format_args!("{text}"))
                    .build(),
            );
        };
        rec("pos_ccid::reader", Level::Info, "slot 0: T=1, Fi/Di (1, 1)");
        rec("pos_ccid::reader", Level::Debug, "poll");
        rec("pos_emv::select", Level::Info, "other crate");
        assert_eq!(tap.drain(), ["slot 0: T=1, Fi/Di (1, 1)"]);
        assert!(tap.drain().is_empty());
        for _ in 0..(KEEP + 10) {
            rec("pos_ccid", Level::Warn, "w");
        }
        assert_eq!(tap.drain().len(), KEEP);
    }
}
