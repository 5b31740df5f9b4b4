//! Device URIs: one address scheme across drivers, config files and the command line.
//!
//! ```text
//! serial:/dev/ttyUSB0?baud=19200&flow=rtscts
//! tcp:192.0.2.10:9100            tcp:[2001:db8::1]:9100       tcp:printer.local:9100
//! usb:04b8:0e28                  usb:04b8:0e28?serial=X       usb:1-1.4   (bus-port path)
//! evdev:/dev/input/by-id/usb-MagTek-event-kbd
//! sim:printer?fault=paper-out
//! pcsc:Gemalto PC Twin Reader 00 00     pcsc:   (the first reader pcscd lists)
//! ```
//!
//! Query values are percent-decoded (`%26` is `&`); [`Display`](std::fmt::Display) encodes
//! them again, so `parse(display(uri)) == uri`. Options a scheme knows are checked at parse
//! time (serial line settings, the USB `serial`); other options are kept, in order, for the
//! driver that opens the URI. Errors name the part that is wrong.

use std::fmt;
use std::str::FromStr;

use crate::serial::SerialSettings;

/// A parsed device address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceUri {
    address: Address,
    options: Vec<(String, String)>,
}

/// Where a device is, by scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A serial port device node (`serial:PATH`).
    Serial {
        /// The device node, e.g. `/dev/ttyUSB0` or `/dev/pos/printer`.
        path: String,
    },
    /// A TCP endpoint (`tcp:HOST:PORT`); IPv6 literals in brackets.
    Tcp {
        /// Host name or IP literal (without brackets).
        host: String,
        /// Port, 1-65535.
        port: u16,
    },
    /// A USB device (`usb:VID:PID` or `usb:BUS-PORT.PORT...`).
    Usb(UsbSelector),
    /// A Linux input device (`evdev:PATH`), for keyboard-wedge readers.
    Evdev {
        /// The event device node.
        path: String,
    },
    /// A USB printer through the kernel's usblp driver (`usblp:PATH`, e.g.
    /// `usblp:/dev/usb/lp0`).
    Usblp {
        /// The usblp device node.
        path: String,
    },
    /// A simulated device (`sim:KIND`), e.g. `sim:printer`.
    Sim {
        /// The simulator kind: lower-case letters, digits, `-` and `_`.
        kind: String,
    },
    /// A chip reader through pcscd (`pcsc:READER NAME`, or `pcsc:` for the first reader).
    Pcsc {
        /// The PC/SC reader name as pcscd lists it (spaces kept; `%`, `?` and `#`
        /// percent-encoded); `None` for the first reader.
        reader: Option<String>,
    },
}

/// How a USB device is picked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UsbSelector {
    /// By vendor and product ID (and the `serial` option, if given).
    Ids {
        /// Vendor ID.
        vid: u16,
        /// Product ID.
        pid: u16,
    },
    /// By physical position: bus number and port chain, as Linux names it (`1-1.4`).
    Port {
        /// Bus number.
        bus: u8,
        /// Port numbers from the root hub down.
        ports: Vec<u8>,
    },
}

/// A device URI that did not parse. Says which part is wrong and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad device URI {uri:?}: {part} {value:?}: {problem}")]
pub struct UriError {
    /// The whole text given.
    pub uri: String,
    /// The part at fault: `scheme`, `path`, `host`, `port`, `vendor id`, `option baud`, ...
    pub part: String,
    /// The offending text.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl DeviceUri {
    /// Parse a URI. See the module docs for the forms.
    ///
    /// Errors: [`UriError`] naming the part at fault. Never panics, whatever the input.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let err = |part: &str, value: &str, problem: &str| UriError {
            uri: text.to_string(),
            part: part.to_string(),
            value: value.to_string(),
            problem: problem.to_string(),
        };
        let trimmed = text.trim();
        let Some((scheme, rest)) = trimmed.split_once(':') else {
            return Err(err(
                "scheme",
                trimmed,
                "missing scheme: expected serial:, tcp:, usb:, evdev:, sim: or pcsc:",
            ));
        };
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut options = Vec::new();
        if let Some(q) = query {
            for pair in q.split('&') {
                if pair.is_empty() {
                    continue;
                }
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let key = decode(k).map_err(|p| err("option name", k, &p))?;
                let value = decode(v).map_err(|p| err(&format!("option {key}"), v, &p))?;
                if key.is_empty() {
                    return Err(err("option name", pair, "empty option name"));
                }
                if options.iter().any(|(existing, _)| existing == &key) {
                    return Err(err(&format!("option {key}"), pair, "given twice"));
                }
                options.push((key, value));
            }
        }
        let address = match scheme.to_ascii_lowercase().as_str() {
            "serial" => {
                let path = decode(body).map_err(|p| err("path", body, &p))?;
                check_path(&path).map_err(|p| err("path", body, p))?;
                Address::Serial { path }
            }
            "evdev" => {
                let path = decode(body).map_err(|p| err("path", body, &p))?;
                check_path(&path).map_err(|p| err("path", body, p))?;
                Address::Evdev { path }
            }
            "usblp" => {
                let path = decode(body).map_err(|p| err("path", body, &p))?;
                check_path(&path).map_err(|p| err("path", body, p))?;
                Address::Usblp { path }
            }
            "tcp" => parse_tcp(body).map_err(|(part, p)| err(part, body, &p))?,
            "usb" => Address::Usb(parse_usb(body).map_err(|(part, p)| err(part, body, &p))?),
            "sim" => {
                if body.is_empty()
                    || !body.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    })
                {
                    return Err(err(
                        "simulator kind",
                        body,
                        "expected a name of lower-case letters, digits, '-' or '_' (e.g. sim:printer)",
                    ));
                }
                Address::Sim {
                    kind: body.to_string(),
                }
            }
            "pcsc" => {
                let reader = decode(body).map_err(|p| err("reader name", body, &p))?;
                if reader.chars().any(char::is_control) {
                    return Err(err(
                        "reader name",
                        body,
                        "control character in a reader name",
                    ));
                }
                Address::Pcsc {
                    reader: (!reader.is_empty()).then_some(reader),
                }
            }
            _ => {
                return Err(err(
                    "scheme",
                    scheme,
                    "unknown scheme: expected serial, tcp, usb, evdev, sim or pcsc",
                ));
            }
        };
        let uri = DeviceUri { address, options };
        uri.validate_options()
            .map_err(|(key, value, problem)| err(&format!("option {key}"), &value, &problem))?;
        Ok(uri)
    }

    fn validate_options(&self) -> Result<(), (String, String, String)> {
        match &self.address {
            Address::Serial { .. } => SerialSettings::from_options(&self.options).map(|_| ()),
            Address::Usb(UsbSelector::Ids { .. }) => match self.option("serial") {
                Some("") => Err(("serial".into(), String::new(), "empty serial number".into())),
                _ => Ok(()),
            },
            Address::Usb(UsbSelector::Port { .. }) => match self.option("serial") {
                Some(s) => Err((
                    "serial".into(),
                    s.to_string(),
                    "a serial number selects by vid:pid, not by port path".into(),
                )),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// The address part.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// All options, in the order given.
    pub fn options(&self) -> &[(String, String)] {
        &self.options
    }

    /// One option's value.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The scheme name: `serial`, `tcp`, `usb`, `evdev`, `sim` or `pcsc`.
    pub fn scheme(&self) -> &'static str {
        match self.address {
            Address::Serial { .. } => "serial",
            Address::Tcp { .. } => "tcp",
            Address::Usb(_) => "usb",
            Address::Evdev { .. } => "evdev",
            Address::Usblp { .. } => "usblp",
            Address::Sim { .. } => "sim",
            Address::Pcsc { .. } => "pcsc",
        }
    }

    /// For `serial:` URIs, the line settings from the options (defaults where absent).
    pub fn serial_settings(&self) -> Option<SerialSettings> {
        match self.address {
            Address::Serial { .. } => SerialSettings::from_options(&self.options).ok(),
            _ => None,
        }
    }

    /// Build a URI from parts (the options are checked as in [`parse`](Self::parse)).
    pub fn new(address: Address, options: Vec<(String, String)>) -> Result<Self, UriError> {
        DeviceUri::parse(&DeviceUri { address, options }.to_string())
    }
}

fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        Err("empty device path")
    } else if path.chars().any(|c| c == '\0') {
        Err("NUL in device path")
    } else {
        Ok(())
    }
}

fn parse_tcp(body: &str) -> Result<Address, (&'static str, String)> {
    let (host, port) = if let Some(after) = body.strip_prefix('[') {
        let (h, rest) = after.split_once(']').ok_or((
            "host",
            "IPv6 literal is missing its closing ']'".to_string(),
        ))?;
        let port = rest
            .strip_prefix(':')
            .ok_or(("port", "missing ':PORT' after the host".to_string()))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(("host", format!("{h:?} is not an IPv6 address")));
        }
        (h, port)
    } else {
        let (h, p) = body.rsplit_once(':').ok_or((
            "port",
            "missing ':PORT' (e.g. tcp:192.0.2.10:9100)".to_string(),
        ))?;
        if h.contains(':') {
            return Err((
                "host",
                "put an IPv6 address in brackets: tcp:[::1]:9100".to_string(),
            ));
        }
        if h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        {
            return Err(("host", format!("{h:?} is not a host name or IP address")));
        }
        (h, p)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| ("port", format!("{port:?} is not a port number (1-65535)")))?;
    if port == 0 {
        return Err(("port", "port 0 is not a valid destination".to_string()));
    }
    Ok(Address::Tcp {
        host: host.to_string(),
        port,
    })
}

fn parse_hex16(s: &str) -> Option<u16> {
    if s.len() == 4 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        u16::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

fn parse_usb(body: &str) -> Result<UsbSelector, (&'static str, String)> {
    if let Some((v, p)) = body.split_once(':') {
        let vid = parse_hex16(v).ok_or(("vendor id", format!("{v:?} is not 4 hex digits")))?;
        let pid = parse_hex16(p).ok_or(("product id", format!("{p:?} is not 4 hex digits")))?;
        return Ok(UsbSelector::Ids { vid, pid });
    }
    let (bus, path) = body.split_once('-').ok_or((
        "usb address",
        "expected VID:PID (usb:04b8:0e28) or BUS-PORT[.PORT...] (usb:1-1.4)".to_string(),
    ))?;
    let bus: u8 = bus
        .parse()
        .map_err(|_| ("bus", format!("{bus:?} is not a bus number")))?;
    let ports = path
        .split('.')
        .map(|p| {
            p.parse::<u8>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(("port", format!("{p:?} is not a port number (1-255)")))
        })
        .collect::<Result<Vec<u8>, _>>()?;
    if ports.len() > 7 {
        return Err(("port", "USB allows at most 7 levels of ports".to_string()));
    }
    Ok(UsbSelector::Port { bus, ports })
}

/// Percent-decode; the result must be UTF-8.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent escapes do not form UTF-8".to_string())
}

/// Percent-encode what would change the meaning of a URI: `%`, `?`, `&`, `=`, `#`, space,
/// control characters (and `:`/`[`/`]` where `strict`).
fn encode(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for ch in s.chars() {
        let c = ch as u32;
        if ch.is_ascii() && (c < 0x21 || c == 0x7f || "%?&=#".contains(ch)) {
            write!(f, "%{c:02X}")?;
        } else if !ch.is_ascii() && ch.is_control() {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                write!(f, "%{b:02X}")?;
            }
        } else {
            write!(f, "{ch}")?;
        }
    }
    Ok(())
}

/// A PC/SC reader name as readable as it can be: spaces kept inside it, only what would
/// change its meaning encoded (`%`, `?`, `#`, and spaces at either end, which parsing trims).
fn encode_reader_name(name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let last = name.char_indices().last().map_or(0, |(i, _)| i);
    for (i, ch) in name.char_indices() {
        let edge = i == 0 || i == last;
        if "%?#".contains(ch) || ch.is_control() || (edge && ch.is_whitespace()) {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                write!(f, "%{b:02X}")?;
            }
        } else {
            write!(f, "{ch}")?;
        }
    }
    Ok(())
}

struct Encoded<'a>(&'a str);

impl fmt::Display for Encoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        encode(self.0, f)
    }
}

impl fmt::Display for UsbSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsbSelector::Ids { vid, pid } => write!(f, "{vid:04x}:{pid:04x}"),
            UsbSelector::Port { bus, ports } => {
                write!(f, "{bus}-")?;
                for (i, p) in ports.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for DeviceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Address::Serial { path } => write!(f, "serial:{}", Encoded(path))?,
            Address::Evdev { path } => write!(f, "evdev:{}", Encoded(path))?,
            Address::Usblp { path } => write!(f, "usblp:{}", Encoded(path))?,
            Address::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}")?,
            Address::Tcp { host, port } => write!(f, "tcp:{host}:{port}")?,
            Address::Usb(sel) => write!(f, "usb:{sel}")?,
            Address::Sim { kind } => write!(f, "sim:{kind}")?,
            Address::Pcsc { reader } => {
                f.write_str("pcsc:")?;
                if let Some(name) = reader {
                    encode_reader_name(name, f)?;
                }
            }
        }
        for (i, (k, v)) in self.options.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{}={}", Encoded(k), Encoded(v))?;
        }
        Ok(())
    }
}

impl FromStr for DeviceUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceUri::parse(s)
    }
}

impl serde::Serialize for DeviceUri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DeviceUri::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> DeviceUri {
        DeviceUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn pcsc_readers_by_name_or_the_first() {
        let named = p("pcsc:Gemalto PC Twin Reader 00 00");
        assert_eq!(
            named.address(),
            &Address::Pcsc {
                reader: Some("Gemalto PC Twin Reader 00 00".into())
            }
        );
        assert_eq!(named.scheme(), "pcsc");
        // Spaces stay readable; what parsing would cut is encoded.
        assert_eq!(named.to_string(), "pcsc:Gemalto PC Twin Reader 00 00");
        let odd = DeviceUri::new(
            Address::Pcsc {
                reader: Some(" A?B#50% ".into()),
            },
            Vec::new(),
        )
        .unwrap();
        assert_eq!(odd.to_string(), "pcsc:%20A%3FB%2350%25%20");
        assert_eq!(p(&odd.to_string()), odd);
        assert_eq!(p("pcsc:").address(), &Address::Pcsc { reader: None });
        assert_eq!(p("pcsc:").to_string(), "pcsc:");
        assert!(DeviceUri::parse("pcsc:a%0Ab").is_err());
    }

    #[test]
    fn the_documented_forms_parse() {
        let s = p("serial:/dev/ttyUSB0?baud=19200&flow=rtscts");
        assert_eq!(
            s.address(),
            &Address::Serial {
                path: "/dev/ttyUSB0".into()
            }
        );
        let set = s.serial_settings().unwrap();
        assert_eq!(set.baud, 19200);
        assert_eq!(set.flow, crate::serial::FlowControl::RtsCts);

        assert_eq!(
            p("tcp:192.0.2.10:9100").address(),
            &Address::Tcp {
                host: "192.0.2.10".into(),
                port: 9100
            }
        );
        assert_eq!(
            p("tcp:[::1]:9100").address(),
            &Address::Tcp {
                host: "::1".into(),
                port: 9100
            }
        );
        assert_eq!(
            p("usb:04b8:0e28").address(),
            &Address::Usb(UsbSelector::Ids {
                vid: 0x04b8,
                pid: 0x0e28
            })
        );
        let with_serial = p("usb:04b8:0E28?serial=X%26Y");
        assert_eq!(with_serial.option("serial"), Some("X&Y"));
        assert_eq!(with_serial.to_string(), "usb:04b8:0e28?serial=X%26Y");
        assert_eq!(
            p("usb:1-1.4").address(),
            &Address::Usb(UsbSelector::Port {
                bus: 1,
                ports: vec![1, 4]
            })
        );
        assert_eq!(
            p("evdev:/dev/input/by-id/usb-MagTek-event-kbd").address(),
            &Address::Evdev {
                path: "/dev/input/by-id/usb-MagTek-event-kbd".into()
            }
        );
        let sim = p("sim:printer?fault=paper-out");
        assert_eq!(
            sim.address(),
            &Address::Sim {
                kind: "printer".into()
            }
        );
        assert_eq!(sim.option("fault"), Some("paper-out"));
        assert_eq!(sim.to_string(), "sim:printer?fault=paper-out");
    }

    fn bad(s: &str, part: &str) -> UriError {
        let e = DeviceUri::parse(s).expect_err(s);
        assert_eq!(e.part, part, "{s}: {e}");
        assert!(e.to_string().contains(part), "{e}");
        e
    }

    #[test]
    fn errors_name_the_bad_part() {
        bad("/dev/ttyUSB0", "scheme");
        bad("ftp:/x", "scheme");
        bad("serial:", "path");
        let e = bad("serial:/dev/ttyS0?baud=fast", "option baud");
        assert_eq!(e.value, "fast");
        bad("serial:/dev/ttyS0?parity=maybe", "option parity");
        bad("serial:/dev/ttyS0?flow=magic", "option flow");
        bad("serial:/dev/ttyS0?data=9", "option data");
        bad("serial:/dev/ttyS0?stop=3", "option stop");
        bad("serial:/dev/ttyS0?baud=1&baud=2", "option baud");
        bad("tcp:192.0.2.1", "port");
        bad("tcp:192.0.2.1:99999", "port");
        bad("tcp:192.0.2.1:0", "port");
        bad("tcp::9100", "host");
        bad("tcp:::1:9100", "host");
        bad("tcp:[::1:9100", "host");
        bad("usb:04b8", "usb address");
        bad("usb:04bg:0e28", "vendor id");
        bad("usb:04b8:e28", "product id");
        bad("usb:1-1.x", "port");
        bad("usb:1-1?serial=abc", "option serial");
        bad("sim:", "simulator kind");
        bad("sim:Printer", "simulator kind");
        bad("serial:/dev/tty%zz", "path");
    }

    #[test]
    fn scheme_is_case_insensitive_and_whitespace_trimmed() {
        assert_eq!(p(" TCP:localhost:9100 ").to_string(), "tcp:localhost:9100");
    }

    #[test]
    fn serde_as_a_string() {
        let u = p("serial:/dev/ttyUSB0?baud=19200");
        let j = serde_json::to_string(&u).unwrap();
        assert_eq!(j, "\"serial:/dev/ttyUSB0?baud=19200\"");
        assert_eq!(serde_json::from_str::<DeviceUri>(&j).unwrap(), u);
    }

    fn arb_uri() -> impl Strategy<Value = DeviceUri> {
        let path = "/[a-zA-Z0-9 _./%&=?#:-]{1,30}";
        let opt_kv = proptest::collection::vec(("[a-z_]{1,8}", "[ -~]{0,12}"), 0..4);
        let addr = prop_oneof![
            path.prop_map(|path| Address::Evdev { path }),
            ("[a-z0-9.-]{1,20}", 1u16..).prop_map(|(host, port)| Address::Tcp { host, port }),
            any::<std::net::Ipv6Addr>().prop_map(|ip| Address::Tcp {
                host: ip.to_string(),
                port: 9100
            }),
            (any::<u16>(), any::<u16>())
                .prop_map(|(vid, pid)| Address::Usb(UsbSelector::Ids { vid, pid })),
            (any::<u8>(), proptest::collection::vec(1u8.., 1..7))
                .prop_map(|(bus, ports)| Address::Usb(UsbSelector::Port { bus, ports })),
            "[a-z0-9_-]{1,10}".prop_map(|kind| Address::Sim { kind }),
        ];
        (addr, opt_kv).prop_map(|(address, kv)| {
            let mut options: Vec<(String, String)> = Vec::new();
            for (k, v) in kv {
                if k != "serial" && !options.iter().any(|(e, _)| e == &k) {
                    options.push((k, v));
                }
            }
            DeviceUri { address, options }
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = DeviceUri::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_uri_like_text(s in "(serial|tcp|usb|evdev|sim|x):[ -~]{0,40}") {
            if let Ok(u) = DeviceUri::parse(&s) {
                // Whatever parses displays to something that parses back the same.
                prop_assert_eq!(DeviceUri::parse(&u.to_string()), Ok(u));
            }
        }

        #[test]
        fn pcsc_reader_names_round_trip(name in "\\PC{0,40}") {
            let u = DeviceUri::new(Address::Pcsc { reader: Some(name.clone()) }, Vec::new());
            if !name.chars().any(char::is_control) {
                let u = u.unwrap();
                let expected = (!name.is_empty()).then_some(name);
                prop_assert_eq!(u.address(), &Address::Pcsc { reader: expected });
            }
        }

        #[test]
        fn display_parse_round_trip(u in arb_uri()) {
            let text = u.to_string();
            prop_assert_eq!(DeviceUri::parse(&text), Ok(u), "{}", text);
        }

        #[test]
        fn serial_round_trip(baud in 1u32..4_000_000, flow in prop_oneof!["none", "rtscts", "xonxoff"]) {
            let u = DeviceUri::parse(&format!("serial:/dev/ttyS0?baud={baud}&flow={flow}")).unwrap();
            prop_assert_eq!(u.serial_settings().unwrap().baud, baud);
            prop_assert_eq!(DeviceUri::parse(&u.to_string()), Ok(u));
        }
    }
}
