//! The host's DNS configuration, parsed from text the adapter reads: never
//! from the file system here.
//!
//! Implemented:
//! - resolv.conf(5) as glibc reads it: `nameserver`, `domain` and `search`
//!   (the last of the two wins), `options ndots: timeout: attempts: rotate
//!   use-vc`, comments starting with `#` or `;`.
//! - hosts(5): address, canonical name, aliases; `#` comments.
//! - RFC 6761 §6.3: `localhost` and names under `.localhost` resolve to
//!   loopback without a query.
//!
//! Problems never fail a parse: the offending line or value is skipped and
//! described in `warnings` (at most [`MAX_WARNINGS`] of them), so a broken
//! file degrades to defaults instead of leaving the host without DNS.
//!
//! Why not the `resolv-conf` crate (0.7.6, hickory's parser): compared on
//! twelve files side by side (a scratch program parsing each with both,
//! 2026-12-04), it fails the whole file where glibc skips one line (a
//! `nameserver 10.0.0.999`, an unknown `options` word, a stray byte), so
//! the host would be left with no servers at all; it keeps `ndots:40`
//! where glibc clamps to 15; and it returns `search .` (systemd-resolved's
//! stub file) as a domain to append. It does keep a link-local server's
//! `%eth0` scope, which this parser drops with a warning (the core would
//! need the interface index; noted as a gap). Speed is no reason either
//! way: 705 ns here against 600 ns for the typical four-line file (release
//! build, 200 000 parses). Its errors are the crate's own types, and the
//! core would gain a dependency for a worse fit.

use core::time::Duration;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::dns::wire::{MAX_ADDRESSES_PER_ANSWER, host_name_from_text};
use crate::endpoint::HostName;

/// Nameservers kept from resolv.conf. glibc stops at 3 (MAXNS), but Happy
/// Eyeballs v3 ("Handling Multiple DNS Server Addresses") sets no limit, so
/// more are kept, up to a bound that keeps memory and retry work finite.
pub const MAX_NAMESERVERS: usize = 16;

/// Search domains kept from resolv.conf (glibc ≥ 2.26 has no limit; this
/// bound keeps the number of queries per lookup finite).
pub const MAX_SEARCH_DOMAINS: usize = 16;

/// Warnings kept per parse; one more line says how many were dropped, so a
/// garbage file cannot produce unbounded output.
pub const MAX_WARNINGS: usize = 32;

/// glibc's RES_MAXNDOTS.
const MAX_NDOTS: u8 = 15;
/// glibc's RES_MAXRETRANS, in seconds.
const MAX_TIMEOUT_SECS: u64 = 30;
/// glibc's RES_MAXRETRY.
const MAX_ATTEMPTS: u8 = 5;

const DNS_PORT: u16 = 53;

/// Collects warnings up to [`MAX_WARNINGS`], counting the rest.
#[derive(Default)]
struct Warnings {
    list: Vec<String>,
    dropped: usize,
}

impl Warnings {
    fn push(&mut self, line_no: usize, text: impl FnOnce() -> String) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(format!("line {line_no}: {}", text()));
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list
                .push(format!("{} more warnings suppressed", self.dropped));
        }
        self.list
    }
}

/// Splits a line into tokens, dropping everything from a token that starts a
/// comment. glibc only honours comment characters in the first column, but a
/// trailing `# note` is common in hand-edited files and never meant as data.
fn tokens<'a>(line: &'a str, comment: &'a [char]) -> impl Iterator<Item = &'a str> {
    line.split_ascii_whitespace()
        .take_while(move |t| !t.starts_with(comment))
}

/// resolv.conf(5) settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// Servers in file order, port 53, at most [`MAX_NAMESERVERS`]. A numeric
    /// IPv6 zone (`fe80::1%2`) becomes the scope id; a named zone
    /// (`%eth0`) cannot be resolved without I/O, so it is dropped with a
    /// warning. Without any valid `nameserver` line this is `127.0.0.1:53`,
    /// glibc's default.
    pub nameservers: Vec<SocketAddr>,
    /// Search list from the last `domain` or `search` line, at most
    /// [`MAX_SEARCH_DOMAINS`]. Empty when neither is present: glibc would
    /// then use the domain of the host name, which needs a system call the
    /// adapter may add.
    pub search: Vec<HostName>,
    /// `options ndots:n`: default 1, capped at 15.
    pub ndots: u8,
    /// `options timeout:n` seconds per try: default 5, 1 to 30.
    pub timeout: Duration,
    /// `options attempts:n` rounds over the servers: default 2, 1 to 5.
    pub attempts: u8,
    /// `options rotate`: spread queries over the servers round-robin.
    pub rotate: bool,
    /// `options use-vc`: query over TCP.
    pub use_tcp: bool,
    /// What was skipped and why.
    pub warnings: Vec<String>,
}

impl Default for ResolvConf {
    /// The configuration of an empty file.
    fn default() -> Self {
        ResolvConf {
            nameservers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DNS_PORT)],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
            use_tcp: false,
            warnings: Vec::new(),
        }
    }
}

/// Options glibc (or other resolvers) accept that do not change anything
/// this library does; they are skipped without a warning.
const QUIETLY_IGNORED_OPTIONS: &[&str] = &[
    "debug",
    "edns0",
    "inet6",
    "ip6-bytestring",
    "ip6-dotint",
    "no-ip6-dotint",
    "insecure1",
    "insecure2",
    "no-check-names",
    "no-reload",
    "no-tld-query",
    "single-request",
    "single-request-reopen",
    "trust-ad",
];

/// Parses resolv.conf(5) text with glibc's semantics (see [`ResolvConf`]).
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf {
        nameservers: Vec::new(),
        ..ResolvConf::default()
    };
    let mut warnings = Warnings::default();
    let mut servers_dropped = 0usize;

    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let mut words = tokens(line, &['#', ';']);
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword {
            "nameserver" => {
                let Some(addr) = words.next() else {
                    warnings.push(line_no, || "nameserver without an address".into());
                    continue;
                };
                let Some(server) = parse_nameserver(addr, line_no, &mut warnings) else {
                    continue;
                };
                if conf.nameservers.len() < MAX_NAMESERVERS {
                    conf.nameservers.push(server);
                } else {
                    servers_dropped += 1;
                }
            }
            "domain" | "search" => {
                // glibc: whichever of the two comes last replaces the list.
                conf.search.clear();
                let limit = if keyword == "domain" {
                    1
                } else {
                    MAX_SEARCH_DOMAINS
                };
                for (i, domain) in words.enumerate() {
                    if i >= limit {
                        warnings.push(line_no, || {
                            format!("{keyword}: extra entry {domain:?} ignored")
                        });
                        continue;
                    }
                    // systemd-resolved writes `search .` for "no search list".
                    if domain == "." {
                        continue;
                    }
                    match host_name_from_text(domain) {
                        Some(name) if !conf.search.contains(&name) => conf.search.push(name),
                        Some(_) => {}
                        None => warnings
                            .push(line_no, || format!("{keyword}: invalid domain {domain:?}")),
                    }
                }
            }
            "options" => {
                for option in words {
                    parse_option(&mut conf, option, line_no, &mut warnings);
                }
            }
            "sortlist" | "lookup" | "family" => {
                warnings.push(line_no, || format!("{keyword} is not supported, ignored"));
            }
            other => warnings.push(line_no, || format!("unknown keyword {other:?}")),
        }
    }

    if servers_dropped > 0 {
        warnings.push(0, || {
            format!("{servers_dropped} nameservers beyond the first {MAX_NAMESERVERS} ignored")
        });
    }
    if conf.nameservers.is_empty() {
        conf.nameservers = ResolvConf::default().nameservers;
    }
    conf.warnings = warnings.finish();
    conf
}

fn parse_nameserver(text: &str, line_no: usize, warnings: &mut Warnings) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DNS_PORT));
    }
    if let Some((ip, zone)) = text.split_once('%')
        && let Ok(ip) = ip.parse::<Ipv6Addr>()
    {
        let scope_id = match zone.parse::<u32>() {
            Ok(id) => id,
            Err(_) => {
                warnings.push(line_no, || {
                    format!("nameserver {text}: zone {zone:?} is not numeric, dropped")
                });
                0
            }
        };
        return Some(SocketAddr::V6(SocketAddrV6::new(ip, DNS_PORT, 0, scope_id)));
    }
    warnings.push(line_no, || {
        format!("nameserver {text:?} is not an IP address")
    });
    None
}

fn parse_option(conf: &mut ResolvConf, option: &str, line_no: usize, warnings: &mut Warnings) {
    let (key, value) = match option.split_once(':') {
        Some((k, v)) => (k, Some(v)),
        None => (option, None),
    };
    let number = |warnings: &mut Warnings| -> Option<u64> {
        // Saturate huge numbers instead of rejecting them: they only ask for
        // "as much as allowed".
        match value.map(|v| (v, v.parse::<u64>())) {
            Some((_, Ok(n))) => Some(n),
            Some((v, Err(_))) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Some(u64::MAX)
            }
            _ => {
                warnings.push(line_no, || format!("option {option:?} needs a number"));
                None
            }
        }
    };
    match key {
        "ndots" => {
            if let Some(n) = number(warnings) {
                conf.ndots = u8::try_from(n).unwrap_or(MAX_NDOTS).min(MAX_NDOTS);
            }
        }
        "timeout" => {
            if let Some(n) = number(warnings) {
                conf.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS));
            }
        }
        "attempts" => {
            if let Some(n) = number(warnings) {
                conf.attempts = u8::try_from(n)
                    .unwrap_or(MAX_ATTEMPTS)
                    .clamp(1, MAX_ATTEMPTS);
            }
        }
        "rotate" if value.is_none() => conf.rotate = true,
        "use-vc" | "usevc" if value.is_none() => conf.use_tcp = true,
        _ if QUIETLY_IGNORED_OPTIONS.contains(&option) => {}
        _ => warnings.push(line_no, || format!("unknown option {option:?}")),
    }
}

/// The names a lookup of `name` asks about, in order, as glibc's
/// `res_search` tries them (resolv.conf(5) `search`, `domain`, `ndots`):
///
/// - a name written with a trailing dot is absolute: only itself;
/// - a name with at least `ndots` dots: itself first, then each search
///   domain appended;
/// - a name with fewer dots: each search domain appended first, then
///   itself last.
///
/// A combined name longer than RFC 1035 allows is left out, as glibc's
/// `res_querydomain` refuses it. At most `1 + MAX_SEARCH_DOMAINS` names.
pub fn search_names(name: &HostName, search: &[HostName], ndots: u8) -> Vec<HostName> {
    let expanded = || {
        search
            .iter()
            .take(MAX_SEARCH_DOMAINS)
            .filter_map(|domain| HostName::new(&format!("{name}.{domain}")).ok())
    };
    if name.is_absolute() {
        return vec![name.clone()];
    }
    let mut names = Vec::with_capacity(1 + search.len().min(MAX_SEARCH_DOMAINS));
    if name.dots() >= usize::from(ndots) {
        names.push(name.clone());
        names.extend(expanded());
    } else {
        names.extend(expanded());
        names.push(name.clone());
    }
    names
}

/// hosts(5) entries: lowercase name → addresses in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostsFile {
    entries: BTreeMap<Box<str>, Vec<IpAddr>>,
    /// What was skipped and why.
    pub warnings: Vec<String>,
}

impl HostsFile {
    /// Addresses for `name` (IPv4 and IPv6 in file order, each once, at most
    /// [`MAX_ADDRESSES_PER_ANSWER`]); empty when the name is not listed.
    pub fn lookup(&self, name: &HostName) -> &[IpAddr] {
        self.entries.get(name.as_str()).map_or(&[], Vec::as_slice)
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No names at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Parses hosts(5) text: `address canonical-name [aliases...]`, `#` comments.
///
/// Names are case-folded; a name listed again gets the new address appended
/// unless already present. Addresses with an IPv6 zone are skipped (an
/// `IpAddr` cannot carry one), as are invalid names, each with a warning.
pub fn parse_hosts(text: &str) -> HostsFile {
    let mut hosts = HostsFile::default();
    let mut warnings = Warnings::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let mut words = tokens(line, &['#']);
        let Some(addr) = words.next() else { continue };
        let Ok(ip) = addr.parse::<IpAddr>() else {
            warnings.push(line_no, || format!("{addr:?} is not an IP address"));
            continue;
        };
        let mut any_name = false;
        for word in words {
            let Some(name) = host_name_from_text(word) else {
                warnings.push(line_no, || format!("invalid host name {word:?}"));
                continue;
            };
            any_name = true;
            let addrs = hosts.entries.entry(name.as_str().into()).or_default();
            if addrs.contains(&ip) {
                continue;
            }
            if addrs.len() < MAX_ADDRESSES_PER_ANSWER {
                addrs.push(ip);
            } else {
                warnings.push(line_no, || {
                    format!("too many addresses for {word}, {ip} ignored")
                });
            }
        }
        if !any_name {
            warnings.push(line_no, || format!("no host name for {ip}"));
        }
    }
    hosts.warnings = warnings.finish();
    hosts
}

static LOCALHOST: [IpAddr; 2] = [
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::LOCALHOST),
];

/// RFC 6761 §6.3: `localhost` and every name under `.localhost` are loopback
/// and must not be sent to DNS servers; returns `[::1, 127.0.0.1]` for them.
pub fn localhost_addresses(name: &HostName) -> Option<&'static [IpAddr]> {
    let text = name.as_str();
    let text = text.strip_suffix('.').unwrap_or(text);
    let is_localhost = text.eq_ignore_ascii_case("localhost")
        || text
            .len()
            .checked_sub(".localhost".len())
            .and_then(|at| text.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"));
    is_localhost.then_some(&LOCALHOST[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> HostName {
        HostName::new(s).expect("test name")
    }

    fn ns(s: &str) -> SocketAddr {
        s.parse().expect("test socket address")
    }

    // resolv.conf(5) "nameserver", with IPv6 zones.
    #[test]
    fn resolv_conf_nameservers() {
        let conf = parse_resolv_conf(
            "# generated\n\
             nameserver 192.0.2.53\n\
             nameserver 2001:db8::53  # primary v6\n\
             nameserver fe80::1%3\n\
             nameserver fe80::2%eth0\n\
             nameserver not-an-ip\n\
             nameserver\n",
        );
        assert_eq!(
            conf.nameservers,
            [
                ns("192.0.2.53:53"),
                ns("[2001:db8::53]:53"),
                SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().expect("ip"), 53, 0, 3)),
                ns("[fe80::2]:53"),
            ]
        );
        assert_eq!(conf.warnings.len(), 3, "{:?}", conf.warnings);
        assert!(conf.warnings[0].contains("eth0"));
    }

    // glibc default when no nameserver is configured; the count bound.
    #[test]
    fn resolv_conf_defaults_and_limits() {
        let conf = parse_resolv_conf("");
        assert_eq!(conf, ResolvConf::default());
        assert_eq!(conf.nameservers, [ns("127.0.0.1:53")]);
        let many: String = (1..=20)
            .map(|i| format!("nameserver 192.0.2.{i}\n"))
            .collect();
        let conf = parse_resolv_conf(&many);
        assert_eq!(conf.nameservers.len(), MAX_NAMESERVERS);
        assert_eq!(conf.warnings.len(), 1);
    }

    // resolv.conf(5), ndots: "Sets a threshold for the number of dots which
    // must appear in a name given to res_query(3) (see resolver(3)) before
    // an initial absolute query will be made. The default for n is 1,
    // meaning that if there are any dots in a name, the name will be tried
    // first as an absolute name before any search list elements are
    // appended to it." search: "Resolver queries having fewer than ndots
    // dots (default is 1) in them will be attempted using each component
    // of the search path in turn until a match is found." A trailing dot
    // makes a name absolute (no search), as glibc's res_search does.
    #[test]
    fn search_names_follow_glibc_order() {
        let cases: &[(&str, &str, u8, &[&str])] = &[
            // (name, search list, ndots, names asked in order)
            (
                "www",
                "corp.example lab.example",
                1,
                &["www.corp.example", "www.lab.example", "www"],
            ),
            (
                "www.dev",
                "corp.example",
                1,
                &["www.dev", "www.dev.corp.example"],
            ),
            (
                "www.dev",
                "corp.example",
                2,
                &["www.dev.corp.example", "www.dev"],
            ),
            ("a.b.c", "corp.example", 3, &["a.b.c.corp.example", "a.b.c"]),
            ("a.b.c", "corp.example", 2, &["a.b.c", "a.b.c.corp.example"]),
            ("www.", "corp.example", 1, &["www"]),
            ("www.dev.", "corp.example", 5, &["www.dev"]),
            ("www", "", 1, &["www"]),
            ("www.dev", "", 4, &["www.dev"]),
            // ndots:0: every name is tried as is first.
            ("www", "corp.example", 0, &["www", "www.corp.example"]),
        ];
        for (name_text, search, ndots, want) in cases {
            let search: Vec<HostName> = search.split_whitespace().map(name).collect();
            let got = search_names(&name(name_text), &search, *ndots);
            let got: Vec<&str> = got.iter().map(HostName::as_str).collect();
            assert_eq!(
                &got, want,
                "{name_text:?} with search {search:?}, ndots {ndots}"
            );
        }
    }

    // RFC 1035 §2.3.4 "names - 255 octets or less": a search domain that
    // would make the name too long is skipped, not an error; the list is
    // bounded by MAX_SEARCH_DOMAINS.
    #[test]
    fn search_names_skip_overlong_and_stay_bounded() {
        let long = format!("{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63));
        let search = [name(&long), name("ok.example")];
        let got = search_names(&name(&"d".repeat(62)), &search, 1);
        let label = "d".repeat(62);
        assert_eq!(got, [name(&format!("{label}.ok.example")), name(&label)]);
        let many: Vec<HostName> = (0..40).map(|i| name(&format!("s{i}.example"))).collect();
        assert_eq!(
            search_names(&name("x"), &many, 1).len(),
            1 + MAX_SEARCH_DOMAINS
        );
    }

    // resolv.conf(5): "domain" and "search" override each other, last wins.
    #[test]
    fn resolv_conf_search_and_domain() {
        let conf =
            parse_resolv_conf("search a.example B.Example. bad..name\ndomain corp.example\n");
        assert_eq!(conf.search, [name("corp.example")]);
        let conf =
            parse_resolv_conf("domain corp.example\nsearch a.example B.Example. bad..name\n");
        assert_eq!(conf.search, [name("a.example"), name("b.example")]);
        assert_eq!(conf.warnings.len(), 1);
        let conf = parse_resolv_conf("search .\n");
        assert!(conf.search.is_empty() && conf.warnings.is_empty());
    }

    // resolv.conf(5) "options", with glibc's caps.
    #[test]
    fn resolv_conf_options() {
        let conf = parse_resolv_conf(
            "options ndots:3 timeout:2 attempts:4 rotate use-vc edns0 trust-ad\n",
        );
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts),
            (3, Duration::from_secs(2), 4)
        );
        assert!(conf.rotate && conf.use_tcp);
        assert!(conf.warnings.is_empty(), "{:?}", conf.warnings);
        let conf = parse_resolv_conf("options ndots:99 timeout:999999999999999999999 attempts:0\n");
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts),
            (15, Duration::from_secs(30), 1)
        );
        let conf = parse_resolv_conf("options ndots:x timeout frobnicate\n");
        assert_eq!((conf.ndots, conf.timeout), (1, Duration::from_secs(5)));
        assert_eq!(conf.warnings.len(), 3);
    }

    // Garbage never fails the parse; comments with ';' and '#'.
    #[test]
    fn resolv_conf_garbage() {
        let garbage: String = (0..100).map(|i| format!("junk{i} here\n")).collect();
        let conf = parse_resolv_conf(&format!(
            "; comment\n# comment\n\n{garbage}nameserver ::1\n\0\u{fffd}\n"
        ));
        assert_eq!(conf.nameservers, [ns("[::1]:53")]);
        assert_eq!(conf.warnings.len(), MAX_WARNINGS + 1);
        assert!(conf.warnings[MAX_WARNINGS].contains("suppressed"));
    }

    // hosts(5): aliases, comments, IPv6, bad lines, duplicates once.
    #[test]
    fn hosts_file() {
        let hosts = parse_hosts(
            "127.0.0.1 localhost\n\
             ::1 localhost ip6-localhost  # loopback\n\
             # 10.0.0.1 commented.example\n\
             192.0.2.10  Server.Example server\talias.example\n\
             2001:db8::10 server.example\n\
             192.0.2.10 server.example\n\
             192.0.2.11\n\
             banana server.example\n\
             fe80::1%eth0 link.example\n\
             192.0.2.12 bad_name! ok.example\n",
        );
        assert_eq!(
            hosts.lookup(&name("localhost")),
            [
                "127.0.0.1".parse::<IpAddr>().expect("ip"),
                "::1".parse().expect("ip")
            ]
        );
        assert_eq!(
            hosts.lookup(&name("server.example")),
            [
                "192.0.2.10".parse::<IpAddr>().expect("ip"),
                "2001:db8::10".parse().expect("ip")
            ]
        );
        assert_eq!(
            hosts.lookup(&name("server")),
            ["192.0.2.10".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(hosts.lookup(&name("alias.example")).len(), 1);
        assert_eq!(hosts.lookup(&name("ok.example")).len(), 1);
        assert!(hosts.lookup(&name("commented.example")).is_empty());
        assert!(hosts.lookup(&name("link.example")).is_empty());
        assert_eq!(hosts.len(), 6);
        assert_eq!(hosts.warnings.len(), 4, "{:?}", hosts.warnings);
    }

    // RFC 6761 §6.3.
    #[test]
    fn localhost() {
        let want: &[IpAddr] = &[
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ];
        assert_eq!(localhost_addresses(&name("localhost")), Some(want));
        assert_eq!(localhost_addresses(&name("app.localhost")), Some(want));
        assert_eq!(localhost_addresses(&name("a.b.localhost")), Some(want));
        assert_eq!(localhost_addresses(&name("localhost.example")), None);
        assert_eq!(localhost_addresses(&name("notlocalhost")), None);
        assert_eq!(localhost_addresses(&name("example.com")), None);
    }
}
