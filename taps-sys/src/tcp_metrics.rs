//! The kernel's per-destination TCP metrics (Linux `tcp_metrics`, what
//! `ip tcp_metrics show` prints), read for HEv3 §6's RTT-derived
//! Connection Attempt Delay: the kernel remembers the smoothed RTT and its
//! variation (RFC 6298 §2) of recent connections from every process, per
//! (source, destination) address.
//!
//! The metrics come over generic netlink (genetlink, netlink(7),
//! `NETLINK_GENERIC`): the `tcp_metrics` family's id is asked of the
//! controller (`CTRL_CMD_GETFAMILY`), then `TCP_METRICS_CMD_GET` with
//! `NLM_F_DUMP` lists every entry. The constants are those of
//! `include/uapi/linux/tcp_metrics.h`, `genetlink.h` and `netlink.h`.
//!
//! Why hand-written, while the path monitor's rtnetlink goes through
//! netlink-packet-route: `tcp_metrics` is a generic-netlink family, which
//! netlink-packet-route (rtnetlink only) does not cover, and no maintained
//! crate defines its attributes. netlink-packet-generic would frame the
//! controller query, but the family's nine attributes and their nesting
//! would still be declared here, so it would take over only the
//! length-checked walk of headers (`messages`, `attributes`: about 50
//! lines, exercised by every truncation in the tests) for one more
//! dependency.
//!
//! The parser ([`parse_dump`], [`parse_family_id`]) is pure, bounded and
//! never panics: it walks lengths it has checked, ignores attributes it does
//! not know, and names what was wrong when a message is malformed. What it
//! yields is `taps_core::race::KernelRtt`, which the adapter reports to the
//! core with `Input::KernelRtts`.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use taps_core::race::KernelRtt;

/// `TCP_METRICS_GENL_NAME`.
pub const FAMILY_NAME: &str = "tcp_metrics";
/// Entries read at most: the core's history keeps no more
/// (`HistoryConfig::max_entries`' default).
pub const MAX_ENTRIES: usize = 4096;

// netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ROOT: u16 = 0x100;
const NLM_F_MATCH: u16 = 0x200;
const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
const NLA_HDRLEN: usize = 4;
/// `NLA_F_NESTED | NLA_F_NET_BYTEORDER` cleared by `NLA_TYPE_MASK`.
const NLA_TYPE_MASK: u16 = 0x3fff;
// genetlink.h
const GENL_HDRLEN: usize = 4;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
// tcp_metrics.h
const TCP_METRICS_CMD_GET: u8 = 1;
const TCP_METRICS_ATTR_ADDR_IPV4: u16 = 1;
const TCP_METRICS_ATTR_ADDR_IPV6: u16 = 2;
/// msecs, u64.
const TCP_METRICS_ATTR_AGE: u16 = 3;
/// Nested, one u32 per metric, type = `enum tcp_metric_index` + 1.
const TCP_METRICS_ATTR_VALS: u16 = 6;
const TCP_METRICS_ATTR_SADDR_IPV4: u16 = 11;
const TCP_METRICS_ATTR_SADDR_IPV6: u16 = 12;
/// `TCP_METRIC_RTT` + 1 (ms), `TCP_METRIC_RTTVAR` + 1 (ms); like the µs
/// forms, scaled as the kernel's sockets keep them (see [`parse_dump`]).
const TCP_METRICS_A_METRICS_RTT: u16 = 1;
const TCP_METRICS_A_METRICS_RTTVAR: u16 = 2;
/// `TCP_METRIC_RTT_US` + 1, `TCP_METRIC_RTTVAR_US` + 1 (µs; Linux 4.1+).
const TCP_METRICS_A_METRICS_RTT_US: u16 = 6;
const TCP_METRICS_A_METRICS_RTTVAR_US: u16 = 7;

/// What was wrong with a netlink message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A length field points past the datagram or below its header.
    BadLength {
        /// Which header.
        what: &'static str,
        /// Where, in bytes from the start of the datagram.
        offset: usize,
    },
    /// The kernel answered with an error (`NLMSG_ERROR`, a negative errno).
    Kernel(i32),
    /// The controller's answer has no family id.
    NoFamilyId,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadLength { what, offset } => write!(
                f,
                "malformed netlink message: the {what} length at byte {offset} does not fit the datagram"
            ),
            ParseError::Kernel(errno) => write!(
                f,
                "the kernel refused the tcp_metrics request: {}",
                io::Error::from_raw_os_error(errno.saturating_neg())
            ),
            ParseError::NoFamilyId => write!(
                f,
                "the netlink controller's answer names no family id for {FAMILY_NAME}"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// One netlink message: its type and payload.
struct Message<'a> {
    kind: u16,
    payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The messages of one datagram.
fn messages(datagram: &[u8]) -> Result<Vec<Message<'_>>, ParseError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= datagram.len() {
        let bad = ParseError::BadLength {
            what: "netlink message",
            offset: at,
        };
        let len = u32_at(datagram, at).ok_or(bad.clone())? as usize;
        let kind = u16_at(datagram, at + 4).ok_or(bad.clone())?;
        if len < NLMSG_HDRLEN || len > datagram.len() - at {
            return Err(bad);
        }
        out.push(Message {
            kind,
            payload: &datagram[at + NLMSG_HDRLEN..at + len],
        });
        at += align4(len);
    }
    Ok(out)
}

/// The attributes (type without flags, value) in `b`, which starts at
/// `base` bytes into the datagram (for error offsets).
fn attributes(b: &[u8], base: usize) -> Result<Vec<(u16, &[u8])>, ParseError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLA_HDRLEN <= b.len() {
        let bad = ParseError::BadLength {
            what: "netlink attribute",
            offset: base + at,
        };
        let len = usize::from(u16_at(b, at).ok_or(bad.clone())?);
        let kind = u16_at(b, at + 2).ok_or(bad.clone())? & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > b.len() - at {
            return Err(bad);
        }
        out.push((kind, &b[at + NLA_HDRLEN..at + len]));
        at += align4(len);
    }
    Ok(out)
}

fn error_of(m: &Message<'_>) -> Option<ParseError> {
    if m.kind != NLMSG_ERROR {
        return None;
    }
    // struct nlmsgerr: int error, then the request's header; 0 is an ACK.
    let errno = u32_at(m.payload, 0).map_or(-libc_eproto(), |e| e as i32);
    (errno != 0).then_some(ParseError::Kernel(errno))
}

/// EPROTO, for an error message too short to carry its errno.
const fn libc_eproto() -> i32 {
    71
}

/// The family id in the controller's answer to `CTRL_CMD_GETFAMILY`.
pub fn parse_family_id(datagram: &[u8]) -> Result<u16, ParseError> {
    for m in messages(datagram)? {
        if let Some(e) = error_of(&m) {
            return Err(e);
        }
        if m.kind != GENL_ID_CTRL || m.payload.len() < GENL_HDRLEN {
            continue;
        }
        for (kind, value) in attributes(&m.payload[GENL_HDRLEN..], NLMSG_HDRLEN + GENL_HDRLEN)? {
            if kind == CTRL_ATTR_FAMILY_ID
                && let Some(id) = u16_at(value, 0)
            {
                return Ok(id);
            }
        }
    }
    Err(ParseError::NoFamilyId)
}

/// Whether a dump has more datagrams to come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dump {
    /// Read the next datagram.
    More,
    /// `NLMSG_DONE` was seen.
    Done,
}

fn addr(kind4: u16, kind6: u16, kind: u16, value: &[u8]) -> Option<IpAddr> {
    if kind == kind4 {
        let b: [u8; 4] = value.get(..4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    } else if kind == kind6 {
        let b: [u8; 16] = value.get(..16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        None
    }
}

/// Appends the entries of one datagram of a `TCP_METRICS_CMD_GET` dump
/// from family `family` to `out`, at most [`MAX_ENTRIES`] in all. An entry
/// without a destination or an RTT is skipped; the µs values are preferred
/// to the ms ones, and both are unscaled (SRTT is kept × 8, RTTVAR × 4).
pub fn parse_dump(
    datagram: &[u8],
    family: u16,
    out: &mut Vec<KernelRtt>,
) -> Result<Dump, ParseError> {
    for m in messages(datagram)? {
        if m.kind == NLMSG_DONE {
            return Ok(Dump::Done);
        }
        if let Some(e) = error_of(&m) {
            return Err(e);
        }
        if m.kind != family || m.payload.len() < GENL_HDRLEN || out.len() >= MAX_ENTRIES {
            continue;
        }
        let (mut remote, mut local, mut age) = (None, None, Duration::ZERO);
        let (mut rtt_ms, mut var_ms, mut rtt_us, mut var_us) = (None, None, None, None);
        let base = NLMSG_HDRLEN + GENL_HDRLEN;
        for (kind, value) in attributes(&m.payload[GENL_HDRLEN..], base)? {
            match kind {
                TCP_METRICS_ATTR_ADDR_IPV4 | TCP_METRICS_ATTR_ADDR_IPV6 => {
                    remote = addr(
                        TCP_METRICS_ATTR_ADDR_IPV4,
                        TCP_METRICS_ATTR_ADDR_IPV6,
                        kind,
                        value,
                    )
                }
                TCP_METRICS_ATTR_SADDR_IPV4 | TCP_METRICS_ATTR_SADDR_IPV6 => {
                    local = addr(
                        TCP_METRICS_ATTR_SADDR_IPV4,
                        TCP_METRICS_ATTR_SADDR_IPV6,
                        kind,
                        value,
                    )
                }
                TCP_METRICS_ATTR_AGE => {
                    if let Some(b) = value.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                        age = Duration::from_millis(u64::from_ne_bytes(b));
                    }
                }
                TCP_METRICS_ATTR_VALS => {
                    for (k, v) in attributes(value, base)? {
                        let v = u32_at(v, 0);
                        match k {
                            TCP_METRICS_A_METRICS_RTT => rtt_ms = v,
                            TCP_METRICS_A_METRICS_RTTVAR => var_ms = v,
                            TCP_METRICS_A_METRICS_RTT_US => rtt_us = v,
                            TCP_METRICS_A_METRICS_RTTVAR_US => var_us = v,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        // The kernel keeps its sockets' scaled values: SRTT × 8 and
        // RTTVAR × 4 (`srtt_us`, `mdev_us`; tcp_update_metrics), as
        // iproute2 undoes with `>> 3` and `>> 2`.
        let value = |us: Option<u32>, ms: Option<u32>, shift: u32| {
            us.map(u64::from)
                .or(ms.map(|v| u64::from(v) * 1000))
                .map(|v| Duration::from_micros(v >> shift))
        };
        if let (Some(remote), Some(rtt)) = (remote, value(rtt_us, rtt_ms, 3)) {
            out.push(KernelRtt {
                local,
                remote,
                rtt,
                rttvar: value(var_us, var_ms, 2).unwrap_or(rtt / 2),
                age,
            });
        }
    }
    Ok(Dump::More)
}

/// A netlink request: header, genetlink header, then attributes.
fn request(
    kind: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    attrs: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&[cmd, version, 0, 0]);
    for (k, v) in attrs {
        let len = u16::try_from(NLA_HDRLEN + v.len()).unwrap_or(u16::MAX);
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&k.to_ne_bytes());
        b.extend_from_slice(v);
        b.resize(align4(b.len()), 0);
    }
    let total = u32::try_from(b.len()).unwrap_or(u32::MAX);
    b[..4].copy_from_slice(&total.to_ne_bytes());
    b
}

/// Reads every entry the kernel keeps (at most [`MAX_ENTRIES`]), waiting
/// at most `timeout` for each answer. Linux only; elsewhere, and where the
/// kernel has no `tcp_metrics` family (built without it, or a sandbox
/// forbidding netlink), an error says so, and the caller goes on with no
/// kernel data.
#[cfg(target_os = "linux")]
pub fn read(timeout: Duration) -> io::Result<Vec<KernelRtt>> {
    use super::{Stage, context};
    use nix::sys::socket::{MsgFlags, NetlinkAddr, SockProtocol, sendto};
    use socket2::{Domain, Protocol, Socket, Type};
    use std::io::Read;
    use std::os::fd::AsRawFd;

    let socket = Socket::new(
        Domain::from(nix::sys::socket::AddressFamily::Netlink as i32),
        Type::DGRAM,
        Some(Protocol::from(SockProtocol::NetlinkGeneric as i32)),
    )
    .map_err(|e| context(e, Stage::Setup, "create a generic netlink socket"))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| context(e, Stage::Setup, "set a timeout on the netlink socket"))?;
    let kernel = NetlinkAddr::new(0, 0);
    let send = |b: &[u8], what: &str| {
        sendto(socket.as_raw_fd(), b, &kernel, MsgFlags::empty())
            .map_err(|errno| context(io::Error::from(errno), Stage::Other, what))
    };
    let mut name = FAMILY_NAME.as_bytes().to_vec();
    name.push(0);
    send(
        &request(
            GENL_ID_CTRL,
            0,
            1,
            CTRL_CMD_GETFAMILY,
            1,
            &[(CTRL_ATTR_FAMILY_NAME, &name)],
        ),
        "ask the netlink controller for the tcp_metrics family",
    )?;
    // Datagrams are at most a page (8 KiB on the largest common pages);
    // 32 KiB leaves room and is never truncated in practice.
    let mut buf = vec![0u8; 32 * 1024];
    let mut reader: &Socket = &socket;
    let invalid = |e: ParseError| io::Error::new(io::ErrorKind::InvalidData, e);
    let n = reader
        .read(&mut buf)
        .map_err(|e| context(e, Stage::Other, "read the netlink controller's answer"))?;
    let family = parse_family_id(&buf[..n]).map_err(invalid)?;
    send(
        &request(family, NLM_F_DUMP, 2, TCP_METRICS_CMD_GET, 1, &[]),
        "ask for the kernel's TCP metrics",
    )?;
    let mut out = Vec::new();
    // A dump of MAX_ENTRIES entries fills far fewer datagrams than this;
    // the bound only stops a kernel that never says DONE.
    for _ in 0..MAX_ENTRIES {
        let n = reader
            .read(&mut buf)
            .map_err(|e| context(e, Stage::Other, "read the kernel's TCP metrics"))?;
        if parse_dump(&buf[..n], family, &mut out).map_err(invalid)? == Dump::Done {
            break;
        }
    }
    Ok(out)
}

/// Elsewhere there is no `tcp_metrics`.
#[cfg(not(target_os = "linux"))]
pub fn read(_timeout: Duration) -> io::Result<Vec<KernelRtt>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the kernel's TCP metrics are read from Linux's tcp_metrics netlink family only",
    ))
}

#[cfg(test)]
mod tests;
