//! Network interfaces as the adapter reports them (RFC 9623 §4.1.1.2: the
//! interfaces are the first level of the candidate tree), and the
//! selectors of the `interface` Selection Property that name them (RFC 9622
//! §6.2.11). The vocabulary that path derivation ([`crate::path`]) and the
//! properties ([`crate::properties`]) share, so neither needs the other's
//! module for it.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;

/// The type of a network interface (RFC 9622 §6.2.11 interface types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterfaceKind {
    /// Wired Ethernet and the like.
    Wired,
    /// Wi-Fi.
    Wifi,
    /// Cellular data.
    Cellular,
    /// The loopback interface.
    Loopback,
    /// Anything else: tunnels, VPNs, bridges, unknown.
    Other,
}

impl InterfaceKind {
    /// Every kind.
    pub const ALL: [InterfaceKind; 5] = [
        InterfaceKind::Wired,
        InterfaceKind::Wifi,
        InterfaceKind::Cellular,
        InterfaceKind::Loopback,
        InterfaceKind::Other,
    ];

    /// The canonical lowercase name (`wifi`).
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceKind::Wired => "wired",
            InterfaceKind::Wifi => "wifi",
            InterfaceKind::Cellular => "cellular",
            InterfaceKind::Loopback => "loopback",
            InterfaceKind::Other => "other",
        }
    }
}

impl fmt::Display for InterfaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no [`InterfaceKind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownInterfaceKind(pub String);

impl fmt::Display for UnknownInterfaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown interface kind {:?}: expected wired, wifi, cellular, loopback or other",
            self.0
        )
    }
}

impl std::error::Error for UnknownInterfaceKind {}

impl FromStr for InterfaceKind {
    type Err = UnknownInterfaceKind;

    /// Case-insensitive; also accepts `ethernet` for wired and `wi-fi`,
    /// `wlan`, `wireless` for Wi-Fi, the words users and systems use.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WORDS: [(&str, InterfaceKind); 9] = [
            ("wired", InterfaceKind::Wired),
            ("ethernet", InterfaceKind::Wired),
            ("wifi", InterfaceKind::Wifi),
            ("wi-fi", InterfaceKind::Wifi),
            ("wlan", InterfaceKind::Wifi),
            ("wireless", InterfaceKind::Wifi),
            ("cellular", InterfaceKind::Cellular),
            ("loopback", InterfaceKind::Loopback),
            ("other", InterfaceKind::Other),
        ];
        WORDS
            .into_iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(s))
            .map(|(_, kind)| kind)
            .ok_or_else(|| UnknownInterfaceKind(s.to_owned()))
    }
}

/// One address configured on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceAddress {
    /// The address.
    pub addr: IpAddr,
    /// The on-link prefix length.
    pub prefix_len: u8,
    /// Deprecated (RFC 4862 §5.5.4): usable, but not for new connections when
    /// another address will do.
    pub deprecated: bool,
}

impl InterfaceAddress {
    /// Parses CIDR text such as `192.168.1.10/24` or `2001:db8::1/64` (the
    /// form scenario files and `ip addr` use). The prefix length must fit
    /// the family.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (ip, len) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not address/prefix-length"))?;
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IP address"))?;
        let prefix_len: u8 = len
            .parse()
            .map_err(|_| format!("{len:?} is not a prefix length"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(format!(
                "prefix length {prefix_len} is longer than {max} bits"
            ));
        }
        Ok(InterfaceAddress {
            addr,
            prefix_len,
            deprecated: false,
        })
    }

    /// Whether this is an IPv6 address.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

/// A network interface as the adapter reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The OS name (`eth0`, `en0`).
    pub name: String,
    /// The OS interface index.
    pub index: u32,
    /// The kind.
    pub kind: InterfaceKind,
    /// Configured addresses.
    pub addrs: Vec<InterfaceAddress>,
    /// MTU in bytes.
    pub mtu: u32,
    /// The system marks it expensive (metered, such as cellular or a
    /// tethered hotspot).
    pub expensive: bool,
    /// The system marks it constrained (low data mode).
    pub constrained: bool,
    /// Administratively and operationally up.
    pub up: bool,
}

impl Interface {
    /// An up interface with the given CIDR addresses (see
    /// [`InterfaceAddress::parse`]), MTU 1500, expensive when cellular.
    pub fn new(
        name: &str,
        index: u32,
        kind: InterfaceKind,
        addrs: &[&str],
    ) -> Result<Self, String> {
        Ok(Interface {
            name: name.to_string(),
            index,
            kind,
            addrs: addrs
                .iter()
                .map(|a| InterfaceAddress::parse(a))
                .collect::<Result<_, _>>()?,
            mtu: 1500,
            expensive: kind == InterfaceKind::Cellular,
            constrained: false,
            up: true,
        })
    }

    /// Whether it has an address of the family: IPv6 if `v6`, else IPv4.
    /// Deprecated addresses count, since they still work when nothing else
    /// does.
    pub fn has_family(&self, v6: bool) -> bool {
        self.addrs.iter().any(|a| a.is_ipv6() == v6)
    }

    /// Addresses in the order a source should be picked from them: preferred
    /// (not deprecated) first, then deprecated, each in the adapter's order.
    pub fn source_addresses(&self) -> impl Iterator<Item = &InterfaceAddress> {
        let preferred = self.addrs.iter().filter(|a| !a.deprecated);
        let deprecated = self.addrs.iter().filter(|a| a.deprecated);
        preferred.chain(deprecated)
    }

    /// Whether it is the loopback interface.
    pub fn is_loopback(&self) -> bool {
        self.kind == InterfaceKind::Loopback
    }
}

/// Names interfaces in the `interface` Selection Property (RFC 9622 §6.2.11):
/// by type or by instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InterfaceSelector {
    /// Every interface of this kind.
    Kind(InterfaceKind),
    /// The interface with this OS name (exact, case-sensitive, as OS names
    /// are).
    Name(String),
}

impl InterfaceSelector {
    /// Whether `iface` is one of the interfaces this selector names.
    pub fn matches(&self, iface: &Interface) -> bool {
        match self {
            InterfaceSelector::Kind(kind) => iface.kind == *kind,
            InterfaceSelector::Name(name) => iface.name == *name,
        }
    }
}

impl fmt::Display for InterfaceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterfaceSelector::Kind(kind) => write!(f, "{kind}"),
            InterfaceSelector::Name(name) => write!(f, "interface {name}"),
        }
    }
}

impl From<InterfaceKind> for InterfaceSelector {
    fn from(kind: InterfaceKind) -> Self {
        InterfaceSelector::Kind(kind)
    }
}
