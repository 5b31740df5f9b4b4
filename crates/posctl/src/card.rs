//! `posctl card ...`: EMV card data.

use crate::{CliError, Exit};

/// `posctl card tlv HEX`: decode BER-TLV with EMV tag names (PAN and track data masked).
/// Exit 1 when the bytes are not hex or not valid TLV (the error names the offset).
pub fn tlv(hex: &str, json: bool) -> Result<Exit, CliError> {
    let clean: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    if clean.len() % 2 != 0 || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CliError::new(format!("{hex:?} is not hex bytes")));
    }
    let bytes: Vec<u8> = (0..clean.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&clean[i..i + 2], 16).ok())
        .collect();
    // Check the whole buffer first so that an error exits 1 with its offset.
    if let Err(e) = pos_emv::tlv::parse_all(&bytes) {
        return Err(CliError::new(format!("not valid BER-TLV: {e}")));
    }
    let text = pos_emv::tags::describe(&bytes);
    if json {
        let lines: Vec<&str> = text.lines().collect();
        println!("{}", serde_json::json!({ "tlv": lines }));
    } else {
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
    Ok(Exit::Ok)
}
