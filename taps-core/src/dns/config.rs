//! CONTRACT STUB (to be replaced by the DNS config helper).
#![allow(missing_docs)]
use std::net::{IpAddr, SocketAddr};
use core::time::Duration;
use crate::endpoint::HostName;
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf { pub nameservers: Vec<SocketAddr>, pub search: Vec<HostName>, pub ndots: u8, pub timeout: Duration, pub attempts: u8, pub rotate: bool, pub use_tcp: bool, pub warnings: Vec<String> }
pub fn parse_resolv_conf(text: &str) -> ResolvConf { todo!("{text}") }
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostsFile { pub warnings: Vec<String> }
impl HostsFile { pub fn lookup(&self, name: &HostName) -> &[IpAddr] { todo!("{name:?}") } }
pub fn parse_hosts(text: &str) -> HostsFile { todo!("{text}") }
pub fn localhost_addresses(name: &HostName) -> Option<&'static [IpAddr]> { todo!("{name:?}") }
