//! Scenarios: sale.

use super::*;

pub(super) fn sale(ctx: &mut Ctx<'_>) -> Outcome {
    reader(ctx.devices)?;
    ensure_card(ctx)?;
    let dir = tempfile::tempdir().map_err(|e| fail(format!("temporary journal directory: {e}")))?;
    let rig_host = ctx.target.rig().and_then(|r| r.host.clone());
    let fake = match &rig_host {
        Some(_) => None,
        None => Some(Arc::new(
            FakeHost::start("127.0.0.1:0", HostRules::default())
                .map_err(|e| fail(format!("fake host on 127.0.0.1: {e}")))?,
        )),
    };
    let address = match (&rig_host, &fake) {
        (Some(h), _) => h.address.clone(),
        (None, Some(f)) => f.addr().to_string(),
        (None, None) => return Err(fail("no host")),
    };
    let mut config = Config {
        journal: Some(dir.path().join("journal.sqlite")),
        card_timeout_ms: u64::try_from(ctx.limit.as_millis()).unwrap_or(u64::MAX),
        devices: ctx.target.device_config(),
        ..Config::default()
    };
    config.acquirer.address = address.clone();
    if fake.is_some() {
        config.acquirer.connect_timeout_ms = 2_000;
        config.acquirer.response_timeout_ms = 5_000;
    }
    let settings = config
        .acquirer_settings(&address)
        .map_err(|e| fail(format!("acquirer settings: {e}")))?;
    let devices = std::mem::take(ctx.devices);
    let mut terminal = Terminal::open(config, devices, Box::new(TcpAcquirer::new(settings)))
        .map_err(|e| fail(format!("the terminal service does not open: {e}")))?;
    if let Ok(keys) = pos_emv::profile_card::test_and_sim_ca_keys() {
        terminal.set_ca_keys(keys);
    }
    ctx.note(format!(
        "sale EUR {}.{:02} to {}",
        SALE_AMOUNT / 100,
        SALE_AMOUNT % 100,
        if fake.is_some() {
            format!("the fake host at {address}")
        } else {
            format!("the host at {address}")
        }
    ));
    let mut sim_hook;
    let mut no_hook = NoHook;
    let hook: &mut dyn StepHook = match &ctx.sim {
        Some(sim) => {
            sim_hook = sim.hook(Vec::new(), None);
            &mut sim_hook
        }
        None => &mut no_hook,
    };
    let result = terminal.run(&TxnRequest::sale(SALE_AMOUNT), hook);
    // The devices go back to the lane whatever happened.
    *ctx.devices = std::mem::take(terminal.devices_mut());
    let res = result.map_err(|e| fail(format!("the terminal service failed: {e}")))?;
    ctx.note(format!(
        "txn {}: {} card {} entry {} auth {} rrn {}",
        res.id,
        res.state,
        res.pan_masked.as_deref().unwrap_or("-"),
        res.entry_mode.as_deref().unwrap_or("-"),
        res.auth_code.as_deref().unwrap_or("-"),
        res.rrn.as_deref().unwrap_or("-"),
    ));
    if res.state != State::Completed {
        return Err(End::Fail {
            message: format!(
                "the sale ended {}: {}",
                res.state,
                res.reason.as_deref().unwrap_or("no reason given")
            ),
            hint: Some(
                "the case's steps and `posctl journal evidence` say where it stopped".into(),
            ),
        });
    }
    let journaled = terminal
        .journal()
        .get(res.id)
        .map_err(|e| fail(format!("journal: {e}")))?;
    if journaled.state != State::Completed {
        return Err(fail(format!(
            "the journal says {}, the result says completed",
            journaled.state
        )));
    }
    if ctx.devices.printer.is_some() && res.receipt.is_none() {
        return Err(fail("the sale completed but no receipt was printed"));
    }
    if let Some(host) = &fake {
        let approved = host.ledger().approved_not_reversed().len();
        if approved != 1 {
            return Err(fail(format!(
                "the fake host has {approved} approved authorizations, expected 1"
            )));
        }
        ctx.note("the fake host's ledger has the approval");
    }
    Ok(())
}
