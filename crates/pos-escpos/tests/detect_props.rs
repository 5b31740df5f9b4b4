//! Parsers of device bytes never panic, whatever the bytes.

use pos_escpos::detect::{self, DeviceId};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn device_id_reply_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        if let Ok(id) = DeviceId::parse_reply(&bytes) {
            prop_assert!(!id.pairs.is_empty());
            let d = detect::from_device_id(&id);
            prop_assert!(d.profile.validate().is_ok());
        }
    }

    #[test]
    fn device_id_text_never_panics(text in "[ -~;:,\\x00-\\x1f\u{80}-\u{ff}]{0,400}") {
        if let Ok(id) = DeviceId::parse(text.as_bytes()) {
            let _ = id.to_string();
            let _ = id.speaks_escpos();
            let d = detect::from_device_id(&id);
            prop_assert!(!d.reason.is_empty());
        }
    }

    #[test]
    fn any_model_name_chooses_a_valid_profile(maker in ".{0,20}", model in ".{0,40}") {
        let d = detect::choose_profile(Some(&maker), Some(&model), "test");
        prop_assert!(d.profile.validate().is_ok());
    }
}
