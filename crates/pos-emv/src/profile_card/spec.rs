//! What each profile card holds: applications, data objects and records.

use super::*;

pub(super) struct AppSpec {
    pub(super) aid: Vec<u8>,
    pub(super) label: &'static str,
    pub(super) priority: Option<u8>,
    pub(super) blocked: bool,
}

pub(super) struct Spec {
    pub(super) pse: bool,
    pub(super) apps: Vec<AppSpec>,
    pub(super) pdol: Option<Vec<u8>>,
    pub(super) format2: bool,
    pub(super) aip: [u8; 2],
    pub(super) oda: Oda,
    /// `5F24` YYMMDD.
    pub(super) expiry: [u8; 3],
    /// `5F25` YYMMDD.
    pub(super) effective: [u8; 3],
    pub(super) country: [u8; 2],
    pub(super) currency: [u8; 2],
    pub(super) name: &'static str,
    pub(super) cdol1: Vec<u8>,
    pub(super) cdol2: Vec<u8>,
    pub(super) iad: Vec<u8>,
    pub(super) declines_tc: bool,
}

pub(super) const VISA: [u8; 5] = [0xA0, 0x00, 0x00, 0x00, 0x03];
pub(super) const MASTERCARD: [u8; 5] = [0xA0, 0x00, 0x00, 0x00, 0x04];
pub(super) const UNIONPAY: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x33];

pub(super) fn aid(rid: [u8; 5], pix: &[u8]) -> Vec<u8> {
    let mut a = rid.to_vec();
    a.extend_from_slice(pix);
    a
}

pub(super) fn app(aid: Vec<u8>, label: &'static str, priority: Option<u8>) -> AppSpec {
    AppSpec {
        aid,
        label,
        priority,
        blocked: false,
    }
}

/// Visa-style CDOL1: amounts, country, TVR, currency, date, type, UN.
pub(super) const CDOL1_VISA: &[u8] = &[
    0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A, 0x02, 0x9A, 0x03,
    0x9C, 0x01, 0x9F, 0x37, 0x04,
];
/// Visa-style CDOL2: authorisation response code, TVR, UN.
pub(super) const CDOL2_VISA: &[u8] = &[0x8A, 0x02, 0x95, 0x05, 0x9F, 0x37, 0x04];
/// Mastercard-style CDOL1 (as the shared Mastercard transcript, less the CDA tags).
pub(super) const CDOL1_MC: &[u8] = &[
    0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A, 0x02, 0x9A, 0x03,
    0x9C, 0x01, 0x9F, 0x37, 0x04, 0x9F, 0x35, 0x01, 0x9F, 0x34, 0x03,
];
/// Mastercard-style CDOL2: issuer authentication data, response code, TVR, UN.
pub(super) const CDOL2_MC: &[u8] = &[0x91, 0x0A, 0x8A, 0x02, 0x95, 0x05, 0x9F, 0x37, 0x04];

pub(super) fn spec(profile: Profile) -> Spec {
    let visa_apps = vec![app(aid(VISA, &[0x10, 0x10]), "VISA CREDIT", Some(1))];
    let mut s = Spec {
        pse: true,
        apps: visa_apps,
        pdol: None,
        format2: false,
        aip: [0x58, 0x00],
        oda: Oda::Sda,
        expiry: [0x31, 0x12, 0x31],
        effective: [0x21, 0x01, 0x01],
        country: [0x08, 0x26],
        currency: [0x08, 0x26],
        name: "TEST/VISA",
        cdol1: CDOL1_VISA.to_vec(),
        cdol2: CDOL2_VISA.to_vec(),
        iad: vec![0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00],
        declines_tc: false,
    };
    let mastercard = |s: &mut Spec, name| {
        s.apps = vec![app(aid(MASTERCARD, &[0x10, 0x10]), "MASTERCARD", None)];
        s.format2 = true;
        s.name = name;
        s.cdol1 = CDOL1_MC.to_vec();
        s.cdol2 = CDOL2_MC.to_vec();
        s.iad = vec![
            0x01, 0x10, 0xA0, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0xFF,
        ];
    };
    match profile {
        Profile::VisaPse => {
            // Terminal country code and unpredictable number, as a Visa card may ask.
            s.pdol = Some(vec![0x9F, 0x1A, 0x02, 0x9F, 0x37, 0x04]);
        }
        Profile::Mastercard => {
            mastercard(&mut s, "TEST/MASTERCARD");
            s.pse = false;
            s.aip = [0x38, 0x00];
            s.oda = Oda::Dda;
        }
        Profile::UnionPay => {
            s.apps = vec![
                app(
                    aid(UNIONPAY, &[0x01, 0x01, 0x01]),
                    "UnionPay Debit",
                    Some(2),
                ),
                app(
                    aid(UNIONPAY, &[0x01, 0x01, 0x02]),
                    "UnionPay Credit",
                    Some(1),
                ),
            ];
            s.aip = [0x38, 0x00];
            s.oda = Oda::Dda;
            s.country = [0x01, 0x56];
            s.currency = [0x01, 0x56];
            s.name = "TEST/UNIONPAY";
            s.iad = vec![0x07, 0x01, 0x01, 0x03, 0xA0, 0x00, 0x00, 0x01];
        }
        Profile::Blocked => {
            s.apps = vec![
                AppSpec {
                    blocked: true,
                    ..app(aid(VISA, &[0x10, 0x10]), "VISA CREDIT", Some(1))
                },
                app(aid(VISA, &[0x20, 0x10]), "VISA ELECTRON", Some(2)),
            ];
            s.name = "TEST/BLOCKED";
        }
        Profile::Expired => {
            mastercard(&mut s, "TEST/EXPIRED");
            s.expiry = [0x22, 0x12, 0x31];
            s.effective = [0x19, 0x01, 0x01];
            s.declines_tc = true;
        }
        Profile::AidFallback => {
            s.pse = false;
            s.apps = vec![
                app(aid(VISA, &[0x10, 0x10, 0x01]), "VISA CREDIT", Some(1)),
                app(aid(VISA, &[0x10, 0x10, 0x02]), "VISA DEBIT", Some(2)),
            ];
            s.name = "TEST/FALLBACK";
        }
        Profile::Cda => {
            mastercard(&mut s, "TEST/CDA");
            s.aip = [0x39, 0x00];
            s.oda = Oda::Cda;
        }
    }
    s
}

/// Digits as BCD, padded with `F` to `len` bytes (`cn`).
pub(super) fn cn(digits: &str, len: usize) -> Vec<u8> {
    let mut nibbles: Vec<u8> = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    nibbles.resize(len * 2, 0x0F);
    pack(&nibbles)
}
/// Nibbles (an even count) packed two to a byte.
pub(super) fn pack(nibbles: &[u8]) -> Vec<u8> {
    nibbles
        .chunks_exact(2)
        .map(|p| match p {
            [hi, lo] => (hi << 4) | (lo & 0x0F),
            _ => 0,
        })
        .collect()
}
/// Track 2 equivalent data: PAN `D` YYMM service code 201, discretionary data, F-padded.
pub(super) fn track2(pan: &str, expiry: [u8; 3]) -> Vec<u8> {
    let mut nibbles: Vec<u8> = pan.bytes().map(|d| d.wrapping_sub(b'0') & 0x0F).collect();
    nibbles.push(0x0D);
    for b in &expiry[..2] {
        nibbles.push(b >> 4);
        nibbles.push(b & 0x0F);
    }
    nibbles.extend_from_slice(&[2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    if nibbles.len() % 2 != 0 {
        nibbles.push(0x0F);
    }
    pack(&nibbles)
}

/// The application records (see the [module](self) documentation), certificates signed.
pub(super) fn build_records(profile: Profile, s: &Spec) -> Vec<(u8, u8, Vec<u8>)> {
    let pan = profile.pan();
    let pan_bytes = cn(pan, pan.len().div_ceil(2));
    let mut out = Vec::new();

    let mut b = Builder::new();
    b.constructed(T_RECORD, |r| {
        r.primitive(Tag::new(0x57), &track2(pan, s.expiry));
        r.primitive(Tag::new(0x5F20), s.name.as_bytes());
    });
    out.push((1, 1, b.finish()));

    let mut b = Builder::new();
    b.constructed(T_RECORD, |r| {
        r.primitive(Tag::new(0x5A), &pan_bytes);
        r.primitive(Tag::new(0x5F24), &s.expiry);
        r.primitive(Tag::new(0x5F25), &s.effective);
        r.primitive(Tag::new(0x5F28), &s.country);
        r.primitive(Tag::new(0x5F34), &[0x01]);
        r.primitive(Tag::new(0x8C), &s.cdol1);
        r.primitive(Tag::new(0x8D), &s.cdol2);
        r.primitive(
            Tag::new(0x8E),
            &[0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x03, 0x1E, 0x03, 0x1F, 0x00],
        );
        r.primitive(Tag::new(0x9F07), &[0xFF, 0x00]);
        r.primitive(Tag::new(0x9F08), &[0x00, 0x02]);
        r.primitive(Tag::new(0x9F0D), &[0xB0, 0x50, 0xAC, 0x80, 0x00]);
        r.primitive(Tag::new(0x9F0E), &[0x00, 0x10, 0x00, 0x00, 0x00]);
        r.primitive(Tag::new(0x9F0F), &[0xB0, 0x70, 0xBC, 0x98, 0x00]);
        r.primitive(Tag::new(0x9F42), &s.currency);
        r.primitive(Tag::new(0x9F4A), &[0x82]);
        if s.oda != Oda::Sda {
            r.primitive(Tag::new(0x9F49), &[0x9F, 0x37, 0x04]);
        }
    });
    let signed_record = b.finish();
    // Static data to be authenticated: the value of the one ODA record (SFI 2), then the AIP.
    let mut static_data = crate::tlv::parse_single(&signed_record)
        .map(|t| t.value.to_vec())
        .unwrap_or_default();
    static_data.extend_from_slice(&s.aip);
    out.push((2, 1, signed_record));

    let Some(keys) = sim_keys() else {
        return out;
    };
    let (cert_90, rem_92) = issuer_certificate(keys, pan);
    let mut b = Builder::new();
    b.constructed(T_RECORD, |r| {
        r.primitive(Tag::new(0x8F), &[SIM_CA_INDEX]);
        r.primitive(Tag::new(0x90), &cert_90);
        if !rem_92.is_empty() {
            r.primitive(Tag::new(0x92), &rem_92);
        }
        r.primitive(Tag::new(0x9F32), &keys.issuer.e);
    });
    out.push((3, 1, b.finish()));

    let mut b = Builder::new();
    if s.oda == Oda::Sda {
        let ssad = signed_static_data(keys, &static_data);
        b.constructed(T_RECORD, |r| {
            r.primitive(Tag::new(0x93), &ssad);
        });
    } else {
        let mmyy = [s.expiry[1], s.expiry[0]];
        let (cert, rem) = icc_certificate(keys, pan, mmyy, &static_data);
        b.constructed(T_RECORD, |r| {
            r.primitive(Tag::new(0x9F46), &cert);
            r.primitive(Tag::new(0x9F47), &keys.icc.e);
            if !rem.is_empty() {
                r.primitive(Tag::new(0x9F48), &rem);
            }
        });
    }
    out.push((3, 2, b.finish()));
    out
}
