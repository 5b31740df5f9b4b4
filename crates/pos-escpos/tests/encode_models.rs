//! Every profile (the hand-written ones and the whole printer-model database): a reference
//! receipt encodes, and the bytes use only the commands that model supports, checked command
//! by command with the crate's decoder.

use pos_escpos::codepage::CodePage;
use pos_escpos::command::{self, Command};
use pos_escpos::encode::{EncodeError, Substitution, encode_document};
use pos_escpos::profile::{Profile, Support};
use pos_hal::{
    Align, Barcode, Bitmap, CutKind, Document, DrawerPin, Image, ImageConversion, QrCode, Symbology,
};

/// A few printable characters of `page` above 0x7F (so the page has to be selected).
fn sample(page: CodePage) -> String {
    let Some(table) = page.high_table() else {
        return String::new();
    };
    table
        .iter()
        .filter(|c| **c != '\u{FFFD}' && !c.is_whitespace())
        .take(6)
        .collect()
}

/// The reference receipt for `profile`: text in each of its code pages, a QR code, a
/// barcode, a logo, a drawer kick and a cut.
fn reference_receipt(profile: &Profile) -> Document {
    let mut doc = Document::new();
    doc.text("REFERENCE RECEIPT").separator('-');
    for entry in &profile.code_pages {
        doc.text(format!("{}: {}", entry.page, sample(entry.page)));
    }
    let logo: Vec<u8> = (0..64 * 24)
        .map(|i| if i % 7 < 3 { 0 } else { 255 })
        .collect();
    doc.barcode(Barcode::new(Symbology::Ean13, "400638133393"))
        .qr(QrCode::new("https://example.invalid/receipt/42"))
        .image(Image {
            bitmap: Bitmap::new(64, 24, logo).expect("64x24"),
            conversion: ImageConversion::Threshold(128),
            align: Align::Center,
        })
        .drawer_kick(DrawerPin::Pin2)
        .cut(CutKind::FeedAndPartial);
    doc
}

fn all_profiles() -> Vec<Profile> {
    Profile::builtin_names()
        .iter()
        .map(|n| Profile::builtin(n).expect("every name loads"))
        .collect()
}

/// Why `c` must not be sent to a printer with `p`, if it must not.
fn forbidden(c: &Command, p: &Profile) -> Option<String> {
    let needs = |s: Support, what: &str| (!s.is_yes()).then(|| format!("needs {what} ({s})"));
    match c {
        Command::Text(_)
        | Command::LineFeed
        | Command::FeedLines(_)
        | Command::Emphasis(_)
        | Command::Underline(_)
        | Command::CharacterSize { .. }
        | Command::Font(_)
        | Command::Justify(_)
        | Command::Reverse(_)
        | Command::LineSpacing(_) => None,
        Command::CodeTable(n) => (!p.code_pages.iter().any(|e| e.number == *n))
            .then(|| format!("ESC t {n} is none of the profile's mapped code pages")),
        Command::ChineseMode(_) => (!p.chinese).then(|| "no Chinese mode".to_string()),
        Command::Cut { mode, .. } => match mode {
            0 | 48 | 65 => needs(if p.cutter { p.full_cut } else { Support::No }, "full cut"),
            1 | 49 | 66 => needs(
                if p.cutter { p.partial_cut } else { Support::No },
                "partial cut",
            ),
            _ => Some(format!("cut mode {mode}")),
        },
        Command::DrawerPulse { .. } => needs(p.pulse, "ESC p"),
        Command::BarcodeHeight(_)
        | Command::BarcodeModuleWidth(_)
        | Command::HriPosition(_)
        | Command::HriFont(_)
        | Command::Barcode { .. } => needs(p.barcode, "GS k"),
        Command::QrModel(_)
        | Command::QrModuleSize(_)
        | Command::QrErrorCorrection(_)
        | Command::QrStore(_)
        | Command::QrPrint => needs(p.qr, "GS ( k"),
        Command::RasterImage { .. } => needs(p.raster_image, "GS v 0"),
        Command::ColumnImage { .. } => needs(p.column_image, "ESC *"),
        Command::GraphicsStore { .. } | Command::GraphicsPrint => needs(p.graphics, "GS ( L"),
        other => Some(format!("{} is never part of a document", other.name())),
    }
}

#[test]
fn reference_receipt_uses_only_what_each_model_supports() {
    let profiles = all_profiles();
    assert!(profiles.len() >= 43, "{} profiles", profiles.len());
    let mut report = Vec::new();
    for p in &profiles {
        let doc = reference_receipt(p);
        let job = encode_document(&doc, p).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        let (cmds, left) = command::parse_all(&job.bytes);
        assert_eq!(left, 0, "{}: bytes left undecoded", p.name);
        for c in &cmds {
            if let Some(why) = forbidden(c, p) {
                panic!("{}: {c:?}: {why}", p.name);
            }
            assert_eq!(c.validate(), Ok(()), "{}: {c:?}", p.name);
        }
        assert!(
            job.replaced.is_empty(),
            "{}: every page's sample prints in some page: {:?}",
            p.name,
            job.replaced
        );
        // Every listed code page was selected for its own sample (or one equivalent).
        let tables: Vec<u8> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::CodeTable(n) => Some(*n),
                _ => None,
            })
            .collect();
        assert!(!tables.is_empty(), "{}: no ESC t at all", p.name);
        // What the document asked for and the model lacks is in the outcome.
        let has = |f: fn(&Substitution) -> bool| job.substitutions.iter().any(f);
        assert_eq!(
            !p.qr.is_yes(),
            has(|s| matches!(s, Substitution::QrAsImage { .. })),
            "{}: QR substitution reported",
            p.name
        );
        if !p.qr.is_yes() {
            assert!(
                cmds.iter().any(|c| matches!(
                    c,
                    Command::RasterImage { .. }
                        | Command::ColumnImage { .. }
                        | Command::GraphicsStore { .. }
                )),
                "{}: the QR code is an image",
                p.name
            );
        }
        assert_eq!(
            !p.barcode.is_yes(),
            has(|s| matches!(s, Substitution::BarcodeAsText { .. })),
            "{}",
            p.name
        );
        assert_eq!(
            !(p.cutter && (p.full_cut.is_yes() || p.partial_cut.is_yes())),
            has(|s| matches!(s, Substitution::CutAsFeed { .. })),
            "{}",
            p.name
        );
        assert_eq!(
            !p.pulse.is_yes(),
            has(|s| matches!(s, Substitution::DrawerKickOmitted { .. })),
            "{}",
            p.name
        );
        report.push(format!(
            "{}: {} bytes, {} commands, substitutions: {}",
            p.name,
            job.bytes.len(),
            cmds.len(),
            job.substitutions.len()
        ));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn qr_prints_as_an_image_on_a_model_without_gs_paren_k() {
    let p = Profile::builtin("zjiang-pos-5890").expect("in the model database");
    assert_eq!(p.qr, Support::No);
    assert!(p.raster_image.is_yes());
    let mut doc = Document::new();
    doc.qr(QrCode::new("https://example.invalid/r/1"));
    let job = encode_document(&doc, &p).expect("degrades, does not fail");
    let (cmds, _) = command::parse_all(&job.bytes);
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::QrStore(_) | Command::QrPrint))
    );
    let raster: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::RasterImage {
                width_bytes,
                height,
                ..
            } => Some((*width_bytes, *height)),
            _ => None,
        })
        .collect();
    // Version 3 (29 modules) with a 4-module quiet zone at 6 dots: 222 dots square.
    assert_eq!(raster, vec![(28, 128), (28, 94)]);
    assert_eq!(
        job.substitutions,
        vec![Substitution::QrAsImage {
            block: 0,
            via: "GS v 0"
        }]
    );
}

#[test]
fn images_fall_back_to_column_mode_or_gs_l() {
    let mut p = Profile::builtin("generic-80").expect("built in");
    p.raster_image = Support::Unknown;
    p.column_image = Support::Yes;
    let mut doc = Document::new();
    doc.image(Image {
        bitmap: Bitmap::new(10, 30, vec![0; 300]).expect("10x30"),
        conversion: ImageConversion::Threshold(128),
        align: Align::Left,
    });
    let job = encode_document(&doc, &p).expect("column image");
    let (cmds, _) = command::parse_all(&job.bytes);
    let columns: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::ColumnImage {
                mode,
                columns,
                data,
            } => Some((*mode, *columns, data.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(columns.len(), 2, "30 rows = two 24-dot stripes");
    assert_eq!(columns[0].2, vec![0xFF; 30], "first stripe all black");
    // Second stripe: rows 24-29 black, the rest white: top byte 0xFC.
    assert_eq!(columns[1].2[..3], [0xFC, 0, 0]);
    assert!(cmds.contains(&Command::LineSpacing(Some(24))));

    p.column_image = Support::No;
    p.graphics = Support::Yes;
    let job = encode_document(&doc, &p).expect("GS ( L");
    let (cmds, _) = command::parse_all(&job.bytes);
    assert!(cmds.contains(&Command::GraphicsStore {
        width: 10,
        height: 30,
        data: [0xFF, 0xC0].repeat(30)
    }));
    assert!(cmds.contains(&Command::GraphicsPrint));

    p.graphics = Support::Unknown;
    let job = encode_document(&doc, &p).expect("left out");
    assert_eq!(
        job.substitutions,
        vec![Substitution::ImageOmitted { block: 0 }]
    );
    let mut qr = Document::new();
    qr.qr(QrCode::new("x"));
    p.qr = Support::No;
    assert!(matches!(
        encode_document(&qr, &p),
        Err(EncodeError::QrUnsupported { block: 0, .. })
    ));
}

#[test]
fn chinese_is_refused_without_a_chinese_font_and_printed_with_one() {
    let mut doc = Document::new();
    doc.text("Total 5.00").text("谢谢惠顾");
    let tm = Profile::builtin("epson-tm-t20iii").expect("model");
    let err = encode_document(&doc, &tm).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::NoChineseFont {
                block: 1,
                ch: '谢',
                ..
            }
        ),
        "{err}"
    );
    let g = Profile::builtin("generic-80").expect("built in");
    let job = encode_document(&doc, &g).expect("GB18030 in Chinese mode");
    assert!(job.replaced.is_empty());
}

#[test]
fn unknown_characters_are_replaced_and_counted() {
    let p = Profile::builtin("epson-tm-u220").expect("model with one page");
    let mut doc = Document::new();
    doc.text("Ελλάδα ok");
    let job = encode_document(&doc, &p).expect("encodes");
    // CP437 (its only page) has the Greek small delta and alpha, not the rest.
    assert_eq!(job.replaced, vec!['Ε', 'λ', 'λ', 'ά']);
}
