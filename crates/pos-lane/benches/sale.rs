//! `terminal/sale/*`: one sale end to end on the simulated lane (virtual reader and card,
//! virtual printer, the fake host over loopback TCP, the SQLite journal); against it
//! `terminal/emv_only/sim`, the same EMV transaction on the same kind of virtual reader
//! without the service (host approves at once, no journal, no receipt), so the difference
//! is the service's overhead. `sale/sim` keeps the journal on the temp directory's file
//! system (fsync counts); `sale/sim_tmpfs` keeps it on /dev/shm (fsync costs ~nothing).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pos_acquirer::TcpAcquirer;
use pos_acquirer::sim::{FakeHost, HostRules};
use pos_emv::capk::CaKeys;
use pos_emv::terminal::TerminalData;
use pos_emv::transaction::{self, OnlineDecision, TransactionConfig, TransactionDecision};
use pos_hal::SlotChannel;
use pos_terminal::config::DeviceConfig;
use pos_terminal::{Config, NoHook, State, Terminal, TxnRequest};

fn ca_keys() -> CaKeys {
    pos_emv::profile_card::test_and_sim_ca_keys().unwrap()
}

/// A service on the default simulated lane, its journal in a new directory under `base`.
struct Rig {
    terminal: Terminal,
    sim: pos_lane::SimLane,
    _host: FakeHost,
    _dir: tempfile::TempDir,
}

fn rig(base: Option<&Path>) -> Rig {
    let host = FakeHost::start("127.0.0.1:0", HostRules::default()).unwrap();
    let dir = match base {
        Some(b) => tempfile::tempdir_in(b).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let mut config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        ..Config::default()
    };
    config.acquirer.address = host.addr().to_string();
    config.acquirer.response_timeout_ms = 2_000;
    let lane = pos_lane::open(&config.devices, None).unwrap();
    let settings = config.acquirer_settings(&config.acquirer.address).unwrap();
    let mut terminal =
        Terminal::open(config, lane.devices, Box::new(TcpAcquirer::new(settings))).unwrap();
    terminal.set_ca_keys(ca_keys());
    terminal.recover().unwrap();
    Rig {
        terminal,
        sim: lane.sim.unwrap(),
        _host: host,
        _dir: dir,
    }
}

/// One sale, then the lane reset for the next; returns the times of the two.
fn sale(rig: &mut Rig, no_receipt: bool) -> (Duration, Duration) {
    let start = Instant::now();
    let req = TxnRequest {
        no_receipt,
        ..TxnRequest::sale(1250)
    };
    let r = rig.terminal.run(&req, &mut NoHook).unwrap();
    let ran = start.elapsed();
    assert_eq!(r.state, State::Completed, "{:?}", r.reason);
    black_box(r);
    // A fresh card in the reader, printer faults cleared, for the next sale.
    let start = Instant::now();
    rig.sim.reset(rig.terminal.devices_mut()).unwrap();
    (ran, start.elapsed())
}

fn bench_sale(c: &mut Criterion, name: &str, base: Option<&Path>, label: &str, no_receipt: bool) {
    let mut rig = rig(base);
    // Outside the timing: journal commits (each one an fsync) and wall time of one sale.
    let before = rig.terminal.journal().commits();
    let (ran, reset) = sale(&mut rig, no_receipt);
    let commits = rig.terminal.journal().commits() - before;
    eprintln!(
        "{name}: {commits} journal commits (fsyncs) per sale, journal on {label}; \
         one sale {:.2} ms, lane reset after it {:.2} ms",
        ran.as_secs_f64() * 1e3,
        reset.as_secs_f64() * 1e3
    );
    // Only the sale is timed, not the reset between sales.
    c.bench_function(name, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| sale(&mut rig, no_receipt).0).sum())
    });
}

fn approve(_: &pos_emv::record::TransactionRecord) -> OnlineDecision {
    OnlineDecision::Approved {
        arc: *b"00",
        issuer_auth_data: None,
        scripts: Vec::new(),
    }
}

fn bench_emv_only(c: &mut Criterion) {
    let lane = pos_lane::open(&DeviceConfig::default(), None).unwrap();
    let mut reader = lane.devices.reader.unwrap();
    let keys = ca_keys();
    c.bench_function("terminal/emv_only/sim", |b| {
        b.iter(|| {
            reader.power_on(0).unwrap();
            let mut cfg =
                TransactionConfig::new(TerminalData::new([1, 2, 3, 4]), 1250, keys.clone());
            // As the service: online-only, anything above the floor limit (0) goes online.
            cfg.tac.online = [0, 0, 0, 0x80, 0];
            let mut host = approve;
            let out =
                transaction::run(&mut SlotChannel::new(&mut reader, 0), &cfg, &mut host).unwrap();
            assert_eq!(out.decision, TransactionDecision::ApprovedOnline);
            let _ = reader.power_off(0);
            black_box(out);
        });
    });
}

fn benches(c: &mut Criterion) {
    bench_sale(c, "terminal/sale/sim", None, "the temp dir", false);
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        bench_sale(
            c,
            "terminal/sale/sim_tmpfs",
            Some(shm),
            "/dev/shm (tmpfs)",
            false,
        );
        // Without the receipt (the virtual printer's print-and-confirm round trips over the
        // pty): what is left is the service itself plus the host's loopback round trip.
        bench_sale(
            c,
            "terminal/sale/sim_tmpfs_no_receipt",
            Some(shm),
            "/dev/shm (tmpfs), no receipt",
            true,
        );
    } else {
        eprintln!("terminal/sale/sim_tmpfs: skipped, no /dev/shm");
    }
    bench_emv_only(c);
}

criterion_group!(sale_benches, benches);
criterion_main!(sale_benches);
