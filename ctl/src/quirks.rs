//! `chaos-ctl quirks`: the platform quirks the shim can reproduce.

use crate::failure::Failure;
use crate::output::out;
use chaos_engine::quirk::{Platform, QUIRKS};

pub fn list(platform: Option<&str>) -> Result<(), Failure> {
    let only = match platform {
        None => None,
        Some(p) => Some(Platform::from_name(p).ok_or_else(|| {
            Failure::own(format!(
                "unknown platform `{p}`; expected one of {}",
                Platform::names()
            ))
        })?),
    };
    for q in QUIRKS
        .iter()
        .filter(|q| only.is_none_or(|p| q.platforms.contains(&p)))
    {
        let platforms: Vec<&str> = q.platforms.iter().map(|p| p.name()).collect();
        out!(
            "{} ({}; catalogue entry {})\n",
            q.name,
            platforms.join(", "),
            q.entry
        )?;
        out!("  calls:    {}\n", q.calls)?;
        out!("  when:     {}\n", q.trigger)?;
        out!("  emulated: {}\n", q.emulated)?;
        out!("  linux:    {}\n", q.linux)?;
        out!("  refs:     {}\n", q.references)?;
        out!("\n")?;
    }
    Ok(())
}
