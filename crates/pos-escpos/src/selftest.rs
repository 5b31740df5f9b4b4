//! The technician's test page.

use pos_hal::{Align, Barcode, CutKind, Document, QrCode, Symbology, TextStyle};

use crate::profile::Profile;

/// The first line of the test page (tests look for it in what was printed).
pub const TEST_PAGE_TITLE: &str = "PRINTER SELF-TEST";

/// A test page for `profile`: its settings, code-page samples (Latin, the euro sign, and
/// Chinese where the profile has Chinese mode), text styles, a CODE128 barcode, a QR code
/// and a cut where there is a cutter.
pub fn test_page(profile: &Profile) -> Document {
    let mut doc = Document::new();
    doc.text_styled(
        TEST_PAGE_TITLE,
        TextStyle::new().bold().double().align(Align::Center),
    )
    .text(format!("profile: {}", profile.name))
    .text(format!(
        "paper: {} mm, {} dots, {} columns",
        profile.paper_width_mm, profile.dots_per_line, profile.columns_font_a
    ))
    .separator('-')
    .text("ASCII: ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789")
    .text("Latin: àéîõü ÄÖÜß ñ ç £")
    .text("Euro: € 12,50");
    if profile.chinese {
        doc.text("中文: 收据 打印测试");
    }
    doc.text_styled("bold", TextStyle::new().bold())
        .text_styled("underline", TextStyle::new().underline())
        .text_styled("inverse", TextStyle::new().inverse())
        .text_styled("right aligned", TextStyle::new().align(Align::Right))
        .separator('-')
        .barcode(Barcode::new(Symbology::Code128, "POS-SELFTEST-1"))
        .qr(QrCode::new("posctl printer selftest"))
        .text_styled("end of self-test", TextStyle::new().align(Align::Center))
        .feed(2);
    if profile.cutter {
        doc.cut(CutKind::FeedAndPartial);
    }
    doc
}
