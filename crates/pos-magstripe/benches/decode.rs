//! `msr/decode/track2_bits`: decoding a raw track 2 bitstream (one bit per byte, so the
//! bytes-per-second throughput is bits per second).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pos_magstripe::{Track, TrackBuf, TrackStatus, decode_bits, encode_bits};

fn track2_bits(c: &mut Criterion) {
    let mut bits = [0u8; 400];
    let n = encode_bits(
        Track::Two,
        "4111111111111111=2512101123400001",
        20,
        &mut bits,
    )
    .expect("test track encodes");
    // 20 leading zeros, the track, 20 trailing zeros: as a reader's bit buffer looks.
    let stream = &bits[..n + 20];
    let mut out = TrackBuf::new();
    assert_eq!(
        decode_bits(Track::Two, stream, &mut out),
        TrackStatus::Ok,
        "bench input decodes"
    );

    let mut group = c.benchmark_group("msr/decode");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("track2_bits", |b| {
        b.iter(|| decode_bits(Track::Two, black_box(stream), &mut out))
    });
    group.finish();
}

criterion_group!(benches, track2_bits);
criterion_main!(benches);
