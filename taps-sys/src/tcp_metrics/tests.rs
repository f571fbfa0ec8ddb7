//! The parser on built messages (every truncation and byte flip tried),
//! and the reader on a real kernel: a TCP connection made in a fresh
//! network namespace must show up with the RTT `ip tcp_metrics show`
//! prints for it.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;

use super::*;

const FAMILY: u16 = 0x1c;

fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&((NLA_HDRLEN + value.len()) as u16).to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(value);
    b.resize(align4(b.len()), 0);
    b
}

fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&0x2u16.to_ne_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(payload);
    b.resize(align4(b.len()), 0);
    b
}

/// One entry as the kernel's `tcp_metrics_fill_info` writes it.
fn entry(remote: IpAddr, local: Option<IpAddr>, vals: &[(u16, u32)], age_ms: u64) -> Vec<u8> {
    let mut p = vec![TCP_METRICS_CMD_GET, 1, 0, 0];
    let ip = |a: IpAddr, k4, k6| match a {
        IpAddr::V4(a) => attr(k4, &a.octets()),
        IpAddr::V6(a) => attr(k6, &a.octets()),
    };
    p.extend(ip(
        remote,
        TCP_METRICS_ATTR_ADDR_IPV4,
        TCP_METRICS_ATTR_ADDR_IPV6,
    ));
    if let Some(l) = local {
        p.extend(ip(
            l,
            TCP_METRICS_ATTR_SADDR_IPV4,
            TCP_METRICS_ATTR_SADDR_IPV6,
        ));
    }
    p.extend(attr(TCP_METRICS_ATTR_AGE, &age_ms.to_ne_bytes()));
    let mut nested = Vec::new();
    for (k, v) in vals {
        nested.extend(attr(*k, &v.to_ne_bytes()));
    }
    // The kernel sets NLA_F_NESTED (0x8000) on the nest.
    p.extend(attr(TCP_METRICS_ATTR_VALS | 0x8000, &nested));
    p.extend(attr(99, b"unknown attributes are skipped"));
    message(FAMILY, &p)
}

fn sample_dump() -> Vec<u8> {
    let mut d = entry(
        "192.0.2.7".parse().unwrap(),
        Some("192.168.1.10".parse().unwrap()),
        &[
            // As the kernel keeps them: SRTT × 8, RTTVAR × 4.
            (TCP_METRICS_A_METRICS_RTT, 241),
            (TCP_METRICS_A_METRICS_RTTVAR, 38),
            (TCP_METRICS_A_METRICS_RTT_US, 241_000),
            (TCP_METRICS_A_METRICS_RTTVAR_US, 38_000),
            (4, 10),
        ],
        1500,
    );
    // An old kernel's entry: milliseconds only, no source address.
    d.extend(entry(
        "2001:db8::1".parse().unwrap(),
        None,
        &[(TCP_METRICS_A_METRICS_RTT, 320)],
        0,
    ));
    // No RTT: skipped.
    d.extend(entry("198.51.100.1".parse().unwrap(), None, &[(4, 10)], 0));
    d
}

#[test]
fn a_dump_yields_its_entries_preferring_microseconds() {
    let mut out = Vec::new();
    assert_eq!(parse_dump(&sample_dump(), FAMILY, &mut out), Ok(Dump::More));
    assert_eq!(
        out,
        [
            KernelRtt {
                local: Some("192.168.1.10".parse().unwrap()),
                remote: "192.0.2.7".parse().unwrap(),
                rtt: Duration::from_micros(30_125),
                rttvar: Duration::from_micros(9_500),
                age: Duration::from_millis(1500),
            },
            KernelRtt {
                local: None,
                remote: "2001:db8::1".parse().unwrap(),
                rtt: Duration::from_millis(40),
                rttvar: Duration::from_millis(20),
                age: Duration::ZERO,
            },
        ]
    );
    let done = message(NLMSG_DONE, &0u32.to_ne_bytes());
    assert_eq!(parse_dump(&done, FAMILY, &mut out), Ok(Dump::Done));
    // Other families' messages are not ours.
    let mut other = Vec::new();
    assert_eq!(
        parse_dump(&sample_dump(), FAMILY + 1, &mut other),
        Ok(Dump::More)
    );
    assert!(other.is_empty());
}

#[test]
fn errors_name_what_was_wrong() {
    let err = message(NLMSG_ERROR, &(-1i32).to_ne_bytes());
    let e = parse_dump(&err, FAMILY, &mut Vec::new()).unwrap_err();
    assert_eq!(e, ParseError::Kernel(-1));
    assert!(
        e.to_string().contains("refused the tcp_metrics request"),
        "{e}"
    );
    let mut d = sample_dump();
    // The first attribute claims more bytes than its message holds.
    d[NLMSG_HDRLEN + GENL_HDRLEN] = 0xff;
    let e = parse_dump(&d, FAMILY, &mut Vec::new()).unwrap_err();
    assert_eq!(
        e,
        ParseError::BadLength {
            what: "netlink attribute",
            offset: 20
        }
    );
    assert!(e.to_string().contains("byte 20"), "{e}");
    let ctrl = message(GENL_ID_CTRL, &[1, 2, 0, 0]);
    assert_eq!(parse_family_id(&ctrl), Err(ParseError::NoFamilyId));
    let mut p = vec![1, 2, 0, 0];
    p.extend(attr(CTRL_ATTR_FAMILY_NAME, b"tcp_metrics\0"));
    p.extend(attr(CTRL_ATTR_FAMILY_ID, &FAMILY.to_ne_bytes()));
    assert_eq!(parse_family_id(&message(GENL_ID_CTRL, &p)), Ok(FAMILY));
}

#[test]
fn no_truncation_or_byte_flip_panics() {
    let d = sample_dump();
    for cut in 0..d.len() {
        let mut out = Vec::new();
        let _ = parse_dump(&d[..cut], FAMILY, &mut out);
        assert!(out.len() <= 2);
        let _ = parse_family_id(&d[..cut]);
    }
    for i in 0..d.len() {
        for bit in 0..8 {
            let mut f = d.clone();
            f[i] ^= 1 << bit;
            let mut out = Vec::new();
            let _ = parse_dump(&f, FAMILY, &mut out);
            assert!(out.len() <= f.len() / (NLMSG_HDRLEN + GENL_HDRLEN));
            let _ = parse_family_id(&f);
        }
    }
}

#[test]
fn the_entries_read_are_bounded() {
    let one = entry(
        "192.0.2.1".parse().unwrap(),
        None,
        &[(TCP_METRICS_A_METRICS_RTT_US, 1000)],
        0,
    );
    let mut out = vec![
        KernelRtt {
            local: None,
            remote: "192.0.2.9".parse().unwrap(),
            rtt: Duration::from_millis(1),
            rttvar: Duration::ZERO,
            age: Duration::ZERO,
        };
        MAX_ENTRIES - 1
    ];
    let two: Vec<u8> = one.iter().chain(one.iter()).copied().collect();
    parse_dump(&two, FAMILY, &mut out).unwrap();
    assert_eq!(out.len(), MAX_ENTRIES);
}

/// The `key` (`rtt`, `rttvar`) `ip tcp_metrics show` prints for `addr`,
/// in µs.
fn ip_shows(addr: &str, key: &str) -> Option<u64> {
    let out = Command::new("ip")
        .args(["tcp_metrics", "show", addr])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().position(|w| *w == key)?;
    let v = words.get(at + 1)?;
    if let Some(us) = v.strip_suffix("us") {
        us.parse().ok()
    } else {
        v.strip_suffix("ms")?
            .parse::<u64>()
            .ok()
            .map(|ms| ms * 1000)
    }
}

#[test]
#[ignore = "needs root"]
fn a_real_connection_shows_up_as_ip_tcp_metrics_shows_it() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test makes a network namespace and needs root"
    );
    // A thread of its own in a fresh network namespace: only this test's
    // connection is in its kernel table, and ip(8), run from the thread,
    // sees the same namespace.
    let found = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(up.is_ok_and(|s| s.success()), "ip link set lo up failed");
        assert!(read(Duration::from_secs(5)).expect("dump").is_empty());
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let to: SocketAddr = listener.local_addr().unwrap();
        {
            let mut c = TcpStream::connect(to).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            use std::io::Write;
            c.write_all(b"ping").unwrap();
            let mut b = [0; 4];
            std::io::Read::read_exact(&mut s, &mut b).unwrap();
            s.write_all(b"pong").unwrap();
            std::io::Read::read_exact(&mut c, &mut b).unwrap();
            // The client closes first and enters TIME-WAIT, which is when
            // the kernel saves its metrics (tcp_update_metrics).
            drop(c);
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut rest);
        }
        let entries = read(Duration::from_secs(5)).expect("dump");
        let shown = (
            ip_shows("127.0.0.1", "rtt"),
            ip_shows("127.0.0.1", "rttvar"),
        );
        (entries, shown)
    })
    .join()
    .expect("the namespace thread");
    let (entries, shown) = found;
    let e = entries
        .iter()
        .find(|e| e.remote == IpAddr::V4(Ipv4Addr::LOCALHOST))
        .unwrap_or_else(|| panic!("no entry for 127.0.0.1 in {entries:?}"));
    assert_eq!(e.local, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert!(
        e.rtt > Duration::ZERO && e.rtt < Duration::from_secs(1),
        "{e:?}"
    );
    assert!(e.age < Duration::from_secs(60), "{e:?}");
    let (Some(rtt), Some(rttvar)) = shown else {
        panic!("ip tcp_metrics show prints no rtt and rttvar: {shown:?}")
    };
    assert_eq!(e.rtt, Duration::from_micros(rtt), "{e:?}");
    assert_eq!(e.rttvar, Duration::from_micros(rttvar), "{e:?}");
}
