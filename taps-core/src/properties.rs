//! CONTRACT STUB (to be replaced by the properties helper).
#![allow(missing_docs)]
use core::time::Duration;
use crate::path::InterfaceSelector;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preference { Require, Prefer, NoPreference, Avoid, Prohibit }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectionProperties {
    pub reliability: Preference,
    pub preserve_msg_boundaries: Preference,
    pub preserve_order: Preference,
    pub interface: Vec<(InterfaceSelector, Preference)>,
    pub prohibit_expensive: bool,
    pub prohibit_constrained: bool,
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionProperties { pub conn_timeout: Option<Duration>, pub conn_priority: u32 }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportProperties { pub selection: SelectionProperties, pub connection: ConnectionProperties }
impl Default for TransportProperties { fn default() -> Self { todo!() } }
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityParameters {}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyConflict {}
impl core::fmt::Display for PropertyConflict { fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result { write!(f, "x") } }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveProperties {}
impl SelectionProperties { pub fn tcp_conflict(&self, has_framer: bool) -> Option<PropertyConflict> { todo!("{has_framer}") } }
impl TransportProperties { pub fn effective_for_tcp(&self, has_framer: bool, path: Option<&crate::path::Interface>) -> EffectiveProperties { todo!("{has_framer}{path:?}") } }
