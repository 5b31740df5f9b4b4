//! Printer profiles: the built-in ones, loading from a file, and the errors.

use std::io::Write;

use pos_escpos::codepage::CodePage;
use pos_escpos::profile::{CodePageEntry, Profile, ProfileError};
use pos_hal::{Fault, FaultKind};

const GOOD: &str = r#"
name = "shop-printer"
paper_width_mm = 80
dots_per_line = 576
columns_font_a = 48
columns_font_b = 64
chinese = false
cutter = true
asb = true
process_id = false
buffer_clear = false
drawer_open_when_pin3_high = true

[[code_pages]]
page = "cp858"
number = 19

[[code_pages]]
page = "cp437"
number = 0
"#;

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    f
}

#[test]
fn builtins() {
    let names = Profile::builtin_names();
    assert_eq!(&names[..3], &["epson-tm-t20", "generic-80", "generic-58"]);
    assert!(names.len() >= 43, "the model database is built in");
    assert!(names.contains(&"epson-tm-t20iii") && names.contains(&"rongta-rp326"));
    let epson = Profile::builtin("epson-tm-t20").unwrap();
    assert_eq!(
        (
            epson.paper_width_mm,
            epson.dots_per_line,
            epson.columns_font_a,
            epson.columns_font_b
        ),
        (80, 576, 48, 64)
    );
    assert!(epson.cutter && epson.asb && epson.process_id && epson.buffer_clear);
    assert!(!epson.chinese);
    assert_eq!(epson.code_page_number(CodePage::Cp437), Some(0));
    assert_eq!(epson.code_page_number(CodePage::Cp858), Some(19));
    assert_eq!(epson.code_page_number(CodePage::Cp1252), Some(16));

    let g80 = Profile::builtin("generic-80").unwrap();
    assert_eq!((g80.paper_width_mm, g80.dots_per_line), (80, 576));
    assert!(g80.cutter && !g80.asb && !g80.process_id && g80.chinese);
    assert_eq!(
        g80.text_pages(),
        vec![CodePage::Cp437, CodePage::Cp858, CodePage::Gb18030]
    );

    let g58 = Profile::builtin("generic-58").unwrap();
    assert_eq!(
        (
            g58.paper_width_mm,
            g58.dots_per_line,
            g58.columns_font_a,
            g58.columns_font_b
        ),
        (58, 384, 32, 42)
    );
    assert!(!g58.cutter && !g58.asb && !g58.process_id);
    assert_eq!(g58.raster_width_bytes(), 48);

    assert!(Profile::builtin("nope").is_none());
}

#[test]
fn loads_from_a_file() {
    let f = write_temp(GOOD);
    let p = Profile::load(f.path()).unwrap();
    assert_eq!(p.name, "shop-printer");
    assert_eq!(
        p.code_pages,
        vec![
            CodePageEntry {
                page: CodePage::Cp858,
                number: 19
            },
            CodePageEntry {
                page: CodePage::Cp437,
                number: 0
            },
        ]
    );
    assert!(p.drawer_open_when_pin3_high);
}

#[test]
fn missing_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let err = Profile::load(&path).unwrap_err();
    assert!(matches!(err, ProfileError::Io { .. }));
    assert_eq!(err.kind(), FaultKind::NotFound);
    assert!(err.to_string().contains("absent.toml"), "{err}");
}

#[test]
fn unknown_field_is_an_error_naming_file_and_field() {
    let f = write_temp(&GOOD.replace("asb = true", "asb = true\nauto_cut = true"));
    let err = Profile::load(f.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ProfileError::Parse { .. }), "{msg}");
    assert_eq!(err.kind(), FaultKind::InvalidInput);
    assert!(msg.contains("auto_cut"), "{msg}");
    assert!(
        msg.contains(&*f.path().file_name().unwrap().to_string_lossy()),
        "{msg}"
    );
}

#[test]
fn missing_or_mistyped_fields_are_errors() {
    let err = Profile::from_toml_str(&GOOD.replace("cutter = true\n", "")).unwrap_err();
    assert!(err.to_string().contains("cutter"), "{err}");
    let err =
        Profile::from_toml_str(&GOOD.replace("dots_per_line = 576", "dots_per_line = \"576\""))
            .unwrap_err();
    assert!(err.to_string().contains("dots_per_line"), "{err}");
    let err = Profile::from_toml_str(&GOOD.replace("\"cp858\"", "\"cp999\"")).unwrap_err();
    assert!(err.to_string().contains("cp999"), "{err}");
}

fn invalid_field(text: &str) -> String {
    let f = write_temp(text);
    match Profile::load(f.path()) {
        Ok(p) => panic!("expected Invalid, got {p:?}"),
        Err(e) => match e {
            ProfileError::Invalid { path, field, .. } => {
                assert_eq!(path.as_deref(), Some(f.path()));
                field
            }
            other => panic!("expected Invalid, got {other}"),
        },
    }
}

#[test]
fn validation_names_the_field() {
    assert_eq!(
        invalid_field(&GOOD.replace("dots_per_line = 576", "dots_per_line = 570")),
        "dots_per_line"
    );
    assert_eq!(
        invalid_field(&GOOD.replace("dots_per_line = 576", "dots_per_line = 0")),
        "dots_per_line"
    );
    assert_eq!(
        invalid_field(&GOOD.replace("paper_width_mm = 80", "paper_width_mm = 0")),
        "paper_width_mm"
    );
    assert_eq!(
        invalid_field(&GOOD.replace("columns_font_b = 64", "columns_font_b = 0")),
        "columns_font_b"
    );
    assert_eq!(
        invalid_field(&GOOD.replace("number = 0", "number = 19")),
        "code_pages[1].number"
    );
    assert_eq!(
        invalid_field(&GOOD.replace("\"cp437\"", "\"cp858\"")),
        "code_pages[1].page"
    );
    assert_eq!(
        invalid_field(&GOOD.replace("\"cp437\"", "\"gb18030\"")),
        "code_pages[1].page"
    );
    assert_eq!(
        invalid_field(&GOOD.replace("\"shop-printer\"", "\"  \"")),
        "name"
    );
    let message =
        Profile::from_toml_str(&GOOD.replace("dots_per_line = 576", "dots_per_line = 570"))
            .unwrap_err()
            .to_string();
    assert!(
        message.contains("570") && message.contains("multiple of 8"),
        "{message}"
    );
}

#[test]
fn serde_json_round_trip() {
    let p = Profile::builtin("generic-80").unwrap();
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"page\":\"cp858\""), "{json}");
    let back: Profile = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
}
