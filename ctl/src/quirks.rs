//! `chaos-ctl quirks`: the platform quirks the shim can reproduce.

use crate::failure::Failure;
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
        println!(
            "{} ({}; catalogue entry {})",
            q.name,
            platforms.join(", "),
            q.entry
        );
        println!("  calls:    {}", q.calls);
        println!("  when:     {}", q.trigger);
        println!("  emulated: {}", q.emulated);
        println!("  linux:    {}", q.linux);
        println!("  refs:     {}", q.references);
        println!();
    }
    Ok(())
}
