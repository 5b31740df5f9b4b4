//! `posctl udev-rules`: print the shipped rules, or check an installed rules file.

use std::path::Path;

use crate::{CliError, Exit};

pub fn run(check: Option<&Path>, json: bool) -> Result<Exit, CliError> {
    let Some(path) = check else {
        print!("{}", pos_link::udev::RULES);
        return Ok(Exit::Ok);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
    let mut problems: Vec<String> = Vec::new();
    match pos_udev::check(&text) {
        Ok(rules) => {
            problems.extend(
                pos_udev::check_policy(&rules)
                    .iter()
                    .map(ToString::to_string),
            );
        }
        Err(errors) => problems.extend(errors.iter().map(ToString::to_string)),
    }
    if json {
        let body = serde_json::json!({
            "file": path.display().to_string(),
            "ok": problems.is_empty(),
            "problems": problems,
        });
        println!("{body}");
    } else if problems.is_empty() {
        println!("{}: ok", path.display());
    } else {
        for p in &problems {
            println!("{}: {p}", path.display());
        }
    }
    if problems.is_empty() {
        Ok(Exit::Ok)
    } else {
        Ok(Exit::Error)
    }
}
