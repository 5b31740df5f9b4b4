//! What pcscd hands back is parsed without panicking, whatever the bytes.

use proptest::prelude::*;

use pos_pcsc::api::{ReaderState, atr_from_buffer, parse_multi_string};
use pos_pcsc::t0::{exchange, short_le_offset};

proptest! {
    #[test]
    fn multi_strings_never_panic_and_hold_no_nul(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let names = parse_multi_string(&bytes);
        for n in &names {
            prop_assert!(!n.is_empty());
            prop_assert!(!n.contains('\0'));
        }
    }

    #[test]
    fn reader_lists_round_trip(names in proptest::collection::vec("[ -~]{1,40}", 0..16)) {
        let mut bytes = Vec::new();
        for n in &names {
            bytes.extend_from_slice(n.as_bytes());
            bytes.push(0);
        }
        bytes.push(0);
        prop_assert_eq!(parse_multi_string(&bytes), names);
    }

    #[test]
    fn atr_buffers_never_panic_and_stay_in_bounds(buf in proptest::collection::vec(any::<u8>(), 0..80), len in any::<u64>()) {
        let atr = atr_from_buffer(&buf, len as pos_pcsc::codes::Dword);
        prop_assert!(atr.len() <= 33 && atr.len() <= buf.len());
        prop_assert_eq!(&buf[..atr.len()], &atr[..]);
    }

    #[test]
    fn reader_states_never_panic(event in any::<u64>()) {
        let mut s = ReaderState::unaware("r");
        s.event = event as pos_pcsc::codes::Dword;
        let _ = (s.present(), s.empty(), s.gone(), s.changed(), s.event_count());
    }

    #[test]
    fn t0_exchange_never_panics_and_is_bounded(
        cmd in proptest::collection::vec(any::<u8>(), 0..300),
        answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 1..10),
    ) {
        let _ = short_le_offset(&cmd);
        let mut sent = 0usize;
        let mut i = 0usize;
        let r = exchange(&cmd, |_| -> Result<Vec<u8>, ()> {
            sent += 1;
            let a = answers[i % answers.len()].clone();
            i += 1;
            Ok(a)
        });
        prop_assert!(sent <= 2 + pos_pcsc::t0::MAX_GET_RESPONSE_ROUNDS);
        let _ = r;
    }
}
