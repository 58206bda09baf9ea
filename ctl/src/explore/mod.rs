//! `chaos-ctl explore -- CMD`: every error path once. A discovery run with the shim's census on
//! lists the fault points CMD reaches (call sites, each with the decision key where it was first
//! reached); then one run per (point, fault the engine allows there), each an exact `[[inject]]`
//! at that key. Points first reached in those runs (retry and cleanup paths) join the frontier,
//! wave after wave, until none is left or the budget is spent. Failures are deduplicated by point
//! and outcome; each keeps its run's policy as a frozen repro, checked by replaying it once.
//! A policy with `[[process]]` makes every run a `chaos-ctl run` of that system (`system.rs`):
//! each process's points are its own, named by the process.

mod points;
mod report;
mod runs;
mod system;

use crate::cli::ExploreArgs;
use crate::failure::Failure;
use crate::paths::absolute;
use chaos_engine::explore::faults_for;
use chaos_engine::kind::FdKind;
use chaos_engine::op::Op;
use points::Point;
use runs::{RunResult, Setup, Verdict};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use system::System;

/// Explore's exit status when some failure was found (its own failures are 125).
pub const FOUND_FAILURES: u8 = 1;

/// One run to make: a fault at a point.
#[derive(Clone)]
pub struct Task {
    pub point: Point,
    pub fault: String,
}

pub fn explore(args: ExploreArgs) -> Result<u8, Failure> {
    crate::trial::catch_interrupts();
    let shard = match &args.partition {
        Some(spec) => Some(crate::sweep::parse_partition(spec)?),
        None => None,
    };
    let timeout = crate::trial::timeout_arg(&args.timeout)?;
    if args.budget == 0 {
        return Err(Failure::own("--budget must be at least 1 run"));
    }
    if args.nth == 0 {
        return Err(Failure::own(
            "--nth must be at least 1 (1: the first time a point is reached)",
        ));
    }
    let jobs = match args.jobs {
        Some(0) => return Err(Failure::own("-j/--jobs must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let (base, system) = base_policy(args.policy.as_ref())?;
    if system.is_none() && args.cmd.is_empty() {
        return Err(Failure::with(
            crate::failure::USAGE,
            "no command given; expected `chaos-ctl explore [OPTIONS] -- CMD [ARGS…]` (only a \
             policy with [[process]] entries runs without one)",
        ));
    }
    let junit = match &args.junit {
        Some(p) => Some(crate::sweep::check_writable_file(p, "JUnit report")?),
        None => None,
    };
    let out = absolute(&args.out)?;
    std::fs::create_dir_all(&out).map_err(|e| {
        Failure::own(format!(
            "cannot use {} for explore's output: {e}",
            out.display()
        ))
    })?;
    let programs = system.iter().flat_map(|s| s.programs.iter());
    for program in programs.chain(args.cmd.first()) {
        crate::launch::preflight(program, args.backend)?;
    }
    let shim = crate::shim_path::find_shim()?;
    let setup = Setup {
        cmd: &args.cmd,
        system: system.as_ref(),
        shim: &shim,
        out: &out,
        base: &base,
        timeout,
        backend: args.backend,
        nth: args.nth,
    };

    let discovery = runs::run(&setup, &runs::discovery_name(args.nth), None)?;
    if discovery.verdict != Verdict::Pass {
        return Err(Failure::own(format!(
            "{} {} with no fault injected (log {}): explore needs a run that passes\n{}",
            setup.what(),
            discovery.outcome,
            discovery.log.display(),
            discovery.tail
        )));
    }
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut points: Vec<Point> = Vec::new();
    let mut wave = new_points(&discovery.points, &mut known);
    let mut results: Vec<(Task, RunResult)> = Vec::new();
    let mut unexplored: Vec<Task> = Vec::new();
    let mut first_wave = true;
    while !wave.is_empty() && crate::trial::interrupted().is_none() {
        points.extend(wave.iter().cloned());
        let mut tasks: Vec<Task> = wave.iter().flat_map(tasks_at).collect();
        if first_wave && let Some((k, n)) = shard {
            tasks = tasks
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % n == k - 1)
                .map(|(_, t)| t)
                .collect();
        }
        first_wave = false;
        let room = args.budget.saturating_sub(results.len());
        if tasks.len() > room {
            unexplored.extend(tasks.split_off(room));
        }
        let done = run_all(&setup, &tasks, jobs)?;
        let found: Vec<Point> = done.iter().flat_map(|r| r.points.clone()).collect();
        results.extend(tasks.into_iter().zip(done));
        wave = new_points(&found, &mut known);
        if results.len() >= args.budget {
            points.extend(wave.iter().cloned());
            unexplored.extend(wave.iter().flat_map(tasks_at));
            break;
        }
    }
    let found = report::Found {
        points: &points,
        results: &results,
        unexplored: &unexplored,
        interrupted: crate::trial::interrupted(),
    };
    report::report(&args, &setup, &found, junit.as_deref())
}

/// The points of `found` not seen before, in a fixed order (by id), so every explore of the same
/// program walks the same frontier.
fn new_points(found: &[Point], known: &mut BTreeSet<String>) -> Vec<Point> {
    let mut fresh: Vec<Point> = Vec::new();
    for p in found {
        if !known.contains(&p.id) && !fresh.iter().any(|f| f.id == p.id) {
            fresh.push(p.clone());
        }
    }
    fresh.sort_by(|a, b| a.id.cmp(&b.id));
    known.extend(fresh.iter().map(|p| p.id.clone()));
    fresh
}

/// The runs a point asks for: one per fault the engine allows for its op and fd kind.
fn tasks_at(point: &Point) -> Vec<Task> {
    let Some(op) = Op::from_name(&point.op) else {
        return Vec::new();
    };
    let kind = FdKind::ALL
        .into_iter()
        .find(|k| k.name() == point.kind)
        .unwrap_or(FdKind::Other);
    faults_for(op, kind)
        .into_iter()
        .map(|fault| Task {
            point: point.clone(),
            fault,
        })
        .collect()
}

/// Runs `tasks`, `jobs` at a time; results in the tasks' order.
fn run_all(setup: &Setup, tasks: &[Task], jobs: usize) -> Result<Vec<RunResult>, Failure> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<RunResult, Failure>>>> =
        Mutex::new((0..tasks.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(tasks.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(task) = tasks.get(i) else { break };
                    let name = runs::run_name(&task.point.id, &task.fault, setup.nth);
                    let r = runs::run(setup, &name, Some((&task.point, &task.fault)));
                    let failed = r.is_err();
                    slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                    if failed {
                        next.store(tasks.len(), Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut done = Vec::new();
    for slot in slots {
        match slot {
            Some(r) => done.push(r?),
            None => break,
        }
    }
    Ok(done)
}

/// The user's policy without its rules and injections (every run adds its own one), or an empty
/// policy; and the system of processes it declares, if it does.
fn base_policy(path: Option<&PathBuf>) -> Result<(String, Option<System>), Failure> {
    let Some(path) = path else {
        return Ok(("seed = 1\n".to_string(), None));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::own(format!("cannot read policy {}: {e}", path.display())))?;
    let policy = chaos_engine::parse::parse_policy(&text, &path.display().to_string())
        .map_err(|e| Failure::own(e.to_string()))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| Failure::own(format!("{}: {e}", path.display())))?;
    table.remove("rules");
    table.remove("inject");
    // A process's `rules` list names the user's rules, which are gone.
    if let Some(toml::Value::Array(processes)) = table.get_mut("process") {
        for p in processes.iter_mut().filter_map(toml::Value::as_table_mut) {
            p.remove("rules");
        }
    }
    let text = toml::to_string(&table).map_err(|e| Failure::own(e.to_string()))?;
    Ok((text, System::of(&policy)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: &str) -> Point {
        Point {
            id: id.to_string(),
            op: "write".into(),
            kind: "pipe".into(),
            target: String::new(),
            process: 1,
            conn: 2,
            site: "tx@0#0".into(),
            in_process: String::new(),
        }
    }

    #[test]
    fn the_frontier_takes_each_point_once_in_a_fixed_order() {
        let mut known = BTreeSet::new();
        let first = new_points(&[point("b"), point("a"), point("b")], &mut known);
        let ids: Vec<&str> = first.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let second = new_points(&[point("c"), point("a")], &mut known);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, "c");
    }

    #[test]
    fn a_pipe_write_point_asks_for_a_short_write() {
        let tasks = tasks_at(&point("w"));
        assert!(tasks.iter().any(|t| t.fault.contains("short")));
        assert!(tasks.iter().all(|t| t.point.id == "w"));
    }
}
