//! Reading a card in one call: application selection, GET PROCESSING OPTIONS and the
//! records, for a caller that wants the card's data (masked PAN, expiry, application) and not
//! a transaction.
//!
//! [`read_card`] and [`read_card_with`] are the steps [`transaction::run`](crate::transaction::run)
//! begins with ([`select::build_candidate_list`], [`read::initiate_from_list`],
//! [`read::read_application_data`]), and keep what a person or a log wants to see about how
//! the application was found: the candidate list as the card offered it and the method
//! (PSE directory or the terminal's list of AIDs).

use pos_hal::CardChannel;

use crate::error::EmvError;
use crate::read::{self, CardData, Processing};
use crate::select::{self, Candidate, Method, SelectedApp, SupportedAid};
use crate::terminal::TerminalData;
use crate::transaction;

/// What [`read_card`] read: how the application was found, which one was selected, its
/// processing options and its records.
///
/// `Debug` shows the masked PAN only (as [`CardData`]); the full PAN is in
/// [`data`](Self::data) for code that needs it (a host request), never for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRead {
    /// How the candidate list was built: [`Method::Pse`] (the card's PSE directory) or
    /// [`Method::AidList`] (the terminal's AIDs selected one by one).
    pub method: Method,
    /// The candidate applications as found, highest priority first, before final selection
    /// (so including one the card then refused to select, e.g. a blocked application).
    pub candidates: Vec<Candidate>,
    /// The application selected and initiated.
    pub app: SelectedApp,
    /// The GET PROCESSING OPTIONS outcome: AIP and AFL.
    pub processing: Processing,
    /// The application data from the records the AFL names.
    pub data: CardData,
}

impl CardRead {
    /// The PAN masked for people (first 6 and last 4 digits: `476173******0010`), `None`
    /// when the records hold no well-formed PAN (`5A`).
    pub fn pan_masked(&self) -> Option<String> {
        self.data.pan_masked()
    }

    /// The expiry date (`5F24`) as its six digits `YYMMDD`, `None` when absent or malformed.
    pub fn expiry(&self) -> Option<String> {
        self.data.expiry()
    }

    /// The expiry date as printed on a card, `MM/YY`, `None` when absent or malformed.
    pub fn expiry_mm_yy(&self) -> Option<String> {
        let yymmdd = self.expiry()?;
        Some(format!("{}/{}", yymmdd.get(2..4)?, yymmdd.get(..2)?))
    }

    /// The selected application's label (`50`), from the PSE directory entry or its FCI.
    pub fn label(&self) -> Option<&str> {
        self.app.candidate.label.as_deref()
    }

    /// What to show a cardholder for the selected application: its preferred name, else its
    /// label, else its AID in hex ([`Candidate::display_name`]).
    pub fn display_name(&self) -> String {
        self.app.candidate.display_name()
    }

    /// The selected application's AID (ADF name).
    pub fn aid(&self) -> &[u8] {
        &self.app.candidate.aid
    }

    /// The selected application's AID in upper-case hex (`A0000000031010`).
    pub fn aid_hex(&self) -> String {
        self.aid().iter().map(|b| format!("{b:02X}")).collect()
    }
}

/// Reads the card on `channel` with the terminal's defaults: the
/// [default supported AIDs](select::default_supported_aids) and, when the card offers
/// several applications, the [default chooser](transaction::default_chooser) (the
/// highest-priority one that needs no confirmation).
///
/// The card must be powered (a reader's `power_on`, then
/// [`SlotChannel`](pos_hal::SlotChannel)). `terminal` supplies the data the card's PDOL asks
/// for; its unpredictable number should come from a random source.
///
/// Only reads: no GENERATE AC is sent, nothing is authorised, the card's counters do not
/// move.
///
/// ```
/// use pos_emv::{Fault, TerminalData, read_card};
/// use pos_emv::profile_card::{Profile, ProfileCard}; // feature `sim`: virtual test cards
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // A powered card: here a virtual one with no reader; with a reader,
///     // `pos_hal::SlotChannel::new(&mut reader, 0)` after `reader.power_on(0)?`.
///     let mut channel = pos_hal::VirtualChannel::power_on(ProfileCard::new(Profile::Mastercard))?;
///     let card = match read_card(&mut channel, &TerminalData::new([0x0B, 0x17, 0x2A, 0x63])) {
///         Ok(card) => card,
///         Err(e) => return Err(format!("{e} [{}]", e.kind()).into()),
///     };
///     assert_eq!(card.pan_masked().as_deref(), Some("541333******0011"));
///     assert_eq!(card.label(), Some("MASTERCARD"));
///     Ok(())
/// }
/// ```
///
/// # Errors
/// The [`EmvError`] of the step that failed, as [`read_card_with`].
pub fn read_card<C: CardChannel>(
    channel: &mut C,
    terminal: &TerminalData,
) -> Result<CardRead, EmvError> {
    read_card_with(
        channel,
        terminal,
        &select::default_supported_aids(),
        &mut transaction::default_chooser,
    )
}

/// [`read_card`] with the terminal's own list of supported AIDs and its own chooser (given
/// the candidates left, highest priority first; returns the index chosen, `None` to cancel).
/// The chooser is only asked when there is a choice to make: one candidate that needs no
/// confirmation is taken without asking.
///
/// # Errors
/// The [`EmvError`] of the step that failed ([`EmvError::step`]), whose
/// [`kind`](pos_hal::Fault::kind) says what to do: a channel failure keeps its kind
/// (`card_removed`, `card_mute`, ...); `6A81` to the first SELECT is a blocked card;
/// [`Cause::NoApplication`](crate::Cause::NoApplication) when the card has no application
/// the terminal supports (or every one was refused);
/// [`Cause::NotChosen`](crate::Cause::NotChosen) when the chooser cancelled; a malformed
/// answer, a record not read or mandatory data missing
/// ([`read::read_application_data`]).
pub fn read_card_with<C: CardChannel>(
    channel: &mut C,
    terminal: &TerminalData,
    supported: &[SupportedAid],
    chooser: &mut dyn FnMut(&[Candidate]) -> Option<usize>,
) -> Result<CardRead, EmvError> {
    let mut list = select::build_candidate_list(channel, supported)?;
    let method = list.method;
    let candidates = list.candidates.clone();
    let (app, processing) = read::initiate_from_list(channel, &mut list, terminal, chooser)?;
    let data = read::read_application_data(channel, &processing.afl)?;
    Ok(CardRead {
        method,
        candidates,
        app,
        processing,
        data,
    })
}
