//! [`TcpAcquirer`]: the [`Acquirer`] over TCP with 2-byte length framing.
//!
//! One TCP connection per exchange: connect, send one framed request, read one framed answer,
//! close. An idle connection kept open between sales can go stale without anyone noticing,
//! and a request sent on a dead connection turns into an unknown outcome and a reversal that
//! was never needed; a fresh connection fails *before* anything is sent instead
//! ([`Outcome::NotSent`]).
//!
//! Timeouts: connecting is bounded by [`AcquirerSettings::connect_timeout`] (per resolved
//! address), and from the moment the request is written the whole answer must arrive within
//! [`AcquirerSettings::response_timeout`] (one deadline across partial reads, not per read).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::acquirer::{
    Acquirer, AcquirerError, Approval, Decline, Operation, OriginalData, Outcome, Request,
    Reversal, WireEvent, is_approval_code, response_reason,
};
use crate::settlement::{
    Advice, CurrencyTotals, HostReply, Reconciliation, SETTLE_AFTER_UPLOAD_CODE, SETTLE_CODE,
    SettleOutcome,
};
use crate::{Deframer, Dialect, MAX_FRAME, Message, Mti, decode, encode, frame};

/// Response code a host gives for a reversal of a transaction it does not know ("unable to
/// locate original"): there is nothing to reverse, so the reversal is done.
const NOT_FOUND: &str = "25";

/// Network management code of an echo test (field 70).
pub(crate) const ECHO_CODE: u16 = 301;

/// Where and how to reach the acquirer host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquirerSettings {
    /// `host:port` (a name is resolved at each exchange).
    pub address: String,
    /// Limit for establishing the TCP connection (per resolved address).
    pub connect_timeout: Duration,
    /// Limit for the whole answer, counted from the moment the request was written.
    pub response_timeout: Duration,
    /// The host's ISO 8583 dialect.
    pub dialect: Dialect,
    /// Card acceptor terminal identification, 8 characters (field 41).
    pub terminal_id: String,
    /// Card acceptor identification code, 15 characters (field 42).
    pub merchant_id: String,
}

impl AcquirerSettings {
    /// Settings with the [`Dialect::default_pos`] dialect, a 5 s connect timeout and a 30 s
    /// response timeout.
    pub fn new(address: impl Into<String>, terminal_id: &str, merchant_id: &str) -> Self {
        AcquirerSettings {
            address: address.into(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            dialect: Dialect::default_pos(),
            terminal_id: terminal_id.to_string(),
            merchant_id: merchant_id.to_string(),
        }
    }
}

/// The [`Acquirer`] over TCP: ISO 8583 with 2-byte big-endian length framing, one connection
/// per exchange.
///
/// Every method is bounded by `connect_timeout + response_timeout` (for each resolved address
/// tried when connecting), never panics on network bytes, and never puts card data into an
/// error or a [`WireEvent`] summary.
#[derive(Debug, Clone)]
pub struct TcpAcquirer {
    settings: AcquirerSettings,
    echo_stan: u32,
}

/// Why an exchange did not give a usable answer.
pub(crate) enum ExchangeError {
    /// Nothing left: the request was not built or the connection not made.
    NotSent(AcquirerError),
    /// The request left (or may have), no answer came.
    Unknown(AcquirerError),
    /// An answer came but does not decode.
    Bad(AcquirerError),
}

/// Why reading an answer failed.
pub(crate) enum ReadFailure {
    /// The deadline passed.
    Timeout,
    /// The peer closed the connection.
    Closed,
    /// Another I/O error.
    Io(String),
    /// The length header is 0 or too big.
    Framing(String),
}

impl ReadFailure {
    pub(crate) fn into_error(self, timeout: Duration) -> AcquirerError {
        match self {
            ReadFailure::Timeout => AcquirerError::ResponseTimeout { timeout },
            ReadFailure::Closed => AcquirerError::ConnectionLost {
                detail: "the host closed the connection without answering".into(),
            },
            ReadFailure::Io(detail) => AcquirerError::ConnectionLost { detail },
            ReadFailure::Framing(detail) => AcquirerError::ConnectionLost {
                detail: format!("framing lost: {detail}"),
            },
        }
    }
}

/// Resolve `address` (`host:port`). `Config` error if it does not resolve.
pub(crate) fn resolve(address: &str) -> Result<Vec<SocketAddr>, AcquirerError> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| AcquirerError::Config {
            detail: format!("cannot resolve {address:?}: {e}"),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(AcquirerError::Config {
            detail: format!("{address:?} resolves to no address"),
        });
    }
    Ok(addrs)
}

/// Connect to the first resolved address that accepts within `timeout`.
pub(crate) fn connect(address: &str, timeout: Duration) -> Result<TcpStream, AcquirerError> {
    let addrs = resolve(address)?;
    let timeout = if timeout.is_zero() {
        Duration::from_millis(1)
    } else {
        timeout
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("no address"));
    Err(match e.kind() {
        io::ErrorKind::ConnectionRefused => AcquirerError::Refused {
            address: address.to_string(),
        },
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => AcquirerError::ConnectTimeout {
            address: address.to_string(),
            timeout,
        },
        _ => AcquirerError::ConnectionLost {
            detail: format!("cannot connect to {address}: {e}"),
        },
    })
}

/// Read one framed message, all of it before `deadline`.
pub(crate) fn read_frame(
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<Vec<u8>, ReadFailure> {
    let mut deframer = Deframer::new(MAX_FRAME);
    let mut buf = [0u8; 4096];
    loop {
        match deframer.next_frame() {
            Ok(Some(f)) => return Ok(f),
            Ok(None) => {}
            Err(e) => return Err(ReadFailure::Framing(e.to_string())),
        }
        let now = Instant::now();
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(ReadFailure::Timeout);
        }
        if let Err(e) = stream.set_read_timeout(Some(remaining)) {
            return Err(ReadFailure::Io(e.to_string()));
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(ReadFailure::Closed),
            Ok(n) => deframer.push(buf.get(..n).unwrap_or_default()),
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    if Instant::now() >= deadline {
                        return Err(ReadFailure::Timeout);
                    }
                }
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted => return Err(ReadFailure::Closed),
                _ => return Err(ReadFailure::Io(e.to_string())),
            },
        }
    }
}

/// The current UTC date and time as `MMDDhhmmss` (field 7).
pub(crate) fn utc_transmission_time() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (_, month, day, h, mi, sec) = pos_hal::calendar::civil_from_unix(secs);
    format!("{month:02}{day:02}{h:02}{mi:02}{sec:02}")
}

/// Field 90: original MTI (4), STAN (6), transmission time (10), then 22 zeros (acquirer and
/// forwarding institution ids, unused).
pub fn original_data_elements(original: &OriginalData) -> String {
    format!(
        "{}{:06}{}{}",
        original.mti,
        original.stan,
        original.transmission_time,
        "0".repeat(22)
    )
}

/// The 0800 echo test message (field 70 = 301).
pub(crate) fn echo_message(settings: &AcquirerSettings, stan: u32) -> Message {
    let mut m = Message::new(Mti::NETWORK_REQUEST);
    m.set_transmission_time(&utc_transmission_time())
        .set_stan(stan)
        .set_terminal_id(&settings.terminal_id)
        .set_network_code(ECHO_CODE);
    m
}

/// Check an echo answer: 0810, same STAN, response code `00`.
pub(crate) fn check_echo_answer(request: &Message, answer: &Message) -> Result<(), AcquirerError> {
    check_match(request, answer)?;
    match answer.response_code() {
        Some("00") => Ok(()),
        Some(code) => Err(AcquirerError::BadResponse {
            detail: format!("echo answered with response code {code:?}"),
        }),
        None => Err(AcquirerError::BadResponse {
            detail: "echo answer without a response code (field 39)".into(),
        }),
    }
}

/// Whether `answer` answers `request`: MTI, STAN, and terminal id when present.
pub(crate) fn check_match(request: &Message, answer: &Message) -> Result<(), AcquirerError> {
    let bad = |detail: String| Err(AcquirerError::BadResponse { detail });
    match request.mti.response() {
        Some(expected) if expected == answer.mti => {}
        Some(expected) => {
            return bad(format!(
                "answer MTI {} where {expected} was expected",
                answer.mti
            ));
        }
        None => return bad(format!("request MTI {} expects no answer", request.mti)),
    }
    if answer.stan() != request.stan() {
        return bad("answer STAN (field 11) does not match the request".into());
    }
    if answer.has(41) && answer.get(41) != request.get(41) {
        return bad("answer terminal id (field 41) does not match the request".into());
    }
    Ok(())
}

fn masked(msg: &Message) -> String {
    format!("{msg:?}")
}

impl TcpAcquirer {
    /// A client for these settings. Nothing is connected until the first exchange.
    pub fn new(settings: AcquirerSettings) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.subsec_micros());
        TcpAcquirer {
            settings,
            echo_stan: seed % 999_999 + 1,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &AcquirerSettings {
        &self.settings
    }

    /// The request message for `request` (what [`Acquirer::send`] puts on the wire).
    ///
    /// Fields: MTI from [`Operation::mti`]; 3, 4, 7, 11, 12, 13; card fields (2 when there
    /// is no track 2, else 35; 14, 23, 55 when known); 22 entry mode (`012` without a
    /// card); 25 `00`; 41, 42, 49; for a completion or void with an original: 90 and 37/38
    /// when known.
    pub fn build_request(&self, request: &Request) -> Message {
        let s = &self.settings;
        let mut m = Message::new(request.operation.mti());
        m.set_processing_code(request.operation.processing_code())
            .set_amount(request.amount)
            .set_transmission_time(&request.transmission_time)
            .set_stan(request.stan)
            .set_local_time(&request.local_time.0)
            .set_local_date(&request.local_time.1);
        let mut entry = crate::EntryMode::Reference;
        if let Some(card) = &request.card {
            entry = card.entry_mode;
            match &card.track2 {
                Some(t2) => m.set(35, t2.expose()),
                None => m.set(2, card.pan.expose()),
            };
            if let Some(e) = &card.expiry {
                m.set_expiry(e);
            }
            if let Some(seq) = card.pan_sequence {
                m.set_card_sequence(&format!("{seq:03}"));
            }
            if let Some(icc) = card.icc_data.as_deref().filter(|d| !d.is_empty()) {
                m.set_icc_data(icc);
            }
        }
        m.set_pos_entry_mode(entry.code())
            .set_pos_condition("00")
            .set_terminal_id(&s.terminal_id)
            .set_merchant_id(&s.merchant_id)
            .set_currency(&format!("{:03}", request.currency));
        if let Some(batch) = request.batch {
            m.set_str(60, &format!("{:06}", batch % 1_000_000));
        }
        if matches!(request.operation, Operation::Completion | Operation::Void) {
            if let Some(orig) = &request.original {
                m.set_original_data(&original_data_elements(orig));
                if let Some(rrn) = &orig.rrn {
                    m.set_rrn(rrn);
                }
                if let Some(code) = &orig.auth_code {
                    m.set_auth_code(code);
                }
            }
        }
        m
    }

    /// The reversal message: 0400 (0401 when repeated) with 2 and 14 (never track data), 3
    /// of the original operation, 4, 7, 11 (the reversal's own STAN), 25 the reason's
    /// condition code, 41, 42, 49, 90 and 37/38 when known.
    pub fn build_reversal(&self, reversal: &Reversal) -> Message {
        let s = &self.settings;
        let mti = if reversal.repeat {
            Mti::new(401).unwrap_or(Mti::REVERSAL_REQUEST)
        } else {
            Mti::REVERSAL_REQUEST
        };
        let mut m = Message::new(mti);
        if let Some(card) = &reversal.card {
            m.set(2, card.pan.expose());
            if let Some(e) = &card.expiry {
                m.set_expiry(e);
            }
        }
        m.set_processing_code(reversal.operation.processing_code())
            .set_amount(reversal.amount)
            .set_transmission_time(&reversal.transmission_time)
            .set_stan(reversal.stan)
            .set_pos_condition(reversal.reason.condition_code())
            .set_terminal_id(&s.terminal_id)
            .set_merchant_id(&s.merchant_id)
            .set_currency(&format!("{:03}", reversal.currency))
            .set_original_data(&original_data_elements(&reversal.original));
        if let Some(rrn) = &reversal.original.rrn {
            m.set_rrn(rrn);
        }
        if let Some(code) = &reversal.original.auth_code {
            m.set_auth_code(code);
        }
        m
    }

    /// The reconciliation request (0500): 3 `920000` (`960000` after an upload), 7, 11, 41,
    /// 42; the first currency's totals in 50, 74-77, 86-89 and 97; the batch in 60; every
    /// currency's totals in 63 (see [`crate::settlement`]).
    pub fn build_reconciliation(&self, r: &Reconciliation) -> Message {
        let s = &self.settings;
        let mut m = Message::new(Mti::RECONCILIATION_REQUEST);
        m.set_processing_code(if r.after_upload {
            SETTLE_AFTER_UPLOAD_CODE
        } else {
            SETTLE_CODE
        })
        .set_transmission_time(&r.transmission_time)
        .set_stan(r.stan)
        .set_terminal_id(&s.terminal_id)
        .set_merchant_id(&s.merchant_id);
        if let Some(t) = r.totals.first() {
            let n10 = |v: u64| format!("{:010}", v.min(9_999_999_999));
            let n16 = |v: u64| format!("{:016}", v.min(9_999_999_999_999_999));
            m.set_str(50, &format!("{:03}", t.currency))
                .set_str(74, &n10(t.credits.count))
                .set_str(75, &n10(t.credit_reversals.count))
                .set_str(76, &n10(t.debits.count))
                .set_str(77, &n10(t.debit_reversals.count))
                .set_str(86, &n16(t.credits.amount))
                .set_str(87, &n16(t.credit_reversals.amount))
                .set_str(88, &n16(t.debits.amount))
                .set_str(89, &n16(t.debit_reversals.amount));
            let net = t.net();
            let sign = if net < 0 { 'C' } else { 'D' };
            m.set_str(97, &format!("{sign}{}", n16(net.unsigned_abs())));
        }
        m.set_str(60, &format!("{:06}", r.batch % 1_000_000))
            .set_str(63, &CurrencyTotals::encode_all(&r.totals));
        m
    }

    /// The batch-upload advice (0320): 3 the operation's processing code, 4, 7, 11, 25 `00`,
    /// 41, 42, 49, 60 the batch, 63 the terminal's view, 90 the original and 37/38 when
    /// known. No card data: the host finds the transaction by field 90.
    pub fn build_advice(&self, a: &Advice) -> Message {
        let s = &self.settings;
        let mut m = Message::new(Mti::ADVICE);
        m.set_processing_code(a.operation.processing_code())
            .set_amount(a.amount)
            .set_transmission_time(&a.transmission_time)
            .set_stan(a.stan)
            .set_pos_condition("00")
            .set_terminal_id(&s.terminal_id)
            .set_merchant_id(&s.merchant_id)
            .set_currency(&format!("{:03}", a.currency))
            .set_original_data(&original_data_elements(&a.original));
        m.set_str(60, &format!("{:06}", a.batch % 1_000_000))
            .set_str(63, a.view.name());
        if let Some(rrn) = &a.original.rrn {
            m.set_rrn(rrn);
        }
        if let Some(code) = &a.original.auth_code {
            m.set_auth_code(code);
        }
        m
    }

    /// Exchange a settlement message: any answer with a response code is
    /// [`SettleOutcome::Answered`].
    fn settle_exchange(&self, msg: &Message, observe: &mut dyn FnMut(&WireEvent)) -> SettleOutcome {
        let (answer, elapsed) = match self.exchange(msg, observe) {
            Ok(a) => a,
            Err(ExchangeError::NotSent(e)) => return SettleOutcome::NotSent(e),
            Err(ExchangeError::Unknown(e)) => return SettleOutcome::Unknown(e),
            Err(ExchangeError::Bad(e)) => return SettleOutcome::BadResponse(e),
        };
        if let Err(e) = check_match(msg, &answer) {
            return SettleOutcome::BadResponse(e);
        }
        match answer.response_code() {
            Some(code) => SettleOutcome::Answered(HostReply {
                response_code: code.to_string(),
                text: answer.get_str(63).map(str::to_string),
                elapsed,
            }),
            None => SettleOutcome::BadResponse(AcquirerError::BadResponse {
                detail: "answer without a response code (field 39)".into(),
            }),
        }
    }

    /// One exchange on a fresh connection. `observe` gets `Sent` once the bytes left, then
    /// `Received` or `Failed`.
    fn exchange(
        &self,
        msg: &Message,
        observe: &mut dyn FnMut(&WireEvent),
    ) -> Result<(Message, Duration), ExchangeError> {
        let s = &self.settings;
        let fail = |observe: &mut dyn FnMut(&WireEvent), e: ExchangeError| {
            let (error, after_send) = match &e {
                ExchangeError::NotSent(e) => (e.clone(), false),
                ExchangeError::Unknown(e) | ExchangeError::Bad(e) => (e.clone(), true),
            };
            observe(&WireEvent::Failed { error, after_send });
            e
        };
        let bytes = match encode(msg, &s.dialect).and_then(|b| frame(&b)) {
            Ok(b) => b,
            Err(e) => {
                let err = AcquirerError::Encode {
                    detail: e.to_string(),
                };
                return Err(fail(observe, ExchangeError::NotSent(err)));
            }
        };
        let mut stream = match connect(&s.address, s.connect_timeout) {
            Ok(st) => st,
            Err(e) => return Err(fail(observe, ExchangeError::NotSent(e))),
        };
        // A write that blocks this long has left the request in an unknown state anyway.
        let _ = stream.set_write_timeout(Some(s.response_timeout.max(Duration::from_millis(1))));
        if let Err(e) = stream.write_all(&bytes).and_then(|()| stream.flush()) {
            let err = AcquirerError::ConnectionLost {
                detail: format!("sending the request: {e}"),
            };
            return Err(fail(observe, ExchangeError::Unknown(err)));
        }
        let sent_at = Instant::now();
        observe(&WireEvent::Sent {
            mti: msg.mti,
            stan: msg.stan().unwrap_or(0),
            summary: masked(msg),
        });
        let deadline = sent_at + s.response_timeout;
        let raw = match read_frame(&mut stream, deadline) {
            Ok(r) => r,
            Err(f) => {
                let err = f.into_error(s.response_timeout);
                return Err(fail(observe, ExchangeError::Unknown(err)));
            }
        };
        let elapsed = sent_at.elapsed();
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let answer = match decode(&raw, &s.dialect) {
            Ok(a) => a,
            Err(e) => {
                let err = AcquirerError::BadResponse {
                    detail: format!("answer does not decode: {e}"),
                };
                return Err(fail(observe, ExchangeError::Bad(err)));
            }
        };
        observe(&WireEvent::Received {
            mti: answer.mti,
            response_code: answer.response_code().map(str::to_string),
            summary: masked(&answer),
            elapsed,
        });
        Ok((answer, elapsed))
    }

    /// Exchange and classify; `reversal` makes `25` an approval.
    fn transact(
        &self,
        msg: &Message,
        reversal: bool,
        observe: &mut dyn FnMut(&WireEvent),
    ) -> Outcome {
        let (answer, elapsed) = match self.exchange(msg, observe) {
            Ok(a) => a,
            Err(ExchangeError::NotSent(e)) => return Outcome::NotSent(e),
            Err(ExchangeError::Unknown(e)) => return Outcome::Unknown(e),
            Err(ExchangeError::Bad(e)) => return Outcome::BadResponse(e),
        };
        if let Err(e) = check_match(msg, &answer) {
            return Outcome::BadResponse(e);
        }
        let Some(code) = answer.response_code().map(str::to_string) else {
            return Outcome::BadResponse(AcquirerError::BadResponse {
                detail: "answer without a response code (field 39)".into(),
            });
        };
        let issuer_data = answer.icc_data().map(<[u8]>::to_vec).unwrap_or_default();
        let rrn = answer.rrn().map(str::to_string);
        if is_approval_code(&code) || (reversal && code == NOT_FOUND) {
            Outcome::Approved(Approval {
                response_code: code,
                auth_code: answer.auth_code().unwrap_or_default().to_string(),
                rrn: rrn.unwrap_or_default(),
                issuer_data,
                elapsed,
            })
        } else {
            Outcome::Declined(Decline {
                reason: response_reason(&code),
                response_code: code,
                rrn,
                issuer_data,
                elapsed,
            })
        }
    }

    fn financial(&self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        let msg = self.build_request(request);
        self.transact(&msg, false, observe)
    }
}

impl Acquirer for TcpAcquirer {
    fn authorize(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.financial(request, observe)
    }

    fn pre_authorize(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.financial(request, observe)
    }

    fn complete(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.financial(request, observe)
    }

    fn void(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.financial(request, observe)
    }

    fn refund(&mut self, request: &Request, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        self.financial(request, observe)
    }

    fn reverse(&mut self, reversal: &Reversal, observe: &mut dyn FnMut(&WireEvent)) -> Outcome {
        let msg = self.build_reversal(reversal);
        self.transact(&msg, true, observe)
    }

    fn reconcile(
        &mut self,
        request: &Reconciliation,
        observe: &mut dyn FnMut(&WireEvent),
    ) -> SettleOutcome {
        let msg = self.build_reconciliation(request);
        self.settle_exchange(&msg, observe)
    }

    fn advise(&mut self, advice: &Advice, observe: &mut dyn FnMut(&WireEvent)) -> SettleOutcome {
        let msg = self.build_advice(advice);
        self.settle_exchange(&msg, observe)
    }

    fn echo(&mut self) -> Result<Duration, AcquirerError> {
        let stan = self.echo_stan;
        self.echo_stan = if stan >= 999_999 { 1 } else { stan + 1 };
        let msg = echo_message(&self.settings, stan);
        let (answer, elapsed) = match self.exchange(&msg, &mut |_| {}) {
            Ok(a) => a,
            Err(ExchangeError::NotSent(e) | ExchangeError::Unknown(e) | ExchangeError::Bad(e)) => {
                return Err(e);
            }
        };
        check_echo_answer(&msg, &answer)?;
        Ok(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmission_time_shape() {
        let t = utc_transmission_time();
        assert_eq!(t.len(), 10);
        assert!(t.bytes().all(|b| b.is_ascii_digit()));
        let month: u32 = t[..2].parse().unwrap_or(0);
        assert!((1..=12).contains(&month));
    }

    #[test]
    fn field_90_layout() {
        let o = OriginalData {
            mti: Mti::FINANCIAL_REQUEST,
            stan: 123,
            transmission_time: "1123175100".into(),
            rrn: None,
            auth_code: None,
        };
        let f = original_data_elements(&o);
        assert_eq!(f, format!("0200000123{}{}", "1123175100", "0".repeat(22)));
        assert_eq!(f.len(), 42);
    }
}
