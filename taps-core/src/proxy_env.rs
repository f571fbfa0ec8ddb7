//! The system's proxy configuration, read the way curl reads it: which of
//! `https_proxy`/`HTTPS_PROXY`, `http_proxy`, `all_proxy`/`ALL_PROXY`
//! names the proxy of a connection, and whether `no_proxy`/`NO_PROXY`
//! exempts its host (RFC 9623 §4.1: a proxy is one of the "protocol
//! options" a candidate may use; the system configuration is one source
//! of them).
//!
//! There is no standard for these variables. curl's documentation is the
//! closest thing to one, and most tools an operator sets them for
//! (curl, wget, git, pip, reqwest) agree with it on the points below, so
//! taps follows it. Each rule's comment names the sentence of curl's
//! documentation it follows (curl(1) ENVIRONMENT; libcurl's
//! `CURLOPT_NOPROXY(3)`; "Proxy environment variables" in
//! *Everything curl*), and each test row quotes it. Where the
//! documentation is silent, the behaviour of Debian 12's curl 7.88.1 was
//! observed (`env -i http_proxy=… no_proxy=… curl -v URL`) and is cited
//! as such.
//!
//! The module is pure: [`ProxyEnvironment::from_lookup`] is handed the
//! variables' values, and taps-io reads the process environment once, when
//! a `Taps` is built (`taps_io::proxy_environment`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// `NO_PROXY` entries kept; the rest are ignored with one
/// [`NoProxyIssue::TooManyEntries`] warning. A list this long is a
/// mistake, and matching walks every entry for every connection.
pub const MAX_NO_PROXY_ENTRIES: usize = 256;

/// Warnings kept about one `NO_PROXY` list; further ones are counted
/// ([`NoProxy::warnings_dropped`]), not kept.
pub const MAX_NO_PROXY_WARNINGS: usize = 32;

/// Every variable [`ProxyEnvironment::from_lookup`] asks about, in the
/// order it asks. `HTTP_PROXY` is not among them: see
/// [`ProxyEnvironment`].
pub const PROXY_VARIABLES: [&str; 7] = [
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A snapshot of the proxy variables, and the decision they make for a
/// connection ([`ProxyEnvironment::proxy_for`]).
///
/// The rules, after curl:
///
/// - **The scheme's variable beats `all_proxy`.** *Everything curl*: "If
///   a specific protocol variable one exists, such a one takes
///   precedence." A TLS connection's scheme variable is `https_proxy`, a
///   plain one's `http_proxy`.
/// - **Lower case beats upper case.** curl(1) ENVIRONMENT: "The lower
///   case version has precedence."
/// - **`HTTP_PROXY` in upper case is never read.** curl(1): "http_proxy
///   is an exception as it is only available in lower case." The reason
///   is CGI: a CGI server hands each request header to its script as an
///   `HTTP_`-prefixed environment variable (RFC 3875 §4.1.18), so a
///   client that sends `Proxy: http://attacker/` sets `HTTP_PROXY` in
///   the script's environment, and a script whose HTTP client honoured
///   it would send its own outgoing requests through the attacker's
///   proxy ("httpoxy"). `HTTPS_PROXY` and `ALL_PROXY` cannot be set that
///   way (a header name becomes `HTTP_` plus the name).
/// - **An empty value is unset.** The documentation does not say;
///   curl 7.88.1 reads `https_proxy=` as absent and goes on to
///   `HTTPS_PROXY`, then `all_proxy` (and likewise an empty `no_proxy`
///   gives way to `NO_PROXY`).
/// - **`no_proxy` beats `NO_PROXY`**, and a host it matches gets no
///   proxy at all ([`NoProxy`]).
///
/// Proxy URLs are returned as written; parsing and checking them is the
/// proxy configuration's job. `Debug` never shows the credentials a URL
/// may carry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnvironment {
    https: Option<EnvValue>,
    http: Option<EnvValue>,
    all: Option<EnvValue>,
    no_proxy: NoProxy,
    no_proxy_variable: Option<&'static str>,
}

#[derive(Clone, PartialEq, Eq)]
struct EnvValue {
    variable: &'static str,
    value: String,
}

/// The proxy the environment names for one connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EnvProxy<'a> {
    /// The proxy URL, as the variable holds it (credentials included).
    pub url: &'a str,
    /// The variable it came from, for messages ("uses proxy from
    /// `https_proxy`").
    pub variable: &'static str,
}

impl fmt::Debug for EnvProxy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvProxy")
            .field("url", &Redacted(self.url))
            .field("variable", &self.variable)
            .finish()
    }
}

impl fmt::Display for EnvProxy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", Redacted(self.url), self.variable)
    }
}

impl ProxyEnvironment {
    /// No proxy variable set: every connection goes direct.
    pub fn none() -> Self {
        Self::default()
    }

    /// The snapshot of the variables `get` returns (`None`: unset). It
    /// asks about each of [`PROXY_VARIABLES`] once.
    pub fn from_lookup(mut get: impl FnMut(&str) -> Option<String>) -> Self {
        // An empty value counts as unset (see the type's doc).
        let mut first = |names: &[&'static str]| {
            names.iter().find_map(|&variable| {
                get(variable)
                    .filter(|v| !v.is_empty())
                    .map(|value| EnvValue { variable, value })
            })
        };
        let https = first(&["https_proxy", "HTTPS_PROXY"]);
        // Upper-case HTTP_PROXY is deliberately absent (see the type's doc).
        let http = first(&["http_proxy"]);
        let all = first(&["all_proxy", "ALL_PROXY"]);
        let no_proxy = first(&["no_proxy", "NO_PROXY"]);
        ProxyEnvironment {
            https,
            http,
            all,
            no_proxy_variable: no_proxy.as_ref().map(|v| v.variable),
            no_proxy: no_proxy
                .map(|v| NoProxy::parse(&v.value))
                .unwrap_or_default(),
        }
    }

    /// The proxy for a connection to `host` (a name, or an IPv4 or IPv6
    /// address, with or without brackets), with TLS (`tls`) or without;
    /// `None` to go direct.
    ///
    /// The origin's port plays no part, as in curl: `CURLOPT_NOPROXY(3)`'s
    /// "ample.com" matches "ample.com:80", and the variables name one
    /// proxy per scheme, not per port.
    pub fn proxy_for(&self, host: &str, tls: bool) -> Option<EnvProxy<'_>> {
        if self.no_proxy.matches(host) {
            return None;
        }
        let scheme = if tls { &self.https } else { &self.http };
        scheme.as_ref().or(self.all.as_ref()).map(|v| EnvProxy {
            url: &v.value,
            variable: v.variable,
        })
    }

    /// The `NO_PROXY` list in force (empty when neither variable is set).
    pub fn no_proxy(&self) -> &NoProxy {
        &self.no_proxy
    }

    /// The variable the `NO_PROXY` list came from, if any.
    pub fn no_proxy_variable(&self) -> Option<&'static str> {
        self.no_proxy_variable
    }

    /// Whether no proxy variable is set, so no connection is proxied.
    pub fn is_empty(&self) -> bool {
        self.https.is_none() && self.http.is_none() && self.all.is_none()
    }
}

impl fmt::Debug for ProxyEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<EnvValue>| {
            v.as_ref()
                .map(|v| format!("{}={}", v.variable, Redacted(&v.value)))
        };
        f.debug_struct("ProxyEnvironment")
            .field("https", &show(&self.https))
            .field("http", &show(&self.http))
            .field("all", &show(&self.all))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// A proxy URL with its user information (`user:password@`) replaced by
/// `***@`, so credentials stay out of logs and `Debug` output.
struct Redacted<'a>(&'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        // curl takes a bare `user:pass@host:port` too, without a scheme.
        let start = url.find("://").map_or(0, |i| i + 3);
        let authority_end = url[start..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| start + i);
        match url[start..authority_end].rfind('@') {
            Some(at) => write!(f, "{}***{}", &url[..start], &url[start + at..]),
            None => f.write_str(url),
        }
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A `NO_PROXY` list: the hosts that are reached directly even when a
/// proxy is set. It is also what a command line's `--noproxy LIST`
/// parses into, so both follow the same rules.
///
/// From `CURLOPT_NOPROXY(3)` and *Everything curl*:
///
/// - "a comma separated list of hostnames"; blanks (spaces and tabs)
///   separate entries too, as in curl 7.88.1, and empty entries are
///   skipped.
/// - "The only wildcard available is a single * character, which matches
///   all hosts": only a list that is exactly `*` does; a `*` beside other
///   entries, or inside one, is ignored with a warning, as curl ignores
///   it.
/// - "Each name in this list is matched as either a domain which contains
///   the hostname, or the hostname itself", on label boundaries: "ample.com"
///   matches www.ample.com "but not www.example.com". A leading dot changes
///   nothing ("If a name in the exclusion list starts with a dot (.), then
///   the name matches that entire domain"), one trailing dot of an entry
///   or of the host is ignored, and case does not matter.
/// - "Enter IPv6 numerical addresses in the list of hostnames without
///   enclosing brackets"; a bracketed entry is ignored with a warning.
/// - "IP addresses specified to this option can be provided using CIDR
///   notation: an appended slash and number specifies the number of
///   network bits". Addresses are compared as addresses, never as text,
///   and only with a host that is an address of the same family: the
///   entry `localhost` does not match 127.0.0.1, nor 127.0.0.1 `localhost`.
///   A prefix of 0 is read as the whole address, as curl reads it (a
///   warning says so); a prefix that is not a number, or longer than the
///   family's address, makes the entry ignored with a warning (curl reads
///   `/8x` as 8 and `/abc` as the whole address; taps does not guess).
/// - An entry with a port (`host:8080`, `10.0.0.1:80`) never matches in
///   curl, which compares the whole entry with the host name; it is ignored
///   with a warning that says so, so nobody believes it works.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct NoProxy {
    everything: bool,
    entries: Vec<Entry>,
    warnings: Vec<NoProxyWarning>,
    warnings_dropped: usize,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Entry {
    /// Lower case, without its leading and trailing dot.
    Name(String),
    V4(Ipv4Addr, u8),
    V6(Ipv6Addr, u8),
}

/// A `NO_PROXY` entry that was ignored or read differently than written.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NoProxyWarning {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub issue: NoProxyIssue,
}

/// Why a `NO_PROXY` entry was ignored (all but [`NoProxyIssue::ZeroPrefix`],
/// which is kept).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NoProxyIssue {
    /// `*` is a wildcard only as the whole list.
    Wildcard,
    /// An IPv6 address in brackets.
    Bracketed,
    /// `host:port` or `address:port`.
    Port,
    /// The part before `/` is not an IP address.
    NotAnAddress,
    /// The part after `/` is not a number within the address's length.
    BadPrefix,
    /// `/0`: kept, and compared as the whole address.
    ZeroPrefix,
    /// Nothing is left of the entry once its dots are removed (`.`).
    Empty,
    /// Beyond [`MAX_NO_PROXY_ENTRIES`].
    TooManyEntries,
}

impl fmt::Display for NoProxyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.issue {
            NoProxyIssue::Wildcard => {
                "ignored: `*` disables the proxy only when it is the whole list \
                 (curl: \"The only wildcard available is a single * character\")"
            }
            NoProxyIssue::Bracketed => {
                "ignored: write IPv6 addresses without brackets, as curl's \
                 CURLOPT_NOPROXY says"
            }
            NoProxyIssue::Port => {
                "ignored: an entry with a port matches no host (curl compares \
                 the whole entry with the host name); remove the port"
            }
            NoProxyIssue::NotAnAddress => {
                "ignored: the part before `/` must be an IPv4 or IPv6 address"
            }
            NoProxyIssue::BadPrefix => {
                "ignored: the prefix length after `/` must be a number from 1 \
                 to 32 (IPv4) or 128 (IPv6)"
            }
            NoProxyIssue::ZeroPrefix => {
                "read as the whole address: curl treats a prefix of 0 as no prefix"
            }
            NoProxyIssue::Empty => "ignored: nothing is left of it but dots",
            NoProxyIssue::TooManyEntries => "ignored: the list has too many entries",
        };
        write!(f, "NO_PROXY entry `{}` {why}", self.entry)
    }
}

impl NoProxy {
    /// Parses a `NO_PROXY` list. It never fails: what cannot be used is
    /// ignored and described in [`NoProxy::warnings`].
    pub fn parse(list: &str) -> NoProxy {
        let mut out = NoProxy {
            // curl compares the whole value with "*", so " *" or "*,a" is not it.
            everything: list == "*",
            ..NoProxy::default()
        };
        if out.everything {
            return out;
        }
        for token in list
            .split([',', ' ', '\t'])
            .filter(|token| !token.is_empty())
        {
            if out.entries.len() == MAX_NO_PROXY_ENTRIES {
                out.warn(token, NoProxyIssue::TooManyEntries);
                break;
            }
            match classify(token) {
                Ok((entry, note)) => {
                    if let Some(issue) = note {
                        out.warn(token, issue);
                    }
                    out.entries.push(entry);
                }
                Err(issue) => out.warn(token, issue),
            }
        }
        out
    }

    fn warn(&mut self, entry: &str, issue: NoProxyIssue) {
        if self.warnings.len() < MAX_NO_PROXY_WARNINGS {
            self.warnings.push(NoProxyWarning {
                entry: entry.to_owned(),
                issue,
            });
        } else {
            self.warnings_dropped += 1;
        }
    }

    /// Whether `host` (a name, an IPv4 address, or an IPv6 address with
    /// or without brackets) is to be reached without a proxy.
    pub fn matches(&self, host: &str) -> bool {
        if self.everything {
            return true;
        }
        match Origin::of(host) {
            Some(Origin::Name(name)) => self.entries.iter().any(|e| match e {
                Entry::Name(entry) => name_matches(name, entry),
                _ => false,
            }),
            Some(Origin::V4(addr)) => self.entries.iter().any(|e| match e {
                Entry::V4(net, bits) => prefix_matches(&addr.octets(), &net.octets(), *bits),
                _ => false,
            }),
            Some(Origin::V6(addr)) => self.entries.iter().any(|e| match e {
                Entry::V6(net, bits) => prefix_matches(&addr.octets(), &net.octets(), *bits),
                _ => false,
            }),
            None => false,
        }
    }

    /// Whether the list is exactly `*`, which exempts every host.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// Whether the list exempts nothing.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.entries.is_empty()
    }

    /// The entries ignored or reinterpreted, at most
    /// [`MAX_NO_PROXY_WARNINGS`].
    pub fn warnings(&self) -> &[NoProxyWarning] {
        &self.warnings
    }

    /// Warnings beyond [`MAX_NO_PROXY_WARNINGS`], counted only.
    pub fn warnings_dropped(&self) -> usize {
        self.warnings_dropped
    }
}

/// One entry, or why it is ignored; the second value is a warning about
/// an entry that is kept.
fn classify(token: &str) -> Result<(Entry, Option<NoProxyIssue>), NoProxyIssue> {
    if token.contains('*') {
        return Err(NoProxyIssue::Wildcard);
    }
    if token.starts_with('[') {
        return Err(NoProxyIssue::Bracketed);
    }
    if let Some((addr, bits)) = token.split_once('/') {
        let (entry, max) = match (addr.parse::<Ipv4Addr>(), addr.parse::<Ipv6Addr>()) {
            (Ok(v4), _) => (Entry::V4(v4, 32), 32u8),
            (_, Ok(v6)) => (Entry::V6(v6, 128), 128u8),
            _ => return Err(NoProxyIssue::NotAnAddress),
        };
        // Digits only: `u8::from_str` would take a leading `+`.
        if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NoProxyIssue::BadPrefix);
        }
        let bits: u16 = bits.parse().map_err(|_| NoProxyIssue::BadPrefix)?;
        if bits > u16::from(max) {
            return Err(NoProxyIssue::BadPrefix);
        }
        let (bits, note) = match bits {
            0 => (max, Some(NoProxyIssue::ZeroPrefix)),
            // Bounded by `max` (at most 128) just above.
            b => (b as u8, None),
        };
        let entry = match entry {
            Entry::V4(a, _) => Entry::V4(a, bits),
            Entry::V6(a, _) => Entry::V6(a, bits),
            name => name,
        };
        return Ok((entry, note));
    }
    if let Ok(v4) = token.parse::<Ipv4Addr>() {
        return Ok((Entry::V4(v4, 32), None));
    }
    if let Ok(v6) = token.parse::<Ipv6Addr>() {
        return Ok((Entry::V6(v6, 128), None));
    }
    if token.contains(':') {
        return Err(NoProxyIssue::Port);
    }
    // As curl: one trailing dot, then one leading dot, go.
    let name = token.strip_suffix('.').unwrap_or(token);
    let name = name.strip_prefix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(NoProxyIssue::Empty);
    }
    Ok((Entry::Name(name.to_ascii_lowercase()), None))
}

enum Origin<'a> {
    Name(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl<'a> Origin<'a> {
    fn of(host: &'a str) -> Option<Origin<'a>> {
        if let Some(inner) = host.strip_prefix('[') {
            // A bracketed host must be an IPv6 address.
            let inner = inner.strip_suffix(']')?;
            return inner.parse().ok().map(Origin::V6);
        }
        if let Ok(v4) = host.parse() {
            return Some(Origin::V4(v4));
        }
        if let Ok(v6) = host.parse() {
            return Some(Origin::V6(v6));
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        (!name.is_empty()).then_some(Origin::Name(name))
    }
}

/// `entry` is lower case; `name` may not be.
fn name_matches(name: &str, entry: &str) -> bool {
    let (n, e) = (name.len(), entry.len());
    if n == e {
        return name.eq_ignore_ascii_case(entry);
    }
    // A proper suffix, starting at a label: `www.ample.com`, not `example.com`.
    n > e
        && name.as_bytes()[n - e - 1] == b'.'
        && name
            .get(n - e..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(entry))
}

/// Whether the first `bits` bits of `addr` and `net` agree.
fn prefix_matches(addr: &[u8], net: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits).min(addr.len() * 8);
    let (whole, rest) = (bits / 8, bits % 8);
    if addr[..whole] != net[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (addr[whole] ^ net[whole]) & mask == 0
}

#[cfg(test)]
mod tests;
