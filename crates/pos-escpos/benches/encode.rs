//! `escpos/encode/receipt40`: encode a 40-line receipt with a QR code and a small dithered
//! logo for an Epson TM-T20-class profile. Criterion reports the time per receipt and,
//! through `Throughput::Bytes`, the encoded bytes per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pos_escpos::encode::encode_document;
use pos_escpos::profile::Profile;
use pos_hal::{
    Align, Barcode, Bitmap, CutKind, Document, Image, ImageConversion, QrCode, Symbology, TextStyle,
};

/// A 128 x 64 logo: a diagonal grey gradient with a dark frame, dithered.
fn logo() -> Image {
    let (w, h) = (128u32, 64u32);
    let mut pixels = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let frame = x < 3 || y < 3 || x >= w - 3 || y >= h - 3;
            let grey = ((x + 2 * y) * 255 / (w + 2 * h)) as u8;
            pixels.push(if frame { 0 } else { grey });
        }
    }
    Image {
        bitmap: Bitmap::new(w, h, pixels).expect("128 x 64 pixels"),
        conversion: ImageConversion::Dither,
        align: Align::Center,
    }
}

/// A 40-line receipt: header, 34 item lines with euro prices, totals, a barcode, a QR code.
fn receipt() -> Document {
    let mut doc = Document::new();
    doc.image(logo())
        .text_styled(
            "CAFÉ ROSSI",
            TextStyle::new().bold().double().align(Align::Center),
        )
        .text_styled(
            "Via Roma 1, 00100 Roma",
            TextStyle::new().align(Align::Center),
        )
        .text_styled("Tel. 06 123 4567", TextStyle::new().align(Align::Center))
        .separator('-');
    for i in 0..34u32 {
        let cents = 150 + i * 37;
        doc.text(format!(
            "{:<2} x Crème brûlée n.{:<3}{:>20} €",
            1 + i % 3,
            i,
            format!("{}.{:02}", cents / 100, cents % 100)
        ));
    }
    doc.separator('=')
        .text_styled("TOTAL EUR                 123.45", TextStyle::new().bold())
        .text("VAT 22%                    22.26")
        .text("Card **** 1234        APPROVED")
        .feed(1)
        .barcode(Barcode::new(Symbology::Code128, "R-2024-000123"))
        .qr(QrCode::new(
            "https://example.invalid/r/2024-000123?k=Zm9vYmFy",
        ))
        .feed(2)
        .cut(CutKind::FeedAndPartial);
    doc
}

fn bench_encode(c: &mut Criterion) {
    let profile = Profile::builtin("epson-tm-t20").expect("built-in profile");
    let doc = receipt();
    let job = encode_document(&doc, &profile).expect("the receipt encodes");
    assert_eq!(job.text_lines, 40, "a 40-line receipt");
    assert!(
        job.replaced.is_empty(),
        "CP858 has everything the receipt uses"
    );

    let mut group = c.benchmark_group("escpos/encode");
    group.throughput(Throughput::Bytes(job.bytes.len() as u64));
    group.bench_function("receipt40", |b| {
        b.iter(|| encode_document(black_box(&doc), black_box(&profile)))
    });
    group.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
