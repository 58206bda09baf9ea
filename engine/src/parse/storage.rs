//! `[[disk]]` and `[durability]`: the storage a policy describes.

use super::error::{ErrAt, PolicyError};
use super::raw::{RawDisk, RawDurability};
use super::units::parse_bytes;
use crate::disk::{Disk, MAX_DISKS};
use crate::durability::{Crash, Durability, Model};
use crate::glob::Glob;
use toml::Spanned;

/// `[[disk]]` sections: names unique, paths absolute globs, capacities sizes.
pub(super) fn build_disks(
    raw: &[Spanned<RawDisk>],
    err_at: ErrAt,
) -> Result<Vec<Disk>, PolicyError> {
    if raw.len() > MAX_DISKS {
        return Err(err_at(
            raw[MAX_DISKS].span(),
            format!("too many disks ({}); at most {MAX_DISKS}", raw.len()),
        ));
    }
    let mut disks: Vec<Disk> = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let d = d.get_ref();
        let name = d
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| format!("disk-{i}"));
        if let Some(n) = &d.name
            && (name.is_empty() || name.len() > crate::page::NAME_BYTES)
        {
            return Err(err_at(
                n.span(),
                format!(
                    "a disk's name must be 1 to {} bytes",
                    crate::page::NAME_BYTES
                ),
            ));
        }
        if disks.iter().any(|o| o.name == name) {
            let span = d.name.as_ref().map_or(d.path.span(), |n| n.span());
            return Err(err_at(span, format!("duplicate disk name `{name}`")));
        }
        if !d.path.get_ref().starts_with('/') {
            return Err(err_at(
                d.path.span(),
                format!(
                    "disk path `{}` must be absolute (a glob such as \"/var/lib/app/*\")",
                    d.path.get_ref()
                ),
            ));
        }
        let capacity = parse_bytes(d.capacity.get_ref())
            .map_err(|m| err_at(d.capacity.span(), format!("capacity: {m}")))?;
        disks.push(Disk {
            name,
            path: Glob(d.path.get_ref().clone()),
            capacity,
        });
    }
    Ok(disks)
}

/// `[durability]`: an absolute glob, a torn-write size, the file system's model and what a crash is.
pub(super) fn build_durability(
    raw: Option<&Spanned<RawDurability>>,
    err_at: ErrAt,
) -> Result<Option<Durability>, PolicyError> {
    Ok(match raw {
        None => None,
        Some(d) => {
            let d = d.get_ref();
            if !d.path.get_ref().starts_with('/') {
                return Err(err_at(
                    d.path.span(),
                    format!(
                        "durability path `{}` must be absolute (a glob such as \"/var/lib/app/*\")",
                        d.path.get_ref()
                    ),
                ));
            }
            let torn = d
                .torn
                .as_ref()
                .map(|t| {
                    parse_bytes(t.get_ref()).map_err(|m| err_at(t.span(), format!("torn: {m}")))
                })
                .transpose()?;
            let model = match &d.model {
                None => Model::default(),
                Some(m) => Model::from_name(m.get_ref()).ok_or_else(|| {
                    err_at(
                        m.span(),
                        format!(
                            "durability model `{}` is not one of \"ext4\" (the default) or \"posix\"",
                            m.get_ref()
                        ),
                    )
                })?,
            };
            let crash = match &d.crash {
                None => Crash::default(),
                Some(c) => Crash::from_name(c.get_ref()).ok_or_else(|| {
                    err_at(
                        c.span(),
                        format!(
                            "durability crash `{}` is not one of \"power-loss\" (the default: a \
                             SIGKILL loses what was not durable) or \"process\" (only a \
                             `power-loss` fault does)",
                            c.get_ref()
                        ),
                    )
                })?,
            };
            Some(Durability {
                path: Glob(d.path.get_ref().clone()),
                torn,
                model,
                crash,
            })
        }
    })
}
