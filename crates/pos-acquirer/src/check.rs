//! [`check`]: a connectivity check of the acquirer link, for technicians.
//!
//! Resolves the address, connects (timed), sends an echo test (0800, code 301) and times the
//! round trip, then says in plain words what is wrong and what to look at.

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

use crate::client::{
    AcquirerSettings, ReadFailure, check_echo_answer, echo_message, read_frame, resolve,
};
use crate::{AcquirerError, decode, encode, frame};

/// What the check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Diagnosis {
    /// Connected, and the host answered the echo test `00`.
    Ok,
    /// The address does not parse or does not resolve.
    BadAddress,
    /// The connection was refused.
    Refused,
    /// Connecting did not finish within the connect timeout (or the network is unreachable).
    ConnectTimeout,
    /// Connected, but no answer to the echo test within the response timeout.
    NoAnswer,
    /// Connected, but the host closed the connection without answering.
    ConnectionClosed,
    /// An answer came that is not a valid echo answer.
    BadResponse,
}

impl Diagnosis {
    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Diagnosis::Ok => "ok",
            Diagnosis::BadAddress => "bad_address",
            Diagnosis::Refused => "refused",
            Diagnosis::ConnectTimeout => "connect_timeout",
            Diagnosis::NoAnswer => "no_answer",
            Diagnosis::ConnectionClosed => "connection_closed",
            Diagnosis::BadResponse => "bad_response",
        }
    }

    /// What to look at, in plain words.
    pub fn hint(self) -> &'static str {
        match self {
            Diagnosis::Ok => "the host link works",
            Diagnosis::BadAddress => {
                "the address must be HOST:PORT with a name that resolves (check DNS, \
                 /etc/hosts and typing)"
            }
            Diagnosis::Refused => {
                "nothing listens on that port: is the host service running, is the port \
                 right, does a firewall reject?"
            }
            Diagnosis::ConnectTimeout => {
                "no answer to the connection attempt: wrong address, a firewall dropping \
                 packets, no route (VPN or gateway down?)"
            }
            Diagnosis::NoAnswer => {
                "connected but the echo test got no answer: a different protocol on that \
                 port (TLS? another framing?), or the host is hung"
            }
            Diagnosis::ConnectionClosed => {
                "the host closed the connection without answering: terminal id or source \
                 address not registered with the acquirer, or a different protocol expected"
            }
            Diagnosis::BadResponse => {
                "an answer came but not a valid echo answer: check the dialect (ASCII or BCD) \
                 and the framing with the acquirer's specification"
            }
        }
    }
}

fn millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
        None => s.serialize_none(),
    }
}

/// The result of [`check`]. Serializes to JSON with times in milliseconds
/// (`connect_time_ms`, `round_trip_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The address checked.
    pub address: String,
    /// Time to connect, when it connected.
    #[serde(rename = "connect_time_ms", serialize_with = "millis")]
    pub connect_time: Option<Duration>,
    /// Echo round trip, when the echo was answered.
    #[serde(rename = "round_trip_ms", serialize_with = "millis")]
    pub round_trip: Option<Duration>,
    /// What was found.
    pub diagnosis: Diagnosis,
    /// The details (OS error, what was wrong with the answer). Never card data.
    pub detail: String,
    /// What to look at ([`Diagnosis::hint`]).
    pub hint: String,
}

impl CheckReport {
    fn new(address: &str, diagnosis: Diagnosis, detail: impl Into<String>) -> Self {
        CheckReport {
            address: address.to_string(),
            connect_time: None,
            round_trip: None,
            diagnosis,
            detail: detail.into(),
            hint: diagnosis.hint().to_string(),
        }
    }

    fn with(mut self, diagnosis: Diagnosis, detail: impl Into<String>) -> Self {
        self.diagnosis = diagnosis;
        self.detail = detail.into();
        self.hint = diagnosis.hint().to_string();
        self
    }

    /// True when the diagnosis is [`Diagnosis::Ok`].
    pub fn is_ok(&self) -> bool {
        self.diagnosis == Diagnosis::Ok
    }
}

/// Check the link to the host in `settings`: resolve, connect, echo.
///
/// Bounded by the connect timeout (per resolved address) plus the response timeout.
pub fn check(settings: &AcquirerSettings) -> CheckReport {
    let address = settings.address.as_str();
    let report = CheckReport::new(address, Diagnosis::Ok, "");
    if let Err(e) = resolve(address) {
        return report.with(Diagnosis::BadAddress, e.to_string());
    }
    let started = Instant::now();
    let mut stream = match crate::client::connect(address, settings.connect_timeout) {
        Ok(s) => s,
        Err(e) => {
            let d = match e {
                AcquirerError::Refused { .. } => Diagnosis::Refused,
                AcquirerError::Config { .. } => Diagnosis::BadAddress,
                _ => Diagnosis::ConnectTimeout,
            };
            return report.with(d, e.to_string());
        }
    };
    let mut report = report;
    report.connect_time = Some(started.elapsed());
    let stan = started.elapsed().subsec_nanos() % 999_999 + 1;
    let msg = echo_message(settings, stan);
    let bytes = match encode(&msg, &settings.dialect).and_then(|b| frame(&b)) {
        Ok(b) => b,
        Err(e) => {
            return report.with(
                Diagnosis::BadAddress,
                format!("cannot build the echo (check the terminal id and dialect): {e}"),
            );
        }
    };
    let _ = stream.set_write_timeout(Some(
        settings.response_timeout.max(Duration::from_millis(1)),
    ));
    if let Err(e) = stream.write_all(&bytes) {
        return report.with(
            Diagnosis::ConnectionClosed,
            format!("sending the echo failed: {e}"),
        );
    }
    let sent = Instant::now();
    let raw = read_frame(&mut stream, sent + settings.response_timeout);
    let rtt = sent.elapsed();
    let _ = stream.shutdown(Shutdown::Both);
    let raw = match raw {
        Ok(r) => r,
        Err(f) => {
            let d = match f {
                ReadFailure::Timeout => Diagnosis::NoAnswer,
                ReadFailure::Closed | ReadFailure::Io(_) => Diagnosis::ConnectionClosed,
                ReadFailure::Framing(_) => Diagnosis::BadResponse,
            };
            return report.with(d, f.into_error(settings.response_timeout).to_string());
        }
    };
    let answer = match decode(&raw, &settings.dialect) {
        Ok(a) => a,
        Err(e) => {
            return report.with(
                Diagnosis::BadResponse,
                format!("the answer does not decode: {e}"),
            );
        }
    };
    if let Err(e) = check_echo_answer(&msg, &answer) {
        return report.with(Diagnosis::BadResponse, e.to_string());
    }
    report.round_trip = Some(rtt);
    report.with(Diagnosis::Ok, format!("echo answered 00 ({})", answer.mti))
}
