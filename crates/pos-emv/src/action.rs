//! Terminal action analysis (EMV 4.3 Book 3 10.7) and the GENERATE AC reference control
//! parameter (Book 3 6.5.5).
//!
//! The TVR is compared with the Terminal Action Codes (TAC, terminal configuration) and
//! the Issuer Action Codes (IAC, card tags `9F0E` denial, `9F0F` online, `9F0D` default):
//!
//! 1. denial: any TVR bit set in TAC-denial or IAC-denial -> [`Decision::Decline`] (AAC);
//! 2. an online-capable terminal: any bit in TAC-online or IAC-online -> [`Decision::Online`]
//!    (ARQC), otherwise [`Decision::Approve`] (TC);
//! 3. an offline-only terminal: any bit in TAC-default or IAC-default ->
//!    [`Decision::Decline`], otherwise [`Decision::Approve`].
//!
//! Absent IACs take the values EMV gives them: IAC-denial all zeros, IAC-online and
//! IAC-default all ones ([`ActionCodes::from_card`]).

use crate::read::CardData;
use crate::tags;
use crate::tvr::Tvr;

/// The cryptogram the terminal asks for in the first GENERATE AC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Decline offline: Application Authentication Cryptogram (AAC).
    Decline,
    /// Go online: Authorisation Request Cryptogram (ARQC).
    Online,
    /// Approve offline: Transaction Certificate (TC).
    Approve,
}

/// One set of action codes (TAC or IAC), each 5 bytes laid out as the TVR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActionCodes {
    /// Denial: a matching TVR bit declines.
    pub denial: [u8; 5],
    /// Online: a matching TVR bit sends the transaction online.
    pub online: [u8; 5],
    /// Default: a matching TVR bit declines when the terminal cannot go online.
    pub default: [u8; 5],
}

impl ActionCodes {
    /// Action codes with no bit set (a terminal with no TAC configured).
    pub const ZERO: ActionCodes = ActionCodes {
        denial: [0; 5],
        online: [0; 5],
        default: [0; 5],
    };

    /// The Issuer Action Codes from the card's records: `9F0E` denial, `9F0F` online,
    /// `9F0D` default. An absent code (or one not 5 bytes long) takes the EMV default:
    /// denial all zeros, online and default all ones.
    pub fn from_card(card: &CardData) -> ActionCodes {
        let get = |tag, absent: u8| -> [u8; 5] {
            card.get(tag)
                .and_then(|v| <[u8; 5]>::try_from(v).ok())
                .unwrap_or([absent; 5])
        };
        ActionCodes {
            denial: get(tags::IAC_DENIAL, 0x00),
            online: get(tags::IAC_ONLINE, 0xFF),
            default: get(tags::IAC_DEFAULT, 0xFF),
        }
    }
}

/// Terminal action analysis (see the [module](self) documentation): `tac` from the
/// terminal's configuration, `iac` usually from [`ActionCodes::from_card`],
/// `online_capable` false for an offline-only terminal (or one that cannot go online now).
pub fn terminal_action_analysis(
    tvr: Tvr,
    tac: ActionCodes,
    iac: ActionCodes,
    online_capable: bool,
) -> Decision {
    if tvr.matches_any(tac.denial) || tvr.matches_any(iac.denial) {
        return Decision::Decline;
    }
    if online_capable {
        if tvr.matches_any(tac.online) || tvr.matches_any(iac.online) {
            Decision::Online
        } else {
            Decision::Approve
        }
    } else if tvr.matches_any(tac.default) || tvr.matches_any(iac.default) {
        Decision::Decline
    } else {
        Decision::Approve
    }
}

/// GENERATE AC reference control parameter (P1) for `d`: `00` AAC, `80` ARQC, `40` TC,
/// plus `10` (CDA signature requested) when `cda_requested` and the cryptogram is an ARQC or
/// a TC; an AAC is never asked with a CDA signature (EMV 4.3 Book 2 6.6).
pub fn reference_control(d: Decision, cda_requested: bool) -> u8 {
    let cda = if cda_requested { 0x10 } else { 0x00 };
    match d {
        Decision::Decline => 0x00,
        Decision::Online => 0x80 | cda,
        Decision::Approve => 0x40 | cda,
    }
}
