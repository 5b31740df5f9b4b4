//! `posctl serve`: the terminal service as a long-running process (pos-serve), with signal
//! handling and the systemd readiness protocol.

use pos_serve::{STOP_REQUESTED, Service, open_lane};

use crate::txn::{LaneArgs, load_config};
use crate::{CliError, Exit};

/// Options of `posctl serve`.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    /// Override `api.listen`.
    pub listen: Option<String>,
    /// Override `api.metrics_listen`.
    pub metrics_listen: Option<String>,
    /// Check the config and exit.
    pub check: bool,
}

/// SIGTERM and SIGINT set [`STOP_REQUESTED`] (the handler only stores to the atomic, which
/// is async-signal-safe); the service sees it and stops gracefully.
fn install_signal_handlers() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGTERM, SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, &STOP_REQUESTED) {
            log::warn!("cannot handle signal {sig}: {e}");
        }
    }
}

/// Tell systemd (Type=notify) where we are; nothing without `NOTIFY_SOCKET`.
fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            log::warn!("sd_notify: {e}");
            return;
        }
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        log::warn!("sd_notify to {}: {e}", path.to_string_lossy());
    }
}

/// Run the service until SIGTERM/SIGINT.
pub fn serve(lane_args: &LaneArgs, args: &ServeArgs, json: bool) -> Result<Exit, CliError> {
    let mut config = load_config(lane_args)?;
    if let Some(l) = &args.listen {
        config.api.listen = l.clone();
    }
    if let Some(m) = &args.metrics_listen {
        config.api.metrics_listen = m.clone();
    }
    if args.check {
        return check(&config, json);
    }
    let card = lane_args
        .card
        .as_deref()
        .map(crate::txn::card_spec)
        .transpose()?;
    install_signal_handlers();
    let parts = open_lane(config, card).map_err(|e| CliError {
        message: e.to_string(),
        hint: Some(crate::lane_open_hint(&e)),
        exit: Exit::Error,
    })?;
    let service = Service::start(parts).map_err(|e| {
        use pos_hal::Fault;
        CliError {
            hint: (e.kind() != pos_hal::FaultKind::Unrecoverable).then(|| {
                "the journal's directory must be writable, the API address free, the token file 0640"
                    .into()
            }),
            message: e.to_string(),
            exit: Exit::Error,
        }
    })?;
    let address = service.api_address();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "listening": address,
                "metrics": service.metrics_address(),
                "token_file": service.token_path(),
                "simulated": service.sim().is_some(),
            })
        );
    } else {
        println!("listening on {address}");
        eprintln!(
            "token file: {} (send it as: Authorization: Bearer <token>)",
            service.token_path().display()
        );
        if let Some(m) = service.metrics_address() {
            eprintln!("metrics on http://{m}/metrics");
        }
        if service.sim().is_some() {
            eprintln!(
                "simulated lane: the simulated cardholder inserts the card when asked; POST /v1/sim/... acts on the virtual devices"
            );
        }
        eprintln!("SIGTERM or Ctrl-C stops (a transaction already sent runs to its end first)");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    sd_notify(&format!("READY=1\nSTATUS=serving on {address}"));
    if service.wait_for_signal_or_stop_with(|| sd_notify("STOPPING=1")) {
        Ok(Exit::Ok)
    } else {
        Err(CliError::new(
            "the lane worker failed (see the log); exiting so that the service is restarted and recovers",
        ))
    }
}

fn check(config: &pos_terminal::Config, json: bool) -> Result<Exit, CliError> {
    let listen = &config.api.listen;
    let listen_ok = match listen.strip_prefix("unix:") {
        Some(p) if p.starts_with('/') => Ok(()),
        Some(p) => Err(format!("api.listen: unix:{p} must be an absolute path")),
        None => match listen.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => Ok(()),
            Ok(_) => Err(format!(
                "api.listen {listen:?}: the API is local: 127.0.0.1 or a Unix socket"
            )),
            Err(_) => Err(format!(
                "api.listen {listen:?}: write HOST:PORT or unix:/PATH"
            )),
        },
    };
    listen_ok.map_err(CliError::new)?;
    if !config.api.metrics_listen.is_empty()
        && config
            .api
            .metrics_listen
            .parse::<std::net::SocketAddr>()
            .is_err()
    {
        return Err(CliError::new(format!(
            "api.metrics_listen {:?}: write HOST:PORT",
            config.api.metrics_listen
        )));
    }
    for (role, uri) in [
        ("reader", &config.devices.reader),
        ("printer", &config.devices.printer),
        ("msr", &config.devices.msr),
    ] {
        if uri != "none" {
            uri.parse::<pos_link::DeviceUri>()
                .map_err(|e| CliError::new(format!("devices.{role} {uri:?}: {e}")))?;
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "listen": listen,
                "journal": config.journal_path(),
                "token_file": config.token_path(),
                // The metrics' identity labels (no `lane` label when empty).
                "lane": config.lane,
                "terminal_id": config.terminal_id,
            })
        );
    } else {
        println!(
            "config ok: API on {listen}, journal {}, token file {}",
            config.journal_path().display(),
            config.token_path().display()
        );
    }
    Ok(Exit::Ok)
}
