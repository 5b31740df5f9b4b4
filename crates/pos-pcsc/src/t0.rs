//! T=0 status words the reader leaves to the host.
//!
//! Through PC/SC a T=0 card's procedure bytes are the reader driver's job, but `61xx` (more
//! data: fetch it with GET RESPONSE) and `6Cxx` (wrong Le: send again with Le = xx) reach the
//! application (pcsc-lite and libccid pass them up as the card sent them). [`exchange`] turns
//! them into one response APDU, as the EMV terminal transport layer does (EMV Book 1, 9.3.1;
//! ISO/IEC 7816-3 12.2.4): bounded by [`MAX_GET_RESPONSE_ROUNDS`], and `6Cxx` is followed once
//! per command. With T=1 none of this applies and the response is returned as it is.

/// The most GET RESPONSE commands sent for one command (64 x 256 bytes: far above any EMV
/// response).
pub const MAX_GET_RESPONSE_ROUNDS: usize = 64;

/// What [`exchange`] reports besides the transport's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum T0Error<E> {
    /// The transport failed (card removed, reader gone, timeout...).
    Transport(E),
    /// The card kept answering `61xx`.
    Endless {
        /// GET RESPONSE commands sent.
        rounds: usize,
    },
}

/// The Le byte of a short command APDU (case 2 or 4) and its offset, or `None` (case 1 or 3,
/// or not a short APDU).
pub fn short_le_offset(cmd: &[u8]) -> Option<usize> {
    match cmd.len() {
        0..=4 => None,
        5 => Some(4),
        n => {
            let lc = usize::from(*cmd.get(4)?);
            (lc != 0 && n == 6 + lc).then_some(n - 1)
        }
    }
}

/// Send `cmd` with `send` and follow `61xx` and `6Cxx` (see the module docs). `send` is one
/// transmit; the result is the data of every answer, concatenated, then the last status
/// words.
///
/// Errors: [`T0Error::Transport`] with `send`'s error, [`T0Error::Endless`] after
/// [`MAX_GET_RESPONSE_ROUNDS`] GET RESPONSE commands still answered `61xx`.
pub fn exchange<E>(
    cmd: &[u8],
    mut send: impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, T0Error<E>> {
    let mut first = send(cmd).map_err(T0Error::Transport)?;
    // 6Cxx to a command with Le: the same command with Le = xx, once.
    if let ([.., 0x6C, xx], Some(at)) = (first.as_slice(), short_le_offset(cmd)) {
        let xx = *xx;
        let mut again = cmd.to_vec();
        if let Some(le) = again.get_mut(at) {
            *le = xx;
        }
        log::debug!(
            "6C{xx:02X}: resending {:02X} {:02X} with Le {xx:02X}",
            cmd.first().copied().unwrap_or(0),
            cmd.get(1).copied().unwrap_or(0)
        );
        first = send(&again).map_err(T0Error::Transport)?;
    }
    let mut out = first;
    let mut rounds = 0;
    while let [.., 0x61, xx] = out.as_slice() {
        if rounds >= MAX_GET_RESPONSE_ROUNDS {
            return Err(T0Error::Endless { rounds });
        }
        rounds += 1;
        let get_response = [0x00, 0xC0, 0x00, 0x00, *xx];
        out.truncate(out.len() - 2);
        let next = send(&get_response).map_err(T0Error::Transport)?;
        out.extend_from_slice(&next);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_of_each_case() {
        assert_eq!(short_le_offset(&[0, 0xA4, 4, 0]), None);
        assert_eq!(short_le_offset(&[0, 0xB2, 1, 0x0C, 0]), Some(4));
        assert_eq!(short_le_offset(&[0, 0xA4, 4, 0, 2, 0x3F, 0]), None);
        assert_eq!(short_le_offset(&[0, 0xA4, 4, 0, 2, 0x3F, 0, 0]), Some(7));
        assert_eq!(short_le_offset(&[0, 0xA4, 4, 0, 0, 0]), None);
    }
}
