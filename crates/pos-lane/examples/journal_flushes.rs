//! Sales of each kind on the simulated lane, for counting the journal's flushes: run under
//! `strace` by `crates/pos-lane/benches/journal_flushes.sh`, which counts the fsync and
//! fdatasync calls on the journal's files between the markers this program writes to
//! standard error (`@@SALE kind` before a sale, `@@END` after it).
//!
//! ```text
//! cargo run --release -p pos-lane --example journal_flushes -- [SALES_PER_KIND] [DIR]
//! ```
//!
//! Prints, per kind, the journal commits per sale (each one an fsync before the flush
//! policy) and the median sale time, to standard output. The journal lives in DIR (default
//! a new directory under the system temp directory): put it on the storage to measure.

use std::time::{Duration, Instant};

use pos_acquirer::TcpAcquirer;
use pos_acquirer::sim::{FakeHost, HostRules};
use pos_terminal::inject::Injection;
use pos_terminal::{CardEntry, Config, State, Terminal, TxnRequest};

/// A kind of sale: name, amount, entry, injections, expected end state.
struct Kind {
    name: &'static str,
    amount: u64,
    entry: CardEntry,
    inject: &'static [&'static str],
    end: State,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "approved_chip",
        amount: 1250,
        entry: CardEntry::Chip,
        inject: &[],
        end: State::Completed,
    },
    Kind {
        name: "declined",
        amount: 1251,
        entry: CardEntry::Chip,
        inject: &[],
        end: State::Declined,
    },
    Kind {
        name: "aborted_card_removed",
        amount: 1250,
        entry: CardEntry::Chip,
        inject: &["before-send:card-removed"],
        end: State::Aborted,
    },
    Kind {
        name: "reversed_card_removed_after_approval",
        amount: 1250,
        entry: CardEntry::Chip,
        inject: &["after-approve:card-removed"],
        end: State::Reversed,
    },
    Kind {
        name: "receipt_owed_paper_out",
        amount: 1250,
        entry: CardEntry::Chip,
        inject: &["printing:paper-out"],
        end: State::ReceiptOwed,
    },
];

/// A marker on standard error in one write(2), for strace to see whole.
fn mark(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let per_kind: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let dir = match args.next() {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let host = std::sync::Arc::new(FakeHost::start("127.0.0.1:0", HostRules::default())?);
    let mut config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        ..Config::default()
    };
    config.acquirer.address = host.addr().to_string();
    config.acquirer.response_timeout_ms = 2_000;
    let lane = pos_lane::open(&config.devices, None)?;
    let sim = lane.sim.ok_or("the default lane is simulated")?;
    let settings = config.acquirer_settings(&config.acquirer.address)?;
    let mut terminal = Terminal::open(config, lane.devices, Box::new(TcpAcquirer::new(settings)))?;
    terminal.set_ca_keys(pos_emv::profile_card::test_and_sim_ca_keys()?);
    terminal.recover()?;
    println!("journal in {}", dir.path().display());
    println!("kind\tcommits_per_sale\tmedian_ms");
    for kind in KINDS {
        let mut times = Vec::new();
        let mut commits = 0;
        for _ in 0..per_kind {
            let inject: Vec<Injection> = kind
                .inject
                .iter()
                .map(|i| i.parse())
                .collect::<Result<_, _>>()?;
            let arm = pos_lane::arm_fake_host(std::sync::Arc::clone(&host), &inject);
            let mut hook = sim.hook(inject, Some(arm));
            let req = TxnRequest {
                entry: kind.entry,
                ..TxnRequest::sale(kind.amount)
            };
            let before = terminal.journal().commits();
            mark(&format!("@@SALE {}\n", kind.name));
            let start = Instant::now();
            let r = terminal.run(&req, &mut hook)?;
            let took = start.elapsed();
            mark("@@END\n");
            if r.state != kind.end {
                return Err(format!("{}: ended {} ({:?})", kind.name, r.state, r.reason).into());
            }
            commits += terminal.journal().commits() - before;
            times.push(took);
            // Owed receipts would print before the next sale: print them now, outside the
            // measured sale, then a healthy lane.
            sim.clear_printer_faults()?;
            terminal.reprint_owed()?;
            sim.reset(terminal.devices_mut())?;
        }
        times.sort();
        let median = times
            .get(times.len() / 2)
            .copied()
            .unwrap_or(Duration::ZERO);
        println!(
            "{}\t{:.1}\t{:.2}",
            kind.name,
            commits as f64 / per_kind.max(1) as f64,
            median.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
