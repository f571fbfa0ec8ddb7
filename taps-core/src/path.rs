//! CONTRACT STUB (to be replaced by the path helper).
#![allow(missing_docs)]
use std::net::IpAddr;
use crate::properties::SelectionProperties;
use smallvec::SmallVec;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterfaceKind { Wired, Wifi, Cellular, Loopback, Other }
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceAddress { pub addr: IpAddr, pub prefix_len: u8, pub deprecated: bool }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface { pub name: String, pub index: u32, pub kind: InterfaceKind, pub addrs: Vec<InterfaceAddress>, pub mtu: u32, pub expensive: bool, pub constrained: bool, pub up: bool }
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InterfaceSelector { Kind(InterfaceKind), Name(String) }
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathBranch { pub interface: Option<u32> }
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError { NoInterfaceMeetsRequirement { requirement: String } }
pub fn derive_paths(interfaces: &[Interface], selection: &SelectionProperties, bound_interface: Option<&str>) -> Result<SmallVec<[PathBranch; 4]>, PathError> { todo!("{interfaces:?}{selection:?}{bound_interface:?}") }
impl core::fmt::Display for PathError { fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result { write!(f, "x") } }
