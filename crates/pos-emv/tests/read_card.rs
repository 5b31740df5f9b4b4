//! `pos_emv::read_card`, the common path at the crate root, on the profile cards (feature
//! `sim`) through `pos_hal::VirtualChannel`: how the application was found, the masked PAN,
//! the expiry, the label, and the errors a caller meets.
#![allow(clippy::unwrap_used)]

use pos_emv::profile_card::{Profile, ProfileCard};
use pos_emv::{
    Candidate, Cause, EmvError, Fault, FaultKind, Method, Step, SupportedAid, TerminalData,
    read_card, read_card_with,
};
use pos_hal::{VirtualCard, VirtualChannel};

fn terminal() -> TerminalData {
    TerminalData::new([0x11, 0x22, 0x33, 0x44])
}

fn channel(profile: Profile) -> VirtualChannel<ProfileCard> {
    VirtualChannel::power_on(ProfileCard::new(profile)).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

#[test]
fn every_profile_reads_with_its_method_candidates_and_masked_pan() {
    for (profile, method, candidates, aid, label) in [
        (
            Profile::VisaPse,
            Method::Pse,
            &["A0000000031010"][..],
            "A0000000031010",
            "VISA CREDIT",
        ),
        (
            Profile::Mastercard,
            Method::AidList,
            &["A0000000041010"],
            "A0000000041010",
            "MASTERCARD",
        ),
        // Priority 1 (credit) before priority 2 (debit); the chooser takes the first.
        (
            Profile::UnionPay,
            Method::Pse,
            &["A000000333010102", "A000000333010101"],
            "A000000333010102",
            "UnionPay Credit",
        ),
        // The blocked application is listed by the PSE, refused at final selection.
        (
            Profile::Blocked,
            Method::Pse,
            &["A0000000031010", "A0000000032010"],
            "A0000000032010",
            "VISA ELECTRON",
        ),
        (
            Profile::AidFallback,
            Method::AidList,
            &["A000000003101001", "A000000003101002"],
            "A000000003101001",
            "VISA CREDIT",
        ),
    ] {
        let mut ch = channel(profile);
        let read = read_card(&mut ch, &terminal()).unwrap();
        assert_eq!(read.method, method, "{profile}");
        let found: Vec<String> = read.candidates.iter().map(|c| hex(&c.aid)).collect();
        assert_eq!(found, candidates, "{profile}");
        assert_eq!(read.aid_hex(), aid, "{profile}");
        assert_eq!(read.aid(), read.app.candidate.aid.as_slice());
        assert_eq!(read.label(), Some(label), "{profile}");
        let pan = profile.pan();
        let masked = format!("{}******{}", &pan[..6], &pan[pan.len() - 4..]);
        assert_eq!(read.pan_masked(), Some(masked.clone()), "{profile}");
        assert_eq!(read.expiry().as_deref(), Some("311231"), "{profile}");
        assert_eq!(read.expiry_mm_yy().as_deref(), Some("12/31"), "{profile}");
        assert!(!read.data.records.is_empty());
        assert!(!read.processing.afl.is_empty());
        // Debug (logs) shows the masked PAN, never the full one.
        let debug = format!("{read:?}");
        assert!(debug.contains(&masked), "{debug}");
        assert!(!debug.contains(pan), "{debug}");
        // Reading only: no GENERATE AC, the card's counter has not moved.
        assert_eq!(
            ch.card().atc(),
            ProfileCard::new(profile).atc(),
            "{profile}"
        );
    }
}

#[test]
fn an_expired_card_still_reads_its_expiry() {
    let read = read_card(&mut channel(Profile::Expired), &terminal()).unwrap();
    assert_eq!(read.expiry().as_deref(), Some("221231"));
    assert_eq!(read.expiry_mm_yy().as_deref(), Some("12/22"));
}

#[test]
fn the_chooser_is_asked_only_when_there_is_a_choice() {
    let mut asked = Vec::new();
    let mut chooser = |c: &[Candidate]| {
        asked.push(c.len());
        Some(c.len() - 1)
    };
    let supported = pos_emv::default_supported_aids();
    // Two applications: asked, and the last one (debit, priority 2) is taken.
    let read = read_card_with(
        &mut channel(Profile::UnionPay),
        &terminal(),
        &supported,
        &mut chooser,
    )
    .unwrap();
    assert_eq!(read.aid_hex(), "A000000333010101");
    assert_eq!(read.display_name(), "UnionPay Debit");
    // One application: not asked; the candidate list still shows it.
    let read = read_card_with(
        &mut channel(Profile::VisaPse),
        &terminal(),
        &supported,
        &mut chooser,
    )
    .unwrap();
    assert_eq!(read.candidates.len(), 1);
    assert_eq!(asked, [2]);

    // Cancelled by the cardholder.
    let err = read_card_with(
        &mut channel(Profile::UnionPay),
        &terminal(),
        &supported,
        &mut |_| None,
    )
    .unwrap_err();
    assert!(matches!(err.cause(), Cause::NotChosen), "{err}");
    assert_eq!(err.step(), Step::SelectApplication);
}

#[test]
fn a_card_without_a_supported_application_says_so() {
    let only_amex = [SupportedAid::new(
        &[0xA0, 0x00, 0x00, 0x00, 0x25, 0x01],
        true,
    )];
    let err = read_card_with(
        &mut channel(Profile::VisaPse),
        &terminal(),
        &only_amex,
        &mut |_| Some(0),
    )
    .unwrap_err();
    assert!(matches!(err.cause(), Cause::NoApplication), "{err}");
}

/// A profile card that falls silent after `answers` commands.
struct Tiring {
    card: ProfileCard,
    answers: usize,
}

impl VirtualCard for Tiring {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        self.card.power_on()
    }
    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        self.answers = self.answers.checked_sub(1)?;
        self.card.transmit(command)
    }
}

#[test]
fn a_card_falling_silent_is_named_by_step_and_kind() {
    // Visa: SELECT PSE, READ RECORD directory 1, 2 (6A83), SELECT, GPO, then records.
    for (answers, step) in [
        (0, Step::SelectPse),
        (4, Step::Gpo),
        (5, Step::ReadRecord { sfi: 1, record: 1 }),
    ] {
        let card = Tiring {
            card: ProfileCard::new(Profile::VisaPse),
            answers,
        };
        let mut ch = VirtualChannel::power_on(card).unwrap();
        let err: EmvError = read_card(&mut ch, &terminal()).unwrap_err();
        assert_eq!(err.kind(), FaultKind::CardMute, "{err}");
        assert_eq!(err.step(), step, "{err}");
        assert!(!err.to_string().contains(Profile::VisaPse.pan()));
    }
}
