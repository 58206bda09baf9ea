//! Explore's account: a table of points with what was tried there and what came of it, the
//! distinct failures with their frozen repro (each replayed once), what the budget left
//! unexplored; `--json` on stdout, `--junit` with one testcase per (point, fault).

use super::runs::{self, RunResult, Setup, Verdict};
use super::{ExploreArgs, FOUND_FAILURES, Task};
use crate::failure::Failure;
use crate::output::{errout, out};
use crate::sweep::shell_line;
use points_table::Row;
use serde::Serialize;
use std::path::{Path, PathBuf};

pub struct Found<'a> {
    pub points: &'a [super::Point],
    pub results: &'a [(Task, RunResult)],
    pub unexplored: &'a [Task],
    pub interrupted: Option<i32>,
}

/// One failure, deduplicated by (point, outcome): the first run that showed it.
#[derive(Serialize)]
struct Distinct {
    point: String,
    place: String,
    fault: String,
    verdict: Verdict,
    outcome: String,
    /// The frozen policy that reproduces it.
    policy: PathBuf,
    /// Its replay came to the same outcome.
    reproduced: bool,
    /// Other faults at the same point with the same outcome.
    also: Vec<String>,
    tail: String,
}

mod points_table {
    use serde::Serialize;

    /// A point's line in the table.
    #[derive(Serialize, Default)]
    pub struct Row {
        pub point: String,
        pub place: String,
        pub op: String,
        pub kind: String,
        pub target: String,
        pub key: String,
        pub tried: usize,
        pub passed: usize,
        pub failed: usize,
        pub not_possible: usize,
        pub unexplored: usize,
    }
}

pub fn report(
    args: &ExploreArgs,
    setup: &Setup,
    found: &Found,
    junit: Option<&Path>,
) -> Result<u8, Failure> {
    let distinct = distinct_failures(setup, found)?;
    let rows: Vec<Row> = found
        .points
        .iter()
        .map(|p| {
            let here = || found.results.iter().filter(|(t, _)| t.point.id == p.id);
            let count = |f: fn(&Verdict) -> bool| here().filter(|(_, r)| f(&r.verdict)).count();
            Row {
                point: p.id.clone(),
                place: p.place(),
                op: p.op.clone(),
                kind: p.kind.clone(),
                target: p.target.clone(),
                key: format!("{:016x}-{:016x}/{}", p.process, p.conn, p.site),
                tried: here().count(),
                passed: count(|v| *v == Verdict::Pass),
                failed: count(Verdict::failed),
                not_possible: count(|v| *v == Verdict::NotPossibleHere),
                unexplored: found
                    .unexplored
                    .iter()
                    .filter(|t| t.point.id == p.id)
                    .count(),
            }
        })
        .collect();
    let cmd_line = shell_line(&args.cmd);
    let failed_runs = found
        .results
        .iter()
        .filter(|(_, r)| r.verdict.failed())
        .count();
    errout!(
        "chaos: explore{} found {} point(s), made {} run(s): {} failed ({} distinct), {} passed, {} \
         not possible here, {} left unexplored (--budget)",
        if found.interrupted.is_some() {
            " (interrupted)"
        } else {
            ""
        },
        rows.len(),
        found.results.len(),
        failed_runs,
        distinct.len(),
        rows.iter().map(|r| r.passed).sum::<usize>(),
        rows.iter().map(|r| r.not_possible).sum::<usize>(),
        found.unexplored.len(),
    );
    errout!(
        "  {:<36} {:<6} {:<28} {:>5} {:>5} {:>5} {:>8} {:>6}",
        "point",
        "kind",
        "target",
        "tried",
        "pass",
        "fail",
        "not here",
        "left"
    );
    for r in &rows {
        errout!(
            "  {:<36} {:<6} {:<28} {:>5} {:>5} {:>5} {:>8} {:>6}",
            r.place,
            r.kind,
            clip(&r.target, 28),
            r.tried,
            r.passed,
            r.failed,
            r.not_possible,
            r.unexplored
        );
    }
    for (i, d) in distinct.iter().enumerate() {
        errout!(
            "chaos: failure {}: {} at {}: {} ({}){}\n  reproduce: chaos-ctl run --policy {} -- \
             {cmd_line}\n  {}",
            i + 1,
            d.fault,
            d.place,
            d.verdict.name(),
            d.outcome,
            if d.also.is_empty() {
                String::new()
            } else {
                format!("; the same with {}", d.also.join(", "))
            },
            d.policy.display(),
            if d.reproduced {
                "replayed: the same outcome".to_string()
            } else {
                "replayed: a different outcome (flaky)".to_string()
            }
        );
    }
    if let Some(path) = junit {
        write_junit(path, &cmd_line, found)?;
    }
    if args.json {
        #[derive(Serialize)]
        struct Json<'a> {
            points: &'a [Row],
            runs: Vec<&'a RunResult>,
            failures: &'a [Distinct],
            unexplored: Vec<(String, String)>,
        }
        let json = Json {
            points: &rows,
            runs: found.results.iter().map(|(_, r)| r).collect(),
            failures: &distinct,
            unexplored: found
                .unexplored
                .iter()
                .map(|t| (t.point.id.clone(), t.fault.clone()))
                .collect(),
        };
        out!(
            "{}\n",
            serde_json::to_string_pretty(&json).expect("serialisable")
        )?;
    }
    Ok(match found.interrupted {
        Some(sig) => crate::trial::interrupted_status(sig),
        None if distinct.is_empty() => 0,
        None => FOUND_FAILURES,
    })
}

fn clip(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_string();
    }
    let tail: String = text.chars().rev().take(n - 1).collect();
    format!("…{}", tail.chars().rev().collect::<String>())
}

/// Failures grouped by (point, outcome), each with its run's policy kept under
/// `--out/failures/` and replayed once.
fn distinct_failures(setup: &Setup, found: &Found) -> Result<Vec<Distinct>, Failure> {
    let mut distinct: Vec<Distinct> = Vec::new();
    for (task, r) in found.results.iter().filter(|(_, r)| r.verdict.failed()) {
        if let Some(d) = distinct
            .iter_mut()
            .find(|d| d.point == r.point && d.outcome == r.outcome)
        {
            d.also.push(task.fault.clone());
            continue;
        }
        distinct.push(Distinct {
            point: r.point.clone(),
            place: task.point.place(),
            fault: task.fault.clone(),
            verdict: r.verdict.clone(),
            outcome: r.outcome.clone(),
            policy: r.policy.clone(),
            reproduced: false,
            also: Vec::new(),
            tail: r.tail.clone(),
        });
    }
    let dir = setup.out.join("failures");
    let cannot = |e: std::io::Error| Failure::own(format!("cannot write {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(cannot)?;
    for (i, d) in distinct.iter_mut().enumerate() {
        let text = std::fs::read_to_string(&d.policy).map_err(cannot)?;
        let frozen = dir.join(format!("failure-{}.toml", i + 1));
        let header = format!(
            "# Frozen by `chaos-ctl explore`: {} at {} gave {} ({}).\n# Run it: chaos-ctl run \
             --policy THIS_FILE -- CMD\n",
            d.fault,
            d.place,
            d.verdict.name(),
            d.outcome
        );
        std::fs::write(&frozen, header + &text).map_err(cannot)?;
        d.policy = frozen;
        let replay = dir.join(format!("failure-{}.replay", i + 1));
        let log = replay.with_extension("jsonl");
        let (outcome, _) =
            runs::run_policy(setup, &d.policy, &log, &replay.with_extension("out"), false)?;
        d.reproduced = runs::judge(setup, &outcome, &runs::read_log(&log)).1 == d.outcome;
    }
    Ok(distinct)
}

fn write_junit(path: &Path, cmd_line: &str, found: &Found) -> Result<(), Failure> {
    let mut cases: Vec<crate::junit::Case> = found
        .results
        .iter()
        .map(|(t, r)| crate::junit::Case {
            name: format!("{} at {}", t.fault, t.point.place()),
            seconds: r.seconds,
            failure: r.verdict.failed().then(|| {
                (
                    format!("{}: {}", r.verdict.name(), r.outcome),
                    format!(
                        "reproduce: chaos-ctl run --policy {} -- {cmd_line}\nlog: {}\n\n{}",
                        r.policy.display(),
                        r.log.display(),
                        r.tail
                    ),
                )
            }),
            skipped: (r.verdict == Verdict::NotPossibleHere).then(|| {
                "not possible here: the realism model refused this fault at this place".to_string()
            }),
        })
        .collect();
    cases.extend(found.unexplored.iter().map(|t| crate::junit::Case {
        name: format!("{} at {}", t.fault, t.point.place()),
        seconds: 0.0,
        failure: None,
        skipped: Some("not run: over --budget".to_string()),
    }));
    let xml = crate::junit::render(&format!("chaos explore: {cmd_line}"), &cases);
    std::fs::write(path, xml)
        .map_err(|e| Failure::own(format!("cannot write {}: {e}", path.display())))
}
