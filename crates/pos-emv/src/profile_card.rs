//! Profile virtual cards (feature `sim`): EMV contact cards built from real structure,
//! answering as a card does rather than replaying a transcript.
//!
//! [`ProfileCard`] implements [`pos_hal::VirtualCard`], so it plugs into any simulated
//! reader. Each [`Profile`] is one kind of card a terminal must handle:
//!
//! | profile | selection | GPO | ODA | note |
//! |---|---|---|---|---|
//! | [`Profile::VisaPse`] | PSE, one application `A0000000031010` | format 1, PDOL | SDA | |
//! | [`Profile::Mastercard`] | no PSE (`6A82`), `A0000000041010` by AID | format 2 | DDA | |
//! | [`Profile::UnionPay`] | PSE, two applications, priorities 2 (debit) and 1 (credit) | format 1 | DDA | |
//! | [`Profile::Blocked`] | PSE, `A0000000031010` (priority 1) blocked: SELECT answers FCI + `6283`; `A0000000032010` (priority 2) works | format 1 | SDA | |
//! | [`Profile::Expired`] | PSE, `A0000000041010` | format 2 | SDA | `5F24` 2022-12-31; asked for a TC, answers an AAC |
//! | [`Profile::AidFallback`] | no PSE (`6A82`); `A000000003101001` and `A000000003101002` found by partial selection of `A0000000031010` | format 1 | SDA | |
//! | [`Profile::Cda`] | PSE, `A0000000041010` | format 2 | CDA (and DDA) | GENERATE AC with P1 bit `10`: `9F4B` |
//!
//! # Records
//!
//! AFL `08 01 01 00 10 01 01 01 18 01 02 00`: SFI 1 record 1 holds track 2 equivalent data
//! and the cardholder name; SFI 2 record 1 (the one record signed for offline data
//! authentication, with the AIP through `9F4A` = `82`) the PAN, dates, CDOLs, CVM list,
//! usage control and action codes (and the DDOL `9F49` = `9F3704` for DDA/CDA cards); SFI 3
//! record 1 the CA key index `8F` = `7E` and the issuer public key certificate (`90`, `92`,
//! `9F32`); SFI 3 record 2 the signed static application data `93` (SDA cards) or the ICC
//! public key certificate (`9F46`, `9F47`, `9F48`).
//!
//! # Keys
//!
//! The certificates chain to the simulation CA ([`sim_ca_keys`], `data/ca-keys-sim.txt`, RID
//! `A000000999` and the scheme RIDs, index `7E`, 1408 bits); the issuer key is 1152 bits
//! (4-byte remainder `92`), the ICC key 1024 bits (26-byte remainder `9F48`). The keys,
//! private exponents included, are in `data/sim-keys.txt`: **test only**. Certificates and
//! the SSAD are signed when the card is made; signed dynamic data (`9F4B`) when asked, with
//! the RSA private operation of `num-bigint-dig`.
//!
//! # Commands
//!
//! SELECT by name (P2 `00` first, `02` next, partial names of 5 bytes or more), READ RECORD,
//! GET PROCESSING OPTIONS (`83` template, the PDOL data length checked), INTERNAL
//! AUTHENTICATE (DDA/CDA cards), GENERATE AC (first with CDOL1 data, second with CDOL2 data
//! after an ARQC), EXTERNAL AUTHENTICATE (after an ARQC), GET DATA (`9F36` ATC, `9F13` last
//! online ATC, `9F17` PIN try counter). Anything else gets the ISO 7816-4 status word for it
//! (`6D00`, `6E00`, `6A86`, `6700`, `6985`...); no command bytes make the card panic.
//!
//! # Cryptograms
//!
//! The application cryptogram is a **stand-in** for the issuer's 3DES/AES MAC: the first 8
//! bytes of SHA-1(AID || ATC || CID || command data). It is deterministic, so tests can
//! recompute it, and it means nothing to a real issuer host. The card grants the cryptogram
//! type asked for, except the expired card, which declines offline (AAC) when asked for a TC.
//! The ATC counts transactions: it goes up at each first GENERATE AC (the second one of a
//! transaction carries the same ATC, as on a real card) and survives power-on.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use num_bigint_dig::BigUint;
use pos_hal::VirtualCard;
use sha1::{Digest, Sha1};

use crate::apdu::{Command, ins};
use crate::capk::CaKeys;
use crate::dol::{self, DolEntry};
use crate::script_card::ATR_T0;
use crate::select::PSE_NAME;
use crate::tlv::{Builder, Tag};

mod keys;
mod spec;

use keys::*;
use spec::*;

/// The simulation CA public key file (`data/ca-keys-sim.txt`): **test only**.
pub const SIM_CA_KEYS: &str = include_str!("../data/ca-keys-sim.txt");

/// The simulation RSA keys, private exponents included (`data/sim-keys.txt`): **test only,
/// never for production**.
const SIM_KEYS: &str = include_str!("../data/sim-keys.txt");

/// The CA public key index (`8F`) of the simulation CA.
pub const SIM_CA_INDEX: u8 = 0x7E;

/// The test RID the simulation CA is registered under (besides the scheme RIDs).
pub const SIM_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x09, 0x99];

/// The public key of the simulation CA as a terminal table: RID [`SIM_RID`] and the RIDs of
/// the profiles' AIDs, index [`SIM_CA_INDEX`]. **Test only**: a live terminal must never
/// load it. Empty if the bundled file did not parse (a test checks that it does).
pub fn sim_ca_keys() -> CaKeys {
    CaKeys::parse(SIM_CA_KEYS).unwrap_or_default()
}

/// The public EMV test CA keys ([`crate::capk::TEST_CA_KEYS`]) together with the simulation
/// CA: the table a terminal needs on the simulated lane (transcripts of real test cards and
/// the profile cards). **Test only**, like [`sim_ca_keys`].
///
/// # Errors
/// [`CapkError`](crate::capk::CapkError) if the bundled tables do not parse (a test checks
/// that they do).
pub fn test_and_sim_ca_keys() -> Result<CaKeys, crate::capk::CapkError> {
    CaKeys::parse(&format!("{}\n{}", crate::capk::TEST_CA_KEYS, SIM_CA_KEYS))
}

/// One of the virtual card profiles. See the [module](self) documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Visa-like card with a PSE and one application, SDA (`visa`).
    VisaPse,
    /// Mastercard-like card without a PSE, GPO format 2, DDA (`mastercard`).
    Mastercard,
    /// UnionPay-like card with a PSE listing two applications with priorities, DDA
    /// (`unionpay`).
    UnionPay,
    /// A card whose first application is blocked (`6283`); the second works (`blocked`).
    Blocked,
    /// An expired card (`5F24` in the past) that declines offline (`expired`).
    Expired,
    /// No PSE; the applications are found by partial AID selection (`aid-fallback`).
    AidFallback,
    /// A card offering combined DDA / AC generation (`cda`).
    Cda,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 7] = [
        Profile::VisaPse,
        Profile::Mastercard,
        Profile::UnionPay,
        Profile::Blocked,
        Profile::Expired,
        Profile::AidFallback,
        Profile::Cda,
    ];

    /// The name [`FromStr`] reads (`visa`, `mastercard`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Profile::VisaPse => "visa",
            Profile::Mastercard => "mastercard",
            Profile::UnionPay => "unionpay",
            Profile::Blocked => "blocked",
            Profile::Expired => "expired",
            Profile::AidFallback => "aid-fallback",
            Profile::Cda => "cda",
        }
    }

    /// The card's test PAN (well-known scheme test card numbers).
    pub fn pan(self) -> &'static str {
        match self {
            Profile::VisaPse => "4761739001010010",
            Profile::Mastercard => "5413330089020011",
            Profile::UnionPay => "6210948000000029",
            Profile::Blocked => "4761739001010119",
            Profile::Expired => "5413330089010434",
            Profile::AidFallback => "4761739001010267",
            Profile::Cda => "5413330089600044",
        }
    }

    /// The card's applications (AID), in the card's order.
    pub fn aids(self) -> Vec<Vec<u8>> {
        spec(self).apps.into_iter().map(|a| a.aid).collect()
    }

    /// The offline data authentication the card supports.
    pub fn oda(self) -> Oda {
        spec(self).oda
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Profile> for pos_hal::CardSpec {
    /// The profile by name, as `sim:ccid?card=NAME` names it.
    fn from(p: Profile) -> Self {
        pos_hal::CardSpec::Named(p.name().to_string())
    }
}

/// A profile name [`Profile::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown card profile {0:?} (visa, mastercard, unionpay, blocked, expired, aid-fallback, cda)"
)]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

/// The offline data authentication method of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Oda {
    /// Static data authentication (`93`).
    Sda,
    /// Dynamic data authentication (INTERNAL AUTHENTICATE).
    Dda,
    /// Combined DDA / application cryptogram generation (DDA too).
    Cda,
}

// ----- encoding helpers -----

const T_FCI: Tag = Tag::new(0x6F);
const T_DF_NAME: Tag = Tag::new(0x84);
const T_FCI_PROP: Tag = Tag::new(0xA5);
const T_RECORD: Tag = Tag::new(0x70);
const T_UN: Tag = Tag::new(0x9F37);

/// The DOL data length and the offset of `9F37` in it.
fn dol_layout(dol_bytes: &[u8]) -> (usize, Option<(usize, usize)>) {
    let entries: Vec<DolEntry> = dol::parse_dol(dol_bytes).unwrap_or_default();
    let mut offset = 0;
    let mut un = None;
    for e in &entries {
        if e.tag == T_UN {
            un = Some((offset, e.len));
        }
        offset += e.len;
    }
    (dol::data_len(&entries), un)
}

// ----- the card -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selected {
    None,
    Pse,
    App(usize),
}

/// Where the card is in the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before GET PROCESSING OPTIONS.
    Idle,
    /// After GET PROCESSING OPTIONS: records, INTERNAL AUTHENTICATE, first GENERATE AC.
    Initiated,
    /// After a first GENERATE AC that answered an ARQC.
    Online,
    /// After the last GENERATE AC of the transaction.
    Done,
}

/// A virtual EMV card of one [`Profile`]. See the [module](self) documentation.
pub struct ProfileCard {
    profile: Profile,
    spec: Spec,
    /// Records by (SFI, record number).
    records: Vec<(u8, u8, Vec<u8>)>,
    atc: u16,
    last_online_atc: u16,
    selected: Selected,
    /// The AID of the last SELECT by name, and the index of the application it found (for
    /// SELECT next).
    last_select: Option<(Vec<u8>, usize)>,
    phase: Phase,
    pdol_data: Vec<u8>,
    cdol1_data: Vec<u8>,
    last_un: Option<Vec<u8>>,
    dynamic_counter: u64,
    commands: usize,
    /// The answer to reset.
    atr: Vec<u8>,
}

impl fmt::Debug for ProfileCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileCard")
            .field("profile", &self.profile)
            .field("atc", &self.atc)
            .field("selected", &self.selected)
            .field("phase", &self.phase)
            .field("commands", &self.commands)
            .finish()
    }
}

/// The status words of a response without data.
fn sw(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

fn ok(mut data: Vec<u8>) -> Vec<u8> {
    data.extend_from_slice(&[0x90, 0x00]);
    data
}

/// The AFL of every profile.
pub const AFL: [u8; 12] = [
    0x08, 0x01, 0x01, 0x00, 0x10, 0x01, 0x01, 0x01, 0x18, 0x01, 0x02, 0x00,
];

/// The PSE directory's SFI.
const DIR_SFI: u8 = 1;

impl ProfileCard {
    /// A card of `profile`, its certificates and static signature made now. The ATC is 0
    /// until the first GENERATE AC.
    pub fn new(profile: Profile) -> Self {
        let spec = spec(profile);
        let records = build_records(profile, &spec);
        ProfileCard {
            profile,
            spec,
            records,
            atc: 0,
            last_online_atc: 0,
            selected: Selected::None,
            last_select: None,
            phase: Phase::Idle,
            pdol_data: Vec::new(),
            cdol1_data: Vec::new(),
            last_un: None,
            dynamic_counter: 0,
            commands: 0,
            atr: ATR_T0.to_vec(),
        }
    }

    /// The same card answering reset with `atr` (e.g.
    /// [`script_card::atr_t1`](crate::script_card::atr_t1) for a card that speaks T=1).
    pub fn with_atr(mut self, atr: Vec<u8>) -> Self {
        self.atr = atr;
        self
    }

    /// A card of `profile` whose answer to reset offers T=1
    /// ([`script_card::atr_t1`](crate::script_card::atr_t1)).
    pub fn new_t1(profile: Profile) -> Self {
        ProfileCard::new(profile).with_atr(crate::script_card::atr_t1())
    }

    /// The card's profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The card's PAN digits.
    pub fn pan(&self) -> &'static str {
        self.profile.pan()
    }

    /// The Application Transaction Counter (`9F36`) of the last GENERATE AC (0 before any).
    pub fn atc(&self) -> u16 {
        self.atc
    }

    /// The unpredictable number (`9F37`) of the last INTERNAL AUTHENTICATE or GENERATE AC.
    pub fn last_unpredictable_number(&self) -> Option<&[u8]> {
        self.last_un.as_deref()
    }

    /// Commands received since the last power-on.
    pub fn commands_received(&self) -> usize {
        self.commands
    }

    /// The record `number` of `sfi` (the READ RECORD response data), if the card has it.
    pub fn record(&self, sfi: u8, number: u8) -> Option<&[u8]> {
        self.records
            .iter()
            .find(|(s, n, _)| *s == sfi && *n == number)
            .map(|(_, _, r)| r.as_slice())
    }

    /// The stand-in application cryptogram: the first 8 bytes of SHA-1(AID || ATC || CID ||
    /// command data) for the currently selected application.
    pub fn cryptogram(&self, atc: u16, cid: u8, command_data: &[u8]) -> [u8; 8] {
        let aid = self.selected_aid().unwrap_or_default();
        let h = hash(&[aid, &atc.to_be_bytes(), &[cid], command_data]);
        let mut ac = [0u8; 8];
        ac.copy_from_slice(&h[..8]);
        ac
    }

    fn selected_aid(&self) -> Option<&[u8]> {
        match self.selected {
            Selected::App(i) => self.spec.apps.get(i).map(|a| a.aid.as_slice()),
            _ => None,
        }
    }

    fn answer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let Ok(cmd) = Command::parse(bytes) else {
            return sw(0x6700);
        };
        match (cmd.cla, cmd.ins) {
            (0x00, ins::SELECT) => self.select(&cmd),
            (0x00, ins::READ_RECORD) => self.read_record(&cmd),
            (0x80, ins::GET_PROCESSING_OPTIONS) => self.gpo(&cmd),
            (0x00, ins::INTERNAL_AUTHENTICATE) => self.internal_authenticate(&cmd),
            (0x80, ins::GENERATE_AC) => self.generate_ac(&cmd),
            (0x00, ins::EXTERNAL_AUTHENTICATE) => self.external_authenticate(&cmd),
            (0x80, ins::GET_DATA) => self.get_data(&cmd),
            (0x00 | 0x80, _) => sw(0x6D00),
            _ => sw(0x6E00),
        }
    }

    fn reset_transaction(&mut self) {
        self.phase = Phase::Idle;
        self.pdol_data.clear();
        self.cdol1_data.clear();
    }

    fn pse_fci(&self) -> Vec<u8> {
        let mut b = Builder::new();
        b.constructed(T_FCI, |f| {
            f.primitive(T_DF_NAME, PSE_NAME);
            f.constructed(T_FCI_PROP, |p| {
                p.primitive(Tag::new(0x88), &[DIR_SFI]);
                p.primitive(Tag::new(0x5F2D), b"en");
            });
        });
        b.finish()
    }

    fn app_fci(&self, a: &AppSpec) -> Vec<u8> {
        let mut b = Builder::new();
        b.constructed(T_FCI, |f| {
            f.primitive(T_DF_NAME, &a.aid);
            f.constructed(T_FCI_PROP, |p| {
                p.primitive(Tag::new(0x50), a.label.as_bytes());
                if let Some(prio) = a.priority {
                    p.primitive(Tag::new(0x87), &[prio]);
                }
                if let Some(pdol) = &self.spec.pdol {
                    p.primitive(Tag::new(0x9F38), pdol);
                }
                p.primitive(Tag::new(0x5F2D), b"en");
                p.primitive(Tag::new(0x9F11), &[0x01]);
                p.primitive(Tag::new(0x9F12), a.label.as_bytes());
            });
        });
        b.finish()
    }

    fn select(&mut self, cmd: &Command) -> Vec<u8> {
        if cmd.p1 != 0x04 {
            return sw(0x6A86);
        }
        let name = cmd.data.as_slice();
        if name.is_empty() || name.len() > 16 {
            return sw(0x6A82);
        }
        let found = match cmd.p2 {
            0x00 => {
                if name == PSE_NAME {
                    if !self.spec.pse {
                        return sw(0x6A82);
                    }
                    self.reset_transaction();
                    self.selected = Selected::Pse;
                    self.last_select = None;
                    return ok(self.pse_fci());
                }
                self.find_app(name, 0)
            }
            0x02 => match &self.last_select {
                Some((last, i)) if last.as_slice() == name => self.find_app(name, i + 1),
                _ => self.find_app(name, 0),
            },
            _ => return sw(0x6A86),
        };
        let Some(i) = found else {
            // An unsuccessful SELECT leaves the current selection as it was.
            return sw(0x6A82);
        };
        self.last_select = Some((name.to_vec(), i));
        let Some(a) = self.spec.apps.get(i) else {
            return sw(0x6A82);
        };
        let fci = self.app_fci(a);
        let blocked = a.blocked;
        self.reset_transaction();
        if blocked {
            self.selected = Selected::None;
            let mut r = fci;
            r.extend_from_slice(&[0x62, 0x83]);
            return r;
        }
        self.selected = Selected::App(i);
        ok(fci)
    }

    /// The first application from index `from` whose AID starts with `name` (5 bytes at
    /// least: a RID).
    fn find_app(&self, name: &[u8], from: usize) -> Option<usize> {
        if name.len() < 5 {
            return None;
        }
        self.spec
            .apps
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, a)| a.aid.starts_with(name))
            .map(|(i, _)| i)
    }

    fn directory_record(&self, number: u8) -> Option<Vec<u8>> {
        let a = self.spec.apps.get(usize::from(number).checked_sub(1)?)?;
        let mut b = Builder::new();
        b.constructed(T_RECORD, |r| {
            r.constructed(Tag::new(0x61), |e| {
                e.primitive(Tag::new(0x4F), &a.aid);
                e.primitive(Tag::new(0x50), a.label.as_bytes());
                if let Some(p) = a.priority {
                    e.primitive(Tag::new(0x87), &[p]);
                }
            });
        });
        Some(b.finish())
    }

    fn read_record(&mut self, cmd: &Command) -> Vec<u8> {
        if cmd.p2 & 0x07 != 0x04 {
            return sw(0x6A86);
        }
        if !cmd.data.is_empty() {
            return sw(0x6700);
        }
        let sfi = cmd.p2 >> 3;
        let number = cmd.p1;
        if number == 0 {
            return sw(0x6A86);
        }
        let found = match self.selected {
            Selected::Pse if sfi == DIR_SFI => self.directory_record(number),
            Selected::Pse => return sw(0x6A82),
            Selected::App(_) => self.record(sfi, number).map(<[u8]>::to_vec),
            Selected::None => return sw(0x6985),
        };
        match found {
            Some(r) => ok(r),
            None if self.records.iter().any(|(s, _, _)| *s == sfi) || sfi == DIR_SFI => sw(0x6A83),
            None => sw(0x6A82),
        }
    }

    fn gpo(&mut self, cmd: &Command) -> Vec<u8> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return sw(0x6A86);
        }
        if !matches!(self.selected, Selected::App(_)) || self.phase != Phase::Idle {
            return sw(0x6985);
        }
        let data = cmd.data.as_slice();
        let (&tag, rest) = match data.split_first() {
            Some(x) => x,
            None => return sw(0x6700),
        };
        let Some((&len, value)) = rest.split_first() else {
            return sw(0x6700);
        };
        let expected = self.spec.pdol.as_deref().map_or(0, |p| dol_layout(p).0);
        if tag != 0x83 || len >= 0x80 || usize::from(len) != value.len() || value.len() != expected
        {
            return sw(0x6700);
        }
        self.pdol_data = value.to_vec();
        self.phase = Phase::Initiated;
        let mut b = Builder::new();
        if self.spec.format2 {
            b.constructed(Tag::new(0x77), |t| {
                t.primitive(Tag::new(0x82), &self.spec.aip);
                t.primitive(Tag::new(0x94), &AFL);
            });
        } else {
            let mut v = self.spec.aip.to_vec();
            v.extend_from_slice(&AFL);
            b.primitive(Tag::new(0x80), &v);
        }
        ok(b.finish())
    }

    /// The next ICC dynamic number (8 bytes): deterministic, from the ATC and a counter.
    fn dynamic_number(&mut self) -> [u8; 8] {
        self.dynamic_counter = self.dynamic_counter.wrapping_add(1);
        let h = hash(&[
            b"pos-emv sim ICC dynamic number",
            &self.atc.to_be_bytes(),
            &self.dynamic_counter.to_be_bytes(),
            self.profile.pan().as_bytes(),
        ]);
        let mut n = [0u8; 8];
        n.copy_from_slice(&h[..8]);
        n
    }

    /// Signed dynamic application data (format `05`) over `dynamic` with the terminal's
    /// `tail` (DDOL data for DDA, the unpredictable number for CDA) in the hash.
    fn sdad(&self, dynamic: &[u8], tail: &[u8]) -> Option<Vec<u8>> {
        let keys = sim_keys()?;
        let n_len = keys.icc.n.len();
        let pad = n_len.checked_sub(25 + dynamic.len())?;
        let mut body = vec![0x05, 0x01, u8::try_from(dynamic.len()).ok()?];
        body.extend_from_slice(dynamic);
        body.resize(body.len() + pad, 0xBB);
        Some(sign_recoverable(&keys.icc, &body, tail))
    }

    fn internal_authenticate(&mut self, cmd: &Command) -> Vec<u8> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return sw(0x6A86);
        }
        if self.spec.oda == Oda::Sda {
            return sw(0x6D00);
        }
        if self.phase != Phase::Initiated {
            return sw(0x6985);
        }
        if cmd.data.is_empty() || cmd.data.len() > 128 {
            return sw(0x6700);
        }
        self.last_un = cmd.data.get(..4).map(<[u8]>::to_vec);
        let number = self.dynamic_number();
        let mut dynamic = vec![8];
        dynamic.extend_from_slice(&number);
        let Some(sdad) = self.sdad(&dynamic, &cmd.data) else {
            return sw(0x6F00);
        };
        let mut b = Builder::new();
        b.primitive(Tag::new(0x80), &sdad);
        ok(b.finish())
    }

    fn generate_ac(&mut self, cmd: &Command) -> Vec<u8> {
        if cmd.p2 != 0 || cmd.p1 & 0x2F != 0 {
            return sw(0x6A86);
        }
        let asked = cmd.p1 & 0xC0;
        if asked == 0xC0 {
            return sw(0x6A86);
        }
        let first = match self.phase {
            Phase::Initiated => true,
            Phase::Online => false,
            Phase::Idle | Phase::Done => return sw(0x6985),
        };
        if !first && asked == 0x80 {
            // A second GENERATE AC cannot ask for another ARQC.
            return sw(0x6A86);
        }
        let dol_bytes = if first {
            &self.spec.cdol1
        } else {
            &self.spec.cdol2
        };
        let (len, un_at) = dol_layout(dol_bytes);
        if cmd.data.len() != len {
            return sw(0x6700);
        }
        let un = un_at
            .and_then(|(o, l)| cmd.data.get(o..o + l))
            .map(<[u8]>::to_vec);
        self.last_un.clone_from(&un);
        if first {
            self.atc = self.atc.wrapping_add(1);
            self.cdol1_data = cmd.data.clone();
        }
        let cid = if asked == 0x40 && self.spec.declines_tc {
            0x00
        } else {
            asked
        };
        self.phase = if cid == 0x80 {
            Phase::Online
        } else {
            Phase::Done
        };
        if cid == 0x80 {
            self.last_online_atc = self.atc;
        }
        let ac = self.cryptogram(self.atc, cid, &cmd.data);
        let atc = self.atc.to_be_bytes();
        let cda = cmd.p1 & 0x10 != 0 && self.spec.oda == Oda::Cda && cid != 0x00;
        if !self.spec.format2 {
            let mut v = vec![cid];
            v.extend_from_slice(&atc);
            v.extend_from_slice(&ac);
            v.extend_from_slice(&self.spec.iad);
            let mut b = Builder::new();
            b.primitive(Tag::new(0x80), &v);
            return ok(b.finish());
        }
        let mut inner = Builder::new();
        inner.primitive(Tag::new(0x9F27), &[cid]);
        inner.primitive(Tag::new(0x9F36), &atc);
        if !cda {
            inner.primitive(Tag::new(0x9F26), &ac);
        }
        inner.primitive(Tag::new(0x9F10), &self.spec.iad);
        let mut objects = inner.finish();
        if cda {
            // Transaction data hash code: PDOL data, CDOL1 data (and CDOL2 data for the
            // second GENERATE AC), then the response's data objects other than 9F4B.
            let cdol2 = if first { &[][..] } else { cmd.data.as_slice() };
            let tdhc = hash(&[&self.pdol_data, &self.cdol1_data, cdol2, &objects]);
            let number = self.dynamic_number();
            let mut dynamic = vec![8];
            dynamic.extend_from_slice(&number);
            dynamic.push(cid);
            dynamic.extend_from_slice(&ac);
            dynamic.extend_from_slice(&tdhc);
            let Some(sdad) = self.sdad(&dynamic, un.as_deref().unwrap_or_default()) else {
                return sw(0x6F00);
            };
            let mut s = Builder::new();
            s.primitive(Tag::new(0x9F4B), &sdad);
            objects.extend_from_slice(&s.finish());
        }
        let mut b = Builder::new();
        b.primitive(Tag::new(0x77), &objects);
        ok(b.finish())
    }

    fn external_authenticate(&mut self, cmd: &Command) -> Vec<u8> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return sw(0x6A86);
        }
        if !(8..=16).contains(&cmd.data.len()) {
            return sw(0x6700);
        }
        if self.phase != Phase::Online {
            return sw(0x6985);
        }
        sw(0x9000)
    }

    fn get_data(&mut self, cmd: &Command) -> Vec<u8> {
        let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
        let value: Vec<u8> = match tag {
            0x9F36 => self.atc.to_be_bytes().to_vec(),
            0x9F13 => self.last_online_atc.to_be_bytes().to_vec(),
            0x9F17 => vec![0x03],
            _ => return sw(0x6A88),
        };
        let mut b = Builder::new();
        b.primitive(Tag::new(u32::from(tag)), &value);
        ok(b.finish())
    }
}

impl VirtualCard for ProfileCard {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        self.selected = Selected::None;
        self.last_select = None;
        self.reset_transaction();
        self.last_un = None;
        self.commands = 0;
        Some(self.atr.clone())
    }

    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        self.commands = self.commands.saturating_add(1);
        Some(self.answer(command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_sign_round_trips() {
        let keys = sim_keys().expect("bundled sim keys parse");
        assert_eq!(keys.ca.n.len(), 176);
        assert_eq!(keys.issuer.n.len(), 144);
        assert_eq!(keys.icc.n.len(), 128);
        let m = vec![0x6A; 128];
        let s = keys.icc.sign(&m);
        let back = BigUint::from_bytes_be(&s).modpow(
            &BigUint::from_bytes_be(&keys.icc.e),
            &BigUint::from_bytes_be(&keys.icc.n),
        );
        assert_eq!(back.to_bytes_be(), m);
    }

    #[test]
    fn track2_and_cn() {
        assert_eq!(cn("123", 3), [0x12, 0x3F, 0xFF]);
        let t = track2("4761739001010010", [0x31, 0x12, 0x31]);
        assert_eq!(
            &t[..10],
            [0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10, 0xD3, 0x11]
        );
    }
}
