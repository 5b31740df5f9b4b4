//! The interface-device side of T=1: [`T1Terminal`].

use super::{
    Block, BlockKind, BlockTransport, Checksum, DEFAULT_IFS, DEFAULT_MAX_RESPONSE_LEN, MAX_INF,
    RError, SKind, T1Error, valid_ifs,
};

/// Why the current attempt failed, for the retry logic.
enum Failure<E> {
    /// An invalid or unexpected block: answer with an R-block carrying this error.
    Invalid(RError),
    /// A recoverable transport error.
    Lost(E),
}

/// Outcome of one attempt: `Err` ends the operation; `Ok(Err(_))` may be retried.
type Attempt<V, E> = Result<Result<V, Failure<E>>, T1Error<E>>;

/// Counts the blocks of one operation against a budget.
struct Budget {
    used: u32,
    limit: u32,
}

impl Budget {
    fn new(limit: u32) -> Self {
        Budget { used: 0, limit }
    }

    fn take<E>(&mut self) -> Result<(), T1Error<E>> {
        if self.used >= self.limit {
            return Err(T1Error::TooManyBlocks { limit: self.limit });
        }
        self.used += 1;
        Ok(())
    }
}

/// The interface-device side of T=1.
///
/// Create one per card session (after each ATR) with the card's IFSC and EDC from the ATR,
/// call [`negotiate_ifsd`](T1Terminal::negotiate_ifsd) once (EMV asks for 254), then
/// [`transceive`](T1Terminal::transceive) each APDU.
///
/// After any failed exchange other than [`T1Error::Resynchronised`] the sequence numbers can
/// no longer be trusted, so the next `transceive` starts with an S(RESYNCH request).
#[derive(Debug, Clone)]
pub struct T1Terminal {
    /// Card's information field size: the largest INF the terminal sends.
    pub ifsc: u8,
    /// Terminal's information field size: the largest INF the card may send.
    pub ifsd: u8,
    /// N(S) of the next I-block the terminal sends.
    pub ns: bool,
    /// N(S) the terminal expects in the card's next I-block.
    pub nr: bool,
    /// EDC in use.
    pub checksum: Checksum,
    /// NAD put in every block sent (0: no addressing, as EMV requires).
    pub nad: u8,
    /// Retransmissions of one block before resynchronising (ISO: 3 attempts).
    pub max_retries: u8,
    /// S(RESYNCH request) attempts before giving up.
    pub max_resync_attempts: u8,
    /// Blocks one operation may exchange, on top of one per command byte.
    pub max_blocks: u32,
    /// Consecutive S(WTX request) blocks accepted.
    pub max_consecutive_wtx: u32,
    /// Largest response accepted.
    pub max_response_len: usize,
    /// The most INF bytes one block sent may carry, whatever the IFSC: what fits in one
    /// message of the reader (CCID dwMaxCCIDMessageLength). Default 254.
    pub max_send_inf: u8,
    initial_ifsc: u8,
    wanted_ifsd: u8,
    needs_resync: bool,
}

impl T1Terminal {
    /// A terminal for a card whose ATR gives `ifsc` (see
    /// [`crate::atr::ParsedAtr::ifsc`]; 0 and 255 are replaced by the default 32) and
    /// `checksum` ([`crate::atr::ParsedAtr::t1_checksum`]). Sequence numbers start at 0,
    /// IFSD at 32.
    pub fn new(ifsc: u8, checksum: Checksum) -> T1Terminal {
        let ifsc = valid_ifs(ifsc).unwrap_or(DEFAULT_IFS);
        T1Terminal {
            ifsc,
            ifsd: DEFAULT_IFS,
            ns: false,
            nr: false,
            checksum,
            nad: 0,
            max_retries: 3,
            max_resync_attempts: 3,
            max_blocks: 1000,
            max_consecutive_wtx: 64,
            max_response_len: DEFAULT_MAX_RESPONSE_LEN,
            max_send_inf: 254,
            initial_ifsc: ifsc,
            wanted_ifsd: DEFAULT_IFS,
            needs_resync: false,
        }
    }

    /// A terminal for the card that sent `atr`: its IFSC and EDC.
    pub fn from_atr(atr: &crate::atr::ParsedAtr) -> T1Terminal {
        T1Terminal::new(atr.ifsc(), atr.t1_checksum())
    }

    /// Whether the next [`transceive`](T1Terminal::transceive) will resynchronise first
    /// (after a failed exchange).
    pub fn needs_resync(&self) -> bool {
        self.needs_resync
    }

    fn encode(&self, block: Block) -> Vec<u8> {
        block.with_nad(self.nad).encode(self.checksum)
    }

    /// Sends S(IFS request) with `ifsd` (1..=254; EMV: 254, as the first block after the
    /// ATR) and waits for the matching S(IFS response). An invalid answer makes the request
    /// go again, up to [`max_retries`](T1Terminal::max_retries) times; S(WTX) requests on the
    /// way are answered.
    ///
    /// # Errors
    /// [`T1Error::Transport`] for a transport error that is not recoverable, or the last
    /// recoverable one when all attempts failed that way; [`T1Error::Protocol`] when the card
    /// never answered correctly; [`T1Error::InvalidArgument`] for an IFSD outside 1..=254.
    /// The IFSD stays unchanged on error.
    pub fn negotiate_ifsd<T: BlockTransport>(
        &mut self,
        t: &mut T,
        ifsd: u8,
    ) -> Result<(), T1Error<T::Error>> {
        let Some(ifsd) = valid_ifs(ifsd) else {
            return Err(T1Error::InvalidArgument {
                detail: format!("IFSD {ifsd} is outside 1..=254"),
            });
        };
        let mut budget = Budget::new(self.max_blocks);
        match self.s_request(t, &mut budget, SKind::Ifs, vec![ifsd], self.max_retries)? {
            Ok(()) => {
                self.ifsd = ifsd;
                self.wanted_ifsd = ifsd;
                Ok(())
            }
            Err(lost) => Err(self.give_up(lost, "no valid S(IFS response)")),
        }
    }

    /// Sends S(RESYNCH request) and waits for S(RESYNCH response), up to
    /// [`max_resync_attempts`](T1Terminal::max_resync_attempts) times. On success both
    /// sequence numbers are 0, the IFSC is the ATR's again, and the IFSD negotiated before (if
    /// any) is asked for again.
    ///
    /// # Errors
    /// [`T1Error::Transport`] for a fatal transport error, [`T1Error::ResyncFailed`] when no
    /// attempt succeeded.
    pub fn resynchronise<T: BlockTransport>(&mut self, t: &mut T) -> Result<(), T1Error<T::Error>> {
        let mut budget = Budget::new(self.max_blocks);
        self.resync_with(t, &mut budget)
    }

    fn resync_with<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
    ) -> Result<(), T1Error<T::Error>> {
        self.needs_resync = true;
        let mut attempts = 0u8;
        loop {
            attempts = attempts.saturating_add(1);
            // Each S(RESYNCH request) is one attempt: no retransmissions inside.
            match self.s_request(t, budget, SKind::Resync, Vec::new(), 0)? {
                Ok(()) => break,
                Err(Failure::Lost(e)) if attempts >= self.max_resync_attempts.max(1) => {
                    return Err(T1Error::Transport(e));
                }
                Err(_) if attempts >= self.max_resync_attempts.max(1) => {
                    return Err(T1Error::ResyncFailed { attempts });
                }
                Err(_) => {}
            }
        }
        log::debug!("T=1 link resynchronised");
        self.ns = false;
        self.nr = false;
        self.ifsc = self.initial_ifsc;
        self.ifsd = DEFAULT_IFS;
        self.needs_resync = false;
        if self.wanted_ifsd != DEFAULT_IFS {
            let wanted = self.wanted_ifsd;
            match self.s_request(t, budget, SKind::Ifs, vec![wanted], self.max_retries)? {
                Ok(()) => self.ifsd = wanted,
                Err(_) => log::warn!("IFSD {wanted} refused after resynchronisation; using 32"),
            }
        }
        Ok(())
    }

    /// Error to return when retries are exhausted outside a resynchronisable exchange.
    fn give_up<E>(&self, failure: Failure<E>, what: &str) -> T1Error<E> {
        match failure {
            Failure::Lost(e) => T1Error::Transport(e),
            Failure::Invalid(_) => T1Error::Protocol {
                detail: format!("{what} after {} attempts", u32::from(self.max_retries) + 1),
            },
        }
    }

    /// One exchange through the transport: fatal errors come back as `Err`, recoverable ones
    /// as `Ok(Err(Failure::Lost))`, undecodable blocks as `Ok(Err(Failure::Invalid))`.
    fn exchange_once<T: BlockTransport>(
        &self,
        t: &mut T,
        budget: &mut Budget,
        bytes: &[u8],
        wtx: u8,
    ) -> Attempt<Block, T::Error> {
        budget.take()?;
        match t.exchange(bytes, wtx) {
            Ok(reply) => Ok(Block::decode(&reply, self.checksum).map_err(|e| {
                log::debug!("invalid T=1 block from the card: {e}");
                Failure::Invalid(e.r_error())
            })),
            Err(e) if t.is_recoverable(&e) => Ok(Err(Failure::Lost(e))),
            Err(e) => Err(T1Error::Transport(e)),
        }
    }

    /// Sends an S(`kind` request) with `inf` until the matching response arrives (rule 7.3:
    /// an invalid answer makes the request go again). `Ok(Err(failure))` when all
    /// `retries + 1` attempts failed.
    fn s_request<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
        kind: SKind,
        inf: Vec<u8>,
        retries: u8,
    ) -> Attempt<(), T::Error> {
        let request = self.encode(Block::s(kind, false, inf.clone()));
        let mut to_send = request.clone();
        let mut wtx = 1u8;
        let mut wtx_count = 0u32;
        let mut failures = 0u32;
        loop {
            let sent_wtx = wtx;
            wtx = 1;
            let failure = match self.exchange_once(t, budget, &to_send, sent_wtx)? {
                Ok(block) => match block.kind() {
                    Some(BlockKind::S {
                        kind: k,
                        response: true,
                    }) if k == kind => {
                        if (k != SKind::Ifs || block.inf == inf)
                            && (k != SKind::Resync || block.inf.is_empty())
                        {
                            return Ok(Ok(()));
                        }
                        Failure::Invalid(RError::Other)
                    }
                    Some(BlockKind::S {
                        kind: SKind::Wtx,
                        response: false,
                    }) if block.inf.len() == 1 && block.inf[0] != 0 => {
                        wtx_count += 1;
                        if wtx_count > self.max_consecutive_wtx {
                            return Err(T1Error::TooManyWtx {
                                limit: self.max_consecutive_wtx,
                            });
                        }
                        wtx = block.inf[0];
                        to_send = self.encode(Block::s(SKind::Wtx, true, block.inf));
                        continue;
                    }
                    _ => Failure::Invalid(RError::Other),
                },
                Err(failure) => failure,
            };
            failures += 1;
            if failures > u32::from(retries) {
                return Ok(Err(failure));
            }
            to_send = request.clone();
        }
    }

    /// Sends `apdu` (a command APDU) and returns the card's response APDU (data and SW1 SW2).
    ///
    /// The command goes in I-blocks of at most IFSC bytes, each chained one acknowledged by an
    /// R-block; a chained response is collected by acknowledging each I-block with R(N(R)).
    /// S(WTX request) is answered and the multiplier handed to the next
    /// [`BlockTransport::exchange`]; S(IFS request) is answered and the new IFSC used for the
    /// rest of the command. Invalid blocks and recoverable transport errors are repaired by
    /// the ISO 7816-3 rules (R-block with error indication, retransmission); after
    /// [`max_retries`](T1Terminal::max_retries) failed attempts in a row the link is
    /// resynchronised and [`T1Error::Resynchronised`] returned.
    ///
    /// # Errors
    /// - [`T1Error::Transport`]: a transport error that is not recoverable, returned
    ///   immediately and unchanged (card removed, reader gone, timeout); or the last
    ///   recoverable one when resynchronisation also failed that way.
    /// - [`T1Error::Resynchronised`], [`T1Error::ResyncFailed`], [`T1Error::Aborted`],
    ///   [`T1Error::TooManyWtx`], [`T1Error::TooManyBlocks`], [`T1Error::ResponseTooLong`].
    ///
    /// Never reports success unless the card's last response block arrived intact.
    pub fn transceive<T: BlockTransport>(
        &mut self,
        t: &mut T,
        apdu: &[u8],
    ) -> Result<Vec<u8>, T1Error<T::Error>> {
        let limit = self
            .max_blocks
            .saturating_add(u32::try_from(apdu.len()).unwrap_or(u32::MAX));
        let mut budget = Budget::new(limit);
        if self.needs_resync {
            self.resync_with(t, &mut budget)?;
        }
        self.needs_resync = true;
        let result = self.run(t, &mut budget, apdu);
        if matches!(result, Ok(_) | Err(T1Error::Resynchronised)) {
            self.needs_resync = false;
        }
        result
    }

    fn next_chunk(&self, apdu: &[u8], offset: usize) -> (Block, usize) {
        let size = usize::from(self.ifsc.min(self.max_send_inf).max(1)).min(MAX_INF);
        let rest = apdu.get(offset..).unwrap_or(&[]);
        let len = rest.len().min(size);
        let more = rest.len() > size;
        (Block::i(self.ns, more, rest[..len].to_vec()), len)
    }

    fn run<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
        apdu: &[u8],
    ) -> Result<Vec<u8>, T1Error<T::Error>> {
        let mut offset = 0usize;
        let (mut current, mut chunk_len) = self.next_chunk(apdu, offset);
        let mut current_more = current.pcb & 0x20 != 0;
        let mut to_send = self.encode(current.clone());
        let mut receiving = false;
        let mut response = Vec::new();
        let mut failures = 0u32;
        let mut wtx_count = 0u32;
        let mut wtx = 1u8;

        loop {
            let sent_wtx = wtx;
            wtx = 1;
            let block = match self.exchange_once(t, budget, &to_send, sent_wtx)? {
                Ok(block) => block,
                Err(failure) => {
                    self.fail(t, budget, &mut failures, failure, &mut to_send)?;
                    continue;
                }
            };
            let Some(kind) = block.kind() else {
                self.fail(
                    t,
                    budget,
                    &mut failures,
                    Failure::Invalid(RError::Other),
                    &mut to_send,
                )?;
                continue;
            };
            match kind {
                BlockKind::S {
                    kind: SKind::Wtx,
                    response: false,
                } if block.inf.len() == 1 && block.inf[0] != 0 => {
                    wtx_count += 1;
                    if wtx_count > self.max_consecutive_wtx {
                        return Err(T1Error::TooManyWtx {
                            limit: self.max_consecutive_wtx,
                        });
                    }
                    wtx = block.inf[0];
                    log::trace!("card asks for waiting time extension x{wtx}");
                    to_send = self.encode(Block::s(SKind::Wtx, true, block.inf));
                }
                BlockKind::S {
                    kind: SKind::Ifs,
                    response: false,
                } if block.inf.len() == 1 && valid_ifs(block.inf[0]).is_some() => {
                    // The new size applies to the next I-block (and to the current one if
                    // it has to go again).
                    self.ifsc = block.inf[0];
                    log::debug!("card sets IFSC to {}", self.ifsc);
                    to_send = self.encode(Block::s(SKind::Ifs, true, block.inf));
                }
                BlockKind::S {
                    kind: SKind::Abort,
                    response: false,
                } => {
                    log::debug!("card aborts the T=1 chain");
                    let answer = self.encode(Block::s(SKind::Abort, true, Vec::new()));
                    // The card's next block (it gives the right to send back) is not needed:
                    // the link is resynchronised before the next command.
                    let _ = self.exchange_once(t, budget, &answer, 1)?;
                    return Err(T1Error::Aborted);
                }
                BlockKind::S { .. } => {
                    self.fail(
                        t,
                        budget,
                        &mut failures,
                        Failure::Invalid(RError::Other),
                        &mut to_send,
                    )?;
                }
                BlockKind::R { nr, .. } if !receiving => {
                    let current_ns = current.pcb & 0x40 != 0;
                    if current_more && nr != current_ns {
                        // Acknowledgement of the chained block: send the next one.
                        self.ns = !self.ns;
                        offset += chunk_len;
                        failures = 0;
                        wtx_count = 0;
                        let (next, len) = self.next_chunk(apdu, offset);
                        current = next;
                        chunk_len = len;
                        current_more = current.pcb & 0x20 != 0;
                        to_send = self.encode(current.clone());
                    } else if nr == current_ns {
                        // The card asks for the I-block again (cut anew, in case the card
                        // changed its IFSC meanwhile).
                        self.count_failure(t, budget, &mut failures)?;
                        let (again, len) = self.next_chunk(apdu, offset);
                        current = again;
                        chunk_len = len;
                        current_more = current.pcb & 0x20 != 0;
                        to_send = self.encode(current.clone());
                    } else {
                        // It did not understand our last block: send it again.
                        self.count_failure(t, budget, &mut failures)?;
                    }
                }
                BlockKind::R { .. } => {
                    // Receiving: the card did not understand our R-block (or S response).
                    self.count_failure(t, budget, &mut failures)?;
                }
                BlockKind::I { ns, more } => {
                    let acceptable = ns == self.nr
                        && (receiving || !current_more)
                        && block.inf.len() <= usize::from(self.ifsd);
                    if !acceptable {
                        self.fail(
                            t,
                            budget,
                            &mut failures,
                            Failure::Invalid(RError::Other),
                            &mut to_send,
                        )?;
                        continue;
                    }
                    if !receiving {
                        // Our last I-block is acknowledged by the card's I-block.
                        self.ns = !self.ns;
                        receiving = true;
                    }
                    self.nr = !self.nr;
                    failures = 0;
                    wtx_count = 0;
                    if response.len() + block.inf.len() > self.max_response_len {
                        return Err(T1Error::ResponseTooLong {
                            limit: self.max_response_len,
                        });
                    }
                    response.extend_from_slice(&block.inf);
                    if !more {
                        return Ok(response);
                    }
                    to_send = self.encode(Block::r(self.nr, RError::None));
                }
            }
        }
    }

    /// Counts one failed attempt; when retries are exhausted, resynchronises and returns the
    /// error that ends the exchange ([`T1Error::Resynchronised`] when that worked).
    fn count_failure<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
        failures: &mut u32,
    ) -> Result<(), T1Error<T::Error>> {
        *failures += 1;
        if *failures <= u32::from(self.max_retries) {
            return Ok(());
        }
        log::debug!("T=1: {} failed attempts, resynchronising", *failures);
        self.resync_with(t, budget)?;
        Err(T1Error::Resynchronised)
    }

    /// Handles an invalid block or a lost one (rules 7.1 and 7.2): an R-block asking for the
    /// expected I-block, with the error indication.
    fn fail<T: BlockTransport>(
        &mut self,
        t: &mut T,
        budget: &mut Budget,
        failures: &mut u32,
        failure: Failure<T::Error>,
        to_send: &mut Vec<u8>,
    ) -> Result<(), T1Error<T::Error>> {
        let error = match failure {
            Failure::Invalid(error) => error,
            // A lost block (timeout, parity): ask for it again.
            Failure::Lost(_) => RError::Other,
        };
        self.count_failure(t, budget, failures)?;
        *to_send = self.encode(Block::r(self.nr, error));
        Ok(())
    }
}
