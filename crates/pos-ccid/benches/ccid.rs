//! `ccid/apdu_roundtrip/short`: a SELECT-sized command and a 2-byte response through the
//! whole stack (driver, codec, virtual APDU-level reader) with zero device latency.
//! `ccid/removal_latency/{interrupt,polling}`: time from the virtual card's removal to the
//! CardRemoved event.
//! `ccid/policy/{decide_reader,decide_card}`: [`ReaderPolicy::decide`] for a TPDU reader
//! with its quirk rows, without and with a card's ATR (the driver runs it once at open and
//! once per power-on, never per APDU); `ccid/policy/open_power_on`: a whole open and
//! power-on of a TPDU T=1 virtual reader (policy, SetParameters, IFSD exchange), to compare
//! with `ccid/apdu_roundtrip/short`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pos_ccid::atr::ParsedAtr;
use pos_ccid::descriptor::CcidDescriptor;
use pos_ccid::sim::{SimLevel, SimReaderConfig, TestCard, VirtualReader};
use pos_ccid::{CcidReader, ReaderConfig, ReaderPolicy, quirks};
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

fn policy(c: &mut Criterion) {
    let mut g = c.benchmark_group("ccid/policy");
    let descriptor = CcidDescriptor::example_tpdu_reader();
    // An OZ776: three quirk rows (rate cap, no PPS, descriptor on the endpoint).
    let rows = quirks::lookup(0x0B97, 0x7762, 0x0100);
    let config = ReaderConfig::default();
    let atr = ParsedAtr::parse(&[
        0x3B, 0xDA, 0x18, 0xFF, 0x81, 0xB1, 0xFE, 0x75, 0x1F, 0x03, 0x00, 0x31, 0xC5, 0x73, 0xC0,
        0x01, 0x40, 0x00, 0x90, 0x00, 0x0C,
    ])
    .expect("ATR");
    let rates = [9600u32, 19_200, 38_400, 115_200];
    g.bench_function("decide_reader", |b| {
        b.iter(|| {
            std::hint::black_box(ReaderPolicy::decide(
                std::hint::black_box(&descriptor),
                Some(&rates),
                None,
                &rows,
                &config,
            ))
        })
    });
    g.bench_function("decide_card", |b| {
        b.iter(|| {
            std::hint::black_box(ReaderPolicy::decide(
                std::hint::black_box(&descriptor),
                Some(&rates),
                Some(&atr),
                &rows,
                &config,
            ))
        })
    });
    g.bench_function("open_power_on", |b| {
        b.iter(|| {
            let cfg = SimReaderConfig {
                level: SimLevel::TpduT1,
                ..SimReaderConfig::default()
            };
            let (vr, h) = VirtualReader::new(cfg, "sim:ccid");
            h.insert(Box::new(TestCard::t1()));
            let mut r = CcidReader::new(vr, "sim:ccid", ReaderConfig::default());
            std::hint::black_box(r.power_on(0).expect("power on"))
        })
    });
    g.finish();
}

criterion_group!(benches, apdu_roundtrip, removal_latency, policy);
criterion_main!(benches);
