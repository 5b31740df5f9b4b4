//! The EMV chip transaction: waiting for the card, the kernel run with the host in the
//! middle, and what the card decided after the host answered.

use super::*;

impl Terminal {
    /// The EMV chip transaction.
    pub(super) fn chip(
        &mut self,
        cx: Ctx<'_, '_>,
        receipt: bool,
    ) -> Result<ChipEnd, TerminalError> {
        let capabilities = self.capabilities(receipt);
        let Some(mut reader) = self.devices.reader.take() else {
            return Ok(ChipEnd::ChipFailed(
                FaultKind::NotFound,
                "no chip reader".into(),
            ));
        };
        let r = self.chip_with(cx, &capabilities, &mut reader);
        let _ = reader.power_off(0);
        self.devices.reader = Some(reader);
        cx.hook.borrow_mut().prompt(Prompt::RemoveCard);
        r
    }

    pub(super) fn chip_with(
        &mut self,
        cx: Ctx<'_, '_>,
        capabilities: &Capabilities,
        reader: &mut Reader,
    ) -> Result<ChipEnd, TerminalError> {
        let Ctx {
            id,
            op,
            amount,
            hook,
        } = cx;
        // Wait for the card.
        let deadline =
            std::time::Instant::now() + Duration::from_millis(self.config.card_timeout_ms);
        loop {
            if self.cancelled() {
                self.abort(id, CANCELLED)?;
                return Ok(ChipEnd::Ended);
            }
            match reader.slot_status(0) {
                Ok(s) if s.contains(SlotState::CARD_PRESENT) => break,
                Ok(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(_) => {
                    return Ok(ChipEnd::ChipFailed(
                        FaultKind::CardAbsent,
                        "no card inserted in time".into(),
                    ));
                }
                Err(e) => return Ok(ChipEnd::ChipFailed(e.kind(), e.to_string())),
            }
        }
        if let Err(e) = reader.power_on(0) {
            self.journal.event(
                Some(id),
                "fault",
                &format!("reader: power on failed: {} ({e})", e.kind().name()),
            )?;
            return Ok(ChipEnd::ChipFailed(e.kind(), e.to_string()));
        }
        let mut un = [0u8; 4];
        let _ = getrandom::fill(&mut un);
        let mut terminal = TerminalData::new(un);
        terminal.set_capabilities(capabilities);
        terminal.set_unix_time(self.clock.now_secs());
        terminal.set(tags::TERMINAL_COUNTRY_CODE, bcd2(self.config.country));
        terminal.set(tags::TRANSACTION_CURRENCY_CODE, bcd2(self.config.currency));
        if op == Operation::Refund {
            terminal.set(tags::TRANSACTION_TYPE, vec![0x20]);
        }
        let mut cfg = TransactionConfig::new(terminal, amount, self.ca_keys.clone());
        // Online-only terminal: anything over the floor limit (0) goes online.
        cfg.tac.online = [0, 0, 0, 0x80, 0];

        let host_answered = Cell::new(false);
        let host_end: RefCell<Option<HostEnd>> = RefCell::new(None);
        let failed: RefCell<Option<TerminalError>> = RefCell::new(None);
        let reader_cell = RefCell::new(reader);
        let outcome = {
            let mut ch = HookChannel {
                reader: &reader_cell,
                hook,
                host_answered: &host_answered,
                fired: false,
            };
            // GET DATA ATC: asked before going online, to see that the card still answers.
            let get_atc = Command::get_data(u16::try_from(tags::ATC.raw()).unwrap_or_default())
                .to_bytes(false)
                .unwrap_or_default();
            let mut online = |rec: &TransactionRecord| -> OnlineDecision {
                let facts = facts_from_record(rec);
                let mut still_there = || -> Result<(), (FaultKind, String)> {
                    let mut r = reader_cell.borrow_mut();
                    match r.slot_status(0) {
                        Ok(s)
                            if !s.contains(SlotState::CARD_PRESENT)
                                || s.contains(SlotState::CHANGED) =>
                        {
                            return Err((FaultKind::CardRemoved, "card removed".into()));
                        }
                        Ok(_) => {}
                        Err(e) => return Err((e.kind(), e.to_string())),
                    }
                    match r.transmit(0, &get_atc) {
                        Ok(_) => Ok(()),
                        Err(e) => Err((e.kind(), e.to_string())),
                    }
                };
                let end = match self.online(cx, facts, None, &mut still_there) {
                    Ok(end) => end,
                    Err(e) => {
                        *failed.borrow_mut() = Some(e);
                        HostEnd::Stopped
                    }
                };
                let decision = match &end {
                    HostEnd::Approved {
                        response_code,
                        issuer_data,
                    } => {
                        host_answered.set(true);
                        let (iad, scripts, malformed) = split_issuer_data(issuer_data);
                        if let Some(e) = malformed {
                            // Said, not swallowed: the card gets what came before the fault.
                            let note = format!(
                                "the host's issuer data (field 55) is malformed ({e}): the issuer \
                                 authentication data and scripts after it are not given to the card"
                            );
                            log::warn!("txn {id}: {note}");
                            if let Err(e) = self.journal.event(Some(id), "host", &note) {
                                failed.borrow_mut().get_or_insert(e.into());
                            }
                        }
                        OnlineDecision::Approved {
                            arc: arc(response_code),
                            issuer_auth_data: iad,
                            scripts,
                        }
                    }
                    HostEnd::Declined { response_code } => {
                        host_answered.set(true);
                        OnlineDecision::Declined {
                            arc: arc(response_code),
                            issuer_auth_data: None,
                            scripts: Vec::new(),
                        }
                    }
                    HostEnd::Stopped | HostEnd::MustReverse => OnlineDecision::Unreachable,
                };
                *host_end.borrow_mut() = Some(end);
                decision
            };
            transaction::run(&mut ch, &cfg, &mut online)
        };
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        let host_end = host_end.into_inner();
        let approved = matches!(host_end, Some(HostEnd::Approved { .. }));
        match outcome {
            Ok(out) => {
                self.note_missing_ca_key(id, &out)?;
                self.note_pin_not_entered(id, &out)?;
                if approved {
                    if out.decision.is_approved() {
                        self.journal.transition(
                            id,
                            State::Committed,
                            "card accepted the host's approval (TC at the second GENERATE AC)",
                            Changes::default(),
                        )?;
                        return Ok(ChipEnd::Committed);
                    }
                    self.journal.event(
                        Some(id),
                        "card",
                        "card declined at the second GENERATE AC after the host approved",
                    )?;
                    self.begin_reversal(
                        id,
                        ReversalReason::CardDeclinedAfterApproval,
                        "card declined after the host approved: reversing",
                    )?;
                    return Ok(ChipEnd::Ended);
                }
                if host_end.is_none() {
                    // Never went online: decided by the card offline.
                    let (reason, state) = match out.decision {
                        TransactionDecision::DeclinedOffline => (
                            "declined by the card (offline)".to_string(),
                            State::Declined,
                        ),
                        d => (
                            format!(
                                "card decided offline ({d:?}); this terminal is online-only: nothing charged"
                            ),
                            State::Aborted,
                        ),
                    };
                    self.journal
                        .transition(id, state, &reason, Changes::reason(&reason))?;
                }
                Ok(ChipEnd::Ended)
            }
            Err(TransactionError::Card(e)) if host_end.is_none() => {
                let kind = e.kind();
                self.journal.event(
                    Some(id),
                    "fault",
                    &format!("chip: {} at {:?}", kind.name(), e.step()),
                )?;
                Ok(ChipEnd::ChipFailed(kind, e.to_string()))
            }
            Err(e) => {
                let kind = e.emv().kind();
                self.journal.event(
                    Some(id),
                    "fault",
                    &format!("chip after the host answered: {}", kind.name()),
                )?;
                if approved {
                    self.begin_reversal(
                        id,
                        ReversalReason::CardDeclinedAfterApproval,
                        &format!("{} after the host approved: reversing", fault_words(kind)),
                    )?;
                }
                Ok(ChipEnd::Ended)
            }
        }
    }

    /// Offline data authentication that failed for want of the card's CA public key: the
    /// journal names the RID and index and where the lane's keys come from.
    pub(super) fn note_missing_ca_key(
        &mut self,
        id: i64,
        out: &transaction::TransactionOutcome,
    ) -> Result<(), TerminalError> {
        let Some(pos_emv::oda::OdaError::UnknownCaKey { rid, index }) = &out.oda.detail else {
            return Ok(());
        };
        let rid: String = rid.iter().map(|b| format!("{b:02X}")).collect();
        let source = match &self.config.ca_keys {
            Some(p) => format!("the CA key file {} (ca_keys) has no such key", p.display()),
            None => {
                "the lane uses the built-in test keys: set ca_keys in the config to a CA key file"
                    .into()
            }
        };
        let note = format!(
            "offline data authentication failed: no CA public key for RID {rid} index {index:02X}; {source}; add the scheme's key as a line `{rid} {index:02X} EXPONENT MODULUS` ({})",
            pos_emv::capk::LINE_FORMAT
        );
        self.journal.event(Some(id), "oda", &note)?;
        self.say(Some(id), &note);
        Ok(())
    }

    /// A card that asked for a PIN the configured PIN pad offers: no PIN was entered (there
    /// is no PIN pad driver); the journal says so and what verification the card got.
    pub(super) fn note_pin_not_entered(
        &mut self,
        id: i64,
        out: &transaction::TransactionOutcome,
    ) -> Result<(), TerminalError> {
        let Some(cvm) = out.cvm else { return Ok(()) };
        let Some(asked) = cvm.method_asked.filter(|m| m.needs_pin()) else {
            return Ok(());
        };
        if !out.tvr.contains(pos_emv::tvr::Tvr::PIN_PAD_NOT_PRESENT) {
            return Ok(());
        }
        let then = match cvm.performed {
            Some(m) => format!("verified instead by {m:?}"),
            None => "cardholder verification failed".into(),
        };
        let note = format!(
            "the card asked for PIN ({asked:?}); pin_pad {} has no driver: no PIN entered, the card was told \"PIN pad not present or not working\"; {then}",
            self.config.pin_pad.device
        );
        self.journal.event(Some(id), "cvm", &note)?;
        self.say(Some(id), &note);
        Ok(())
    }
}

pub(super) enum ChipEnd {
    Committed,
    Ended,
    ChipFailed(FaultKind, String),
}

/// A card channel over the lane's reader that fires [`Step::SecondGac`] before the second
/// GENERATE AC.
pub(super) struct HookChannel<'a, 'h> {
    reader: &'a RefCell<&'a mut Reader>,
    hook: &'a RefCell<&'h mut dyn StepHook>,
    host_answered: &'a Cell<bool>,
    fired: bool,
}

impl CardChannel for HookChannel<'_, '_> {
    type Error = DeviceError;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, DeviceError> {
        if self.host_answered.get() && !self.fired && command.get(1) == Some(&0xAE) {
            self.fired = true;
            self.hook.borrow_mut().at(Step::SecondGac);
        }
        self.reader.borrow_mut().transmit(0, command)
    }
}

pub(super) fn facts_from_record(rec: &TransactionRecord) -> CardFacts {
    CardFacts {
        pan_masked: rec.pan_masked.clone(),
        aid: Some(hex::encode_upper(&rec.aid)),
        label: rec.label.clone(),
        card: CardData {
            pan: rec.pan.clone().unwrap_or_default(),
            expiry: rec
                .expiry
                .as_ref()
                .and_then(|e| e.get(..4))
                .map(str::to_string),
            pan_sequence: rec.pan_sequence,
            track2: None,
            entry_mode: EntryMode::Chip,
            icc_data: Some(rec.icc_data.clone()),
        },
    }
}

pub(super) fn bcd2(v: u16) -> Vec<u8> {
    let v = v % 10_000;
    vec![
        ((v / 1000) << 4 | (v / 100 % 10)) as u8,
        ((v / 10 % 10) << 4 | (v % 10)) as u8,
    ]
}

pub(super) fn arc(code: &str) -> [u8; 2] {
    let b = code.as_bytes();
    [
        b.first().copied().unwrap_or(b'0'),
        b.get(1).copied().unwrap_or(b'0'),
    ]
}

/// Issuer authentication data (`91`) and script templates (`71`/`72`) from field 55, and
/// the TLV error where it stopped being well formed (what came before it is kept).
pub(super) fn split_issuer_data(data: &[u8]) -> (Option<Vec<u8>>, Vec<u8>, Option<TlvError>) {
    let mut iad = None;
    let mut scripts = Vec::new();
    for t in tlv::parse(data) {
        let t = match t {
            Ok(t) => t,
            Err(e) => return (iad, scripts, Some(e)),
        };
        if t.tag == tags::ISSUER_AUTH_DATA {
            iad = Some(t.value.to_vec());
        } else if t.tag == tags::ISSUER_SCRIPT_1 || t.tag == tags::ISSUER_SCRIPT_2 {
            if let Some(raw) = data.get(t.offset..t.offset + t.encoded_len()) {
                scripts.extend_from_slice(raw);
            }
        }
    }
    (iad, scripts, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_data_split() {
        let data = [
            0x91, 0x02, 0xAA, 0xBB, 0x71, 0x03, 0x86, 0x01, 0x00, 0x9F, 0x01, 0x00,
        ];
        let (iad, scripts, malformed) = split_issuer_data(&data);
        assert_eq!(iad, Some(vec![0xAA, 0xBB]));
        assert_eq!(scripts, vec![0x71, 0x03, 0x86, 0x01, 0x00]);
        assert!(malformed.is_none());
        // Padding only: nothing, and nothing wrong.
        assert_eq!(split_issuer_data(&[0xFF]), (None, vec![], None));
        // A length past the end.
        let (iad, scripts, malformed) = split_issuer_data(&[0x91, 0x05, 0xAA]);
        assert_eq!((iad, scripts), (None, vec![]));
        assert!(malformed.is_some());
        // Good up to a truncated script: the issuer data before it is kept, the fault said.
        let (iad, scripts, malformed) = split_issuer_data(&[0x91, 0x01, 0xAA, 0x72, 0x05, 0x86]);
        assert_eq!((iad, scripts), (Some(vec![0xAA]), vec![]));
        assert!(malformed.is_some());
        assert_eq!(bcd2(978), vec![0x09, 0x78]);
        assert_eq!(arc("51"), *b"51");
    }
}
