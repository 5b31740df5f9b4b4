//! [`TestCard`]: the bare test card of `sim:ccid`.

use pos_hal::VirtualCard;

/// A small card for tests and `sim:ccid`: answers SELECT of the payment directory
/// (1PAY.SYS.DDF01) with an FCI, echoes data for `80 EE` (a test command; short or
/// extended length), and `6D 00` to anything else. Its ATR offers T=0 or T=1 as asked.
#[derive(Debug, Clone)]
pub struct TestCard {
    atr: Vec<u8>,
    /// When true the card never answers reset.
    pub mute: bool,
}

/// The payment system environment's name.
pub const PSE: &[u8] = b"1PAY.SYS.DDF01";

impl TestCard {
    /// A T=0 card (ATR `3B 02 14 50`: T=0, Fi/Di default).
    pub fn t0() -> Self {
        TestCard {
            atr: vec![0x3B, 0x02, 0x14, 0x50],
            mute: false,
        }
    }

    /// A card with this ATR (it must offer the protocol the reader level speaks).
    pub fn with_atr(atr: Vec<u8>) -> Self {
        TestCard { atr, mute: false }
    }

    /// A T=1 card (ATR offering T=1 with IFSC 254, LRC, TCK).
    pub fn t1() -> Self {
        Self::t1_with_ifsc(0xFE)
    }

    /// A T=1 card whose information field is `ifsc` bytes (small values force chaining).
    pub fn t1_with_ifsc(ifsc: u8) -> Self {
        // TS T0(TD1, 2 historical) TD1(TD2, T=1) TD2(TA3 TB3, T=1) TA3=IFSC TB3=45 hist TCK
        let mut atr = vec![0x3B, 0x82, 0x81, 0x31, ifsc, 0x45, 0x50, 0x4F];
        let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
        atr.push(tck);
        TestCard { atr, mute: false }
    }
}

impl VirtualCard for TestCard {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        (!self.mute).then(|| self.atr.clone())
    }

    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        if command.len() < 4 {
            return Some(vec![0x67, 0x00]);
        }
        let (cla, ins) = (command[0], command[1]);
        match (cla, ins) {
            (0x00, 0xA4) => {
                let lc = command.get(4).copied().unwrap_or(0) as usize;
                let name = command.get(5..5 + lc).unwrap_or(&[]);
                if name == PSE {
                    // FCI: 6F { 84 name, A5 { 88 01 01 } }
                    let mut fci = vec![0x84, PSE.len() as u8];
                    fci.extend_from_slice(PSE);
                    fci.extend_from_slice(&[0xA5, 0x03, 0x88, 0x01, 0x01]);
                    let mut r = vec![0x6F, fci.len() as u8];
                    r.extend(fci);
                    r.extend_from_slice(&[0x90, 0x00]);
                    Some(r)
                } else {
                    Some(vec![0x6A, 0x82])
                }
            }
            (0x80, 0xEE) if command.len() >= 7 && command[4] == 0 => {
                // Extended length (ISO/IEC 7816-4 5.1): Lc or Le in bytes 5-6.
                let n = usize::from(u16::from_be_bytes([command[5], command[6]]));
                let mut r = if command.len() > 7 {
                    command.get(7..7 + n).unwrap_or(&[]).to_vec()
                } else {
                    let n = if n == 0 { 65_536 } else { n };
                    (0..n).map(|i| i as u8).collect()
                };
                r.extend_from_slice(&[0x90, 0x00]);
                Some(r)
            }
            (0x80, 0xEE) => {
                // Echo: data back (case 4), or Le zero bytes of pattern (case 2).
                let mut r = if command.len() > 5 {
                    let lc = usize::from(command[4]);
                    command.get(5..5 + lc).unwrap_or(&[]).to_vec()
                } else {
                    let le = command.get(4).copied().unwrap_or(0);
                    let n = if le == 0 { 256 } else { usize::from(le) };
                    (0..n).map(|i| i as u8).collect()
                };
                r.extend_from_slice(&[0x90, 0x00]);
                Some(r)
            }
            _ => Some(vec![0x6D, 0x00]),
        }
    }
}
