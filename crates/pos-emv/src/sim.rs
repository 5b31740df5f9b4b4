//! EMV cards for simulated readers (feature `sim`): the catalog that `sim:ccid?card=NAME`
//! and `sim:ccid?script=FILE` resolve through.
//!
//! A simulated reader knows only bare test cards; [`EmvCards`] gives it this crate's
//! [`ProfileCard`]s by profile name (`visa`, `mastercard`, ...) and [`ScriptedCard`]s that
//! replay a recorded session ([`Matching::Lenient`]: the terminal's own data in GET
//! PROCESSING OPTIONS, GENERATE AC and the authentications may differ from the recording).
//! It plugs in through [`pos_hal::CardCatalog`], so this crate never names a reader driver:
//!
//! ```
//! use pos_hal::{CardCatalog, CardProtocol, CardSpec};
//! use pos_emv::sim::EmvCards;
//!
//! let mut card = EmvCards
//!     .make(&CardSpec::Named("visa".into()), CardProtocol::T1)
//!     .expect("visa is an EMV card")
//!     .expect("profile cards are always made");
//! let atr = card.power_on().expect("a profile card answers reset");
//! assert_eq!(atr[4], 0x81); // TD1: T=1 offered
//! ```
//!
//! With pos-ccid's virtual reader: `ReaderConfig { cards: Some(EmvCards::shared()), .. }`.

use std::path::Path;
use std::sync::Arc;

use pos_hal::{CardCatalog, CardProtocol, CardSpec, VirtualCard};

use crate::profile_card::{Profile, ProfileCard};
use crate::script_card::{Matching, ScriptedCard, atr_t1};
use crate::tags;
use crate::transcript::{Transcript, TranscriptError};

/// The EMV virtual cards: every [`Profile`] by name, and recorded sessions (`script=FILE`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmvCards;

impl EmvCards {
    /// The catalog as a reader configuration holds it (`pos_ccid::ReaderConfig::cards`).
    pub fn shared() -> Arc<dyn CardCatalog> {
        Arc::new(EmvCards)
    }
}

/// The profile a simulated reader holds when its address names no card.
pub const DEFAULT_PROFILE: Profile = Profile::VisaPse;

impl CardCatalog for EmvCards {
    fn names(&self) -> Vec<String> {
        Profile::ALL.iter().map(|p| p.name().to_string()).collect()
    }

    fn plays_scripts(&self) -> bool {
        true
    }

    fn default_card(&self) -> Option<String> {
        Some(DEFAULT_PROFILE.name().to_string())
    }

    fn make(
        &self,
        spec: &CardSpec,
        protocol: CardProtocol,
    ) -> Option<Result<Box<dyn VirtualCard>, String>> {
        match spec {
            CardSpec::Named(name) => {
                let profile: Profile = name.parse().ok()?;
                let card = match protocol {
                    CardProtocol::T0 => ProfileCard::new(profile),
                    CardProtocol::T1 => ProfileCard::new_t1(profile),
                };
                Some(Ok(Box::new(card)))
            }
            CardSpec::Script(path) => Some(script(path, protocol).map(|c| Box::new(c) as Box<_>)),
        }
    }
}

/// A card replaying the recorded session in `path`, leniently matched, its ATR offering
/// `protocol`.
///
/// Errors: a message naming the file and what is wrong with it.
pub fn script(path: &Path, protocol: CardProtocol) -> Result<ScriptedCard, String> {
    let transcript = load(path)?;
    let card = ScriptedCard::new(transcript, Matching::Lenient);
    Ok(match protocol {
        CardProtocol::T0 => card,
        CardProtocol::T1 => card.with_atr(atr_t1()),
    })
}

/// The transcript at `path`; errors name the file once.
fn load(path: &Path) -> Result<Transcript, String> {
    Transcript::load(path).map_err(|e| match e {
        TranscriptError::Io { .. } => format!("script {e}"),
        e => format!("script {}: {e}", path.display()),
    })
}

/// The PAN digits of the card `spec` names, for a simulated swipe of the same card: a
/// profile's test PAN, or the PAN a recorded session's records carry (tag `5A`, else the
/// track 2 equivalent data `57` up to its separator).
///
/// Errors: a message saying why there is none (an unknown name, a script that cannot be
/// read or whose records carry no PAN).
pub fn card_pan(spec: &CardSpec) -> Result<String, String> {
    match spec {
        CardSpec::Named(name) => name
            .parse::<Profile>()
            .map(|p| p.pan().to_string())
            .map_err(|e| e.to_string()),
        CardSpec::Script(path) => {
            let transcript = load(path)?;
            transcript_pan(&transcript).ok_or_else(|| {
                format!(
                    "script {}: no PAN (5A) or track 2 equivalent data (57) in its answers",
                    path.display()
                )
            })
        }
    }
}

/// The PAN in a transcript's answers: tag `5A`, else the digits of tag `57` before its `D`
/// separator. Answers that are not BER-TLV are skipped.
pub fn transcript_pan(transcript: &Transcript) -> Option<String> {
    let bodies = || {
        transcript
            .exchanges
            .iter()
            .filter(|e| e.sw() == 0x9000 && e.response.len() > 2)
            .map(|e| &e.response[..e.response.len() - 2])
    };
    let digits = |value: &[u8]| -> String {
        value
            .iter()
            .flat_map(|b| [b >> 4, b & 0x0F])
            .take_while(|n| *n <= 9)
            .map(|n| char::from(b'0' + n))
            .collect()
    };
    let found = |tag| {
        bodies().find_map(|body| {
            crate::tlv::find(body, tag)
                .ok()
                .flatten()
                .map(|t| digits(t.value))
                .filter(|d| (12..=19).contains(&d.len()))
        })
    };
    found(tags::PAN).or_else(|| found(tags::TRACK2_EQUIVALENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPI: &str = include_str!("../tests/data/contact-upi.apdu");
    const MASTERCARD: &str = include_str!("../tests/data/contact-mastercard.apdu");

    #[test]
    fn every_profile_is_made_by_name_with_either_protocol() {
        for name in EmvCards.names() {
            for (protocol, first_td) in [(CardProtocol::T0, None), (CardProtocol::T1, Some(1))] {
                let made = EmvCards.make(&CardSpec::Named(name.clone()), protocol);
                let mut card = made.expect("a profile name").expect("made");
                let atr = card.power_on().expect("answers reset");
                // T0's high nibble says which interface bytes follow; TD1 (bit 8) carries T.
                let td1 = (atr[1] & 0x80 != 0).then(|| {
                    let skip = (atr[1] >> 4 & 0x07).count_ones() as usize;
                    atr[2 + skip] & 0x0F
                });
                assert_eq!(
                    td1.filter(|t| *t == 1),
                    first_td,
                    "{name} {protocol:?}: {atr:02X?}"
                );
            }
        }
    }

    #[test]
    fn unknown_names_are_not_this_catalogs() {
        assert!(
            EmvCards
                .make(&CardSpec::Named("t0".into()), CardProtocol::T0)
                .is_none()
        );
        assert_eq!(EmvCards.default_card().as_deref(), Some("visa"));
    }

    #[test]
    fn a_missing_script_is_an_error_naming_the_file() {
        let spec = CardSpec::Script("/nonexistent/dir/card.apdu".into());
        let Some(Err(e)) = EmvCards.make(&spec, CardProtocol::T0) else {
            panic!("a missing script must be an error");
        };
        assert!(e.contains("/nonexistent/dir/card.apdu"), "{e}");
        assert!(card_pan(&spec).is_err());
    }

    #[test]
    fn the_pan_of_a_recorded_session_comes_from_its_records() {
        let upi = Transcript::parse(UPI).expect("parses");
        assert_eq!(transcript_pan(&upi).as_deref(), Some("6210948000000011"));
        let mc = Transcript::parse(MASTERCARD).expect("parses");
        assert_eq!(transcript_pan(&mc).as_deref(), Some("5413330089600044"));
        let none = Transcript::parse("> 00A4040000\n< 9000\n").expect("parses");
        assert_eq!(transcript_pan(&none), None);
        assert_eq!(
            card_pan(&CardSpec::Named("visa".into())).as_deref(),
            Ok(Profile::VisaPse.pan())
        );
        assert!(card_pan(&CardSpec::Named("nope".into())).is_err());
    }
}
