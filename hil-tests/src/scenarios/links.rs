//! Scenarios: links.

use super::*;

pub(super) fn links_loopback(ctx: &mut Ctx<'_>) -> Outcome {
    let Some(rig) = ctx.target.rig() else {
        return virtual_loopback(ctx);
    };
    let uris = rig.loopback_uris();
    if uris.is_empty() {
        return Err(End::Skip("the rig names no [links] loopback".into()));
    }
    for uri in uris {
        let mut link = pos_link::open(&uri, Duration::from_secs(3)).map_err(|e| End::Fail {
            message: format!("{uri}: cannot open: {e} [{}]", e.kind()),
            hint: e.hint().map(str::to_string),
        })?;
        let report = loopback::run(&mut link, rig.links.bytes, rig.timeout());
        ctx.note(report.to_string());
        if !report.passed() {
            return Err(End::Fail {
                message: format!("{uri}: {report}"),
                hint: Some("check the loopback plug (TX-RX, RTS-CTS) or the echo peer".into()),
            });
        }
    }
    Ok(())
}

/// The virtual echo peers: a pseudo-terminal and a TCP listener on 127.0.0.1.
pub(super) fn virtual_loopback(ctx: &mut Ctx<'_>) -> Outcome {
    let link_fail = |what: &str, e: &pos_link::LinkError| device_fail(what, e);
    let (master, slave) = PtyPair::open()
        .map_err(|e| link_fail("pseudo-terminal", &e))?
        .into_parts();
    let echo = loopback::spawn_echo(master, Duration::from_secs(2));
    let mut port = SerialLink::open(&slave, SerialSettings::default())
        .map_err(|e| link_fail("pseudo-terminal slave", &e))?;
    let report = loopback::run(&mut port, 4096, Duration::from_secs(2));
    ctx.note(report.to_string());
    drop(port);
    let _ = echo.join();
    if !report.passed() {
        return Err(fail(format!("pseudo-terminal: {report}")));
    }

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| fail(format!("bind: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail(format!("local address: {e}")))?
        .port();
    let server = std::thread::spawn(move || -> Result<(), String> {
        let (s, _) = listener.accept().map_err(|e| e.to_string())?;
        let link = TcpLink::from_stream(s).map_err(|e| e.to_string())?;
        let _ = loopback::spawn_echo(link, Duration::from_secs(2)).join();
        Ok(())
    });
    let mut link = TcpLink::connect("127.0.0.1", port, Duration::from_secs(2))
        .map_err(|e| link_fail("tcp connect", &e))?;
    let report = loopback::run(&mut link, 4096, Duration::from_secs(2));
    ctx.note(report.to_string());
    drop(link);
    let _ = server.join();
    if !report.passed() {
        return Err(fail(format!("tcp: {report}")));
    }
    Ok(())
}
