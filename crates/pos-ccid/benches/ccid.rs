//! `ccid/apdu_roundtrip/short`: a SELECT-sized command and a 2-byte response through the
//! whole stack (driver, codec, virtual APDU-level reader) with zero device latency.
//! `ccid/removal_latency/{interrupt,polling}`: time from the virtual card's removal to the
//! CardRemoved event.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pos_ccid::sim::{SimLevel, SimReaderConfig, TestCard, VirtualReader};
use pos_ccid::{CcidReader, ReaderConfig};
use pos_hal::{ChipReader, Device, DeviceEvent};

fn apdu_roundtrip(c: &mut Criterion) {
    let (vr, h) = VirtualReader::new(SimReaderConfig::default(), "sim:ccid");
    let mut r = CcidReader::new(vr, "sim:ccid", ReaderConfig::default());
    h.insert(Box::new(TestCard::t0()));
    r.power_on(0).expect("power on");
    // SELECT of an absent AID: 13-byte command, 2-byte answer (6A 82).
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, 0x00,
    ];
    let mut g = c.benchmark_group("ccid/apdu_roundtrip");
    g.bench_function("short", |b| {
        b.iter(|| {
            let resp = r
                .transmit(0, std::hint::black_box(&select))
                .expect("transmit");
            std::hint::black_box(resp)
        })
    });
    g.finish();
}

fn removal_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("ccid/removal_latency");
    g.sample_size(20);
    for (name, interrupt) in [("interrupt", true), ("polling", false)] {
        let cfg = SimReaderConfig {
            level: SimLevel::Apdu,
            interrupt,
            ..SimReaderConfig::default()
        };
        let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
        let rcfg = ReaderConfig {
            poll_interval: Duration::from_millis(200),
            ..ReaderConfig::default()
        };
        let mut r = CcidReader::new(vr, "sim:ccid", rcfg);
        let sub = r.subscribe().expect("subscribe");
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    h.insert(Box::new(TestCard::t0()));
                    loop {
                        match sub.recv_timeout(Duration::from_secs(5)).map(|e| e.event) {
                            Ok(DeviceEvent::CardInserted { .. }) => break,
                            Ok(_) => {}
                            Err(e) => panic!("no insertion event: {e}"),
                        }
                    }
                    let start = Instant::now();
                    h.remove();
                    loop {
                        match sub.recv_timeout(Duration::from_secs(5)).map(|e| e.event) {
                            Ok(DeviceEvent::CardRemoved { .. }) => break,
                            Ok(_) => {}
                            Err(e) => panic!("no removal event: {e}"),
                        }
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, apdu_roundtrip, removal_latency);
criterion_main!(benches);
