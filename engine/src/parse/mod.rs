//! TOML policy text -> validated `Policy`, with errors that name the file, line and column.
//!
//! The parsing side of the engine, so the model (`policy`, `fault`, `toxic`, `inject`, `system`)
//! knows nothing of text: `raw` is what serde reads, `units` the value syntaxes, `rule`, `fault`,
//! `fits`, `inject`, `toxic`, `storage` and `system` the meaning checks that turn raw sections into
//! the model, and `error` the text an error shows.

mod error;
mod fault;
mod fits;
pub mod inject;
mod raw;
mod rule;
mod storage;
mod system;
mod toxic;
pub mod units;

pub use error::{PolicyError, line_col};

use crate::policy::{MAX_RULES, Policy, Rule, fnv1a};
use crate::quirk::QuirkError;
use error::humanize;
use inject::build_injection;
use raw::RawPolicy;
use rule::{build_rule, probability};
use std::ops::Range;
use storage::{build_disks, build_durability};
use toml::Spanned;

/// Parses and validates policy text. `origin` is what error messages and events call it.
pub fn parse_policy(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    let err_at = |span: Range<usize>, message: String| {
        let (line, col) = line_col(text, span.start);
        PolicyError {
            origin: origin.to_string(),
            line,
            col,
            message,
        }
    };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = humanize(text, span.start, &e.message().trim().replace('\n', " "));
        err_at(span, message)
    })?;
    if raw.rules.len() > MAX_RULES {
        return Err(err_at(
            raw.rules[MAX_RULES].span(),
            format!(
                "too many rules ({}); at most {MAX_RULES} are supported",
                raw.rules.len()
            ),
        ));
    }
    let mut rules = Vec::with_capacity(raw.rules.len());
    let rule_spans: Vec<Range<usize>> = raw.rules.iter().map(|r| r.span()).collect();
    for (index, raw_rule) in raw.rules.into_iter().enumerate() {
        let span = raw_rule.span();
        let rule = build_rule(raw_rule.into_inner(), index, &|s, m| err_at(s, m)).map_err(|e| {
            if e.line == 0 {
                err_at(span.clone(), e.message)
            } else {
                e
            }
        })?;
        if let Some(prev) = rules.iter().find(|r: &&Rule| r.name == rule.name) {
            return Err(err_at(span, format!("duplicate rule name `{}`", prev.name)));
        }
        rules.push(rule);
    }
    let names = |list: &Option<Spanned<Vec<String>>>| -> Vec<String> {
        list.as_ref()
            .map(|l| l.get_ref().clone())
            .unwrap_or_default()
    };
    let (add, remove) = (names(&raw.quirks), names(&raw.no_quirks));
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
    let quirks = crate::quirk::resolve(
        raw.platform.as_ref().map(|p| p.get_ref().as_str()),
        &add,
        &remove,
    )
    .map_err(|e| {
        let span = match &e {
            QuirkError::UnknownPlatform(_) => raw.platform.as_ref().map(|p| p.span()),
            QuirkError::UnknownQuirk {
                removing: false, ..
            } => raw.quirks.as_ref().map(|q| q.span()),
            QuirkError::UnknownQuirk { removing: true, .. } => {
                raw.no_quirks.as_ref().map(|q| q.span())
            }
        };
        err_at(span.unwrap_or(0..0), e.to_string())
    })?;

    let quirk_probability = match &raw.quirk_probability {
        None => 1.0,
        Some(p) => probability(p, "quirk_probability", &err_at)?,
    };
    let mut injections = Vec::with_capacity(raw.inject.len());
    for raw_inj in &raw.inject {
        injections.push(build_injection(raw_inj.get_ref(), &err_at)?);
    }
    let disks = build_disks(&raw.disk, &err_at)?;
    let durability = build_durability(raw.durability.as_ref(), &err_at)?;
    let rule_names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
    let system = system::build(
        raw.process,
        raw.attrition,
        raw.nemesis,
        raw.partition,
        raw.partitions,
        &rule_names,
        &err_at,
    )?;
    for (rule, raw_span) in rules.iter().zip(&rule_spans) {
        if let Some(g) = &rule.process
            && !system.is_empty()
            && !system
                .replica_names()
                .iter()
                .any(|n| g.matches(n.as_bytes()))
            && !g.matches(b"workload")
        {
            return Err(err_at(
                raw_span.clone(),
                format!(
                    "rule `{}`: process = \"{}\" matches no process of the system ({}, or \"workload\")",
                    rule.name,
                    g.0,
                    system.replica_names().join(", ")
                ),
            ));
        }
    }
    Ok(Policy {
        system,
        disks,
        durability,
        injections: crate::inject::Injections::new(injections),
        platform: raw.platform.map(|p| p.into_inner()),
        quirks_on: add.iter().map(|s| s.to_string()).collect(),
        quirks_off: remove.iter().map(|s| s.to_string()).collect(),
        quirks,
        quirk_probability,
        seed: raw.seed.map(|s| s.into_inner()).unwrap_or(1),
        rules,
        origin: origin.to_string(),
        digest: fnv1a(text.as_bytes()),
    })
}

#[cfg(test)]
mod tests;
