//! Table tests: each row quotes the sentence of curl's documentation it
//! checks (curl(1) ENVIRONMENT, `CURLOPT_NOPROXY(3)`, *Everything curl*'s
//! "Proxy environment variables"), or names the curl 7.88.1 run it
//! reproduces where the documentation is silent.

use super::*;
use proptest::prelude::*;

const NOPROXY_DOC: &str = "CURLOPT_NOPROXY(3)";

/// (NO_PROXY list, host, exempt?, what it checks).
const NO_PROXY_ROWS: &[(&str, &str, bool, &str)] = &[
    // "Each name in this list is matched as either a domain which contains
    // the hostname, or the hostname itself. For example, "ample.com" would
    // match ample.com, ample.com:80, and www.ample.com, but not
    // www.example.com or ample.com.org."
    ("ample.com", "ample.com", true, "the hostname itself"),
    (
        "ample.com",
        "www.ample.com",
        true,
        "a domain which contains the hostname",
    ),
    ("ample.com", "a.b.ample.com", true, "a domain, any depth"),
    (
        "ample.com",
        "www.example.com",
        false,
        "but not www.example.com",
    ),
    ("ample.com", "example.com", false, "no label boundary"),
    ("ample.com", "ample.com.org", false, "but not ample.com.org"),
    (
        "www.ample.com",
        "ample.com",
        false,
        "the entry is longer than the host",
    ),
    // "If a name in the exclusion list starts with a dot (.), then the name
    // matches that entire domain. For example .example.com matches both
    // www.example.com and home.example.com but not nonexample.com."
    (
        ".example.com",
        "www.example.com",
        true,
        "leading dot: www.example.com",
    ),
    (
        ".example.com",
        "home.example.com",
        true,
        "leading dot: home.example.com",
    ),
    (
        ".example.com",
        "nonexample.com",
        false,
        "leading dot: but not nonexample.com",
    ),
    (
        ".example.com",
        "example.com",
        true,
        "curl 7.88.1: the dot is dropped, so the domain itself too",
    ),
    // "The only wildcard available is a single * character, which matches
    // all hosts, and effectively disables the proxy."
    ("*", "anything.test", true, "a single * matches all hosts"),
    ("*", "192.0.2.1", true, "a single * matches addresses too"),
    ("*", "[2001:db8::1]", true, "a single * matches IPv6 too"),
    (
        "*,other.test",
        "anything.test",
        false,
        "curl 7.88.1: * beside other entries is no wildcard",
    ),
    (
        "other.test,*",
        "anything.test",
        false,
        "curl 7.88.1: * last is no wildcard either",
    ),
    (
        " *",
        "anything.test",
        false,
        "curl 7.88.1: only the exact value * is the wildcard",
    ),
    (
        "*.test",
        "foo.test",
        false,
        "curl 7.88.1: * inside an entry is no wildcard",
    ),
    // "The string consists of a comma separated list of hostnames"; blanks
    // separate too (curl 7.88.1: `no_proxy='example.com foo.test'`).
    ("a.test,b.test", "b.test", true, "comma separated list"),
    (
        "a.test b.test",
        "b.test",
        true,
        "curl 7.88.1: a space separates",
    ),
    (
        "a.test\tb.test",
        "b.test",
        true,
        "curl 7.88.1: a tab separates",
    ),
    (
        " , a.test ,, b.test , ",
        "b.test",
        true,
        "empty entries and blanks around commas are skipped",
    ),
    (
        "a.test;b.test",
        "b.test",
        false,
        "curl 7.88.1: `;` is no separator",
    ),
    // Trailing dots: curl 7.88.1 matches `no_proxy=FOO.test.` for
    // http://foo.TEST./ and `no_proxy=test` for http://foo.test./.
    (
        "FOO.test.",
        "foo.TEST.",
        true,
        "one trailing dot of entry and host is ignored",
    ),
    (
        "test",
        "foo.test.",
        true,
        "a fully qualified host matches its domain",
    ),
    (
        "foo.test.",
        "foo.test",
        true,
        "a fully qualified entry matches the plain host",
    ),
    (
        ".",
        "foo.test",
        false,
        "an entry of a dot alone matches nothing",
    ),
    // Case: curl compares names without regard to case.
    (
        "EXAMPLE.com",
        "www.Example.COM",
        true,
        "case does not matter",
    ),
    // "Enter IPv6 numerical addresses in the list of hostnames without
    // enclosing brackets: "example.com,::1,localhost""
    (
        "example.com,::1,localhost",
        "[::1]",
        true,
        "IPv6 without brackets, host with brackets",
    ),
    (
        "example.com,::1,localhost",
        "::1",
        true,
        "IPv6 without brackets, host without",
    ),
    (
        "0:0::1",
        "::1",
        true,
        "IPv6 compared as addresses, not text",
    ),
    (
        "[::1]",
        "[::1]",
        false,
        "a bracketed entry is ignored, as curl 7.88.1 does",
    ),
    (
        "example.com,::1,localhost",
        "localhost",
        true,
        "names beside addresses",
    ),
    (
        "localhost",
        "127.0.0.1",
        false,
        "curl 7.88.1: a name never matches an address",
    ),
    ("127.0.0.1", "localhost", false, "nor an address a name"),
    (
        "127.1",
        "127.0.0.1",
        false,
        "curl 7.88.1: only the dotted quad is an IPv4 address",
    ),
    (
        "::ffff:127.0.0.1",
        "127.0.0.1",
        false,
        "curl 7.88.1: families are not mixed",
    ),
    // "IP addresses specified to this option can be provided using CIDR
    // notation: an appended slash and number specifies the number of
    // "network bits" out of the address to use in the comparison. For
    // example "192.168.0.0/16" would match all addresses starting with
    // "192.168"."
    (
        "192.168.0.0/16",
        "192.168.200.7",
        true,
        "192.168.0.0/16 matches addresses starting with 192.168",
    ),
    ("192.168.0.0/16", "192.169.0.1", false, "and no other"),
    (
        "10.0.0.0/9",
        "10.127.255.255",
        true,
        "a prefix that is not a whole byte",
    ),
    (
        "10.0.0.0/9",
        "10.128.0.0",
        false,
        "a prefix that is not a whole byte, outside",
    ),
    (
        "192.0.2.1/32",
        "192.0.2.1",
        true,
        "/32 is the address itself",
    ),
    (
        "192.0.2.1",
        "192.0.2.2",
        false,
        "an address without prefix is the address itself",
    ),
    (
        "2001:db8::/32",
        "[2001:db8:ffff::1]",
        true,
        "IPv6 in CIDR notation",
    ),
    (
        "2001:db8::/33",
        "2001:db8:8000::1",
        false,
        "IPv6 outside a prefix that is not a whole byte",
    ),
    (
        "2001:db8::/33",
        "2001:db8:7fff::1",
        true,
        "IPv6 inside a prefix that is not a whole byte",
    ),
    ("::1/128", "::1", true, "IPv6 /128"),
    // curl 7.88.1: `no_proxy=10.0.0.0/0` proxies http://10.0.0.1/: a
    // prefix of 0 counts as no prefix, the whole address.
    (
        "10.0.0.0/0",
        "10.0.0.1",
        false,
        "curl 7.88.1: /0 is the whole address",
    ),
    (
        "10.0.0.0/0",
        "10.0.0.0",
        true,
        "curl 7.88.1: /0 still matches the address itself",
    ),
    (
        "::/0",
        "::1",
        false,
        "curl 7.88.1: /0 is the whole address, IPv6",
    ),
    // Invalid prefixes: ignored (curl would read /8x as /8; taps does not guess).
    (
        "127.0.0.0/8x",
        "127.0.0.1",
        false,
        "a prefix that is not a number is ignored",
    ),
    (
        "127.0.0.0/33",
        "127.0.0.1",
        false,
        "curl 7.88.1: /33 on IPv4 matches nothing",
    ),
    ("::1/129", "::1", false, "/129 on IPv6 matches nothing"),
    (
        "127.0.0.0/-8",
        "127.0.0.1",
        false,
        "curl 7.88.1: a negative prefix matches nothing",
    ),
    (
        "127.0.0.0/+8",
        "127.0.0.1",
        false,
        "a signed prefix is ignored",
    ),
    (
        "example.com/8",
        "example.com",
        false,
        "a name with a prefix is ignored",
    ),
    // Ports: curl 7.88.1 proxies http://foo.test:8080/ with
    // `no_proxy=foo.test:8080`, and http://127.0.0.1:1/ with
    // `no_proxy=127.0.0.1:1`.
    (
        "foo.test:8080",
        "foo.test",
        false,
        "curl 7.88.1: an entry with a port never matches",
    ),
    (
        "127.0.0.1:1",
        "127.0.0.1",
        false,
        "curl 7.88.1: an address with a port never matches",
    ),
    (
        "foo.test:8080,bar.test",
        "bar.test",
        true,
        "an entry with a port spoils no other",
    ),
    // Empty and odd inputs.
    ("", "foo.test", false, "an empty list exempts nothing"),
    ("foo.test", "", false, "an empty host is matched by nothing"),
    (
        "foo.test",
        ".",
        false,
        "a host of a dot is matched by nothing",
    ),
    ("foo.test", "[::1", false, "an unclosed bracket is no host"),
    (
        "foo.test",
        "[foo.test]",
        false,
        "brackets around a name are no host",
    ),
    (
        "é.test",
        "x.É.test",
        false,
        "only ASCII case folds, as in curl",
    ),
    ("é.test", "x.é.test", true, "other bytes compare exactly"),
];

#[test]
fn no_proxy_rows() {
    for &(list, host, want, what) in NO_PROXY_ROWS {
        let got = NoProxy::parse(list).matches(host);
        assert_eq!(
            got, want,
            "{NOPROXY_DOC}: {what}: NO_PROXY={list:?} host {host:?}"
        );
    }
}

/// (NO_PROXY list, the warnings it gives, in order).
const WARNING_ROWS: &[(&str, &[NoProxyIssue])] = &[
    ("a.test,b.test,10.0.0.0/8,::1", &[]),
    ("*,a.test", &[NoProxyIssue::Wildcard]),
    ("*.test", &[NoProxyIssue::Wildcard]),
    ("[::1]", &[NoProxyIssue::Bracketed]),
    ("foo.test:80", &[NoProxyIssue::Port]),
    ("10.0.0.1:80", &[NoProxyIssue::Port]),
    ("foo.test/8", &[NoProxyIssue::NotAnAddress]),
    ("10.0.0.0/", &[NoProxyIssue::BadPrefix]),
    ("10.0.0.0/8x", &[NoProxyIssue::BadPrefix]),
    ("10.0.0.0/33", &[NoProxyIssue::BadPrefix]),
    ("::/129", &[NoProxyIssue::BadPrefix]),
    ("10.0.0.0/0008", &[NoProxyIssue::BadPrefix]),
    ("10.0.0.0/99999999999999999999", &[NoProxyIssue::BadPrefix]),
    ("10.0.0.0/0", &[NoProxyIssue::ZeroPrefix]),
    (".,..", &[NoProxyIssue::Empty, NoProxyIssue::Empty]),
    (
        "*.a,[::1],b:1",
        &[
            NoProxyIssue::Wildcard,
            NoProxyIssue::Bracketed,
            NoProxyIssue::Port,
        ],
    ),
];

#[test]
fn ignored_entries_are_named_with_a_reason() {
    for &(list, want) in WARNING_ROWS {
        let parsed = NoProxy::parse(list);
        let got: Vec<NoProxyIssue> = parsed.warnings().iter().map(|w| w.issue).collect();
        assert_eq!(got, want, "NO_PROXY={list:?}");
        for w in parsed.warnings() {
            let text = w.to_string();
            assert!(text.contains(&format!("`{}`", w.entry)), "{text}");
            assert!(text.starts_with("NO_PROXY entry"), "{text}");
        }
    }
    let parsed = NoProxy::parse("foo.test:8080");
    let w = &parsed.warnings()[0];
    assert_eq!(
        w.to_string(),
        "NO_PROXY entry `foo.test:8080` ignored: an entry with a port matches no host \
         (curl compares the whole entry with the host name); remove the port"
    );
}

#[test]
fn long_lists_are_bounded() {
    let list: Vec<String> = (0..MAX_NO_PROXY_ENTRIES + 10)
        .map(|i| format!("h{i}.test"))
        .collect();
    let parsed = NoProxy::parse(&list.join(","));
    assert!(parsed.matches(&format!("h{}.test", MAX_NO_PROXY_ENTRIES - 1)));
    assert!(!parsed.matches(&format!("h{MAX_NO_PROXY_ENTRIES}.test")));
    assert_eq!(
        parsed.warnings(),
        &[NoProxyWarning {
            entry: format!("h{MAX_NO_PROXY_ENTRIES}.test"),
            issue: NoProxyIssue::TooManyEntries
        }]
    );
    let bad = vec!["x:1"; MAX_NO_PROXY_WARNINGS + 5].join(",");
    let parsed = NoProxy::parse(&bad);
    assert_eq!(parsed.warnings().len(), MAX_NO_PROXY_WARNINGS);
    assert_eq!(parsed.warnings_dropped(), 5);
}

const P1: &str = "http://p1.test:3128";
const P2: &str = "http://p2.test:3128";
const P3: &str = "socks5h://p3.test:1080";

/// (variables set, TLS?, expected (variable, URL), what it checks).
type EnvRow = (
    &'static [(&'static str, &'static str)],
    bool,
    Option<(&'static str, &'static str)>,
    &'static str,
);

const ENV_ROWS: &[EnvRow] = &[
    // Everything curl: "If a specific protocol variable one exists, such a
    // one takes precedence."
    (
        &[("https_proxy", P1), ("all_proxy", P2)],
        true,
        Some(("https_proxy", P1)),
        "scheme variable beats all_proxy",
    ),
    (
        &[("HTTPS_PROXY", P1), ("all_proxy", P2)],
        true,
        Some(("HTTPS_PROXY", P1)),
        "upper-case scheme variable beats lower-case all_proxy",
    ),
    (
        &[("http_proxy", P1), ("ALL_PROXY", P2)],
        false,
        Some(("http_proxy", P1)),
        "http_proxy beats ALL_PROXY",
    ),
    // "To set a single variable that controls all protocols, the ALL_PROXY exists."
    (
        &[("ALL_PROXY", P3)],
        true,
        Some(("ALL_PROXY", P3)),
        "ALL_PROXY for TLS",
    ),
    (
        &[("ALL_PROXY", P3)],
        false,
        Some(("ALL_PROXY", P3)),
        "ALL_PROXY without TLS",
    ),
    // The scheme decides which variable: TLS reads https_proxy, plain http_proxy.
    (
        &[("https_proxy", P1)],
        false,
        None,
        "https_proxy is not for plain connections",
    ),
    (
        &[("http_proxy", P1)],
        true,
        None,
        "http_proxy is not for TLS connections",
    ),
    (
        &[("http_proxy", P1), ("all_proxy", P2)],
        true,
        Some(("all_proxy", P2)),
        "TLS without https_proxy falls to all_proxy",
    ),
    // curl(1) ENVIRONMENT: "The lower case version has precedence."
    (
        &[("https_proxy", P1), ("HTTPS_PROXY", P2)],
        true,
        Some(("https_proxy", P1)),
        "lower-case https_proxy beats upper",
    ),
    (
        &[("all_proxy", P1), ("ALL_PROXY", P2)],
        false,
        Some(("all_proxy", P1)),
        "lower-case all_proxy beats upper",
    ),
    // curl(1): "http_proxy is an exception as it is only available in lower case."
    (
        &[("HTTP_PROXY", P1)],
        false,
        None,
        "HTTP_PROXY is never read (CGI)",
    ),
    (
        &[("HTTP_PROXY", P1), ("ALL_PROXY", P2)],
        false,
        Some(("ALL_PROXY", P2)),
        "HTTP_PROXY does not stop ALL_PROXY",
    ),
    // Empty is unset: curl 7.88.1 with `https_proxy= HTTPS_PROXY=…` uses HTTPS_PROXY.
    (
        &[("https_proxy", ""), ("HTTPS_PROXY", P2)],
        true,
        Some(("HTTPS_PROXY", P2)),
        "an empty lower-case value gives way to upper case",
    ),
    (
        &[("HTTPS_PROXY", ""), ("ALL_PROXY", P2)],
        true,
        Some(("ALL_PROXY", P2)),
        "an empty scheme variable gives way to ALL_PROXY",
    ),
    (
        &[("all_proxy", ""), ("ALL_PROXY", "")],
        true,
        None,
        "empty everywhere is no proxy",
    ),
    (&[], true, None, "nothing set"),
    // Values are returned as written, for the proxy parser to judge.
    (
        &[("https_proxy", " http://p1.test ")],
        true,
        Some(("https_proxy", " http://p1.test ")),
        "values are not trimmed",
    ),
    // NO_PROXY: "list of host names that shouldn't go through any proxy".
    (
        &[("https_proxy", P1), ("no_proxy", "origin.test")],
        true,
        None,
        "no_proxy exempts the host",
    ),
    (
        &[("https_proxy", P1), ("NO_PROXY", "origin.test")],
        true,
        None,
        "NO_PROXY exempts the host",
    ),
    (
        &[
            ("https_proxy", P1),
            ("no_proxy", "other.test"),
            ("NO_PROXY", "origin.test"),
        ],
        true,
        Some(("https_proxy", P1)),
        "no_proxy beats NO_PROXY",
    ),
    (
        &[
            ("https_proxy", P1),
            ("no_proxy", ""),
            ("NO_PROXY", "origin.test"),
        ],
        true,
        None,
        "curl 7.88.1: an empty no_proxy gives way to NO_PROXY",
    ),
    (
        &[("all_proxy", P1), ("no_proxy", "*")],
        false,
        None,
        "no_proxy=* disables every proxy",
    ),
];

fn env(vars: &[(&str, &str)]) -> ProxyEnvironment {
    ProxyEnvironment::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

#[test]
fn variable_precedence_rows() {
    for &(vars, tls, want, what) in ENV_ROWS {
        let e = env(vars);
        let got = e.proxy_for("origin.test", tls).map(|p| (p.variable, p.url));
        assert_eq!(got, want, "{what}: {vars:?} tls={tls}");
    }
}

#[test]
fn every_variable_is_asked_once_and_http_proxy_never() {
    let mut asked = Vec::new();
    let _ = ProxyEnvironment::from_lookup(|name| {
        asked.push(name.to_owned());
        Some("x".into())
    });
    // The lookups stop at the first set variable of each group.
    assert_eq!(
        asked,
        ["https_proxy", "http_proxy", "all_proxy", "no_proxy"]
    );
    let mut asked = Vec::new();
    let _ = ProxyEnvironment::from_lookup(|name| {
        asked.push(name.to_owned());
        None
    });
    assert_eq!(asked, PROXY_VARIABLES);
    assert!(!asked.iter().any(|n| n == "HTTP_PROXY"));
}

#[test]
fn credentials_stay_out_of_debug_and_display() {
    let e = env(&[
        ("https_proxy", "http://alice:s3cret@proxy.test:3128/"),
        ("all_proxy", "bob:hunter2@socks.test:1080"),
        ("no_proxy", "a.test"),
    ]);
    let shown = format!("{e:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("alice"),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("bob"),
        "{shown}"
    );
    assert!(shown.contains("http://***@proxy.test:3128/"), "{shown}");
    assert!(shown.contains("***@socks.test:1080"), "{shown}");
    let p = e.proxy_for("origin.test", true).unwrap();
    assert_eq!(p.url, "http://alice:s3cret@proxy.test:3128/");
    assert_eq!(
        p.to_string(),
        "http://***@proxy.test:3128/ (from https_proxy)"
    );
    assert!(!format!("{p:?}").contains("s3cret"));
    // An `@` in the path is not user information.
    let p = env(&[("all_proxy", "http://proxy.test/a@b")]);
    assert!(format!("{p:?}").contains("http://proxy.test/a@b"));
}

#[test]
fn accessors() {
    let e = env(&[("NO_PROXY", "a.test")]);
    assert!(e.is_empty());
    assert_eq!(e.no_proxy_variable(), Some("NO_PROXY"));
    assert!(e.no_proxy().matches("a.test"));
    assert!(ProxyEnvironment::none().is_empty());
    assert!(NoProxy::parse("*").is_everything());
    assert!(NoProxy::parse(" , ").is_empty());
    assert!(!NoProxy::parse("a").is_empty());
}

proptest! {
    #[test]
    fn no_input_panics(list in ".*", host in ".*", vars in proptest::collection::vec(".*", 7), tls: bool) {
        let parsed = NoProxy::parse(&list);
        let _ = parsed.matches(&host);
        for w in parsed.warnings() {
            let _ = w.to_string();
        }
        let e = ProxyEnvironment::from_lookup(|name| {
            PROXY_VARIABLES.iter().position(|v| *v == name).map(|i| vars[i].clone())
        });
        let _ = format!("{e:?}");
        if let Some(p) = e.proxy_for(&host, tls) {
            let _ = format!("{p} {p:?}");
        }
    }

    #[test]
    fn matching_never_panics_on_listy_input(
        list in "[a-z0-9.:/\\[\\]*, \t]{0,40}",
        host in "[a-z0-9.:\\[\\]]{0,20}",
    ) {
        let _ = NoProxy::parse(&list).matches(&host);
    }

    /// Every address is in its own /N for every N, and a list holding it
    /// exempts it (with a prefix of 0, only itself).
    #[test]
    fn an_address_is_in_its_own_prefix(a: u32, bits in 0u8..=32) {
        let addr = Ipv4Addr::from(a);
        let list = format!("{addr}/{bits}");
        prop_assert!(NoProxy::parse(&list).matches(&addr.to_string()));
        let flipped = Ipv4Addr::from(a ^ 1);
        // The last bit differs: only /32 (and /0, read as /32) tell them apart.
        let want = bits != 32 && bits != 0;
        prop_assert_eq!(NoProxy::parse(&list).matches(&flipped.to_string()), want);
    }
}
