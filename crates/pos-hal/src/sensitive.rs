//! Card data handling: a wiped, redacted byte container and PAN masking.

use std::fmt;

use zeroize::Zeroize;

/// Bytes that may hold card data (track data, a PAN, APDU bodies with a PAN in them).
///
/// `Debug` shows only the length; the bytes are wiped when the value is dropped. Get at the
/// bytes with [`expose`](Sensitive::expose) and keep what you derive from them masked.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive(Vec<u8>);

impl Sensitive {
    /// Wrap bytes (they are moved, not copied).
    pub fn new(bytes: Vec<u8>) -> Self {
        Sensitive(bytes)
    }

    /// The bytes. Do not log or store them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Sensitive {
    fn from(v: Vec<u8>) -> Self {
        Sensitive(v)
    }
}

impl Drop for Sensitive {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sensitive(<{} bytes redacted>)", self.0.len())
    }
}

/// Mask a PAN for people to see: the first 6 and last 4 digits stay, the rest become `*`.
///
/// Shorter PANs show less: with 10 digits or fewer only the last 4 stay, with 4 or fewer
/// nothing does. Spaces and dashes are dropped; other characters are masked like digits.
///
/// ```
/// assert_eq!(pos_hal::mask_pan("5413330089600044"), "541333******0044");
/// assert_eq!(pos_hal::mask_pan("4111 1111 1111 1111"), "411111******1111");
/// ```
pub fn mask_pan(pan: &str) -> String {
    let chars: Vec<char> = pan.chars().filter(|c| *c != ' ' && *c != '-').collect();
    let n = chars.len();
    let (head, tail) = if n > 10 {
        (6, 4)
    } else if n > 4 {
        (0, 4)
    } else {
        (0, 0)
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| if i < head || i >= n - tail { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_first_six_and_last_four() {
        assert_eq!(mask_pan("5413330089600044"), "541333******0044");
        assert_eq!(mask_pan("6210948000000011"), "621094******0011");
        assert_eq!(mask_pan("378282246310005"), "378282*****0005");
        assert_eq!(mask_pan("6210948000000000011"), "621094*********0011");
        assert_eq!(mask_pan("1234567890"), "******7890");
        assert_eq!(mask_pan("1234"), "****");
        assert_eq!(mask_pan(""), "");
    }

    #[test]
    fn masked_output_never_holds_the_middle_digits() {
        let pan = "4111111111111111";
        let m = mask_pan(pan);
        assert_eq!(m.len(), pan.len());
        assert_eq!(&m[6..12], "******");
    }

    #[test]
    fn debug_is_redacted() {
        let s = Sensitive::new(b";4111111111111111=2512?".to_vec());
        let d = format!("{s:?}");
        assert!(!d.contains("4111"), "{d}");
        assert!(d.contains("23 bytes"), "{d}");
        assert_eq!(s.expose()[0], b';');
    }
}
