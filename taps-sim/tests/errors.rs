//! Scenario errors, table-driven: each bad input and the exact messages it
//! must produce, with key paths and lines, all at once, and never a name
//! of the parser's own types.

use taps_sim::Scenario;

/// A file that parses; each case below adds to it (its lines are 1 to 5,
/// so an added first line is line 6).
const MINIMAL: &str = "name = \"x\"
[client]
interfaces = [{ name = \"eth0\", kind = \"wired\", addrs = [\"192.0.2.10/24\"] }]
[connect]
remote = \"example.com:443\"
";

fn errors(text: &str) -> Vec<String> {
    match Scenario::parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

#[test]
fn each_mistake_gets_its_exact_message() {
    assert!(errors(MINIMAL).is_empty());
    let cases: &[(&str, &[&str])] = &[
        (
            "[[link]]\ndelya = \"20ms\"\n",
            &["line 7: link[0].delya: unknown key; did you mean \"delay\"?"],
        ),
        (
            "[[server]]\nlisten = [\"192.0.2.1:443\"]\nflavour = \"x\"\n",
            &[
                "line 8: server[0].flavour: unknown key; expected one of: listen, tls, names, accept, tls_time, cert",
            ],
        ),
        (
            "[[server]]\ntls = \"none\"\n",
            &["line 6: server[0].listen: required, but missing (a list of strings)"],
        ),
        (
            "[[link]]\nloss = \"lots\"\n",
            &["line 7: link[0].loss: expected a number, found the string \"lots\""],
        ),
        (
            "[dns]\nattempts = 300\n",
            &[
                "line 7: dns.attempts: expected a whole number from 0 to 255, found the whole number 300",
            ],
        ),
        (
            "[[server]]\nlisten = \"192.0.2.1:443\"\n",
            &[
                "line 7: server[0].listen: expected a list of strings, found the string \"192.0.2.1:443\"",
            ],
        ),
        (
            "[[link]]\nto = \"2001:db8::/129\"\n",
            &[
                "line 7: link[0].to: \"2001:db8::/129\" is not a prefix: write \"2001:db8::/32\", \"192.0.2.0/24\", an address, or \"*\"",
            ],
        ),
        (
            "[expect]\noutcome = \"maybe\"\n",
            &["line 7: expect.outcome: unknown outcome \"maybe\": expected ready or failed"],
        ),
        (
            "[[expect.connection]]\noutcom = \"ready\"\n",
            &["line 7: expect.connection[0].outcom: unknown key; did you mean \"outcome\"?"],
        ),
        (
            "name = \"y\"\n",
            &[
                "line 6: connect.name: unknown key; expected one of: remote, tls, alpn, policy, attempt_delay, resolution_delay, timeout, interfaces, prohibit_expensive, prohibit_constrained, repeat, gap",
            ],
        ),
        ("[client]\ndns = []\n", &["line 6: duplicate key"]),
    ];
    for (extra, want) in cases {
        let got = errors(&format!("{MINIMAL}{extra}"));
        assert_eq!(&got, want, "for {extra:?}");
    }
}

#[test]
fn a_file_with_several_mistakes_reports_all_of_them_in_file_order() {
    let text = "seed = \"seven\"
[client]
interfaces = [
  { name = \"wlan0\", kind = \"wifi\", addrs = [\"192.168.1.10/24\"] },
  { name = \"eth0\", kidn = \"wired\" },
]
[connect]
remote = \"example.com:443\"
";
    assert_eq!(
        errors(text),
        [
            "name: required, but missing (a string)",
            "line 1: seed: expected a whole number from 0 up, found the string \"seven\"",
            "line 5: client.interfaces[1].kidn: unknown key; did you mean \"kind\"?",
            "line 5: client.interfaces[1].kind: required, but missing (a string)",
        ]
    );
    // Values are checked per section and per list entry: three wrong
    // values in three places are three messages.
    let text = format!(
        "{MINIMAL}[[server]]\nlisten = [\"192.0.2.1:443\"]\naccept = \"maybe\"\n\
         [[link]]\naction = \"drop\"\n[[link]]\nto = \"2001:db8::/129\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            "line 8: server[0].accept: unknown behaviour \"maybe\": expected ok, reset, close, stall-after-tcp or stall-tls",
            "line 10: link[0].action: unknown action \"drop\": expected pass, blackhole or reject",
            "line 12: link[1].to: \"2001:db8::/129\" is not a prefix: write \"2001:db8::/32\", \"192.0.2.0/24\", an address, or \"*\"",
        ]
    );
}

#[test]
fn no_message_names_the_parsers_types() {
    // Inputs that made serde name its structs before: a table where a
    // string goes, a string where a table goes, a list of the wrong thing.
    for extra in [
        "[[link]]\nto = { a = 1 }\n",
        "[dns]\nrecords = \"example.com\"\n",
        "[[event]]\nat = [1]\n",
        "[connect.interfaces]\nrequire = \"wlan0\"\n",
    ] {
        let text = format!("{MINIMAL}{extra}");
        let e = Scenario::parse(&text).unwrap_err().to_string();
        assert!(
            !e.contains("Raw") && !e.contains("struct"),
            "{extra:?}: {e}"
        );
        assert!(e.starts_with("line "), "{extra:?}: {e}");
    }
    // A whole client given as a string.
    let e = Scenario::parse("name = \"x\"\nclient = \"laptop\"\n[connect]\nremote = \"a:1\"\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "line 2: client: expected a table, found the string \"laptop\""
    );
}

#[test]
fn a_tls_disagreement_is_warned_about_by_check_and_run() {
    let dir = std::env::temp_dir().join(format!("taps-sim-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = "[[server]]\nlisten = [\"192.0.2.1:443\"]\n";
    // An address literal needs no DNS.
    let base = MINIMAL.replace("example.com:443", "192.0.2.1:443");
    let records = "";
    let cases = [
        // The client's default tls = true against a plain TCP server.
        (
            format!("{base}{records}{server}tls = \"none\"\n[expect]\noutcome = \"failed\"\n"),
            Some(
                "line 8: server[0].tls: the server speaks plain TCP (tls = \"none\") but connect.tls is true (the default)",
            ),
        ),
        // The reverse: a real TLS server, a client without TLS.
        (
            format!(
                "{base}tls = false\n{records}{server}tls = \"real\"\n[expect]\noutcome = \"ready\"\n"
            ),
            Some(
                "line 9: server[0].tls: the server speaks TLS (tls = \"real\") but connect.tls is false",
            ),
        ),
        // Agreeing: no warning.
        (
            format!(
                "{base}tls = false\n{records}{server}tls = \"none\"\n[expect]\noutcome = \"ready\"\n"
            ),
            None,
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let file = file.display().to_string();
        for command in ["run", "check"] {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let args = [command.to_string(), file.clone()];
            let code = taps_sim::cli::run(&args, &mut out, &mut err);
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
            assert_eq!(code, 0, "{command} case {i}: {all}");
            match want {
                Some(w) => assert!(all.contains(w), "{command} case {i}: {all}"),
                None => assert!(!all.contains("warn"), "{command} case {i}: {all}"),
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_mistake_in_one_table_is_reported() {
    let text = "name = \"x\"
[client]
interfaces = [{ name = \"eth0\", kind = \"wired\" }]
[connect]
remote = \"example.com\"
policy = \"fastest\"
timeout = \"0ms\"
interfaces = { prohibit = [\"wlan9\"] }
gap = \"1 fortnight\"
";
    assert_eq!(
        errors(text),
        [
            "line 5: connect.remote: \"example.com\" needs a port: \"example.com:443\"",
            "line 6: connect.policy: unknown racing policy \"fastest\": expected hev3, rfc6555 or sequential",
            "line 7: connect.timeout: must be more than zero (leave it out for no timeout)",
            "line 8: connect.interfaces.prohibit[0]: \"wlan9\" is neither a client interface name nor an interface kind (wired, wifi, cellular, loopback, other)",
            "line 9: connect.gap: \"1 fortnight\" is not a duration: write a number and a unit, such as \"150ms\", \"1s\" or \"2.5s\" (units ns, us, ms, s, m, h)",
        ]
    );
}

#[test]
fn every_mistake_in_the_client_is_reported() {
    let text = "name = \"x\"
[client]
interfaces = [
 { name = \"eth0\", kind = \"wire\", addrs = [\"192.0.2.300/24\"] },
 { name = \"eth0\", kind = \"wired\", addrs = [\"10.0.0.1/33\"] },
]
dns = [\"8.8.8.8\", \"resolver\"]
[connect]
remote = \"example.com:443\"
";
    assert_eq!(
        errors(text),
        [
            "line 4: client.interfaces[0].kind: unknown interface kind \"wire\": expected wired, wifi, cellular, loopback or other",
            "line 4: client.interfaces[0].addrs[0]: \"192.0.2.300/24\" is not an address: write \"192.168.1.10/24\" or \"2001:db8::10/64\"",
            "line 5: client.interfaces[1].name: \"eth0\" is listed twice",
            "line 5: client.interfaces[1].addrs[0]: \"10.0.0.1/33\": the prefix length must be 0 to 32",
            "line 7: client.dns[1]: \"resolver\" is not a resolver address: write \"192.168.1.1\" or \"[2001:db8::53]:53\"",
        ]
    );
}

#[test]
fn every_mistake_in_one_link_is_reported() {
    let text = format!(
        "{MINIMAL}[[link]]\ninterface = \"wlan9\"\nto = \"2001:db8::/129\"\ndirection = \"sideways\"\nloss = 2.0\nbandwidth = \"fast\"\n"
    );
    let got = errors(&text);
    let keys: Vec<&str> = got
        .iter()
        .map(|l| l.split(": ").nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "link[0].interface",
            "link[0].to",
            "link[0].direction",
            "link[0].loss",
            "link[0].bandwidth"
        ],
        "{got:#?}"
    );
    assert_eq!(
        got[2],
        "line 9: link[0].direction: unknown direction \"sideways\": expected both, up or down"
    );
    assert_eq!(
        got[0],
        "line 7: link[0].interface: no client interface is called \"wlan9\" (known: eth0)"
    );
}
