//! `[[inject]]` entries: a decision key as the log prints it (process, connection, site) and the
//! fault to inject there.

use super::error::{ErrAt, PolicyError};
use super::fault::parse_fault;
use super::raw::RawInjection;
use crate::inject::{Injection, ROLE_NAMES, conn_key, connects_key};
use crate::key::{ParseKeyError, Site};
use crate::kind::FdKind;
use crate::op::{OP_NAMES_HELP, Op};
use std::fmt;
use toml::Spanned;

/// A part of a decision key not written as the log prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Not KIND-ROLE#N, KIND-connects or 16 hex digits.
    Conn(String),
    /// Not 16 hex digits.
    Process(String),
    Site(ParseKeyError),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            KeyError::Conn(t) => write!(
                f,
                "connection `{t}`: expected KIND-ROLE#N, e.g. tcp-out#0 (roles: {}), or KIND-connects",
                ROLE_NAMES.join(", ")
            ),
            KeyError::Process(t) => write!(
                f,
                "process `{t}`: expected 16 hex digits, as in the log's `proc`"
            ),
            KeyError::Site(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for KeyError {}

pub(super) fn build_injection(raw: &RawInjection, err_at: ErrAt) -> Result<Injection, PolicyError> {
    let field = |v: &Spanned<String>, parse: fn(&str) -> Result<u64, KeyError>| {
        parse(v.get_ref()).map_err(|m| err_at(v.span(), m.to_string()))
    };
    let process = field(&raw.process, parse_process)?;
    let conn = field(&raw.conn, parse_conn)?;
    let site = parse_site(raw.at.get_ref()).map_err(|m| err_at(raw.at.span(), m.to_string()))?;
    if let Some(on) = &raw.on
        && Op::from_name(on.get_ref()).is_none()
    {
        return Err(err_at(
            on.span(),
            format!(
                "unknown op `{}` in `on`; expected {OP_NAMES_HELP}",
                on.get_ref()
            ),
        ));
    }
    let fault =
        parse_fault(raw.fault.get_ref()).map_err(|m| err_at(raw.fault.span(), m.to_string()))?;
    Ok(Injection {
        process,
        conn,
        site,
        fault,
    })
}

/// Parses `tcp-out#3` (kind-role#ordinal), `tcp-connects`, or a raw 16-hex-digit key into a
/// connection key.
pub fn parse_conn(text: &str) -> Result<u64, KeyError> {
    let expected = || KeyError::Conn(text.to_string());
    if let Some(kind) = text.strip_suffix("-connects") {
        let kind = FdKind::ALL
            .into_iter()
            .find(|k| k.name() == kind)
            .ok_or_else(expected)?;
        return Ok(connects_key(kind));
    }
    if text.len() == 16
        && let Ok(raw) = u64::from_str_radix(text, 16)
    {
        return Ok(raw);
    }
    let (name, ordinal) = text.split_once('#').ok_or_else(expected)?;
    let ordinal: u32 = ordinal.parse().map_err(|_| expected())?;
    let (kind, role) = name.rsplit_once('-').ok_or_else(expected)?;
    let kind = FdKind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(expected)?;
    let role = ROLE_NAMES
        .iter()
        .position(|r| *r == role)
        .ok_or_else(expected)?;
    Ok(conn_key(kind, role as u8, ordinal))
}

/// Parses a site as the log prints it (`rx@1024#0`, `connect#0`): `Site::from_str`.
pub fn parse_site(text: &str) -> Result<Site, KeyError> {
    text.parse().map_err(KeyError::Site)
}

/// Parses a process key: 16 hex digits, as in the log's `proc` field.
pub fn parse_process(text: &str) -> Result<u64, KeyError> {
    if text.len() != 16 {
        return Err(KeyError::Process(text.to_string()));
    }
    u64::from_str_radix(text, 16).map_err(|_| KeyError::Process(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_names_map_to_the_shims_keys() {
        assert_eq!(
            parse_conn("tcp-out#3").unwrap(),
            conn_key(FdKind::Tcp, 0, 3)
        );
        assert_eq!(
            parse_conn("unix-fd#0").unwrap(),
            conn_key(FdKind::Unix, 3, 0)
        );
        assert_ne!(
            parse_conn("tcp-in#3").unwrap(),
            parse_conn("tcp-out#3").unwrap()
        );
        for bad in [
            "tcp-out",
            "tcp#1",
            "sctp-out#1",
            "tcp-sideways#1",
            "tcp-out#x",
        ] {
            assert!(parse_conn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sites_parse_as_the_log_prints_them() {
        for text in ["rx@1024#0", "tx@0#2", "connect#0", "reads#17", "close#1"] {
            assert_eq!(parse_site(text).unwrap().to_string(), text);
        }
        let e = parse_site("up@1#0").unwrap_err().to_string();
        assert!(e.starts_with("site `up@1#0`: expected"), "{e}");
        assert_eq!(parse_process("12"), Err(KeyError::Process("12".into())));
        assert_eq!(
            parse_conn("tcp-out").unwrap_err().to_string(),
            "connection `tcp-out`: expected KIND-ROLE#N, e.g. tcp-out#0 (roles: out, in, listen, fd), \
             or KIND-connects"
        );
        assert!(parse_site("bogus#1").is_err());
    }
}
