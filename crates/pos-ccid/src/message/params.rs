//! The card voltage of IccPowerOn and the protocol parameters of SetParameters and
//! Parameters.

/// IccPowerOn bPowerSelect: the card voltage to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PowerSelect {
    /// 0x00: the reader chooses (readers with automatic voltage selection).
    Automatic,
    /// 0x01: 5.0 V.
    V5,
    /// 0x02: 3.0 V.
    V3,
    /// 0x03: 1.8 V.
    V1_8,
}

impl PowerSelect {
    /// The bPowerSelect byte.
    pub fn code(self) -> u8 {
        match self {
            PowerSelect::Automatic => 0,
            PowerSelect::V5 => 1,
            PowerSelect::V3 => 2,
            PowerSelect::V1_8 => 3,
        }
    }

    /// The voltage of a bPowerSelect byte; `None` for values above 3.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(PowerSelect::Automatic),
            1 => Some(PowerSelect::V5),
            2 => Some(PowerSelect::V3),
            3 => Some(PowerSelect::V1_8),
            _ => None,
        }
    }
}

/// The abProtocolDataStructure of SetParameters and Parameters (CCID rev 1.1, 6.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolParams {
    /// bProtocolNum 0: T=0, 5 bytes.
    T0 {
        /// bmFindexDindex: Fi index (high nibble), Di index (low nibble), as TA1.
        findex_dindex: u8,
        /// bmTCCKST0: bit 1 = inverse convention (0x00 or 0x02).
        tcckst: u8,
        /// bGuardTimeT0: extra guard time N (TC1).
        guard_time: u8,
        /// bWaitingIntegerT0: WI (TC2).
        waiting_integer: u8,
        /// bClockStop: 0 not allowed, 1 stop low, 2 stop high, 3 either (TA(i) of T=15).
        clock_stop: u8,
    },
    /// bProtocolNum 1: T=1, 7 bytes.
    T1 {
        /// bmFindexDindex: Fi index (high nibble), Di index (low nibble), as TA1.
        findex_dindex: u8,
        /// bmTCCKST1: 0x10 | bit 1 inverse convention | bit 0 CRC (else LRC).
        tcckst: u8,
        /// bGuardTimeT1: extra guard time N (TC1).
        guard_time: u8,
        /// bWaitingIntegersT1: BWI (high nibble), CWI (low nibble).
        bwi_cwi: u8,
        /// bClockStop, as for T=0.
        clock_stop: u8,
        /// bIFSC: the card's information field size.
        ifsc: u8,
        /// bNadValue: NAD the reader uses (0 unless the reader accepts others).
        nad: u8,
    },
}

impl ProtocolParams {
    /// Spec default parameters for T=0: Fi/Di 0x11, direct convention, no extra guard
    /// time, WI 10, clock stop not allowed.
    pub fn default_t0() -> Self {
        ProtocolParams::T0 {
            findex_dindex: 0x11,
            tcckst: 0x00,
            guard_time: 0x00,
            waiting_integer: 0x0A,
            clock_stop: 0x00,
        }
    }

    /// Spec default parameters for T=1: Fi/Di 0x11, LRC, direct convention, no extra
    /// guard time, BWI 4 / CWI 13, clock stop not allowed, IFSC 32, NAD 0.
    pub fn default_t1() -> Self {
        ProtocolParams::T1 {
            findex_dindex: 0x11,
            tcckst: 0x10,
            guard_time: 0x00,
            bwi_cwi: 0x4D,
            clock_stop: 0x00,
            ifsc: 0x20,
            nad: 0x00,
        }
    }

    /// bProtocolNum: 0 for T=0, 1 for T=1.
    pub(crate) fn protocol_num(&self) -> u8 {
        match self {
            ProtocolParams::T0 { .. } => 0,
            ProtocolParams::T1 { .. } => 1,
        }
    }

    /// bmFindexDindex.
    pub fn findex_dindex(&self) -> u8 {
        match self {
            ProtocolParams::T0 { findex_dindex, .. } | ProtocolParams::T1 { findex_dindex, .. } => {
                *findex_dindex
            }
        }
    }

    /// The abProtocolDataStructure bytes (5 for T=0, 7 for T=1).
    pub fn to_bytes(&self) -> Vec<u8> {
        match *self {
            ProtocolParams::T0 {
                findex_dindex,
                tcckst,
                guard_time,
                waiting_integer,
                clock_stop,
            } => vec![
                findex_dindex,
                tcckst,
                guard_time,
                waiting_integer,
                clock_stop,
            ],
            ProtocolParams::T1 {
                findex_dindex,
                tcckst,
                guard_time,
                bwi_cwi,
                clock_stop,
                ifsc,
                nad,
            } => vec![
                findex_dindex,
                tcckst,
                guard_time,
                bwi_cwi,
                clock_stop,
                ifsc,
                nad,
            ],
        }
    }

    /// Read an abProtocolDataStructure for `protocol_num` (0 or 1) from its first 5 or 7
    /// bytes. `None` for another protocol number or too few bytes.
    pub fn from_bytes(protocol_num: u8, data: &[u8]) -> Option<Self> {
        match (protocol_num, data) {
            (
                0,
                [
                    findex_dindex,
                    tcckst,
                    guard_time,
                    waiting_integer,
                    clock_stop,
                    ..,
                ],
            ) => Some(ProtocolParams::T0 {
                findex_dindex: *findex_dindex,
                tcckst: *tcckst,
                guard_time: *guard_time,
                waiting_integer: *waiting_integer,
                clock_stop: *clock_stop,
            }),
            (
                1,
                [
                    findex_dindex,
                    tcckst,
                    guard_time,
                    bwi_cwi,
                    clock_stop,
                    ifsc,
                    nad,
                    ..,
                ],
            ) => Some(ProtocolParams::T1 {
                findex_dindex: *findex_dindex,
                tcckst: *tcckst,
                guard_time: *guard_time,
                bwi_cwi: *bwi_cwi,
                clock_stop: *clock_stop,
                ifsc: *ifsc,
                nad: *nad,
            }),
            _ => None,
        }
    }

    pub(super) fn len_for(protocol_num: u8) -> Option<usize> {
        match protocol_num {
            0 => Some(5),
            1 => Some(7),
            _ => None,
        }
    }
}
