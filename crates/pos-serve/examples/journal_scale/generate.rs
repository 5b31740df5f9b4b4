//! A journal of N transactions as a lane writes them, fast: the journal is created by
//! [`Journal::open`] (its real schema, identity and marker), then the rows go in directly,
//! in one SQLite transaction with prepared statements. Each row has the shape the service
//! writes (copied from journals of real simulated sales): the same columns set in each
//! state, the same timeline notes, host-message summaries and events.
//!
//! The mix, per 1,000 transactions: 805 approved chip sales with a printed receipt, 30
//! chip cards swiped first (a prompt, then the chip), 20 without a receipt, 5 whose receipt
//! was owed (paper out) and reprinted, 50 declined (51, 05, 91), 20 aborted (card pulled
//! before sending), 3 reversed because the card was pulled after the approval, 2 reversed
//! after a host timeout, 15 voids of an earlier sale of the day, 25 refunds, 15
//! pre-authorizations, 10 completions of one of them. Everything resolved: no reversal
//! pending, nothing in flight, and the sealed card data erased as retention leaves it (kept
//! only by open pre-authorizations): a lane's steady state.

use std::path::Path;
use std::time::Instant;

use pos_terminal::Journal;
use rusqlite::{Connection, params};

const DAY_MS: i64 = 86_400_000;

/// What was generated.
pub struct Generated {
    /// Timeline entries written.
    pub timeline: u64,
    /// Host messages written.
    pub host_messages: u64,
    /// Events written.
    pub events: u64,
    /// Seconds it took.
    pub seconds: f64,
}

/// splitmix64: a small deterministic generator (the journal is the same at every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() & 0xFF) as u8).collect()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    Approved,
    Swiped,
    NoReceipt,
    PaperOut,
    Declined,
    Aborted,
    ReversedCardPulled,
    ReversedTimeout,
    Void,
    Refund,
    PreAuth,
    Completion,
}

fn scenario(r: u64) -> Scenario {
    use Scenario::*;
    match r {
        0..805 => Approved,
        805..835 => Swiped,
        835..855 => NoReceipt,
        855..860 => PaperOut,
        860..910 => Declined,
        910..930 => Aborted,
        930..933 => ReversedCardPulled,
        933..935 => ReversedTimeout,
        935..950 => Void,
        950..975 => Refund,
        975..990 => PreAuth,
        _ => Completion,
    }
}

/// A card of the pool: masked PAN, keyed hash, AID, label.
struct Card {
    masked: String,
    hash: String,
    aid: &'static str,
    label: &'static str,
}

fn cards(rng: &mut Rng, n: usize) -> Vec<Card> {
    const BRANDS: [(&str, &str, &str); 4] = [
        ("476173", "A0000000031010", "VISA CREDIT"),
        ("476173", "A0000000032010", "VISA ELECTRON"),
        ("541333", "A0000000041010", "MASTERCARD"),
        ("622126", "A000000333010101", "UnionPay Credit"),
    ];
    (0..n)
        .map(|_| {
            let (bin, aid, label) = BRANDS[rng.below(4) as usize];
            let hash: String = rng.bytes(32).iter().map(|b| format!("{b:02x}")).collect();
            Card {
                masked: format!("{bin}******{:04}", rng.below(10_000)),
                hash,
                aid,
                label,
            }
        })
        .collect()
}

fn money(amount: u64) -> String {
    format!("{}.{:02}", amount / 100, amount % 100)
}

/// Field 7 and fields 12/13 at `ms`.
fn wire_time(ms: i64) -> (String, String, String) {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    let (hms, mmdd) = pos_terminal::time::local_time(secs);
    (pos_terminal::time::transmission_time(secs), hms, mmdd)
}

/// What a transaction's request looked like, for the summaries.
struct Request<'a> {
    mti: &'a str,
    processing: &'a str,
    amount: u64,
    stan: u32,
    at_ms: i64,
    pan: &'a str,
    /// For a reference transaction (void, completion): the original's
    /// (mti, stan, transmission time, rrn, auth code).
    original: Option<(&'a str, u32, &'a str, &'a str, &'a str)>,
}

fn request_summary(r: &Request<'_>) -> String {
    let (tt, hms, mmdd) = wire_time(r.at_ms);
    let mut f = format!(
        "2: \"{}\", 3: \"{}\", 4: \"{:012}\", 7: \"{tt}\", 11: \"{:06}\", 12: \"{hms}\", \
         13: \"{mmdd}\", 14: \"3112\", 22: \"{}\", 23: \"001\", 25: \"00\", ",
        r.pan,
        r.processing,
        r.amount,
        r.stan,
        if r.original.is_some() { "012" } else { "051" }
    );
    match r.original {
        Some((mti, stan, ott, rrn, auth)) => f.push_str(&format!(
            "37: \"{rrn}\", 38: \"{auth}\", 41: \"TERM0001\", 42: \"MERCHANT0000001\", \
             49: \"978\", 90: \"{mti}{stan:06}{ott}0000000000000000000000\""
        )),
        None => f.push_str(
            "41: \"TERM0001\", 42: \"MERCHANT0000001\", 49: \"978\", 55: <123 bytes redacted>",
        ),
    }
    format!("Message {{ mti: Mti({}), fields: {{{f}}} }}", r.mti)
}

fn response_summary(
    r: &Request<'_>,
    code: &str,
    rrn: &str,
    auth: Option<&str>,
    chip: bool,
) -> String {
    let (tt, hms, mmdd) = wire_time(r.at_ms);
    let mti = match r.mti {
        "0100" => "0110",
        _ => "0210",
    };
    let auth = auth.map(|a| format!("38: \"{a}\", ")).unwrap_or_default();
    let icc = if chip && code == "00" {
        ", 55: <12 bytes redacted>"
    } else {
        ""
    };
    format!(
        "Message {{ mti: Mti({mti}), fields: {{3: \"{}\", 4: \"{:012}\", 7: \"{tt}\", \
         11: \"{:06}\", 12: \"{hms}\", 13: \"{mmdd}\", 37: \"{rrn}\", {auth}39: \"{code}\", \
         41: \"TERM0001\", 42: \"MERCHANT0000001\", 49: \"978\"{icc}}} }}",
        r.processing, r.amount, r.stan
    )
}

fn reversal_summaries(
    r: &Request<'_>,
    stan: u32,
    at_ms: i64,
    reason_code: &str,
    approved: Option<(&str, &str)>,
    host_rrn: &str,
) -> (String, String) {
    let (tt, _, _) = wire_time(at_ms);
    let (ott, _, _) = wire_time(r.at_ms);
    let ids = approved
        .map(|(rrn, auth)| format!("37: \"{rrn}\", 38: \"{auth}\", "))
        .unwrap_or_default();
    let sent = format!(
        "Message {{ mti: Mti(0400), fields: {{2: \"{}\", 3: \"{}\", 4: \"{:012}\", 7: \"{tt}\", \
         11: \"{stan:06}\", 14: \"3112\", 25: \"{reason_code}\", {ids}41: \"TERM0001\", \
         42: \"MERCHANT0000001\", 49: \"978\", 90: \"{}{:06}{ott}0000000000000000000000\"}} }}",
        r.pan, r.processing, r.amount, r.mti, r.stan
    );
    let received = format!(
        "Message {{ mti: Mti(0410), fields: {{3: \"{}\", 4: \"{:012}\", 7: \"{tt}\", \
         11: \"{stan:06}\", 37: \"{host_rrn}\", 39: \"00\", 41: \"TERM0001\", \
         42: \"MERCHANT0000001\", 49: \"978\"}} }}",
        r.processing, r.amount
    );
    (sent, received)
}

/// A host message: at, purpose, direction, MTI, STAN, response code, round trip, summary.
type HostRow = (
    i64,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<u32>,
    Option<String>,
    Option<i64>,
    String,
);

/// The row of `txn`, as the service leaves it at the end.
#[derive(Default)]
struct Row {
    id: i64,
    kind: &'static str,
    state: &'static str,
    amount: u64,
    pan_masked: Option<String>,
    pan_hash: Option<String>,
    sealed: Option<Vec<u8>>,
    entry_mode: Option<&'static str>,
    aid: Option<&'static str>,
    label: Option<&'static str>,
    stan: Option<u32>,
    mti: Option<&'static str>,
    transmission_time: Option<String>,
    rrn: Option<String>,
    auth_code: Option<String>,
    response_code: Option<String>,
    reason: Option<String>,
    original_id: Option<i64>,
    no_receipt: bool,
    reversal_reason: Option<&'static str>,
    reversal_attempts: u32,
    next_attempt_ms: Option<i64>,
    receipts_printed: u32,
    created_ms: i64,
    updated_ms: i64,
}

/// An approved transaction the lane may refer to later (a void, a completion).
#[derive(Clone)]
struct Original {
    id: i64,
    amount: u64,
    card: usize,
    mti: &'static str,
    stan: u32,
    tt: String,
    rrn: String,
    auth: String,
}

/// Write `n` transactions into a new journal at `path`, `per_day` a day, the last day
/// ending at `end_ms`. Progress on standard error.
///
/// # Errors
/// The journal's or SQLite's.
pub fn generate(
    path: &Path,
    n: u64,
    per_day: u64,
    end_ms: i64,
) -> Result<Generated, Box<dyn std::error::Error>> {
    let started = Instant::now();
    // The real schema, identity and marker.
    drop(Journal::open(path)?);
    let conn = Connection::open(path)?;
    // Bulk loading: no rollback journal, no flushes (the file is flushed once at the end).
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    let tx = conn.unchecked_transaction()?;
    let mut ins_txn = tx.prepare(
        "INSERT INTO txn(id, kind, state, amount, currency, pan_masked, pan_hash, sealed,
           entry_mode, aid, label, stan, mti, transmission_time, rrn, auth_code, response_code,
           reason, original_id, no_receipt, voided, completed_by, reversal_reason,
           reversal_attempts, reversal_rejections, next_attempt_ms, receipts_printed,
           created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, 978, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
           ?17, ?18, ?19, 0, NULL, ?20, ?21, 0, ?22, ?23, ?24, ?25)",
    )?;
    let mut ins_tl =
        tx.prepare("INSERT INTO timeline(txn_id, at_ms, state, note) VALUES (?1, ?2, ?3, ?4)")?;
    let mut ins_ev =
        tx.prepare("INSERT INTO events(txn_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)")?;
    let mut ins_hm = tx.prepare(
        "INSERT INTO host_messages(txn_id, at_ms, purpose, attempt, direction, mti, stan,
           response_code, elapsed_ms, summary) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut voided =
        tx.prepare("UPDATE txn SET voided = 1, updated_ms = max(updated_ms, ?2) WHERE id = ?1")?;
    let mut completed = tx.prepare(
        "UPDATE txn SET completed_by = ?2, sealed = NULL, updated_ms = max(updated_ms, ?3)
         WHERE id = ?1",
    )?;

    let mut rng = Rng(0x5CA1_E000_0017_0004);
    let pool = cards(&mut rng, 5_000);
    let days = n.div_ceil(per_day.max(1)).max(1);
    let first_day = end_ms - i64::try_from(days)? * DAY_MS;
    let spacing = 12 * 3_600_000 / i64::try_from(per_day.max(1))?;
    let (mut stan_seq, mut host_seq) = (0u64, 0u64);
    let mut sales_today: Vec<Original> = Vec::new();
    let mut open_preauths: Vec<Original> = Vec::new();
    let mut counts = (0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    for i in 0..n {
        let day = i / per_day.max(1);
        let in_day = i64::try_from(i % per_day.max(1))?;
        if in_day == 0 {
            sales_today.clear();
        }
        // Opening hours 08:00-20:00, a few seconds of jitter.
        let t0 = first_day
            + i64::try_from(day)? * DAY_MS
            + 8 * 3_600_000
            + in_day * spacing
            + i64::try_from(rng.below(5_000))?;
        let id = i64::try_from(i + 1)?;
        let mut s = scenario(rng.below(1_000));
        if s == Scenario::Void && sales_today.is_empty()
            || s == Scenario::Completion && open_preauths.is_empty()
        {
            s = Scenario::Approved;
        }
        let reference = matches!(s, Scenario::Void | Scenario::Completion);
        let original = match s {
            Scenario::Void => {
                let k = rng.below(sales_today.len() as u64) as usize;
                Some(sales_today.swap_remove(k))
            }
            Scenario::Completion => {
                let k = rng.below(open_preauths.len() as u64) as usize;
                Some(open_preauths.swap_remove(k))
            }
            _ => None,
        };
        let card_ix = original
            .as_ref()
            .map_or_else(|| rng.below(pool.len() as u64) as usize, |o| o.card);
        let card = &pool[card_ix];
        let (kind, mti, processing) = match s {
            Scenario::Void => ("void", "0200", "020000"),
            Scenario::Completion => ("completion", "0200", "000000"),
            Scenario::Refund => ("refund", "0200", "200000"),
            Scenario::PreAuth => ("preauth", "0100", "000000"),
            _ => ("sale", "0200", "000000"),
        };
        let amount = match (&original, s) {
            (Some(o), Scenario::Void) => o.amount,
            (Some(o), _) => o.amount - rng.below(o.amount / 5 + 1),
            (None, Scenario::PreAuth) => 5_000 + rng.below(30_000),
            // Cents .51/.05/.91 are what the host declines; avoid them elsewhere.
            (None, Scenario::Declined) => {
                100 * (1 + rng.below(150)) + [51, 5, 91][(i % 3) as usize]
            }
            (None, _) => 100 * (1 + rng.below(150)) + 10 * rng.below(10),
        };
        let mut row = Row {
            id,
            kind,
            amount,
            created_ms: t0,
            original_id: original.as_ref().map(|o| o.id),
            pan_masked: Some(card.masked.clone()),
            pan_hash: Some(card.hash.clone()),
            sealed: Some(rng.bytes(51)),
            ..Row::default()
        };
        let mut timeline: Vec<(i64, &str, String)> =
            vec![(t0, "created", format!("{kind} of {}", money(amount)))];
        let mut events: Vec<(i64, &str, &str)> = Vec::new();
        let mut host: Vec<HostRow> = Vec::new();
        let mut t = t0;
        if reference {
            row.entry_mode = Some("reference");
        } else {
            if s == Scenario::Swiped {
                events.push((t + 300, "prompt", "chip card swiped: insert chip"));
            }
            t += 800 + i64::try_from(rng.below(1_500))?;
            row.entry_mode = Some("chip");
            row.aid = Some(card.aid);
            row.label = Some(card.label);
            timeline.push((t, "card_read", "card read".into()));
        }
        if s == Scenario::NoReceipt {
            events.push((t0, "info", "no receipt: cashier override"));
        }
        // Armed: the STAN, MTI and transmission time.
        t += 2;
        stan_seq += 1;
        let stan = u32::try_from((stan_seq - 1) % 999_999 + 1)?;
        let (tt, _, _) = wire_time(t);
        row.stan = Some(stan);
        row.mti = Some(mti);
        row.transmission_time = Some(tt.clone());
        timeline.push((
            t,
            "armed",
            "armed: reversal record written before sending".into(),
        ));
        let o = original.as_ref();
        let req = Request {
            mti,
            processing,
            amount,
            stan,
            at_ms: t,
            pan: &card.masked,
            original: o.map(|o| {
                (
                    o.mti,
                    o.stan,
                    o.tt.as_str(),
                    o.rrn.as_str(),
                    o.auth.as_str(),
                )
            }),
        };
        if s == Scenario::Aborted {
            t += 3;
            let note = "card removed before the request was sent: nothing to undo";
            events.push((t - 1, "fault", "card_removed: card removed"));
            events.push((t, "fault", "chip after the host answered: card_absent"));
            timeline.push((t, "aborted", note.into()));
            row.state = "aborted";
            row.reason = Some(note.into());
            row.sealed = None;
        } else {
            t += 2;
            host.push((
                t,
                "request",
                "sent",
                Some(mti),
                Some(stan),
                None,
                None,
                request_summary(&req),
            ));
            timeline.push((t, "sent", "request sent".into()));
            if s == Scenario::ReversedTimeout {
                t += 2_000;
                host.push((
                    t,
                    "request",
                    "failed",
                    None,
                    None,
                    None,
                    None,
                    "no answer within 2s (after the request left)".into(),
                ));
                let note = "no valid answer from the host (no answer within 2s): reversing";
                timeline.push((t, "reversal_pending", note.into()));
                row.reason = Some(note.into());
                row.reversal_reason = Some("no_valid_response");
                row.next_attempt_ms = Some(t);
                stan_seq += 1;
                let rstan = u32::try_from((stan_seq - 1) % 999_999 + 1)?;
                host_seq += 1;
                let hrrn = format!("{host_seq:012}");
                let (sent, received) = reversal_summaries(&req, rstan, t + 2, "68", None, &hrrn);
                host.push((
                    t + 2,
                    "reversal",
                    "sent",
                    Some("0400"),
                    Some(rstan),
                    None,
                    None,
                    sent,
                ));
                host.push((
                    t + 8,
                    "reversal",
                    "received",
                    Some("0410"),
                    None,
                    Some("00".into()),
                    Some(6),
                    received,
                ));
                t += 8;
                timeline.push((
                    t,
                    "reversed",
                    "reversal accepted by the host (response 00)".into(),
                ));
                row.state = "reversed";
                row.reversal_attempts = 1;
                row.sealed = None;
            } else {
                let rtt = 150 + i64::try_from(rng.below(750))?;
                t += rtt;
                host_seq += 1;
                let rrn = format!("{host_seq:012}");
                let code = match (s, amount % 100) {
                    (Scenario::Declined, 51) => "51",
                    (Scenario::Declined, 5) => "05",
                    (Scenario::Declined, _) => "91",
                    _ => "00",
                };
                let auth = (code == "00").then(|| format!("A{:05}", host_seq % 100_000));
                host.push((
                    t,
                    "request",
                    "received",
                    Some(if mti == "0100" { "0110" } else { "0210" }),
                    None,
                    Some(code.into()),
                    Some(rtt),
                    response_summary(&req, code, &rrn, auth.as_deref(), !reference),
                ));
                row.rrn = Some(rrn.clone());
                row.response_code = Some(code.into());
                if code != "00" {
                    let note = format!(
                        "declined by the host: {code} {}",
                        pos_acquirer::acquirer::response_reason(code)
                    );
                    timeline.push((t, "declined", note.clone()));
                    row.state = "declined";
                    row.reason = Some(note);
                    row.sealed = None;
                } else {
                    row.auth_code = auth.clone();
                    timeline.push((
                        t,
                        "host_approved",
                        format!("host approved (response 00, in {rtt} ms)"),
                    ));
                    if s == Scenario::ReversedCardPulled {
                        t += 1;
                        let note = "card removed after the host approved: reversing";
                        events.push((t, "fault", "chip after the host answered: card_removed"));
                        timeline.push((t, "reversal_pending", note.into()));
                        row.reason = Some(note.into());
                        row.reversal_reason = Some("card_declined_after_approval");
                        row.next_attempt_ms = Some(t);
                        stan_seq += 1;
                        let rstan = u32::try_from((stan_seq - 1) % 999_999 + 1)?;
                        host_seq += 1;
                        let hrrn = format!("{host_seq:012}");
                        let (sent, received) = reversal_summaries(
                            &req,
                            rstan,
                            t + 1,
                            "06",
                            Some((&rrn, auth.as_deref().unwrap_or(""))),
                            &hrrn,
                        );
                        host.push((
                            t + 1,
                            "reversal",
                            "sent",
                            Some("0400"),
                            Some(rstan),
                            None,
                            None,
                            sent,
                        ));
                        host.push((
                            t + 2,
                            "reversal",
                            "received",
                            Some("0410"),
                            None,
                            Some("00".into()),
                            Some(1),
                            received,
                        ));
                        t += 2;
                        timeline.push((
                            t,
                            "reversed",
                            "reversal accepted by the host (response 00)".into(),
                        ));
                        row.state = "reversed";
                        row.reversal_attempts = 1;
                        row.sealed = None;
                    } else {
                        t += 1;
                        timeline.push((
                            t,
                            "committed",
                            if reference {
                                "approved: nothing for a card to do".into()
                            } else {
                                "card accepted the host's approval (TC at the second GENERATE AC)"
                                    .into()
                            },
                        ));
                        row.state = "completed";
                        if s == Scenario::NoReceipt {
                            t += 1;
                            row.no_receipt = true;
                            timeline.push((t, "completed", "completed without a receipt".into()));
                        } else {
                            t += 1;
                            timeline.push((t, "printing", "printing the receipt".into()));
                            if s == Scenario::PaperOut {
                                t += 500;
                                let note = "printer out of paper: receipt owed, reprinted when the printer is ready";
                                events.push((t, "fault", "printer: paper_out (print job failed with paper_out (offline, paper_near_end, paper_out); the printer accepted 337 of 337 bytes (up to document block 16 of 16))"));
                                timeline.push((t, "receipt_owed", note.into()));
                                row.reason = Some(note.into());
                                // The roll is changed a few minutes later.
                                t += 60_000 + i64::try_from(rng.below(240_000))?;
                                timeline.push((
                                    t,
                                    "completed",
                                    "owed receipt printed (duplicate)".into(),
                                ));
                            } else {
                                t += 1_000 + i64::try_from(rng.below(1_000))?;
                                timeline.push((t, "completed", "receipt printed".into()));
                            }
                            row.receipts_printed = 1;
                        }
                        let approved = Original {
                            id,
                            amount,
                            card: card_ix,
                            mti,
                            stan,
                            tt: tt.clone(),
                            rrn: rrn.clone(),
                            auth: auth.clone().unwrap_or_default(),
                        };
                        match s {
                            Scenario::PreAuth => open_preauths.push(approved),
                            Scenario::Approved | Scenario::Swiped | Scenario::NoReceipt => {
                                sales_today.push(approved)
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        row.updated_ms = t;
        // Retention erased the sealed card data of every closed day (the generated days are
        // all before today), but an open pre-authorization's (its completion takes it).
        if s != Scenario::PreAuth {
            row.sealed = None;
        }
        ins_txn.execute(params![
            row.id,
            row.kind,
            row.state,
            i64::try_from(row.amount)?,
            row.pan_masked,
            row.pan_hash,
            row.sealed,
            row.entry_mode,
            row.aid,
            row.label,
            row.stan,
            row.mti,
            row.transmission_time,
            row.rrn,
            row.auth_code,
            row.response_code,
            row.reason,
            row.original_id,
            row.no_receipt,
            row.reversal_reason,
            row.reversal_attempts,
            row.next_attempt_ms,
            row.receipts_printed,
            row.created_ms,
            row.updated_ms,
        ])?;
        if let (Some(o), true) = (&original, row.state == "completed") {
            if s == Scenario::Void {
                voided.execute(params![o.id, t])?;
            } else {
                completed.execute(params![o.id, id, t])?;
            }
        }
        for (at, state, note) in &timeline {
            ins_tl.execute(params![id, at, state, note])?;
        }
        for (at, kind, detail) in &events {
            ins_ev.execute(params![id, at, kind, detail])?;
        }
        for (at, purpose, direction, mti, stan, code, elapsed, summary) in &host {
            ins_hm.execute(params![
                id, at, purpose, direction, mti, stan, code, elapsed, summary
            ])?;
        }
        counts.0 += timeline.len() as u64;
        counts.1 += host.len() as u64;
        counts.2 += events.len() as u64;
        if last_report.elapsed().as_secs() >= 2 || i + 1 == n {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "generate: {}/{} transactions ({:.0}%), {:.0}/s, {:.0} s",
                i + 1,
                n,
                (i + 1) as f64 * 100.0 / n.max(1) as f64,
                (i + 1) as f64 / secs,
                secs
            );
        }
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('stan', ?1), ('stan_seq', ?2)",
        params![
            ((stan_seq.max(1) - 1) % 999_999 + 1).to_string(),
            stan_seq.to_string()
        ],
    )?;
    drop((ins_txn, ins_tl, ins_ev, ins_hm, voided, completed));
    tx.commit()?;
    eprintln!("generate: committed; back to WAL and flushed");
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    drop(conn);
    // Written out now, not by the kernel's writeback during the measurements.
    std::fs::File::open(path)?.sync_all()?;
    // Open once as the service does: the marker takes the journal's counters, then a
    // clean close.
    drop(Journal::open(path)?);
    Ok(Generated {
        timeline: counts.0,
        host_messages: counts.1,
        events: counts.2,
        seconds: started.elapsed().as_secs_f64(),
    })
}
