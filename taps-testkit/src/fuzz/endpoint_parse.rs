//! The `endpoint_parse` target: arbitrary text as endpoints and host names
//! ([`endpoint_parse`]).

use std::fmt::{Debug, Display};
use std::str::FromStr;

use taps_core::{EndpointParseError, HostName, LocalEndpoint, RemoteEndpoint};

use crate::contract::nonempty;

/// **endpoint_parse**: arbitrary text (lossily decoded as UTF-8) parses to
/// an endpoint or a clear error, as a [`RemoteEndpoint`], a
/// [`LocalEndpoint`] and a [`HostName`]. An endpoint that parses displays as
/// text that parses back to an equal endpoint and displays the same again
/// (the module's canonical-form promise); an error displays as text.
pub fn endpoint_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    round_trip::<RemoteEndpoint>(&text);
    round_trip::<LocalEndpoint>(&text);
    match HostName::new(&text) {
        Ok(name) => {
            if name.as_str().len() > 253 {
                violated!("host name of {} characters", name.as_str().len());
            }
            match HostName::new(name.as_str()) {
                Ok(again) if again == name => {}
                other => violated!("host name {name} reads back as {other:?}"),
            }
        }
        Err(e) => nonempty(&e),
    }
    if let Ok(e) = RemoteEndpoint::new().with_host_name(&text) {
        round_trip_value(&text, e);
    }
}

fn round_trip<E>(text: &str)
where
    E: FromStr<Err = EndpointParseError> + Display + PartialEq + Debug,
{
    match text.parse::<E>() {
        Ok(e) => round_trip_value(text, e),
        Err(err) => nonempty(&err),
    }
}

fn round_trip_value<E>(text: &str, e: E)
where
    E: FromStr<Err = EndpointParseError> + Display + PartialEq + Debug,
{
    let shown = e.to_string();
    match shown.parse::<E>() {
        Ok(back) if back == e => {
            let again = back.to_string();
            if again != shown {
                violated!("{text:?} displays as {shown:?}, then as {again:?}");
            }
        }
        Ok(back) => {
            violated!("{text:?} parses to {e:?}, displays as {shown:?}, reads back as {back:?}")
        }
        Err(err) => {
            violated!("{text:?} parses to {e:?}, displays as {shown:?}, which fails: {err}")
        }
    }
}
