//! The card side of T=1, for the virtual reader: [`T1Card`].

use std::collections::VecDeque;

use super::{Block, BlockKind, Checksum, DEFAULT_IFS, RError, SKind, valid_ifs};

/// What the virtual card does with a block it received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardAction {
    /// Send this encoded block back.
    Reply(Vec<u8>),
    /// Say nothing (the card is mute): the reader times out.
    Mute,
}

/// The card side of T=1, for the virtual reader.
///
/// Feed it each block the terminal sends with [`handle`](T1Card::handle); it answers with
/// the block a card would send. It assembles chained commands (acknowledging each block),
/// calls the APDU handler once per complete command, sends long responses chained in blocks
/// of at most min(IFSC, IFSD) bytes, answers S(IFS), S(RESYNCH) and S(ABORT), retransmits on
/// request, and can inject faults through its public fields.
#[derive(Debug, Clone)]
pub struct T1Card {
    /// The card's information field size: the largest INF it accepts.
    pub ifsc: u8,
    /// The terminal's information field size (32 until an S(IFS request) changes it).
    pub ifsd: u8,
    /// EDC in use.
    pub checksum: Checksum,
    /// N(S) of the card's next I-block.
    pub ns: bool,
    /// N(S) the card expects in the terminal's next I-block.
    pub nr: bool,
    /// Fault: this many S(WTX request) blocks are sent before each response (a WTX storm
    /// when large).
    pub wtx_before_response: u8,
    /// The multiplier asked for in each S(WTX request) (default 1).
    pub wtx_multiplier: u8,
    /// Fault: the next block sent has a wrong EDC (a retransmission is sent intact).
    pub corrupt_next: bool,
    /// Before the next response, ask the terminal for this IFSC with S(IFS request)
    /// (one-shot).
    pub ifs_request_before_response: Option<u8>,
    /// Fault: answer the next chained command block with S(ABORT request) (one-shot).
    pub abort_next_chain: bool,
    initial_ifsc: u8,
    command: Vec<u8>,
    response: Vec<u8>,
    response_offset: usize,
    sending_chain: bool,
    last_i: Option<(bool, bool)>,
    pending_requests: VecDeque<Block>,
    awaiting: Option<Block>,
    last_sent: Option<Vec<u8>>,
    muted: bool,
}

impl T1Card {
    /// A card with this IFSC (as its ATR announces it; invalid values become 32) and EDC.
    pub fn new(ifsc: u8, checksum: Checksum) -> T1Card {
        let ifsc = valid_ifs(ifsc).unwrap_or(DEFAULT_IFS);
        T1Card {
            ifsc,
            initial_ifsc: ifsc,
            ifsd: DEFAULT_IFS,
            checksum,
            ns: false,
            nr: false,
            wtx_before_response: 0,
            wtx_multiplier: 1,
            corrupt_next: false,
            ifs_request_before_response: None,
            abort_next_chain: false,
            command: Vec::new(),
            response: Vec::new(),
            response_offset: 0,
            sending_chain: false,
            last_i: None,
            pending_requests: VecDeque::new(),
            awaiting: None,
            last_sent: None,
            muted: false,
        }
    }

    /// A card with the IFSC and EDC `atr` announces.
    pub fn from_atr(atr: &crate::atr::ParsedAtr) -> T1Card {
        T1Card::new(atr.ifsc(), atr.t1_checksum())
    }

    /// Back to the state right after an ATR (a warm reset): sequence numbers 0, IFSC as
    /// created, IFSD 32, nothing pending, no longer mute. Fault settings are kept.
    pub fn reset(&mut self) {
        self.ifsc = self.initial_ifsc;
        self.ifsd = DEFAULT_IFS;
        self.ns = false;
        self.nr = false;
        self.clear_exchange();
        self.last_sent = None;
        self.muted = false;
    }

    /// Whether the card went mute (the APDU handler returned `None`); it stays mute until
    /// [`reset`](T1Card::reset).
    pub fn is_mute(&self) -> bool {
        self.muted
    }

    fn clear_exchange(&mut self) {
        self.command.clear();
        self.response.clear();
        self.response_offset = 0;
        self.sending_chain = false;
        self.last_i = None;
        self.pending_requests.clear();
        self.awaiting = None;
    }

    fn reply(&mut self, block: Block) -> CardAction {
        let bytes = block.encode(self.checksum);
        self.last_sent = Some(bytes.clone());
        self.send(bytes)
    }

    fn send(&mut self, mut bytes: Vec<u8>) -> CardAction {
        if self.corrupt_next {
            self.corrupt_next = false;
            if let Some(last) = bytes.last_mut() {
                *last ^= 0xFF;
            }
        }
        CardAction::Reply(bytes)
    }

    fn invalid(&mut self, error: RError) -> CardAction {
        self.reply(Block::r(self.nr, error))
    }

    fn next_response_block(&mut self) -> CardAction {
        let size = usize::from(self.ifsc.min(self.ifsd).max(1));
        let rest = self.response.get(self.response_offset..).unwrap_or(&[]);
        let len = rest.len().min(size);
        let more = rest.len() > size;
        let block = Block::i(self.ns, more, rest[..len].to_vec());
        self.last_i = Some((self.ns, more));
        self.ns = !self.ns;
        self.response_offset += len;
        self.sending_chain = more;
        if !more {
            self.response.clear();
            self.response_offset = 0;
        }
        self.reply(block)
    }

    /// Sends the next queued S-request, or the response.
    fn continue_response(&mut self) -> CardAction {
        if let Some(request) = self.pending_requests.pop_front() {
            self.awaiting = Some(request.clone());
            return self.reply(request);
        }
        self.next_response_block()
    }

    /// Handles one block from the terminal. `apdu_handler` gets each complete command APDU
    /// and returns the response APDU (data and SW1 SW2), or `None` to make the card mute.
    pub fn handle(
        &mut self,
        block_bytes: &[u8],
        apdu_handler: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> CardAction {
        if self.muted {
            return CardAction::Mute;
        }
        let block = match Block::decode(block_bytes, self.checksum) {
            Ok(block) => block,
            Err(e) => return self.invalid(e.r_error()),
        };
        let Some(kind) = block.kind() else {
            return self.invalid(RError::Other);
        };
        match kind {
            BlockKind::I { ns, more } => {
                if self.awaiting.is_some()
                    || self.sending_chain
                    || ns != self.nr
                    || block.inf.len() > usize::from(self.ifsc)
                {
                    return self.invalid(RError::Other);
                }
                self.nr = !self.nr;
                // A new command ends whatever response was pending.
                if self.command.is_empty() {
                    self.response.clear();
                    self.response_offset = 0;
                }
                self.command.extend_from_slice(&block.inf);
                if more {
                    if self.abort_next_chain {
                        self.abort_next_chain = false;
                        self.command.clear();
                        let request = Block::s(SKind::Abort, false, Vec::new());
                        self.awaiting = Some(request.clone());
                        return self.reply(request);
                    }
                    return self.reply(Block::r(self.nr, RError::None));
                }
                let apdu = std::mem::take(&mut self.command);
                let Some(response) = apdu_handler(&apdu) else {
                    self.muted = true;
                    return CardAction::Mute;
                };
                self.response = response;
                self.response_offset = 0;
                self.pending_requests.clear();
                if let Some(ifsc) = self.ifs_request_before_response.take() {
                    self.pending_requests
                        .push_back(Block::s(SKind::Ifs, false, vec![ifsc]));
                }
                for _ in 0..self.wtx_before_response {
                    self.pending_requests.push_back(Block::s(
                        SKind::Wtx,
                        false,
                        vec![self.wtx_multiplier.max(1)],
                    ));
                }
                self.continue_response()
            }
            BlockKind::R { nr, .. } => {
                if let (Some((last_ns, true)), true, None) =
                    (self.last_i, self.sending_chain, &self.awaiting)
                {
                    if nr != last_ns {
                        return self.next_response_block();
                    }
                }
                match self.last_sent.clone() {
                    Some(bytes) => self.send(bytes),
                    None => self.invalid(RError::Other),
                }
            }
            BlockKind::S {
                kind,
                response: false,
            } => match kind {
                SKind::Ifs => match block.inf.as_slice() {
                    [value] if valid_ifs(*value).is_some() => {
                        self.ifsd = *value;
                        self.reply(Block::s(SKind::Ifs, true, block.inf))
                    }
                    _ => self.invalid(RError::Other),
                },
                SKind::Resync if block.inf.is_empty() => {
                    self.ns = false;
                    self.nr = false;
                    self.ifsc = self.initial_ifsc;
                    self.ifsd = DEFAULT_IFS;
                    self.clear_exchange();
                    self.reply(Block::s(SKind::Resync, true, Vec::new()))
                }
                SKind::Abort => {
                    self.clear_exchange();
                    self.reply(Block::s(SKind::Abort, true, Vec::new()))
                }
                _ => self.invalid(RError::Other),
            },
            BlockKind::S {
                kind,
                response: true,
            } => {
                let matches = match &self.awaiting {
                    Some(request) => {
                        request.kind()
                            == Some(BlockKind::S {
                                kind,
                                response: false,
                            })
                            && request.inf == block.inf
                    }
                    None => false,
                };
                if !matches {
                    return self.invalid(RError::Other);
                }
                self.awaiting = None;
                match kind {
                    SKind::Ifs => {
                        if let Some(&value) = block.inf.first() {
                            self.ifsc = value;
                        }
                        self.continue_response()
                    }
                    // Give the right to send back to the terminal.
                    SKind::Abort => self.reply(Block::r(self.nr, RError::None)),
                    _ => self.continue_response(),
                }
            }
        }
    }
}
