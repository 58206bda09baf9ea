//! The run's `[[disk]]` and `[durability]` tables, written to the log as a `storage` line when
//! the run starts, so that `freeze` writes a policy whose replay recreates the disks and what a
//! crash keeps (the faults alone would replay against a disk of another size, or none).

use chaos_engine::event::schema::{Event, StorageLine};
use chaos_engine::policy::Policy;
use std::io::Write;
use std::path::Path;

/// The policy's storage tables as TOML; None when it has neither.
pub fn tables(policy: &Policy) -> Option<String> {
    if policy.disks.is_empty() && policy.durability.is_none() {
        return None;
    }
    let mut doc = toml::Table::new();
    if !policy.disks.is_empty() {
        let disks = policy
            .disks
            .iter()
            .map(|d| {
                let mut t = toml::Table::new();
                t.insert("name".into(), d.name.clone().into());
                t.insert("path".into(), d.path.0.clone().into());
                t.insert("capacity".into(), d.capacity.to_string().into());
                toml::Value::Table(t)
            })
            .collect();
        doc.insert("disk".into(), toml::Value::Array(disks));
    }
    if let Some(d) = &policy.durability {
        let mut t = toml::Table::new();
        t.insert("path".into(), d.path.0.clone().into());
        if let Some(unit) = d.torn {
            t.insert("torn".into(), unit.to_string().into());
        }
        t.insert("model".into(), d.model.name().into());
        t.insert("crash".into(), d.crash.name().into());
        doc.insert("durability".into(), toml::Value::Table(t));
    }
    toml::to_string(&doc).ok()
}

/// Appends the `storage` line to the run's log, if the policy has storage tables.
pub fn write(policy: &Policy, log: &Path) {
    let Some(tables) = tables(policy) else {
        return;
    };
    let event = Event::Storage(StorageLine {
        ts_ns: crate::system::journal::now_ns(),
        tables,
    });
    if let (Ok(mut f), Ok(mut line)) = (
        std::fs::OpenOptions::new().append(true).open(log),
        serde_json::to_string(&event),
    ) {
        line.push('\n');
        let _ = f.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_parse_back_to_the_same_disks_and_durability() {
        let text = "[[disk]]\nname = \"data\"\npath = \"/srv/d/*\"\ncapacity = \"64M\"\n\
                    [durability]\npath = \"/srv/d/*\"\ntorn = \"4K\"\nmodel = \"posix\"\ncrash = \"process\"\n";
        let policy = chaos_engine::parse::parse_policy(text, "p").unwrap();
        let again = chaos_engine::parse::parse_policy(&tables(&policy).unwrap(), "t").unwrap();
        assert_eq!(again.disks, policy.disks);
        assert_eq!(again.durability, policy.durability);
        let none = chaos_engine::parse::parse_policy("seed = 1\n", "p").unwrap();
        assert_eq!(tables(&none), None);
    }
}
