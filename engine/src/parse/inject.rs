//! `[[inject]]` entries: a decision key as the log prints it (process, connection, site) and the
//! fault to inject there.

use super::error::{ErrAt, PolicyError};
use super::fault::parse_fault;
use super::raw::RawInjection;
use crate::decide::Site;
use crate::inject::{Injection, ROLE_NAMES, conn_key, connects_key};
use crate::kind::FdKind;
use crate::op::{OP_NAMES_HELP, Op};
use toml::Spanned;

pub(super) fn build_injection(raw: &RawInjection, err_at: ErrAt) -> Result<Injection, PolicyError> {
    let field = |v: &Spanned<String>, parse: fn(&str) -> Result<u64, String>| {
        parse(v.get_ref()).map_err(|m| err_at(v.span(), m))
    };
    let process = field(&raw.process, parse_process)?;
    let conn = field(&raw.conn, parse_conn)?;
    let site = parse_site(raw.at.get_ref()).map_err(|m| err_at(raw.at.span(), m))?;
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
    let fault = parse_fault(raw.fault.get_ref()).map_err(|m| err_at(raw.fault.span(), m))?;
    Ok(Injection {
        process,
        conn,
        site,
        fault,
    })
}

/// Parses `tcp-out#3` (kind-role#ordinal), `tcp-connects`, or a raw 16-hex-digit key into a
/// connection key.
pub fn parse_conn(text: &str) -> Result<u64, String> {
    let expected = || {
        format!(
            "connection `{text}`: expected KIND-ROLE#N, e.g. tcp-out#0 (roles: {}), or KIND-connects",
            ROLE_NAMES.join(", ")
        )
    };
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

/// Parses a site as the log prints it (`rx@1024#0`, `connect#0`): `Site::from_str`, with the
/// message as a `String` like the other fields of an `[[inject]]` entry.
pub fn parse_site(text: &str) -> Result<Site, String> {
    text.parse()
        .map_err(|e: crate::decide::ParseKeyError| e.to_string())
}

/// Parses a process key: 16 hex digits, as in the log's `proc` field.
pub fn parse_process(text: &str) -> Result<u64, String> {
    if text.len() != 16 {
        return Err(format!(
            "process `{text}`: expected 16 hex digits, as in the log's `proc`"
        ));
    }
    u64::from_str_radix(text, 16)
        .map_err(|_| format!("process `{text}`: expected 16 hex digits, as in the log's `proc`"))
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
        let e = parse_site("up@1#0").unwrap_err();
        assert!(e.starts_with("site `up@1#0`: expected"), "{e}");
        assert!(parse_site("bogus#1").is_err());
    }
}
