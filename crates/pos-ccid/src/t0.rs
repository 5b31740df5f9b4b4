//! T=0: TPDUs and procedure bytes (ISO/IEC 7816-3 clauses 10 and 12.2).
//!
//! - [`tpdu_from_apdu`] maps a short command APDU to the TPDU a T=0 card gets (a case 4
//!   command goes as case 3: the card answers 61xx and the EMV layer fetches the data with
//!   GET RESPONSE).
//! - [`classify_procedure`] and [`T0Exchange`] are the host side at character level: fed the
//!   card's bytes one at a time, the exchange says what to send and when the response is
//!   complete, with a bound on NULL bytes.
//! - [`T0Card`] and [`card_respond`] are the card side for the virtual reader: the byte stream
//!   a T=0 card sends for a TPDU (procedure bytes, data, SW1 SW2), with 61xx and 6Cxx.
//!
//! A CCID reader at TPDU level runs the procedure bytes itself: the driver sends
//! [`Tpdu::to_bytes`] and gets data and SW1 SW2 back. The virtual reader plays that part by
//! running a [`T0Exchange`] over a [`T0Card`]'s stream.

use serde::{Deserialize, Serialize};

/// The shape of a TPDU: which way data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TpduCase {
    /// No data either way (P3 = 0).
    Case1,
    /// Data from the card: P3 = Le (0 stands for 256).
    Case2 {
        /// Expected number of data bytes, 1..=256.
        le: u16,
    },
    /// Data to the card: P3 = Lc.
    Case3,
    /// A case 4 command sent as case 3 (P3 = Lc, Le dropped): the card answers 61xx when it
    /// has data, to be fetched with GET RESPONSE.
    Case4 {
        /// The Le of the original APDU (1..=256).
        le: u16,
    },
}

/// A T=0 command TPDU: the five-byte header CLA INS P1 P2 P3 and the data sent after the
/// card's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tpdu {
    /// CLA INS P1 P2 P3.
    pub header: [u8; 5],
    /// Command data (P3 bytes for cases 3 and 4, empty otherwise).
    pub data: Vec<u8>,
    /// Direction of the data.
    pub case: TpduCase,
}

impl Tpdu {
    /// The instruction byte.
    pub fn ins(&self) -> u8 {
        self.header[1]
    }

    /// P3.
    pub fn p3(&self) -> u8 {
        self.header[4]
    }

    /// Header and data, as a TPDU-level reader takes them in `XfrBlock`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header.to_vec();
        out.extend_from_slice(&self.data);
        out
    }

    /// Number of data bytes the card is expected to send (0 except for case 2).
    pub fn expected_response_len(&self) -> usize {
        match self.case {
            TpduCase::Case2 { le } => usize::from(le),
            _ => 0,
        }
    }

    /// A TPDU from the bytes a reader got (header and data), as a card sees it: with data it
    /// is case 3 (the data length must equal P3); without data it is case 2 with Le = P3 (P3 =
    /// 0 meaning 256), which also serves case 1 commands since the card then only sends SW1
    /// SW2.
    ///
    /// # Errors
    /// [`ApduError::TooShort`] below five bytes, [`ApduError::LengthMismatch`] when the data
    /// length differs from P3.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tpdu, ApduError> {
        let Some((header, data)) = bytes.split_first_chunk::<5>() else {
            return Err(ApduError::TooShort(bytes.len()));
        };
        let p3 = header[4];
        let case = if data.is_empty() {
            TpduCase::Case2 { le: short_len(p3) }
        } else if data.len() == usize::from(p3) {
            TpduCase::Case3
        } else {
            return Err(ApduError::LengthMismatch {
                lc: usize::from(p3),
                len: bytes.len(),
            });
        };
        Ok(Tpdu {
            header: *header,
            data: data.to_vec(),
            case,
        })
    }
}

/// Why an APDU cannot go as a T=0 TPDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    /// Fewer than four bytes (CLA INS P1 P2).
    #[error("APDU too short: {0} bytes")]
    TooShort(usize),
    /// An extended-length APDU: T=0 at TPDU level carries short APDUs only (ENVELOPE would
    /// be needed).
    #[error("extended-length APDUs cannot be sent as T=0 TPDUs")]
    Extended,
    /// The length byte does not match the APDU's length.
    #[error("APDU length {len} does not match Lc {lc}")]
    LengthMismatch {
        /// Lc from the APDU.
        lc: usize,
        /// Length of the APDU.
        len: usize,
    },
    /// INS 6X or 9X, which T=0 cannot carry (they read as SW1).
    #[error("INS {0:#04x} is invalid for T=0")]
    InvalidIns(u8),
    /// CLA 0xFF, reserved for PPS.
    #[error("CLA 0xFF is invalid (reserved for PPS)")]
    InvalidCla,
}

/// Short length byte: 0 stands for 256.
fn short_len(byte: u8) -> u16 {
    if byte == 0 { 256 } else { u16::from(byte) }
}

/// Whether INS can be used with T=0 (not 6X nor 9X).
pub(crate) fn ins_valid(ins: u8) -> bool {
    !matches!(ins & 0xF0, 0x60 | 0x90)
}

/// Maps a short command APDU to its T=0 TPDU (ISO/IEC 7816-3 12.2): case 1 gets P3 = 0,
/// case 2 P3 = Le, case 3 P3 = Lc and the data, case 4 goes as case 3 (Le dropped, the card
/// answers 61xx).
///
/// # Errors
/// See [`ApduError`]: too short, extended length, length mismatch, INS 6X/9X, CLA 0xFF.
pub fn tpdu_from_apdu(apdu: &[u8]) -> Result<Tpdu, ApduError> {
    let Some((head, body)) = apdu.split_first_chunk::<4>() else {
        return Err(ApduError::TooShort(apdu.len()));
    };
    let [cla, ins, p1, p2] = *head;
    if cla == 0xFF {
        return Err(ApduError::InvalidCla);
    }
    if !ins_valid(ins) {
        return Err(ApduError::InvalidIns(ins));
    }
    let (p3, data, case) = match body {
        [] => (0, &[][..], TpduCase::Case1),
        [le] => (*le, &[][..], TpduCase::Case2 { le: short_len(*le) }),
        [0, ..] => return Err(ApduError::Extended),
        [lc, rest @ ..] => {
            let lc_len = usize::from(*lc);
            if rest.len() == lc_len {
                (*lc, rest, TpduCase::Case3)
            } else if rest.len() == lc_len + 1 {
                let le = short_len(rest[lc_len]);
                (*lc, &rest[..lc_len], TpduCase::Case4 { le })
            } else {
                return Err(ApduError::LengthMismatch {
                    lc: lc_len,
                    len: apdu.len(),
                });
            }
        }
    };
    Ok(Tpdu {
        header: [cla, ins, p1, p2, p3],
        data: data.to_vec(),
        case,
    })
}

/// A complete procedure, as a card sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Procedure {
    /// INS: all remaining data bytes follow (from the host or from the card).
    Ack,
    /// INS ^ 0xFF: one data byte follows.
    AckOne,
    /// 0x60: the card asks for more time.
    Null,
    /// SW1 SW2: the command is finished.
    Status(u8, u8),
}

impl Procedure {
    /// The bytes of this procedure for instruction `ins`.
    pub fn encode(&self, ins: u8) -> Vec<u8> {
        match *self {
            Procedure::Ack => vec![ins],
            Procedure::AckOne => vec![ins ^ 0xFF],
            Procedure::Null => vec![0x60],
            Procedure::Status(sw1, sw2) => vec![sw1, sw2],
        }
    }
}

/// What one byte from the card means where a procedure byte is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProcedureByte {
    /// 0x60 (NULL): wait.
    Null,
    /// INS: all remaining data.
    Ack,
    /// INS ^ 0xFF: one data byte.
    AckOne,
    /// 6X (except 60) or 9X: SW1; SW2 follows.
    Sw1(u8),
    /// Anything else: a protocol error.
    Invalid(u8),
}

/// Classifies `byte` received where a procedure byte is expected, for instruction `ins`:
/// 0x60 is NULL, 6X and 9X are SW1, INS an acknowledgement of all data, INS ^ 0xFF of one
/// byte. (A valid T=0 INS is never 6X or 9X, so these never overlap.)
pub fn classify_procedure(ins: u8, byte: u8) -> ProcedureByte {
    if byte == 0x60 {
        ProcedureByte::Null
    } else if matches!(byte & 0xF0, 0x60 | 0x90) {
        ProcedureByte::Sw1(byte)
    } else if byte == ins {
        ProcedureByte::Ack
    } else if byte == ins ^ 0xFF {
        ProcedureByte::AckOne
    } else {
        ProcedureByte::Invalid(byte)
    }
}

/// The card's answer to a TPDU: data and status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct T0Response {
    /// Data the card sent.
    pub data: Vec<u8>,
    /// SW1.
    pub sw1: u8,
    /// SW2.
    pub sw2: u8,
}

impl T0Response {
    /// Data followed by SW1 SW2: the response APDU (what a TPDU-level reader returns).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.push(self.sw1);
        out.push(self.sw2);
        out
    }
}

/// What the host does after a byte from the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum T0Step {
    /// Keep reading (within WWT of the last byte).
    Continue,
    /// Send these data bytes to the card, then keep reading.
    Send(Vec<u8>),
    /// The exchange is complete.
    Done(T0Response),
}

/// Why a T=0 exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum T0Error {
    /// A byte that is no valid procedure byte.
    #[error("invalid procedure byte {0:#04x}")]
    InvalidProcedure(u8),
    /// An acknowledgement with no data left to move.
    #[error("procedure byte {0:#04x} acknowledges data, but none is left to transfer")]
    UnexpectedAck(u8),
    /// More NULL bytes than allowed.
    #[error("the card sent more than {0} NULL procedure bytes")]
    TooManyNulls(u32),
    /// A byte arrived after the exchange was complete.
    #[error("byte received after the exchange was complete")]
    AfterCompletion,
    /// The card's byte stream ended before SW1 SW2.
    #[error("the card's bytes ended before SW1 SW2")]
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Procedure,
    Data(usize),
    Sw2(u8),
    Done,
}

/// Default bound on NULL bytes in one exchange.
pub(crate) const DEFAULT_MAX_NULLS: u32 = 1000;

/// Host side of one T=0 command at character level.
///
/// Send [`header`](T0Exchange::header), then [`feed`](T0Exchange::feed) each byte the card
/// sends (each within WWT of the previous one) and act on the [`T0Step`]. Every step
/// consumes a byte; the number of NULL bytes is bounded, so the exchange ends.
#[derive(Debug, Clone)]
pub struct T0Exchange {
    header: [u8; 5],
    outgoing: Vec<u8>,
    sent: usize,
    incoming_len: usize,
    received: Vec<u8>,
    state: State,
    nulls: u32,
    /// Largest number of NULL bytes accepted (default 1000).
    pub max_nulls: u32,
}

impl T0Exchange {
    /// An exchange for `tpdu`.
    pub fn new(tpdu: &Tpdu) -> T0Exchange {
        let outgoing = match tpdu.case {
            TpduCase::Case3 | TpduCase::Case4 { .. } => tpdu.data.clone(),
            _ => Vec::new(),
        };
        T0Exchange {
            header: tpdu.header,
            outgoing,
            sent: 0,
            incoming_len: tpdu.expected_response_len(),
            received: Vec::new(),
            state: State::Procedure,
            nulls: 0,
            max_nulls: DEFAULT_MAX_NULLS,
        }
    }

    /// The five header bytes, sent first.
    pub fn header(&self) -> [u8; 5] {
        self.header
    }

    /// Number of NULL bytes seen so far.
    pub fn nulls(&self) -> u32 {
        self.nulls
    }

    /// Takes one byte from the card.
    ///
    /// # Errors
    /// [`T0Error`]: invalid procedure byte, acknowledgement with nothing to move, too many
    /// NULLs, a byte after completion.
    pub fn feed(&mut self, byte: u8) -> Result<T0Step, T0Error> {
        match self.state {
            State::Done => Err(T0Error::AfterCompletion),
            State::Sw2(sw1) => {
                self.state = State::Done;
                Ok(T0Step::Done(T0Response {
                    data: std::mem::take(&mut self.received),
                    sw1,
                    sw2: byte,
                }))
            }
            State::Data(remaining) => {
                self.received.push(byte);
                self.state = if remaining <= 1 {
                    State::Procedure
                } else {
                    State::Data(remaining - 1)
                };
                Ok(T0Step::Continue)
            }
            State::Procedure => match classify_procedure(self.header[1], byte) {
                ProcedureByte::Null => {
                    self.nulls = self.nulls.saturating_add(1);
                    if self.nulls > self.max_nulls {
                        return Err(T0Error::TooManyNulls(self.max_nulls));
                    }
                    Ok(T0Step::Continue)
                }
                ProcedureByte::Sw1(sw1) => {
                    self.state = State::Sw2(sw1);
                    Ok(T0Step::Continue)
                }
                ProcedureByte::Invalid(b) => Err(T0Error::InvalidProcedure(b)),
                ack @ (ProcedureByte::Ack | ProcedureByte::AckOne) => {
                    let all = ack == ProcedureByte::Ack;
                    if self.sent < self.outgoing.len() {
                        let end = if all {
                            self.outgoing.len()
                        } else {
                            self.sent + 1
                        };
                        let chunk = self.outgoing[self.sent..end].to_vec();
                        self.sent = end;
                        Ok(T0Step::Send(chunk))
                    } else if self.received.len() < self.incoming_len {
                        let remaining = self.incoming_len - self.received.len();
                        self.state = State::Data(if all { remaining } else { 1 });
                        Ok(T0Step::Continue)
                    } else {
                        Err(T0Error::UnexpectedAck(byte))
                    }
                }
            },
        }
    }

    /// Runs a whole exchange over a recorded stream of card bytes: returns everything the host
    /// sent (header and data) and the response.
    ///
    /// # Errors
    /// As [`T0Exchange::feed`]; [`T0Error::Incomplete`] when the stream ends early,
    /// [`T0Error::AfterCompletion`] when bytes follow SW2.
    pub fn run(tpdu: &Tpdu, card_bytes: &[u8]) -> Result<(Vec<u8>, T0Response), T0Error> {
        let mut exchange = T0Exchange::new(tpdu);
        let mut sent = exchange.header().to_vec();
        let mut bytes = card_bytes.iter();
        for &byte in bytes.by_ref() {
            match exchange.feed(byte)? {
                T0Step::Continue => {}
                T0Step::Send(data) => sent.extend_from_slice(&data),
                T0Step::Done(response) => {
                    if bytes.next().is_some() {
                        return Err(T0Error::AfterCompletion);
                    }
                    return Ok((sent, response));
                }
            }
        }
        Err(T0Error::Incomplete)
    }
}

/// The card side of T=0, for the virtual reader: turns each TPDU into the byte stream a card
/// sends, keeping response data back for GET RESPONSE.
#[derive(Debug, Clone, Default)]
pub struct T0Card {
    /// NULL bytes sent before each SW1 SW2 (a NULL storm when large).
    pub nulls_before_status: u16,
    /// Acknowledge data one byte at a time (INS ^ 0xFF before each byte) instead of with INS.
    pub ack_one_by_one: bool,
    pending: Option<(Vec<u8>, u8, u8)>,
}

/// INS of GET RESPONSE.
const GET_RESPONSE: u8 = 0xC0;

impl T0Card {
    /// A card with no faults.
    pub fn new() -> T0Card {
        T0Card::default()
    }

    /// Whether response data waits for GET RESPONSE.
    pub fn has_pending_response(&self) -> bool {
        self.pending.is_some()
    }

    fn ack(&self, ins: u8, data: &[u8], out: &mut Vec<u8>) {
        if self.ack_one_by_one {
            for &byte in data {
                out.push(ins ^ 0xFF);
                out.push(byte);
            }
        } else {
            out.push(ins);
            out.extend_from_slice(data);
        }
    }

    /// Acks of outgoing data (the host sends the data, not the card).
    fn ack_outgoing(&self, ins: u8, len: usize, out: &mut Vec<u8>) {
        if self.ack_one_by_one {
            out.extend(std::iter::repeat_n(ins ^ 0xFF, len));
        } else {
            out.push(ins);
        }
    }

    fn status(&self, sw1: u8, sw2: u8, out: &mut Vec<u8>) {
        out.extend(std::iter::repeat_n(
            0x60,
            usize::from(self.nulls_before_status),
        ));
        out.push(sw1);
        out.push(sw2);
    }

    /// 61xx for `len` bytes waiting (xx = 0 for 256 or more).
    fn more_available(len: usize) -> (u8, u8) {
        (0x61, u8::try_from(len).unwrap_or(0))
    }

    /// The bytes the card sends for `tpdu`. `apdu_handler` gets the command APDU the card
    /// application sees (case 1: CLA INS P1 P2; case 2: with Le; cases 3 and 4: with Lc and
    /// data, no Le) and returns data and SW1 SW2, or `None` for a mute card: then the stream
    /// is empty, or holds just the acknowledgement of the command data (cases 3 and 4).
    ///
    /// Case 2 with a wrong Le gets 6Cxx (xx the exact length, the host sends again); data for
    /// cases 1, 3 and 4 gets 61xx and waits for GET RESPONSE (INS C0), which is served here
    /// (61xx again while data remains, 6Cxx when Le is too long). INS 6X/9X get 6D00, CLA FF
    /// 6E00, a data length other than P3 6700.
    pub fn respond(
        &mut self,
        tpdu: &Tpdu,
        apdu_handler: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Vec<u8> {
        let [cla, ins, p1, p2, p3] = tpdu.header;
        let mut out = Vec::new();
        if !ins_valid(ins) {
            self.status(0x6D, 0x00, &mut out);
            return out;
        }
        if cla == 0xFF {
            self.status(0x6E, 0x00, &mut out);
            return out;
        }
        let pending = self.pending.take();
        if ins == GET_RESPONSE && tpdu.data.is_empty() {
            if let Some((data, sw1, sw2)) = pending {
                let le = usize::from(short_len(p3));
                if le > data.len() {
                    // Wrong length: say the exact one (xx = 0 stands for 256).
                    self.status(0x6C, u8::try_from(data.len()).unwrap_or(0), &mut out);
                    self.pending = Some((data, sw1, sw2));
                } else if le == data.len() {
                    self.ack(ins, &data, &mut out);
                    self.status(sw1, sw2, &mut out);
                } else {
                    let (now, rest) = data.split_at(le);
                    self.ack(ins, now, &mut out);
                    let (m1, m2) = Self::more_available(rest.len());
                    self.status(m1, m2, &mut out);
                    self.pending = Some((rest.to_vec(), sw1, sw2));
                }
                return out;
            }
        }
        let outgoing = matches!(tpdu.case, TpduCase::Case3 | TpduCase::Case4 { .. });
        let mut apdu = vec![cla, ins, p1, p2];
        if outgoing {
            if tpdu.data.len() != usize::from(p3) || tpdu.data.is_empty() {
                self.status(0x67, 0x00, &mut out);
                return out;
            }
            self.ack_outgoing(ins, tpdu.data.len(), &mut out);
            apdu.push(p3);
            apdu.extend_from_slice(&tpdu.data);
        } else if let TpduCase::Case2 { .. } = tpdu.case {
            apdu.push(p3);
        }
        let Some(response) = apdu_handler(&apdu) else {
            return out;
        };
        let Some((data, sw)) = response.split_last_chunk::<2>() else {
            // A handler that returns no status: report an internal error.
            self.status(0x6F, 0x00, &mut out);
            return out;
        };
        let [sw1, sw2] = *sw;
        if data.is_empty() {
            self.status(sw1, sw2, &mut out);
            return out;
        }
        match tpdu.case {
            TpduCase::Case2 { le } => {
                let le = usize::from(le);
                if data.len() == le {
                    self.ack(ins, data, &mut out);
                    self.status(sw1, sw2, &mut out);
                } else if data.len() > 256 {
                    // More than a short Le can carry: send Le bytes, the rest on request.
                    let (now, rest) = data.split_at(le.min(data.len()));
                    self.ack(ins, now, &mut out);
                    let (m1, m2) = Self::more_available(rest.len());
                    self.status(m1, m2, &mut out);
                    self.pending = Some((rest.to_vec(), sw1, sw2));
                } else {
                    self.status(0x6C, u8::try_from(data.len()).unwrap_or(0), &mut out);
                }
            }
            _ => {
                let (m1, m2) = Self::more_available(data.len());
                self.status(m1, m2, &mut out);
                self.pending = Some((data.to_vec(), sw1, sw2));
            }
        }
        out
    }
}

/// The bytes a fresh T=0 card (no pending GET RESPONSE data, no faults) sends for `tpdu`;
/// see [`T0Card::respond`]. GET RESPONSE commands go to `apdu_handler` here, since nothing
/// is kept between calls: use a [`T0Card`] to serve them.
pub fn card_respond(
    tpdu: &Tpdu,
    apdu_handler: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
) -> Vec<u8> {
    T0Card::new().respond(tpdu, apdu_handler)
}
