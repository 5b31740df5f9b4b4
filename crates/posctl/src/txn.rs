//! `posctl sale|preauth|complete|void|refund|journal|recover|report`: the terminal service
//! on one lane, configured by a TOML file or, without one, the built-in simulated lane.

use std::path::PathBuf;

use pos_acquirer::sim::FakeHost;
use pos_acquirer::{AcquirerSettings, Operation};
use pos_emv::profile_card::Profile;
use pos_hal::CardSpec;
use pos_terminal::inject::{InjectedFault, Injection, Step, StepHook};
use pos_terminal::{CardEntry, Config, Prompt, State, Terminal, TxnRequest, TxnResult};

use crate::{CliError, Exit};

/// Options shared by the transaction commands.
#[derive(Debug, Clone, Default)]
pub struct LaneArgs {
    /// The config file (none: the built-in simulated lane).
    pub config: Option<PathBuf>,
    /// The journal file (overrides the config).
    pub journal: Option<PathBuf>,
    /// The lane's name from `--lane NAME` (sets the config's `lane`; a config naming
    /// another lane is refused).
    pub lane: Option<String>,
    /// The simulated card: a profile name, a bare test card, or a recorded session file.
    pub card: Option<String>,
}

/// The simulated card `--card` names: an EMV profile (`visa`, ...), one of pos-ccid's bare
/// test cards (`t0`, `t1`, `mute`), or a file holding a recorded session (`> `/`< ` APDU
/// lines), as `sim:ccid?card=NAME` and `sim:ccid?script=FILE` name them.
///
/// Errors: neither a known name nor a readable file, listing what is accepted.
pub fn card_spec(arg: &str) -> Result<CardSpec, CliError> {
    let name = arg.trim();
    if name.parse::<Profile>().is_ok() || pos_ccid::sim::TEST_CARDS.contains(&name) {
        return Ok(CardSpec::Named(name.to_ascii_lowercase()));
    }
    let path = std::path::Path::new(name);
    if path.is_file() {
        return Ok(CardSpec::Script(path.to_path_buf()));
    }
    let profiles: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
    Err(CliError {
        message: format!("--card {name:?}: no such card and no such file"),
        hint: Some(format!(
            "a card profile ({}), a bare test card ({}), or a recorded session file, e.g. \
             crates/pos-emv/tests/data/contact-upi.apdu",
            profiles.join(", "),
            pos_ccid::sim::TEST_CARDS.join(", ")
        )),
        exit: Exit::Error,
    })
}

/// A running lane: the service, and on a simulated lane its controls and fake host.
pub struct Lane {
    /// The service.
    pub terminal: Terminal,
    /// Controls of the simulated devices.
    pub sim: Option<pos_lane::SimLane>,
    /// The built-in fake host.
    pub host: Option<std::sync::Arc<FakeHost>>,
    /// The card of the simulated lane.
    pub card: CardSpec,
}

fn err(e: impl std::fmt::Display) -> CliError {
    CliError::new(e.to_string())
}

/// Load the config: the file, else the built-in simulated lane.
pub fn load_config(args: &LaneArgs) -> Result<Config, CliError> {
    let mut config = match &args.config {
        Some(p) => Config::load(p).map_err(err)?,
        None => Config::default(),
    };
    if let Some(j) = &args.journal {
        config.journal = Some(j.clone());
    }
    if let Some(name) = &args.lane {
        if !config.lane.is_empty() && config.lane != *name {
            return Err(CliError {
                message: format!(
                    "--lane {name}: its config says lane = {:?}, another lane",
                    config.lane
                ),
                hint: Some(format!(
                    "set lane = \"{name}\" in the lane's config, or leave `lane` out (--lane sets it)"
                )),
                exit: Exit::Error,
            });
        }
        config.lane = name.clone();
    }
    Ok(config)
}

/// Open the lane: devices from the config's URIs, the acquirer (the built-in fake host for
/// `address = "sim"`, with its ledger kept beside the journal), the journal and the key.
pub fn open(args: &LaneArgs, quiet_progress: bool) -> Result<Lane, CliError> {
    let config = load_config(args)?;
    let card = args.card.as_deref().map(card_spec).transpose()?;
    // The same lane as `posctl serve`: devices by URI, the host link (the built-in fake
    // host for `address = "sim"`, its ledger kept beside the journal).
    let parts = pos_serve::open_lane(config, card).map_err(|e| CliError {
        message: e.to_string(),
        hint: Some(crate::lane_open_hint(&e)),
        exit: Exit::Error,
    })?;
    let acquirer: Box<dyn pos_acquirer::Acquirer> = parts.acquirer;
    let configured_ca_keys = parts.config.ca_keys.is_some();
    let mut terminal = Terminal::open(parts.config, parts.devices, acquirer).map_err(|e| {
        use pos_hal::Fault;
        CliError {
            hint: match &e {
                pos_terminal::TerminalError::CaKeys(_) => Some(format!(
                    "ca_keys in the config names the CA public key file: one key per line, {}",
                    pos_emv::capk::LINE_FORMAT
                )),
                // A lost, foreign or damaged journal: its message says what to do.
                e if e.kind() == pos_hal::FaultKind::Unrecoverable => None,
                _ => Some("the journal's directory must be writable by this user".into()),
            },
            message: e.to_string(),
            exit: Exit::Error,
        }
    })?;
    if parts.sim.is_some() && !configured_ca_keys {
        // The public EMV test keys, and the simulation CA of the profile cards.
        let keys = pos_emv::profile_card::test_and_sim_ca_keys()
            .map_err(|e| CliError::new(format!("CA public keys: {e}")))?;
        terminal.set_ca_keys(keys);
    }
    // Crash tests: die right after the Nth journal write of this process.
    if let Some(n) = std::env::var("POS_TEST_CRASH_AFTER_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        terminal.journal_mut().set_crash_after_commits(Some(n));
    }
    // Power-loss tests: right after the Nth write, the journal goes back to its last
    // durable commit and the process dies.
    if let Some(n) = std::env::var("POS_TEST_POWER_LOSS_AFTER_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        terminal.journal_mut().set_power_loss_after_commits(Some(n));
    }
    if !quiet_progress {
        terminal.set_progress(Box::new(|id, msg| match id {
            Some(id) => eprintln!("[txn {id}] {msg}"),
            None => eprintln!("{msg}"),
        }));
    }
    Ok(Lane {
        terminal,
        sim: parts.sim,
        host: parts.host,
        card: parts.card,
    })
}

/// Shows prompts; on a simulated lane, pos-lane's SimHook performs the injected faults and
/// acts out the cardholder (swiping when asked for a fallback).
struct CliHook {
    inner: Option<pos_lane::SimHook>,
    json: bool,
}

impl StepHook for CliHook {
    fn at(&mut self, step: Step) {
        if let Some(h) = self.inner.as_mut() {
            h.at(step);
        }
    }
    fn prompt(&mut self, prompt: Prompt) {
        if !self.json {
            eprintln!("  >> {}", prompt.text());
        }
        if let Some(h) = self.inner.as_mut() {
            h.prompt(prompt);
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct TxnArgs {
    /// The operation.
    pub operation: Operation,
    /// Amount text (e.g. `12.50`), if the operation takes one.
    pub amount: Option<String>,
    /// The original transaction (complete, void).
    pub original: Option<i64>,
    /// Swipe instead of insert.
    pub swipe: bool,
    /// No receipt (cashier override).
    pub no_receipt: bool,
    /// Faults to inject (simulated lane only).
    pub inject: Vec<String>,
}

/// Parse `12.50`, `12`, `0.05` into minor units.
pub fn parse_amount(text: &str) -> Result<u64, CliError> {
    let bad = || {
        CliError::new(format!(
            "amount {text:?}: write it like 12.50 (at most two decimals, no sign)"
        ))
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > 2 || whole.len() > 10 {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().map_err(|_| bad())? * 10,
        _ => frac.parse().map_err(|_| bad())?,
    };
    Ok(whole * 100 + frac)
}

fn print_result(r: &TxnResult, receipt: Option<String>, json: bool) {
    let amount = pos_terminal::receipt::money(r.amount);
    if json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("amount_text".into(), serde_json::Value::String(amount));
            if let Some(text) = &receipt {
                obj.insert("receipt".into(), serde_json::Value::String(text.clone()));
            }
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    println!(
        "transaction {}: {} {} {} -> {}",
        r.id,
        r.operation,
        pos_terminal::receipt::currency_name(r.currency),
        amount,
        r.state
    );
    if let Some(p) = &r.pan_masked {
        println!(
            "  card     {p} ({})",
            r.entry_mode.as_deref().unwrap_or("-")
        );
    }
    if let Some(a) = &r.auth_code {
        println!("  auth     {a}  rrn {}", r.rrn.as_deref().unwrap_or("-"));
    }
    if let Some(reason) = &r.reason {
        println!("  reason   {reason}");
    }
    println!("  meaning  {}", meaning(r.state));
    if let Some(text) = receipt {
        println!("\n--- receipt (as printed) ---\n{text}\n----------------------------");
    }
}

fn meaning(state: State) -> &'static str {
    match state {
        State::Completed => "approved; the customer was charged",
        State::Declined => "declined; nothing was charged",
        State::Aborted => "stopped before any authorization; nothing was charged",
        State::Reversed => "did not complete; the authorization was reversed (not charged)",
        State::ReversalPending => {
            "did not complete; a reversal is queued (posctl recover retries it)"
        }
        State::ReversalStuck => {
            "did not complete; the host rejects the reversal: call the acquirer (posctl journal evidence ID)"
        }
        State::ReceiptOwed => {
            "approved and charged; the receipt is owed (printed when the printer is ready)"
        }
        _ => "in flight",
    }
}

/// Run one transaction.
pub fn run(lane_args: &LaneArgs, t: &TxnArgs, json: bool) -> Result<Exit, CliError> {
    let injections: Vec<Injection> = t
        .inject
        .iter()
        .map(|s| s.parse::<Injection>().map_err(CliError::new))
        .collect::<Result<_, _>>()?;
    let amount = match &t.amount {
        Some(a) => parse_amount(a)?,
        None => 0,
    };
    let mut lane = open(lane_args, json)?;
    if !injections.is_empty() {
        let host_needed = injections.iter().any(|i| i.fault.is_host_fault());
        let device_needed = injections
            .iter()
            .any(|i| !i.fault.is_host_fault() && i.fault != InjectedFault::Crash);
        if (host_needed && lane.host.is_none()) || (device_needed && lane.sim.is_none()) {
            return Err(CliError::new(
                "--inject works on the simulated lane only (sim: devices and acquirer address \"sim\")",
            ));
        }
    }
    let recovered = lane.terminal.recover().map_err(err)?;
    if !recovered.moved.is_empty() && !json {
        eprintln!(
            "start-up recovery: {} transaction(s) from an earlier run moved on",
            recovered.moved.len()
        );
    }
    let host_for_hook = lane.host.clone();
    let inner = lane.sim.as_ref().map(|sim| {
        let host_cb = host_for_hook.map(|h| pos_lane::arm_fake_host(h, &injections));
        sim.hook(injections.clone(), host_cb)
    });
    if t.swipe {
        if let Some(sim) = &lane.sim {
            sim.swipe(lane.card.clone()).map_err(err)?;
        }
    }
    let mut hook = CliHook { inner, json };
    let req = TxnRequest {
        operation: t.operation,
        amount,
        entry: if t.swipe {
            CardEntry::Swipe
        } else {
            CardEntry::Chip
        },
        original: t.original,
        no_receipt: t.no_receipt,
    };
    let result = lane.terminal.run(&req, &mut hook);
    if let Some(h) = &lane.host {
        if let Err(e) = h.set_down(false) {
            log::warn!("fake host: cannot come back up: {e}");
        }
        h.clear_faults();
    }
    let result = result.map_err(|e| CliError {
        message: e.to_string(),
        hint: None,
        exit: Exit::Error,
    })?;
    let receipt = match &lane.sim {
        Some(sim) if result.receipt.is_some() => sim.last_receipt().or(result.receipt.clone()),
        _ => result.receipt.clone(),
    };
    print_result(&result, receipt, json);
    Ok(if result.state == State::Completed {
        Exit::Ok
    } else {
        Exit::DeviceFault
    })
}

/// `posctl recover`: start-up recovery and a forced reversal drain.
pub fn recover(lane_args: &LaneArgs, json: bool) -> Result<Exit, CliError> {
    let mut lane = open(lane_args, json)?;
    let r = lane.terminal.recover().map_err(err)?;
    let pending = lane
        .terminal
        .journal()
        .in_states(&[
            State::ReversalPending,
            State::ReversalStuck,
            State::ReceiptOwed,
        ])
        .map_err(err)?;
    if json {
        let body = serde_json::json!({
            "moved": r.moved.iter().map(|(id, from, to)| serde_json::json!({"id": id, "from": from, "to": to})).collect::<Vec<_>>(),
            "drain": r.drain,
            "reprinted": r.reprinted,
            "settlement": r.settlement,
            "outstanding": pending.iter().map(pos_terminal::report::Brief::from).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        println!("recovered {} in-flight transaction(s)", r.moved.len());
        for (id, from, to) in &r.moved {
            println!("  {id}: {from} -> {to}");
        }
        println!(
            "reversals: {} reversed, {} rejected, {} unanswered, {} now stuck",
            r.drain.reversed.len(),
            r.drain.rejected.len(),
            r.drain.unanswered.len(),
            r.drain.stuck.len()
        );
        println!("owed receipts printed: {}", r.reprinted.len());
        if let Some(s) = &r.settlement {
            println!("{s}");
        }
        for t in &pending {
            println!("  outstanding {} {} {}", t.id, t.state, meaning(t.state));
        }
    }
    Ok(if pending.is_empty() {
        Exit::Ok
    } else {
        Exit::DeviceFault
    })
}

/// What `posctl reversal` does with a stuck reversal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StuckAction {
    /// Send it again (the note says why).
    Requeue(String),
    /// The acquirer reversed it (its reference).
    Resolve(String),
}

/// `posctl reversal requeue|resolve ID`: the operator's action on a stuck reversal; a
/// requeued one is sent at once. Exit 0 when it ended reversed, 2 when it is still pending
/// or stuck, 1 for a refusal (not stuck, unknown, words that cannot be journaled).
pub fn stuck_reversal(
    lane_args: &LaneArgs,
    id: i64,
    action: &StuckAction,
    json: bool,
) -> Result<Exit, CliError> {
    let mut lane = open(lane_args, json)?;
    let drain = match action {
        StuckAction::Requeue(note) => {
            lane.terminal
                .requeue_stuck_reversal(id, note)
                .map_err(err)?;
            Some(lane.terminal.drain_reversals(false).map_err(err)?)
        }
        StuckAction::Resolve(reference) => {
            lane.terminal
                .resolve_stuck_reversal(id, reference)
                .map_err(err)?;
            None
        }
    };
    let t = lane.terminal.journal().get(id).map_err(err)?;
    if json {
        let body = serde_json::json!({
            "id": id,
            "state": t.state,
            "drain": drain,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        println!("transaction {id}: {} ({})", t.state, meaning(t.state));
    }
    Ok(if t.state == State::Reversed {
        Exit::Ok
    } else {
        Exit::DeviceFault
    })
}

fn open_journal(lane_args: &LaneArgs) -> Result<(Config, pos_terminal::Journal), CliError> {
    let config = load_config(lane_args)?;
    let path = config.journal_path();
    if !path.exists() {
        return Err(CliError {
            message: format!("no journal at {}", path.display()),
            hint: Some("run a sale first, or pass --journal / --config".into()),
            exit: Exit::Error,
        });
    }
    // Reading commands never write: a copy handed to a technician or a read-only disk
    // can be listed, reported and backed up.
    let j = pos_terminal::Journal::open_read_only(&path).map_err(err)?;
    Ok((config, j))
}

/// The error of a journal that does not open for the lane, with the instruction it carries.
fn journal_refused(e: pos_terminal::journal::JournalError) -> CliError {
    use pos_hal::Fault;
    CliError {
        exit: if e.kind() == pos_hal::FaultKind::Unrecoverable {
            Exit::DeviceFault
        } else {
            Exit::Error
        },
        message: e.to_string(),
        hint: None,
    }
}

/// `posctl journal check`: SQLite's integrity check, identity against the marker,
/// counters. Exit 2 when the journal is not sound or not the lane's.
fn journal_check(config: &Config, json: bool) -> Result<Exit, CliError> {
    use pos_terminal::identity::{Marker, marker_path};
    let path = config.journal_path();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        let marker = Marker::load(&marker_path(&path)).map_err(err)?;
        return match marker {
            Some(m) => Err(journal_refused(
                pos_terminal::journal::JournalError::IdentityLost {
                    path: path.clone(),
                    marker: marker_path(&path),
                    terminal_id: m.terminal_id,
                },
            )),
            None => Err(CliError {
                message: format!("no journal at {}", path.display()),
                hint: Some("run a sale first, or pass --journal / --config".into()),
                exit: Exit::Error,
            }),
        };
    }
    let j = pos_terminal::Journal::open_read_only(&path).map_err(|e| CliError {
        message: e.to_string(),
        hint: Some(
            "the file cannot be read as a journal: put the last backup back, or start a new \
             journal with `posctl journal init --new-identity`"
                .into(),
        ),
        exit: Exit::DeviceFault,
    })?;
    let r = j.check().map_err(err)?;
    if json {
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        v["ok"] = r.ok().into();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("journal {}", r.path.display());
        println!("  integrity:   {}", r.integrity.join("; "));
        println!(
            "  identity:    {}",
            r.terminal_id
                .as_deref()
                .unwrap_or("(none: a journal from before identities)")
        );
        match &r.marker {
            Some((p, id)) if Some(id) == r.terminal_id.as_ref() => {
                println!("  marker:      {} (matches)", p.display())
            }
            Some((p, id)) => println!("  marker:      {} says {id}: NOT this journal", p.display()),
            None => println!("  marker:      none yet (written when the lane opens the journal)"),
        }
        println!(
            "  STANs used:  {} (next on the wire {})",
            r.stan_seq,
            r.stan_seq % 999_999 + 1
        );
        println!(
            "  transactions: {} ({} in flight)",
            r.transactions, r.in_flight
        );
        println!("  verdict:     {}", if r.ok() { "ok" } else { "NOT OK" });
    }
    Ok(if r.ok() { Exit::Ok } else { Exit::DeviceFault })
}

/// `posctl journal init --new-identity`.
fn journal_init(config: &Config, new_identity: bool, json: bool) -> Result<Exit, CliError> {
    use pos_terminal::journal::JournalError;
    let path = config.journal_path();
    if !new_identity {
        return Err(CliError {
            message: "journal init needs --new-identity: it starts a new terminal identity".into(),
            hint: Some(
                "only after the lane's journal was lost, emptied, damaged or replaced, and no \
                 backup can be put back (posctl journal check says what is wrong)"
                    .into(),
            ),
            exit: Exit::Error,
        });
    }
    match pos_terminal::Journal::open(&path) {
        Ok(j) => {
            return Err(CliError {
                message: format!(
                    "the journal {} is healthy (identity {}): nothing to do",
                    path.display(),
                    j.terminal_id()
                ),
                hint: None,
                exit: Exit::Error,
            });
        }
        Err(
            JournalError::IdentityLost { .. }
            | JournalError::Foreign { .. }
            | JournalError::Damaged { .. }
            | JournalError::MarkerDamaged { .. },
        ) => {}
        Err(e) => return Err(journal_refused(e)),
    }
    let n = pos_terminal::Journal::init_new_identity(&path).map_err(err)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&n).unwrap_or_default());
    } else {
        println!(
            "new journal {} with terminal identity {}",
            path.display(),
            n.terminal_id
        );
        if let Some(p) = &n.previous {
            println!("  previous identity {p}");
        }
        for p in &n.moved_aside {
            println!("  set aside: {}", p.display());
        }
        println!("  the next request carries STAN {}", n.next_stan);
    }
    Ok(Exit::Ok)
}

/// What `posctl journal` does.
#[derive(Debug, Clone)]
pub enum JournalAction {
    /// Latest transactions (`true`: the archived ones).
    List(u32, bool),
    /// One transaction with its timeline, events and host messages.
    Show(i64),
    /// Pending and stuck reversals, owed receipts.
    Pending,
    /// Dispute evidence JSON.
    Evidence(i64),
    /// Online backup to a file.
    Backup(PathBuf),
    /// Integrity, identity and counters.
    Check,
    /// A settlement's evidence (JSON).
    Settlement(i64),
    /// A new journal with a new identity (`true`: --new-identity given).
    Init(bool),
    /// Apply the retention policy now (keep this many days instead of the config's).
    Archive(Option<u32>),
}

/// `posctl journal ...`.
pub fn journal(lane_args: &LaneArgs, action: &JournalAction, json: bool) -> Result<Exit, CliError> {
    match action {
        JournalAction::Check => return journal_check(&load_config(lane_args)?, json),
        JournalAction::Init(new_identity) => {
            return journal_init(&load_config(lane_args)?, *new_identity, json);
        }
        JournalAction::Archive(keep_days) => {
            return journal_archive(&load_config(lane_args)?, *keep_days, json);
        }
        JournalAction::List(n, true) => {
            return archive_list(&load_config(lane_args)?, *n, json);
        }
        _ => {}
    }
    let (config, j) = open_journal(lane_args)?;
    // A transaction no longer in the journal is looked for in the archive files.
    let (j, from_archive) = match action {
        JournalAction::Show(id) | JournalAction::Evidence(id) if j.get(*id).is_err() => {
            match find_archived(&config, *id)? {
                Some((file, a)) => (a, Some(file)),
                None => (j, None),
            }
        }
        _ => (j, None),
    };
    if let (Some(file), false) = (&from_archive, json) {
        if matches!(action, JournalAction::Show(_)) {
            println!("(archived: {})", file.display());
        }
    }
    match action {
        JournalAction::List(n, _) => {
            let rows = j.list(*n).map_err(err)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
            } else {
                for t in rows {
                    println!("{}", list_line(&t));
                }
            }
        }
        JournalAction::Show(id) | JournalAction::Evidence(id) => {
            let doc = pos_terminal::report::evidence(&j, &config, *id).map_err(err)?;
            if json || matches!(action, JournalAction::Evidence(_)) {
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                println!("{}", doc["summary"].as_str().unwrap_or(""));
                let t = j.get(*id).map_err(err)?;
                println!(
                    "transaction {}: {} {} {} ({})",
                    t.id,
                    t.kind.name(),
                    pos_terminal::receipt::money(t.amount),
                    t.state,
                    t.pan_masked.as_deref().unwrap_or("no card")
                );
                println!("timeline:");
                for e in j.timeline(*id).map_err(err)? {
                    println!(
                        "  {}  {:<16} {}",
                        pos_terminal::time::human(e.at_ms),
                        e.state.name(),
                        e.note
                    );
                }
                let events = j.events(Some(*id)).map_err(err)?;
                if !events.is_empty() {
                    println!("events:");
                    for e in events {
                        println!(
                            "  {}  {:<8} {}",
                            pos_terminal::time::human(e.at_ms),
                            e.kind,
                            e.detail
                        );
                    }
                }
                println!("host messages:");
                for m in j.host_messages(*id).map_err(err)? {
                    println!(
                        "  {}  {:<8} {:<8} #{} {} {} {}",
                        pos_terminal::time::human(m.at_ms),
                        m.purpose,
                        m.direction,
                        m.attempt,
                        m.mti.as_deref().unwrap_or(""),
                        m.response_code
                            .as_deref()
                            .map(|c| format!("rc {c}"))
                            .unwrap_or_default(),
                        m.elapsed_ms.map(|e| format!("{e} ms")).unwrap_or_default()
                    );
                }
            }
        }
        JournalAction::Pending => {
            let rows = j
                .in_states(&[
                    State::ReversalPending,
                    State::ReversalStuck,
                    State::ReceiptOwed,
                ])
                .map_err(err)?;
            let briefs: Vec<pos_terminal::report::Brief> =
                rows.iter().map(pos_terminal::report::Brief::from).collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&briefs).unwrap_or_default()
                );
            } else if briefs.is_empty() {
                println!("nothing pending: no reversals to send, no receipts owed");
            } else {
                for b in &briefs {
                    println!(
                        "{:>6}  {:<16} {:>10}  attempts {} rejections {}  {}",
                        b.id,
                        b.state.name(),
                        pos_terminal::receipt::money(b.amount),
                        b.reversal_attempts,
                        b.reversal_rejections,
                        b.reason.as_deref().unwrap_or("")
                    );
                }
            }
            return Ok(if briefs.is_empty() {
                Exit::Ok
            } else {
                Exit::DeviceFault
            });
        }
        JournalAction::Backup(dest) => {
            j.backup(dest).map_err(err)?;
            if json {
                println!("{}", serde_json::json!({"backup": dest}));
            } else {
                println!("journal backed up to {}", dest.display());
            }
        }
        JournalAction::Settlement(id) => {
            let doc = pos_terminal::report::settlement_evidence(&j, &config, *id).map_err(err)?;
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        JournalAction::Check | JournalAction::Init(_) | JournalAction::Archive(_) => {}
    }
    Ok(Exit::Ok)
}

/// One line of `journal list`.
fn list_line(t: &pos_terminal::Txn) -> String {
    format!(
        "{:>6}  {}  {:<10} {:>10}  {:<16} {:<16} {}",
        t.id,
        pos_terminal::time::human(t.created_ms),
        t.kind.name(),
        pos_terminal::receipt::money(t.amount),
        t.state.name(),
        t.pan_masked.as_deref().unwrap_or("-"),
        t.reason.as_deref().unwrap_or("")
    )
}

/// The archive file holding transaction `id`, opened read-only (newest file first).
fn find_archived(
    config: &Config,
    id: i64,
) -> Result<Option<(PathBuf, pos_terminal::Journal)>, CliError> {
    let files = pos_terminal::journal::archive_files(&config.archive_dir());
    for file in files.into_iter().rev() {
        let a = pos_terminal::Journal::open_read_only(&file).map_err(err)?;
        if a.get(id).is_ok() {
            return Ok(Some((file, a)));
        }
    }
    Ok(None)
}

/// `posctl journal list --archive`: the latest archived transactions, newest file first.
fn archive_list(config: &Config, limit: u32, json: bool) -> Result<Exit, CliError> {
    let dir = config.archive_dir();
    let files = pos_terminal::journal::archive_files(&dir);
    if files.is_empty() && !json {
        println!("no archive files in {}", dir.display());
        return Ok(Exit::Ok);
    }
    let mut rows = Vec::new();
    for file in files.iter().rev() {
        let left = limit.saturating_sub(u32::try_from(rows.len()).unwrap_or(u32::MAX));
        if left == 0 {
            break;
        }
        let a = pos_terminal::Journal::open_read_only(file).map_err(err)?;
        let mut txns = a.list(left).map_err(err)?;
        txns.sort_by_key(|t| std::cmp::Reverse(t.id));
        rows.extend(txns.into_iter().map(|t| (file.clone(), t)));
    }
    if json {
        let doc: Vec<_> = rows
            .iter()
            .map(|(f, t)| serde_json::json!({"archive": f, "transaction": t}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    let mut shown: Option<&PathBuf> = None;
    for (file, t) in &rows {
        if shown != Some(file) {
            println!("{}:", file.display());
            shown = Some(file);
        }
        println!("{}", list_line(t));
    }
    Ok(Exit::Ok)
}

/// `posctl journal archive`: the retention policy, now.
fn journal_archive(config: &Config, keep_days: Option<u32>, json: bool) -> Result<Exit, CliError> {
    let path = config.journal_path();
    if !path.exists() {
        return Err(CliError {
            message: format!("no journal at {}", path.display()),
            hint: Some("pass --journal / --config".into()),
            exit: Exit::Error,
        });
    }
    let mut j = pos_terminal::Journal::open(&path).map_err(journal_refused)?;
    // Crash tests: die right after the Nth write (the note, the copy, the delete).
    if let Some(n) = std::env::var("POS_TEST_CRASH_AFTER_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        j.set_crash_after_commits(Some(n));
    }
    let keep = keep_days.unwrap_or(config.retention.keep_days);
    let dir = config.archive_dir();
    if !json {
        eprintln!(
            "archiving closed transactions older than {keep} day(s) from {} to {} ...",
            path.display(),
            dir.display()
        );
    }
    // In batches, with progress: a first run on years of history moves a lot.
    let mut r = pos_terminal::journal::ArchiveReport::default();
    loop {
        let step = j
            .archive(keep, &dir, pos_terminal::journal::now_ms(), 10_000)
            .map_err(err)?;
        r.moved += step.moved;
        r.events_moved += step.events_moved;
        r.sealed_erased += step.sealed_erased;
        r.kept = step.kept;
        r.resumed |= step.resumed;
        for f in step.files {
            if !r.files.contains(&f) {
                r.files.push(f);
            }
        }
        if !step.more {
            break;
        }
        if !json {
            eprintln!("  {} moved so far ...", r.moved);
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        if r.resumed {
            println!("finished an archive move that was interrupted");
        }
        println!(
            "moved {} transaction(s) and {} lane event(s); kept {} old one(s) still open (reversal pending or stuck, receipt owed, open pre-authorization, or tied to one); sealed card data erased from {}",
            r.moved, r.events_moved, r.kept, r.sealed_erased
        );
        for f in &r.files {
            println!("  {}", f.display());
        }
    }
    Ok(Exit::Ok)
}

/// `posctl report`.
pub fn report(lane_args: &LaneArgs, all: bool, json: bool) -> Result<Exit, CliError> {
    let (config, j) = open_journal(lane_args)?;
    let since = if all {
        0
    } else {
        let now = pos_terminal::journal::now_ms();
        now - now.rem_euclid(86_400_000)
    };
    let r = pos_terminal::report::report(&j, since).map_err(err)?;
    let b = pos_terminal::report::batch_report(&j, pos_terminal::journal::now_ms()).map_err(err)?;
    if json {
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("batch".into(), serde_json::to_value(&b).unwrap_or_default());
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let cur = pos_terminal::receipt::currency_name(config.currency);
        let m = pos_terminal::receipt::money;
        println!(
            "report for terminal {} since {}",
            config.terminal_id,
            pos_terminal::time::human(since)
        );
        println!(
            "  sales           {:>5}  {cur} {:>12}",
            r.sales.count,
            m(r.sales.amount)
        );
        println!(
            "  refunds         {:>5}  {cur} {:>12}",
            r.refunds.count,
            m(r.refunds.amount)
        );
        println!(
            "  voids           {:>5}  {cur} {:>12}",
            r.voids.count,
            m(r.voids.amount)
        );
        println!(
            "  open pre-auths  {:>5}  {cur} {:>12}",
            r.open_preauths.count,
            m(r.open_preauths.amount)
        );
        println!(
            "  net                    {cur} {:>12}",
            format!(
                "{}{}",
                if r.net < 0 { "-" } else { "" },
                m(r.net.unsigned_abs())
            )
        );
        println!(
            "  declined {}, aborted {}, reversed {}",
            r.declined.count, r.aborted.count, r.reversed.count
        );
        for (title, list) in [
            ("reversals pending", &r.reversal_pending),
            ("REVERSALS STUCK (call the acquirer)", &r.reversal_stuck),
            ("receipts owed", &r.receipts_owed),
        ] {
            println!("  {title}: {}", list.len());
            for b in list {
                println!(
                    "    {} {} {} {}",
                    b.id,
                    b.operation,
                    m(b.amount),
                    b.reason.as_deref().unwrap_or("")
                );
            }
        }
        print_batch_report(&b);
    }
    Ok(if r.reversal_stuck.is_empty() && b.differences.is_empty() {
        Exit::Ok
    } else {
        Exit::DeviceFault
    })
}

/// The batch part of `posctl report`: open batch, last settlement and its differences,
/// open pre-authorizations with their age.
fn print_batch_report(b: &pos_terminal::report::BatchReport) {
    let m = pos_terminal::receipt::money;
    println!("  open batch: {}", b.open_batch);
    if let Some(s) = &b.unfinished_settlement {
        println!(
            "  SETTLEMENT NOT FINISHED: batch {} ({}), `posctl settle` resumes it",
            s.batch, s.state
        );
    }
    match &b.last_settlement {
        Some(s) => println!(
            "  last settlement: {} batch {} {} ({})",
            s.id,
            s.batch,
            s.state,
            pos_terminal::time::human(s.updated_ms)
        ),
        None => println!("  last settlement: none yet"),
    }
    if !b.differences.is_empty() {
        println!(
            "  DIFFERENCES WITH THE HOST ({}): posctl journal settlement ID",
            b.differences.len()
        );
        for d in &b.differences {
            println!(
                "    [{}] {}{} -> {}",
                d.kind,
                d.txn_id.map(|t| format!("txn {t}: ")).unwrap_or_default(),
                d.detail,
                d.action
            );
        }
    }
    println!("  open pre-auths: {}", b.open_preauths.len());
    for p in &b.open_preauths {
        println!(
            "    {} {} {} batch {} age {} day(s), expires {}{}",
            p.id,
            m(p.amount),
            p.pan_masked.as_deref().unwrap_or("-"),
            p.batch.map_or("-".into(), |b| b.to_string()),
            p.age_days,
            p.expires,
            if p.expired { " (EXPIRED)" } else { "" }
        );
    }
}

/// `posctl settle`: resume an unfinished settlement, or recover and settle the open batch.
pub fn settle(
    lane_args: &LaneArgs,
    force: bool,
    disagree: &[String],
    json: bool,
) -> Result<Exit, CliError> {
    let disagreements: Vec<pos_acquirer::sim::Disagreement> = disagree
        .iter()
        .map(|d| d.parse().map_err(CliError::new))
        .collect::<Result<_, _>>()?;
    let mut lane = open(lane_args, json)?;
    if !disagreements.is_empty() {
        let Some(host) = &lane.host else {
            return Err(CliError::new(
                "--disagree works on the simulated lane only (acquirer address \"sim\")",
            ));
        };
        for d in &disagreements {
            let e = host
                .disagree(*d)
                .map_err(|e| CliError::new(format!("--disagree {}: {e}", d.name())))?;
            if !json {
                eprintln!(
                    "fake host: {} (STAN {}, amount {}, RRN {})",
                    d.name(),
                    e.stan,
                    pos_terminal::receipt::money(e.amount),
                    e.rrn
                );
            }
        }
    }
    let unfinished = lane
        .terminal
        .journal()
        .unfinished_settlement()
        .map_err(err)?;
    let mut drained = pos_terminal::DrainReport::default();
    if unfinished.is_none() {
        // A crashed sale first (recovery would also resume a settlement: there is none);
        // its reversal drain is the settlement's "pending reversals first".
        let r = lane.terminal.recover().map_err(err)?;
        drained = r.drain.clone();
        if !r.moved.is_empty() && !json {
            eprintln!(
                "start-up recovery: {} transaction(s) from an earlier run moved on",
                r.moved.len()
            );
        }
    }
    let r = lane.terminal.settle(force).map_err(|e| CliError {
        message: e.to_string(),
        hint: match &e {
            pos_terminal::TerminalError::Settlement(_) => {
                Some("`posctl report` shows the lane's state; `posctl settle` tries again".into())
            }
            _ => None,
        },
        exit: Exit::DeviceFault,
    })?;
    let mut r = r;
    for (all, more) in [
        (&mut r.reversals.reversed, drained.reversed),
        (&mut r.reversals.rejected, drained.rejected),
        (&mut r.reversals.stuck, drained.stuck),
    ] {
        for id in more {
            if !all.contains(&id) {
                all.push(id);
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        let m = pos_terminal::receipt::money;
        println!(
            "settlement {} of batch {}: {}{}",
            r.id,
            r.batch,
            r.state,
            if r.resumed { " (resumed)" } else { "" }
        );
        for t in &r.totals {
            println!(
                "  {} debits {} {}, credits {} {}, reversals {} {}, voids {} {}",
                pos_terminal::receipt::currency_name(t.currency),
                t.debits.count,
                m(t.debits.amount),
                t.credits.count,
                m(t.credits.amount),
                t.debit_reversals.count + t.credit_reversals.count,
                m(t.debit_reversals.amount + t.credit_reversals.amount),
                t.voids.count,
                m(t.voids.amount)
            );
        }
        if !r.reversals.reversed.is_empty() {
            println!("  pending reversals sent first: {:?}", r.reversals.reversed);
        }
        if r.differences.is_empty() {
            println!("  no differences");
        } else {
            println!("  differences ({}):", r.differences.len());
            for d in &r.differences {
                println!(
                    "    [{}] {}{}\n      -> {}",
                    d.kind,
                    d.txn_id.map(|t| format!("txn {t}: ")).unwrap_or_default(),
                    d.detail,
                    d.action
                );
            }
            println!("  evidence: posctl journal settlement {}", r.id);
        }
        if let Some(text) = &r.receipt {
            println!("\n--- settlement receipt ---\n{text}\n--------------------------");
        }
    }
    Ok(if r.differences.is_empty() {
        Exit::Ok
    } else {
        Exit::DeviceFault
    })
}

/// For `posctl host check` without a config: the configured acquirer settings.
pub fn acquirer_settings(
    lane_args: &LaneArgs,
    address: Option<&str>,
) -> Result<AcquirerSettings, CliError> {
    let config = load_config(lane_args)?;
    let address = match address {
        Some(a) => a.to_string(),
        None if config.acquirer.address == "sim" => {
            return Err(CliError {
                message: "the acquirer is the built-in simulator (address \"sim\")".into(),
                hint: Some("pass --address HOST:PORT, or a --config naming the real host".into()),
                exit: Exit::Error,
            });
        }
        None => config.acquirer.address.clone(),
    };
    config.acquirer_settings(&address).map_err(CliError::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("12.50").unwrap(), 1250);
        assert_eq!(parse_amount("12").unwrap(), 1200);
        assert_eq!(parse_amount("0.5").unwrap(), 50);
        assert_eq!(parse_amount(".05").unwrap(), 5);
        for bad in ["", ".", "-1", "1.234", "1,50", "12.5x", "99999999999"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }
}
