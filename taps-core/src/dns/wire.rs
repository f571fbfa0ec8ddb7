//! CONTRACT STUB (to be replaced by the DNS wire helper).
#![allow(missing_docs)]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use smallvec::SmallVec;
use crate::endpoint::HostName;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryType { A, Aaaa, Https }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsRecord { pub priority: u16, pub target: Option<HostName>, pub alpn: Vec<String>, pub no_default_alpn: bool, pub port: Option<u16>, pub ipv4hint: SmallVec<[Ipv4Addr; 2]>, pub ipv6hint: SmallVec<[Ipv6Addr; 2]>, pub ech: bool }
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer { Addresses { addrs: SmallVec<[IpAddr; 4]>, ttl: u32 }, Https { records: SmallVec<[HttpsRecord; 2]>, ttl: u32 }, NoData { negative_ttl: u32 }, NxDomain { negative_ttl: u32 }, ServFail, Refused, OtherError { rcode: u16 } }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response { pub truncated: bool, pub answer: Answer }
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsWireError { Malformed(String), NotAResponse, IdMismatch { expected: u16, got: u16 }, QuestionMismatch, CnameChainTooDeep }
pub const MAX_ADDRESSES_PER_ANSWER: usize = 32;
pub const MAX_CNAME_DEPTH: usize = 8;
pub fn encode_query(id: u16, name: &HostName, qtype: QueryType, out: &mut Vec<u8>) { todo!("{id}{name:?}{qtype:?}{out:?}") }
pub fn parse_response(bytes: &[u8], expected_id: u16, name: &HostName, qtype: QueryType) -> Result<Response, DnsWireError> { todo!("{bytes:?}{expected_id}{name:?}{qtype:?}") }
pub fn frame_for_tcp(msg: &[u8], out: &mut Vec<u8>) { todo!("{msg:?}{out:?}") }
#[derive(Debug, Default)]
pub struct TcpResponseReader {}
impl TcpResponseReader { pub fn push(&mut self, bytes: &[u8]) { todo!("{bytes:?}") } pub fn take_message(&mut self) -> Option<Vec<u8>> { todo!() } }
