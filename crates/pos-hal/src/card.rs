//! Chip readers, card channels and virtual cards.

use crate::device::Device;
use crate::fault::{Fault, FaultKind};

bitflags::bitflags! {
    /// What a slot reports about its card.
    ///
    /// `CHANGED` lets a reader say a card came and went between two looks (a quick
    /// remove-and-reinsert), so the service still treats it as a removal.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct SlotState: u8 {
        /// A card is in the slot.
        const CARD_PRESENT = 0b0000_0001;
        /// The card is powered (activated, ATR received).
        const POWERED = 0b0000_0010;
        /// Presence changed since the previous status was read.
        const CHANGED = 0b0000_0100;
    }
}

bitflags::bitflags! {
    /// What a chip reader can do (from its descriptors or configuration).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct ReaderCapabilities: u16 {
        /// Reports card insertion/removal by interrupt (no polling needed).
        const PRESENCE_INTERRUPT = 1 << 0;
        /// Speaks T=0 to cards.
        const T0 = 1 << 1;
        /// Speaks T=1 to cards.
        const T1 = 1 << 2;
        /// Exchanges whole short APDUs (the reader runs the card protocol).
        const APDU_LEVEL = 1 << 3;
        /// Exchanges extended-length APDUs.
        const EXTENDED_APDU = 1 << 4;
        /// Negotiates the card's speed (PPS) by itself.
        const AUTO_PPS = 1 << 5;
        /// Selects the card's voltage by itself.
        const AUTO_VOLTAGE = 1 << 6;
        /// Has a slot for a second card (SAM or multi-slot reader).
        const MULTI_SLOT = 1 << 7;
    }
}

/// A card's Answer-To-Reset, as received. Parsing it is the reader driver's job.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Atr(pub Vec<u8>);

impl Atr {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Upper-case hex with spaces (`3B 6E 00 ...`), as readers' tools show it.
    pub fn to_hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::fmt::Debug for Atr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Atr({})", self.to_hex())
    }
}

/// A chip (contact smart-card) reader with one or more slots.
///
/// Timeouts: each method is one exchange with the reader and returns within the driver's
/// exchange timeout (computed from the card's ATR for card exchanges, capped at seconds).
pub trait ChipReader: Device {
    /// Number of slots (at least 1). Does no I/O.
    fn slot_count(&self) -> u8;

    /// What the reader can do. Does no I/O.
    fn capabilities(&self) -> ReaderCapabilities;

    /// The slot's current state.
    ///
    /// Errors: `InvalidInput` for a slot out of range; `Disconnected` when the reader is gone;
    /// `Timeout`, `Protocol`.
    fn slot_status(&mut self, slot: u8) -> Result<SlotState, Self::Error>;

    /// Power the card on (cold reset) and return its ATR. A card already powered is reset.
    ///
    /// Errors: `CardAbsent` (no card), `CardMute` (no ATR in time), `CardUnsupported` (the ATR
    /// asks for a protocol or voltage the reader cannot give), `CardRemoved` (pulled during
    /// activation), `Disconnected`, `InvalidInput` (slot out of range).
    fn power_on(&mut self, slot: u8) -> Result<Atr, Self::Error>;

    /// Power the card off. Powering off an absent or unpowered card is not an error.
    ///
    /// Errors: `Disconnected`, `Timeout`, `InvalidInput` (slot out of range).
    fn power_off(&mut self, slot: u8) -> Result<(), Self::Error>;

    /// Send a command APDU to the powered card in `slot` and return its response APDU
    /// (data followed by SW1 SW2).
    ///
    /// Errors: `CardRemoved` (card pulled mid-exchange: the driver re-reads the slot before
    /// it says so), `CardMute` (no answer within the exchange timeout), `CardAbsent` (no card,
    /// or not powered), `Disconnected` (reader unplugged), `Protocol` (garbled exchange),
    /// `InvalidInput` (APDU malformed or too long for the reader).
    fn transmit(&mut self, slot: u8, command: &[u8]) -> Result<Vec<u8>, Self::Error>;
}

forward_lent_and_boxed!(ChipReader {
    fn slot_count(&self) -> u8 {
        (**self).slot_count()
    }
    fn capabilities(&self) -> ReaderCapabilities {
        (**self).capabilities()
    }
    fn slot_status(&mut self, slot: u8) -> Result<SlotState, Self::Error> {
        (**self).slot_status(slot)
    }
    fn power_on(&mut self, slot: u8) -> Result<Atr, Self::Error> {
        (**self).power_on(slot)
    }
    fn power_off(&mut self, slot: u8) -> Result<(), Self::Error> {
        (**self).power_off(slot)
    }
    fn transmit(&mut self, slot: u8, command: &[u8]) -> Result<Vec<u8>, Self::Error> {
        (**self).transmit(slot, command)
    }
});

/// A channel to one powered card: the only thing the EMV layer needs.
///
/// Any backend can provide it (a CCID reader's slot through [`SlotChannel`], a test double,
/// a remote card).
pub trait CardChannel {
    /// The backend's error type.
    type Error: Fault + Send + Sync + 'static;

    /// Send a command APDU, return the response APDU (data then SW1 SW2).
    ///
    /// Errors and timeout: as [`ChipReader::transmit`].
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Self::Error>;
}

forward_lent_and_boxed!(CardChannel {
    type Error = T::Error;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Self::Error> {
        (**self).transmit(command)
    }
});

/// One slot of a [`ChipReader`] seen as a [`CardChannel`].
#[derive(Debug)]
pub struct SlotChannel<'r, R: ?Sized> {
    reader: &'r mut R,
    slot: u8,
}

impl<'r, R: ChipReader + ?Sized> SlotChannel<'r, R> {
    /// The channel to `slot` of `reader` (the card should already be powered).
    pub fn new(reader: &'r mut R, slot: u8) -> Self {
        SlotChannel { reader, slot }
    }

    /// The slot number.
    pub fn slot(&self) -> u8 {
        self.slot
    }
}

impl<R: ChipReader + ?Sized> CardChannel for SlotChannel<'_, R> {
    type Error = R::Error;
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Self::Error> {
        self.reader.transmit(self.slot, command)
    }
}

/// A card as a simulator sees it: answer to reset, then APDU in, APDU out.
///
/// EMV's virtual cards implement this; the CCID virtual reader (or any other simulated
/// reader) plugs them in, so neither crate needs the other. Faults of the card itself are
/// expressed here (a mute card answers `None`); faults of the reader or the user (card
/// pulled, reader unplugged) are the simulated reader's business.
pub trait VirtualCard: Send {
    /// Cold reset: forget all state (selected application, counters within the session) and
    /// return the ATR, or `None` for a mute card that never answers.
    fn power_on(&mut self) -> Option<Vec<u8>>;

    /// Answer a command APDU with a response APDU (data then SW1 SW2), or `None` when the
    /// card stays silent (mute from now on, or a card that hangs on this command).
    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>>;
}

forward_lent_and_boxed!(VirtualCard {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        (**self).power_on()
    }
    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        (**self).transmit(command)
    }
});

/// The protocol a virtual card's answer to reset offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CardProtocol {
    /// T=0 (character protocol; case 4 commands answered through GET RESPONSE).
    #[default]
    T0,
    /// T=1 (block protocol).
    T1,
}

/// How a simulated reader's address names the card it holds: `card=NAME` or `script=FILE`
/// in a `sim:ccid` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CardSpec {
    /// `card=NAME`: a card known by name (a reader's own test cards, or an application
    /// layer's profiles such as `visa`).
    Named(String),
    /// `script=FILE`: a card replaying the recorded session in `FILE`.
    Script(std::path::PathBuf),
}

impl std::fmt::Display for CardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CardSpec::Named(name) => write!(f, "card={name}"),
            CardSpec::Script(path) => write!(f, "script={}", path.display()),
        }
    }
}

/// Virtual cards by name, for simulated readers.
///
/// A simulated reader knows its own bare test cards; cards of an application (EMV profiles,
/// recorded EMV sessions) come from the layer that knows that application, through this
/// trait, so that the reader crate and the application crate need not know each other
/// (pos-emv's `sim::EmvCards` is the catalog of EMV cards).
///
/// # For implementors
/// [`make`](Self::make) answers `None` for a [`CardSpec`] it does not know, so catalogs can
/// be tried in turn; it returns a *fresh* card each time (its counters at zero), as a new
/// card of that kind would be.
pub trait CardCatalog: Send + Sync + std::fmt::Debug {
    /// The names [`make`](Self::make) accepts for [`CardSpec::Named`], for help and error
    /// messages.
    fn names(&self) -> Vec<String>;

    /// Whether [`CardSpec::Script`] (recorded sessions) is understood.
    fn plays_scripts(&self) -> bool;

    /// The card a simulated reader holds when its address names none (`sim:ccid` without
    /// `card=` or `script=`); `None` leaves the reader's own default.
    fn default_card(&self) -> Option<String> {
        None
    }

    /// A fresh card for `spec` whose answer to reset offers `protocol`.
    ///
    /// Returns `None` when `spec` is not this catalog's. Errors (`Some(Err(..))`): a message
    /// naming what is wrong: the script file cannot be read or is not a recorded session.
    /// Reads the script file (no other I/O); no timeout applies.
    fn make(
        &self,
        spec: &CardSpec,
        protocol: CardProtocol,
    ) -> Option<Result<Box<dyn VirtualCard>, String>>;
}

/// A virtual card as a [`CardChannel`] with no reader in between: the card is powered on
/// when the channel is made, and every command APDU goes straight to it.
///
/// For tests, examples and the documentation of card applications (EMV) that need a card but
/// not a reader. A simulated *reader*, with card removal, T=0/T=1 and reader faults, is a
/// reader driver's business (e.g. `sim:ccid` in pos-ccid).
///
/// Errors are [`FaultKind`]s: [`FaultKind::CardMute`] when the card gives no ATR or no
/// answer. Nothing blocks: a virtual card answers at once or not at all.
///
/// ```
/// use pos_hal::{CardChannel, FaultKind, VirtualCard, VirtualChannel};
///
/// struct Echo;
/// impl VirtualCard for Echo {
///     fn power_on(&mut self) -> Option<Vec<u8>> { Some(vec![0x3B, 0x00]) }
///     fn transmit(&mut self, cmd: &[u8]) -> Option<Vec<u8>> { Some([cmd, &[0x90, 0x00]].concat()) }
/// }
///
/// let mut channel = VirtualChannel::power_on(Echo)?;
/// assert_eq!(channel.atr().to_hex(), "3B 00");
/// assert_eq!(channel.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x00])?, [0x00, 0xB0, 0x00, 0x00, 0x00, 0x90, 0x00]);
/// # Ok::<(), FaultKind>(())
/// ```
pub struct VirtualChannel<V> {
    card: V,
    atr: Atr,
}

impl<V: VirtualCard> VirtualChannel<V> {
    /// Powers `card` on (cold reset) and returns the channel to it.
    ///
    /// # Errors
    /// [`FaultKind::CardMute`] when the card answers reset with no ATR.
    pub fn power_on(mut card: V) -> Result<Self, FaultKind> {
        let atr = Atr(card.power_on().ok_or(FaultKind::CardMute)?);
        Ok(VirtualChannel { card, atr })
    }

    /// The ATR of the last reset.
    pub fn atr(&self) -> &Atr {
        &self.atr
    }

    /// Cold reset: the card forgets its session state and answers with its ATR again.
    ///
    /// # Errors
    /// [`FaultKind::CardMute`] when the card answers reset with no ATR (the previous ATR
    /// is kept).
    pub fn reset(&mut self) -> Result<&Atr, FaultKind> {
        self.atr = Atr(self.card.power_on().ok_or(FaultKind::CardMute)?);
        Ok(&self.atr)
    }

    /// The card.
    pub fn card(&self) -> &V {
        &self.card
    }

    /// The card, mutably (to change its behaviour between commands).
    pub fn card_mut(&mut self) -> &mut V {
        &mut self.card
    }

    /// The card back.
    pub fn into_card(self) -> V {
        self.card
    }
}

impl<V> std::fmt::Debug for VirtualChannel<V> {
    /// The ATR only: the card's state may hold card data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualChannel")
            .field("atr", &self.atr)
            .finish_non_exhaustive()
    }
}

impl<V: VirtualCard> CardChannel for VirtualChannel<V> {
    type Error = FaultKind;

    /// The card's answer; [`FaultKind::CardMute`] when it gives none.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
        self.card.transmit(command).ok_or(FaultKind::CardMute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        DeviceInfo, DeviceKind, DeviceState, EventHub, FaultKind, HealthLevel, HealthReport,
        Subscription,
    };

    /// A two-slot reader over virtual cards, to show the traits fit together.
    struct TwoSlots {
        cards: [Option<Box<dyn VirtualCard>>; 2],
        powered: [bool; 2],
        hub: EventHub,
    }

    struct Echo;
    impl VirtualCard for Echo {
        fn power_on(&mut self) -> Option<Vec<u8>> {
            Some(vec![0x3B, 0x00])
        }
        fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
            let mut r = command.to_vec();
            r.extend_from_slice(&[0x90, 0x00]);
            Some(r)
        }
    }

    struct Mute;
    impl VirtualCard for Mute {
        fn power_on(&mut self) -> Option<Vec<u8>> {
            None
        }
        fn transmit(&mut self, _: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }

    impl TwoSlots {
        fn card(&mut self, slot: u8) -> Result<&mut Box<dyn VirtualCard>, FaultKind> {
            self.cards
                .get_mut(usize::from(slot))
                .ok_or(FaultKind::InvalidInput)?
                .as_mut()
                .ok_or(FaultKind::CardAbsent)
        }
    }

    impl Device for TwoSlots {
        type Error = FaultKind;
        fn info(&self) -> DeviceInfo {
            DeviceInfo::new(DeviceKind::ChipReader, "test:two-slots")
        }
        fn state(&self) -> DeviceState {
            DeviceState::Idle
        }
        fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, FaultKind> {
            let mut r = HealthReport::new("test:two-slots", level);
            r.pass("open", "ok");
            Ok(r)
        }
        fn subscribe(&mut self) -> Result<Subscription, FaultKind> {
            Ok(self.hub.subscribe())
        }
    }

    impl ChipReader for TwoSlots {
        fn slot_count(&self) -> u8 {
            2
        }
        fn capabilities(&self) -> ReaderCapabilities {
            ReaderCapabilities::APDU_LEVEL | ReaderCapabilities::MULTI_SLOT
        }
        fn slot_status(&mut self, slot: u8) -> Result<SlotState, FaultKind> {
            let i = usize::from(slot);
            let present = self.cards.get(i).ok_or(FaultKind::InvalidInput)?.is_some();
            let mut s = SlotState::empty();
            s.set(SlotState::CARD_PRESENT, present);
            s.set(SlotState::POWERED, self.powered[i]);
            Ok(s)
        }
        fn power_on(&mut self, slot: u8) -> Result<Atr, FaultKind> {
            let atr = self.card(slot)?.power_on().ok_or(FaultKind::CardMute)?;
            self.powered[usize::from(slot)] = true;
            Ok(Atr(atr))
        }
        fn power_off(&mut self, slot: u8) -> Result<(), FaultKind> {
            *self
                .powered
                .get_mut(usize::from(slot))
                .ok_or(FaultKind::InvalidInput)? = false;
            Ok(())
        }
        fn transmit(&mut self, slot: u8, command: &[u8]) -> Result<Vec<u8>, FaultKind> {
            if !self
                .powered
                .get(usize::from(slot))
                .copied()
                .unwrap_or(false)
            {
                return Err(FaultKind::CardAbsent);
            }
            self.card(slot)?
                .transmit(command)
                .ok_or(FaultKind::CardMute)
        }
    }

    #[test]
    fn a_slot_is_a_card_channel_and_faults_classify() {
        let mut r = TwoSlots {
            cards: [Some(Box::new(Echo)), Some(Box::new(Mute))],
            powered: [false; 2],
            hub: EventHub::new("test:two-slots"),
        };
        assert_eq!(r.slot_status(0).unwrap(), SlotState::CARD_PRESENT);
        assert_eq!(r.power_on(0).unwrap().to_hex(), "3B 00");
        assert!(r.slot_status(0).unwrap().contains(SlotState::POWERED));
        {
            let mut ch = SlotChannel::new(&mut r, 0);
            assert_eq!(
                ch.transmit(&[0x00, 0xA4]).unwrap(),
                vec![0x00, 0xA4, 0x90, 0x00]
            );
        }
        assert_eq!(r.power_on(1).unwrap_err().kind(), FaultKind::CardMute);
        assert_eq!(r.transmit(1, &[0]).unwrap_err(), FaultKind::CardAbsent);
        assert_eq!(r.slot_status(2).unwrap_err(), FaultKind::InvalidInput);

        // As a boxed trait object, as the service holds it.
        let mut boxed: Box<dyn ChipReader<Error = FaultKind>> = Box::new(r);
        boxed.power_off(0).unwrap();
        assert_eq!(boxed.transmit(0, &[0]).unwrap_err(), FaultKind::CardAbsent);
        assert!(boxed.check_health(HealthLevel::Internal).unwrap().healthy());
    }

    /// A card that counts its resets and falls silent after `answers` commands.
    struct Tired {
        resets: u32,
        answers: u32,
    }
    impl VirtualCard for Tired {
        fn power_on(&mut self) -> Option<Vec<u8>> {
            self.resets += 1;
            Some(vec![0x3B, 0x00, self.resets as u8])
        }
        fn transmit(&mut self, _: &[u8]) -> Option<Vec<u8>> {
            self.answers = self.answers.checked_sub(1)?;
            Some(vec![0x90, 0x00])
        }
    }

    #[test]
    fn a_virtual_channel_powers_the_card_and_classifies_silence() {
        let mut ch = VirtualChannel::power_on(Tired {
            resets: 0,
            answers: 1,
        })
        .unwrap();
        assert_eq!(ch.atr().as_bytes(), [0x3B, 0x00, 1]);
        assert_eq!(ch.transmit(&[0x00, 0xA4]).unwrap(), [0x90, 0x00]);
        assert_eq!(ch.transmit(&[0x00, 0xA4]).unwrap_err(), FaultKind::CardMute);
        assert_eq!(ch.reset().unwrap().as_bytes(), [0x3B, 0x00, 2]);
        ch.card_mut().answers = 1;
        assert!(ch.transmit(&[0x00]).is_ok());
        assert!(format!("{ch:?}").contains("3B 00 02"));
        assert_eq!(ch.into_card().resets, 2);

        // Through `&mut`, as generic EMV code takes it.
        fn send<C: CardChannel>(mut ch: C) -> Result<Vec<u8>, C::Error> {
            ch.transmit(&[0x00, 0xB2, 0x01, 0x0C, 0x00])
        }
        let mut echo = VirtualChannel::power_on(Echo).unwrap();
        assert_eq!(send(&mut echo).unwrap().len(), 7);

        let mute = VirtualChannel::power_on(Mute).unwrap_err();
        assert_eq!(mute, FaultKind::CardMute);
    }
}
