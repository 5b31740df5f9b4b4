//! The journal at scale (issue 17): what a sale, start-up recovery, `posctl report`,
//! `posctl journal list` and the API's status cost on a journal of N transactions (default
//! a million, about 500 days of a busy lane) against an empty one, the journal's bytes per
//! transaction, and a retention step on the large journal. Run by
//! `crates/pos-serve/benches/journal_scale.sh`.
//!
//! ```text
//! cargo run --release -p pos-serve --example journal_scale -- [--entries N] [--runs R]
//!     [--sales S] [--dir DIR] [--journal FILE]
//! cargo run --release -p pos-serve --example journal_scale -- --generate FILE [--entries N]
//! ```
//!
//! The large journal is generated (see `generate.rs`: the real schema, rows of the shape the
//! service writes, 2,000 transactions a day, its last day ending at the start of today, UTC)
//! in DIR (default the system temp directory: put it on the storage to measure), or taken
//! copied from `--journal FILE` (one made by `--generate`: the bench adds its sales to the
//! copy). Each figure is the median of R runs (default 101; 3 for the start-up after a
//! crash), run on the empty and the large journal alternately, with the page cache warm
//! unless the row says cold. Progress on standard error, the table on standard output.

mod generate;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pos_acquirer::sim::{FakeHost, HostRules};
use pos_acquirer::{Mti, TcpAcquirer, WireEvent};
use pos_serve::{Service, open_lane};
use pos_terminal::identity::{Marker, marker_path};
use pos_terminal::journal::{Changes, StartCheck};
use pos_terminal::{Config, Journal, State, Terminal, TxnRequest};

type Error = Box<dyn std::error::Error>;

const DAY_MS: i64 = 86_400_000;

struct Args {
    entries: u64,
    runs: usize,
    sales: usize,
    dir: Option<PathBuf>,
    journal: Option<PathBuf>,
    generate: Option<PathBuf>,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        entries: 1_000_000,
        runs: 101,
        sales: 101,
        dir: None,
        journal: None,
        generate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--entries" => a.entries = value()?.replace('_', "").parse()?,
            "--runs" => a.runs = value()?.parse()?,
            "--sales" => a.sales = value()?.parse::<usize>()?.max(10),
            "--dir" => a.dir = Some(value()?.into()),
            "--journal" => a.journal = Some(value()?.into()),
            "--generate" => a.generate = Some(value()?.into()),
            _ => return Err(format!("unknown argument {flag} (see the header of main.rs)").into()),
        }
    }
    Ok(a)
}

fn start_of_today() -> i64 {
    let now = pos_terminal::journal::now_ms();
    now - now.rem_euclid(DAY_MS)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or(Duration::ZERO)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn timed(f: impl FnOnce() -> Result<(), Error>) -> Result<Duration, Error> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

/// `f(EMPTY)` and `f(LARGE)` alternately, `runs` times each after one untimed run each (so
/// that drift of the machine falls on both alike): the medians.
fn paired(
    runs: usize,
    mut f: impl FnMut(usize) -> Result<Duration, Error>,
) -> Result<[Duration; 2], Error> {
    f(EMPTY)?;
    f(LARGE)?;
    let mut v = [Vec::with_capacity(runs), Vec::with_capacity(runs)];
    for _ in 0..runs {
        for (k, times) in v.iter_mut().enumerate() {
            times.push(f(k)?);
        }
    }
    let [e, l] = v;
    Ok([median(e), median(l)])
}

const EMPTY: usize = 0;
const LARGE: usize = 1;

/// A lane's configuration on the journal at `path` with the fake host at `host`.
fn config(path: &Path, host: &str) -> Config {
    let mut c = Config {
        journal: Some(path.to_path_buf()),
        ..Config::default()
    };
    c.acquirer.address = host.to_string();
    c.acquirer.response_timeout_ms = 2_000;
    c
}

/// Drop the journal's pages from the page cache (a cold start: after a reboot).
fn evict(path: &Path) -> Result<(), Error> {
    for p in [
        path.to_path_buf(),
        PathBuf::from(format!("{}-wal", path.display())),
    ] {
        let Ok(f) = std::fs::File::open(&p) else {
            continue;
        };
        f.sync_all()?;
        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)
            .map_err(|e| format!("posix_fadvise: {e}"))?;
    }
    Ok(())
}

/// The identity marker as a crash leaves it: no clean close recorded.
fn as_after_a_crash(path: &Path) -> Result<(), Error> {
    let file = marker_path(path);
    let m = Marker::load(&file)?.ok_or("no identity marker")?;
    Marker {
        closed_at: None,
        ..m
    }
    .store(&file)?;
    Ok(())
}

/// Open the lane's service on the journal (its devices opened first, untimed) and run
/// start-up recovery: the time of the open and the recovery, and the check the open ran.
fn start_up(config: &Config) -> Result<(Duration, Option<StartCheck>), Error> {
    let lane = pos_lane::open(&config.devices, None)?;
    let settings = config.acquirer_settings(&config.acquirer.address)?;
    let t = Instant::now();
    let mut terminal = Terminal::open(
        config.clone(),
        lane.devices,
        Box::new(TcpAcquirer::new(settings)),
    )?;
    terminal.recover()?;
    let took = t.elapsed();
    let check = terminal.journal().start_check();
    drop(terminal);
    Ok((took, check))
}

/// A lane on the simulated devices for approved chip sales.
struct Lane {
    terminal: Terminal,
    sim: pos_lane::SimLane,
    host: Arc<FakeHost>,
}

impl Lane {
    fn open(config: &Config, host: &Arc<FakeHost>) -> Result<Lane, Error> {
        let lane = pos_lane::open(&config.devices, None)?;
        let sim = lane.sim.ok_or("the default lane is simulated")?;
        let settings = config.acquirer_settings(&config.acquirer.address)?;
        let mut terminal = Terminal::open(
            config.clone(),
            lane.devices,
            Box::new(TcpAcquirer::new(settings)),
        )?;
        terminal.set_ca_keys(pos_emv::profile_card::test_and_sim_ca_keys()?);
        terminal.recover()?;
        Ok(Lane {
            terminal,
            sim,
            host: Arc::clone(host),
        })
    }

    /// One approved chip sale: its time.
    fn sale(&mut self) -> Result<Duration, Error> {
        let arm = pos_lane::arm_fake_host(Arc::clone(&self.host), &[]);
        let mut hook = self.sim.hook(Vec::new(), Some(arm));
        let t = Instant::now();
        let r = self.terminal.run(&TxnRequest::sale(1250), &mut hook)?;
        let took = t.elapsed();
        if r.state != State::Completed {
            return Err(format!("the sale ended {} ({:?})", r.state, r.reason).into());
        }
        self.sim.reset(self.terminal.devices_mut())?;
        Ok(took)
    }
}

/// The journal's writes of an approved chip sale, without devices or host: what of a sale's
/// time the journal itself takes (11 commits, 3 of them durable).
fn journal_sale(j: &mut Journal) -> Result<(), Error> {
    let id = j.create(
        pos_acquirer::Operation::Sale,
        1250,
        978,
        None,
        "sale of 12.50",
    )?;
    j.transition(
        id,
        State::CardRead,
        "card read",
        Changes {
            pan_masked: Some("476173******0010".into()),
            pan_hash: Some(
                "0c5f269e89b214b46f520618d0ed839a1d4d207d57b4a1f2d674f70bcbff1c50".into(),
            ),
            sealed: Some(vec![7; 51]),
            entry_mode: Some("chip".into()),
            aid: Some("A0000000031010".into()),
            label: Some("VISA CREDIT".into()),
            ..Changes::default()
        },
    )?;
    let stan = j.arm(
        id,
        "0200",
        "0101000000",
        "armed: reversal record written before sending",
        Changes::default(),
    )?;
    let summary = "Message { mti: Mti(0200), fields: {...} }".repeat(8);
    j.host_message(
        id,
        "request",
        1,
        &WireEvent::Sent {
            mti: Mti::FINANCIAL_REQUEST,
            stan,
            summary: summary.clone(),
        },
    )?;
    j.transition(id, State::Sent, "request sent", Changes::default())?;
    j.host_message(
        id,
        "request",
        1,
        &WireEvent::Received {
            mti: Mti::FINANCIAL_RESPONSE,
            response_code: Some("00".into()),
            summary,
            elapsed: Duration::from_millis(1),
        },
    )?;
    j.transition(
        id,
        State::HostApproved,
        "host approved (response 00, in 1 ms)",
        Changes {
            rrn: Some("000000000001".into()),
            auth_code: Some("A00001".into()),
            response_code: Some("00".into()),
            ..Changes::default()
        },
    )?;
    j.transition(id, State::Committed, "card accepted", Changes::default())?;
    j.transition(
        id,
        State::Printing,
        "printing the receipt",
        Changes::default(),
    )?;
    j.receipt_printed(id)?;
    j.transition(id, State::Completed, "receipt printed", Changes::default())?;
    Ok(())
}

/// The WAL frames (pages) one [`journal_sale`] writes: the WAL emptied by a checkpoint
/// from a second connection, one sale, the WAL's size. The median of `runs`.
fn wal_pages_per_sale(j: &mut Journal, runs: usize) -> Result<u64, Error> {
    let side = rusqlite::Connection::open(j.path())?;
    let page: u64 = side.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let wal = PathBuf::from(format!("{}-wal", j.path().display()));
    let mut v = Vec::new();
    for _ in 0..runs {
        side.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        journal_sale(j)?;
        let size = std::fs::metadata(&wal)?.len();
        v.push(size.saturating_sub(32) / (page + 24));
    }
    v.sort_unstable();
    Ok(v.get(v.len() / 2).copied().unwrap_or(0))
}

/// One HTTP request on its own connection: the status code.
fn http(addr: &str, token: &str, path: &str) -> Result<u16, Error> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// The service with its API on the journal at `path`, started and settled.
fn service(path: &Path) -> Result<(Service, String, String), Error> {
    let mut config = config(path, "sim");
    config.api.listen = "127.0.0.1:0".into();
    // No retention while measuring: it would start moving the large journal's history out
    // (its steps are measured on their own, at the end).
    config.retention.interval_s = 0;
    let service = Service::start(open_lane(config, None)?)?;
    let addr = service.api_address();
    let token = std::fs::read_to_string(service.token_path())?
        .trim()
        .to_string();
    // Let the worker finish starting (recovery, the first device checks and gauges).
    let t = Instant::now();
    while http(&addr, &token, "/healthz")? != 200 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    Ok((service, addr, token))
}

/// Bytes per transaction, transactions, bytes by table.
type Size = (f64, u64, Vec<(String, u64)>);

/// Journal bytes per transaction after a checkpoint, the count, and the bytes by table
/// (with its indexes), from SQLite's `dbstat`.
fn bytes(path: &Path) -> Result<Size, Error> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    let n: i64 = conn.query_row("SELECT count(*) FROM txn", [], |r| r.get(0))?;
    let size = std::fs::metadata(path)?.len();
    let mut st = conn.prepare(
        "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d
         LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY 1 ORDER BY 2 DESC",
    )?;
    let by_table = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(t, b)| (t, u64::try_from(b).unwrap_or(0)))
        .filter(|(_, b)| *b > 0)
        .collect();
    let n = u64::try_from(n)?;
    Ok((size as f64 / n.max(1) as f64, n, by_table))
}

fn main() -> Result<(), Error> {
    let a = args()?;
    if let Some(out) = &a.generate {
        let g = generate::generate(out, a.entries, 2_000, start_of_today())?;
        let (per, n, _) = bytes(out)?;
        println!(
            "{n} transactions ({} timeline entries, {} host messages, {} events) in {:.0} s: \
             {per:.0} bytes per transaction",
            g.timeline, g.host_messages, g.events, g.seconds
        );
        return Ok(());
    }
    let dir = match &a.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "journal_scale: {cpus} CPUs, journals in {}",
        dir.path().display()
    );
    let empty = dir.path().join("empty").join("journal.sqlite");
    drop(Journal::open(&empty)?);
    let large = dir.path().join("large").join("journal.sqlite");
    std::fs::create_dir_all(large.parent().ok_or("no parent")?)?;
    match &a.journal {
        // A copy: the bench adds its sales, and the next run must find none of today's.
        Some(p) => {
            eprintln!("journal_scale: copying {}", p.display());
            rusqlite::Connection::open(p)?.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
            std::fs::copy(p, &large)?;
            std::fs::copy(marker_path(p), marker_path(&large))?;
        }
        None => {
            generate::generate(&large, a.entries, 2_000, start_of_today())?;
        }
    }
    // A journal holding only the last day of the large one (the same day, no history), for
    // the report of a full day.
    let day = dir.path().join("day").join("journal.sqlite");
    std::fs::create_dir_all(day.parent().ok_or("no parent")?)?;
    generate::generate(&day, 2_000, 2_000, start_of_today())?;
    let (per_txn, count, by_table) = bytes(&large)?;
    let label = if count >= 1_000_000 && count % 1_000_000 < 10_000 {
        format!("{}M", count / 1_000_000)
    } else {
        count.to_string()
    };
    let paths = [empty.clone(), large.clone()];
    let host = Arc::new(FakeHost::start("127.0.0.1:0", HostRules::default())?);
    let addr = host.addr().to_string();
    let configs = [config(&empty, &addr), config(&large, &addr)];
    let mut rows: Vec<(&str, [Duration; 2])> = Vec::new();

    eprintln!("journal_scale: start-up");
    let mut checks = [None, None];
    rows.push((
        "start-up: open + recovery, after a clean close",
        paired(a.runs, |k| {
            let (d, c) = start_up(&configs[k])?;
            checks[k] = c;
            Ok(d)
        })?,
    ));
    let clean = checks;
    rows.push((
        "start-up, cold page cache",
        paired(a.runs, |k| {
            evict(&paths[k])?;
            Ok(start_up(&configs[k])?.0)
        })?,
    ));
    let crash_runs = a.runs.min(3);
    rows.push((
        "start-up after a crash (whole-file check)",
        paired(crash_runs, |k| {
            as_after_a_crash(&paths[k])?;
            let (d, c) = start_up(&configs[k])?;
            checks[k] = c;
            Ok(d)
        })?,
    ));
    let crashed = checks;

    // Before the bench's sales: they are today's, in the large journal's report period.
    let report = |p: &Path, since: i64| {
        timed(|| {
            let j = Journal::open_read_only(p)?;
            pos_terminal::report::report(&j, since)?;
            Ok(())
        })
    };
    let today = start_of_today();
    let day_paths = [day.clone(), large.clone()];
    rows.push((
        "report, yesterday's 2,000 (\"empty\": 1-day journal)",
        paired(a.runs, |k| report(&day_paths[k], today - DAY_MS))?,
    ));

    eprintln!("journal_scale: sales");
    let mut lanes = [
        Lane::open(&configs[EMPTY], &host)?,
        Lane::open(&configs[LARGE], &host)?,
    ];
    rows.push((
        "sale, approved chip, simulated lane",
        paired(a.sales, |k| lanes[k].sale())?,
    ));
    drop(lanes);
    let mut journals = [Journal::open(&empty)?, Journal::open(&large)?];
    rows.push((
        "sale's journal writes only (11 commits, 3 durable)",
        paired(a.sales, |k| timed(|| journal_sale(&mut journals[k])))?,
    ));
    let wal_pages = [
        wal_pages_per_sale(&mut journals[EMPTY], 9)?,
        wal_pages_per_sale(&mut journals[LARGE], 9)?,
    ];
    drop(journals);

    eprintln!("journal_scale: reading commands");
    rows.push((
        "journal list (open + 20 latest)",
        paired(a.runs, |k| {
            timed(|| {
                let j = Journal::open_read_only(&paths[k])?;
                if j.list(20)?.len() < 20 {
                    return Err("fewer than 20 transactions: run more --sales".into());
                }
                Ok(())
            })
        })?,
    ));
    rows.push((
        "report, today (open + report)",
        paired(a.runs, |k| report(&paths[k], today))?,
    ));

    eprintln!("journal_scale: API");
    let services = [service(&empty)?, service(&large)?];
    for (what, route) in [
        ("API GET /v1/status", "/v1/status"),
        ("API GET /healthz", "/healthz"),
        ("API GET /metrics", "/metrics"),
    ] {
        rows.push((
            what,
            paired(a.runs, |k| {
                let (_, addr, token) = &services[k];
                timed(|| match http(addr, token, route)? {
                    200 => Ok(()),
                    code => Err(format!("{route}: HTTP {code}").into()),
                })
            })?,
        ));
    }
    for (s, _, _) in services {
        s.shutdown();
    }

    // Retention on the large journal (last: it moves its history out): steps of 1,000
    // moved, as the service runs them when idle. The first makes the archive file.
    eprintln!("journal_scale: retention");
    let mut j = Journal::open(&large)?;
    let archive_dir = dir.path().join("large").join("archive");
    let mut steps = Vec::new();
    for _ in 0..=a.runs.min(21) {
        let t = Instant::now();
        let r = j.archive(90, &archive_dir, pos_terminal::journal::now_ms(), 1_000)?;
        steps.push((t.elapsed(), r.moved, r.sealed_erased));
    }
    drop(j);
    let moved = median(steps.iter().skip(1).map(|s| s.0).collect());
    let (n_moved, n_erased) = steps
        .iter()
        .skip(1)
        .fold((0, 0), |(m, e), s| (m + s.1, e + s.2));

    println!(
        "journal scale: {cpus} CPUs; medians of {} runs ({} after a crash, {} sales), \
         empty and {label} alternately; ms",
        a.runs, crash_runs, a.sales
    );
    println!(
        "{:52} {:>10} {:>10} {:>7}",
        "operation", "empty", label, "ratio"
    );
    for (what, [e, l]) in &rows {
        println!(
            "{what:52} {:>10.3} {:>10.3} {:>7.2}",
            ms(*e),
            ms(*l),
            l.as_secs_f64() / e.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "WAL pages written by a sale's journal writes: {} empty, {} {label}",
        wal_pages[EMPTY], wal_pages[LARGE]
    );
    println!(
        "retention on {label}: a step (keep 90 days, 1,000 at most) took {:.1} ms (median of {}; {n_moved} moved, {n_erased} sealed erased)",
        ms(moved),
        steps.len() - 1
    );
    println!(
        "start-up checks (empty / {label}): after a clean close {:?} / {:?}, after a crash {:?} / {:?}",
        clean[EMPTY], clean[LARGE], crashed[EMPTY], crashed[LARGE]
    );
    println!(
        "journal bytes per transaction: {per_txn:.0} ({count} transactions, {:.0} MB, after a checkpoint)",
        per_txn * count as f64 / 1e6
    );
    println!(
        "  by table, with its indexes: {}",
        by_table
            .iter()
            .map(|(t, b)| format!("{t} {:.0}", *b as f64 / count.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
