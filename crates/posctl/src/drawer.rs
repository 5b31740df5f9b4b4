//! `posctl drawer ...`: open the cash drawer on a receipt printer's kick-out connector, or
//! read its switch.

use pos_escpos::{DriverConfig, EscPosError};
use pos_hal::{CashDrawer, DrawerPin, DrawerPulse, DrawerState};
use pos_link::DeviceUri;

use crate::{CliError, Exit};

fn cli_error(e: EscPosError) -> CliError {
    let exit = match e {
        EscPosError::DrawerRefused { .. } => Exit::DeviceFault,
        _ => Exit::Error,
    };
    let link = match &e {
        EscPosError::Link(l) => Some(l),
        _ => None,
    };
    CliError::device(&e, link, exit)
}

fn open(
    device: &str,
    pin: u8,
) -> Result<pos_escpos::EscPosDrawer<Box<dyn pos_link::Link>>, CliError> {
    let pin = DrawerPin::from_number(pin)
        .ok_or_else(|| CliError::new(format!("--pin {pin}: the drawer pin is 2 or 5")))?;
    let uri = DeviceUri::parse(device).map_err(|e| CliError::new(e.to_string()))?;
    let printer = pos_escpos::open(&uri, DriverConfig::default()).map_err(cli_error)?;
    Ok(printer.drawer(DrawerPulse::new(pin)))
}

#[derive(serde::Serialize)]
struct DrawerJson {
    device: String,
    pulse: Option<DrawerPulse>,
    state: DrawerState,
    opened: Option<bool>,
    advice: Option<&'static str>,
}

fn show(body: &DrawerJson, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
        return;
    }
    match (body.pulse, body.opened) {
        (Some(p), Some(true)) => println!("{}: drawer opened ({p})", body.device),
        (Some(p), _) => println!(
            "{}: pulse sent ({p}) but the drawer reads {}",
            body.device, body.state
        ),
        (None, _) => println!("{}: drawer {}", body.device, body.state),
    }
    if let Some(a) = body.advice {
        println!("  {a}");
    }
}

/// `posctl drawer status`: exit 0 when the switch was read (open or closed), 2 when the
/// printer cannot report it (unknown), 1 when the printer cannot be reached.
pub fn status(device: &str, pin: u8, json: bool) -> Result<Exit, CliError> {
    let mut drawer = open(device, pin)?;
    let state = drawer.drawer_state().map_err(cli_error)?;
    let body = DrawerJson {
        device: device.to_string(),
        pulse: None,
        state,
        opened: None,
        advice: (state == DrawerState::Unknown)
            .then_some("the printer's profile says it does not report the drawer switch"),
    };
    show(&body, json);
    Ok(match state {
        DrawerState::Unknown => Exit::DeviceFault,
        _ => Exit::Ok,
    })
}

/// `posctl drawer open`: exit 0 when the drawer reads open after the pulse; 2 when the
/// printer refused (cover open, paper out, offline: no pulse sent) or the drawer still reads
/// closed or unknown after it; 1 when the printer cannot be reached.
pub fn open_drawer(device: &str, pin: u8, json: bool) -> Result<Exit, CliError> {
    let mut drawer = open(device, pin)?;
    let state = drawer.open_drawer().map_err(cli_error)?;
    let opened = state == DrawerState::Open;
    let body = DrawerJson {
        device: device.to_string(),
        pulse: Some(drawer.pulse()),
        state,
        opened: Some(opened),
        advice: match state {
            DrawerState::Open => None,
            DrawerState::Closed => Some(
                "the drawer did not open: check it is unlocked, connected, and on the pin given (--pin 2|5)",
            ),
            DrawerState::Unknown => Some(
                "the pulse was sent; the printer does not report the drawer switch, so whether it opened is not known",
            ),
        },
    };
    show(&body, json);
    Ok(if opened { Exit::Ok } else { Exit::DeviceFault })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_pin_is_refused_before_anything_is_opened() {
        let e = open("sim:printer", 3).unwrap_err();
        assert!(e.message.contains("2 or 5"), "{}", e.message);
        assert!(matches!(e.exit, Exit::Error));
    }
}
