//! The system's DNS configuration: `/etc/resolv.conf` (resolv.conf(5)) and
//! `/etc/hosts` (hosts(5)), read from disk and parsed by the core's own
//! parsers ([`parse_resolv_conf`], [`parse_hosts`]) so that every adapter
//! and the simulator agree on their meaning.
//!
//! A missing file is not an error, as with glibc: no resolv.conf means the
//! defaults (a server on `127.0.0.1`, 5 s, 2 attempts), no hosts file means
//! no entries. A file that exists but cannot be read (permissions, a
//! directory) is an error, since silently querying the wrong servers would
//! be worse than failing. Bytes that are not UTF-8 are replaced (glibc reads
//! bytes; a stray Latin-1 comment must not lose the whole file), so a name
//! containing them is skipped by the parser with a warning.

use std::fs;
use std::io;
use std::path::Path;

use super::{Stage, context};
use taps_core::{
    dns::DnsConfig,
    dns::{HostsFile, ResolvConf, parse_hosts, parse_resolv_conf},
};

/// Where resolv.conf lives.
pub const RESOLV_CONF_PATH: &str = "/etc/resolv.conf";
/// Where the hosts file lives.
pub const HOSTS_PATH: &str = "/etc/hosts";

/// Reads the system's `/etc/resolv.conf` and `/etc/hosts`.
///
/// The [`DnsConfig`] carries the servers, timeout and attempts; use
/// [`read_resolv_conf`] for the rest (search list, `ndots`, warnings).
pub fn system_dns() -> io::Result<(DnsConfig, HostsFile)> {
    from_paths(Path::new(RESOLV_CONF_PATH), Path::new(HOSTS_PATH))
}

/// Like [`system_dns`], from the given files.
pub fn from_paths(resolv: &Path, hosts: &Path) -> io::Result<(DnsConfig, HostsFile)> {
    let conf = read_resolv_conf(resolv)?;
    let hosts = read_hosts(hosts)?;
    Ok((DnsConfig::from_resolv_conf(&conf), hosts))
}

/// Reads and parses a resolv.conf; a missing file gives the defaults.
pub fn read_resolv_conf(path: &Path) -> io::Result<ResolvConf> {
    Ok(read_optional(path)?.map_or_else(ResolvConf::default, |text| parse_resolv_conf(&text)))
}

/// Reads and parses a hosts file; a missing file gives no entries.
pub fn read_hosts(path: &Path) -> io::Result<HostsFile> {
    Ok(read_optional(path)?.map_or_else(HostsFile::default, |text| parse_hosts(&text)))
}

/// The file's text, or `None` if it does not exist.
fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(context(e, Stage::Other, format!("read {}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use taps_core::HostName;

    /// A directory under the system's temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "taps-sys-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reads_both_files() {
        let dir = TempDir::new("dns");
        let resolv = dir.0.join("resolv.conf");
        let hosts = dir.0.join("hosts");
        fs::write(
            &resolv,
            "# comment\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions timeout:3 attempts:4\n",
        )
        .unwrap();
        fs::write(&hosts, "127.0.0.1 localhost\n192.0.2.10 db.example db\n").unwrap();

        let (config, hosts) = from_paths(&resolv, &hosts).unwrap();
        let expected: Vec<SocketAddr> = vec![
            "192.0.2.53:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
        ];
        assert_eq!(config.servers, expected);
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert_eq!(config.attempts, 4);
        let db: HostName = "DB".parse().unwrap();
        assert_eq!(
            hosts.lookup(&db),
            &["192.0.2.10".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn missing_files_give_glibc_defaults() {
        let dir = TempDir::new("dns-missing");
        let (config, hosts) = from_paths(&dir.0.join("nope"), &dir.0.join("nope2")).unwrap();
        assert_eq!(
            config.servers,
            vec!["127.0.0.1:53".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(config.attempts, 2);
        assert!(hosts.is_empty());
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        // A directory cannot be read as a file, even by root (EISDIR),
        // unlike a file without read permission.
        let dir = TempDir::new("dns-unreadable");
        let hosts = dir.0.join("hosts");
        let err = from_paths(&dir.0, &hosts).unwrap_err();
        assert!(
            err.to_string().contains(&dir.0.display().to_string()),
            "{err}"
        );
        let err = from_paths(&hosts, &dir.0).unwrap_err();
        assert!(err.to_string().starts_with("read "), "{err}");
    }

    #[test]
    fn the_real_system_files_parse() {
        // Whatever this machine has, reading it must not fail.
        system_dns().unwrap();
    }
}
