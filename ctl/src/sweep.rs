//! `chaos-ctl sweep --seeds A..B [-j N] … -- CMD`: CMD under each seed, N at a time. A seed fails
//! when CMD exits nonzero or runs past the timeout. Failing seeds keep their log and output; the
//! summary gives the command that reproduces each.

use crate::cli::SweepArgs;
use crate::failure::Failure;
use crate::junit;
use crate::launch::{self, Launch, create_log};
use crate::output::errout;
use crate::paths::absolute;
use crate::policy_source::PolicySource;
use crate::trial::{self, Outcome};
use indicatif::{ProgressBar, ProgressStyle};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A sweep's exit status when some seed failed (chaos-ctl's own failures are 125).
pub const SOME_SEED_FAILED: u8 = 1;

/// `A..B`, inclusive.
fn parse_seeds(text: &str) -> Result<Vec<u64>, Failure> {
    let bad = || {
        Failure::own(format!(
            "--seeds `{text}`: expected A..B with A <= B, e.g. 1..200"
        ))
    };
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a > b {
        return Err(bad());
    }
    Ok((a..=b).collect())
}

/// `K/N` with 1 <= K <= N: shard K of N (sweep and explore).
pub fn parse_partition(spec: &str) -> Result<(usize, usize), Failure> {
    let bad = || {
        Failure::own(format!(
            "--partition `{spec}`: expected K/N with 1 <= K <= N, e.g. 2/4"
        ))
    };
    let (k, n) = spec.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// `K/N`: the seeds at positions K-1, K-1+N, K-1+2N… of the list.
fn partition(seeds: Vec<u64>, spec: Option<&str>) -> Result<Vec<u64>, Failure> {
    let Some(spec) = spec else { return Ok(seeds) };
    let (k, n) = parse_partition(spec)?;
    let total = seeds.len();
    let shard: Vec<u64> = seeds.into_iter().skip(k - 1).step_by(n).collect();
    if shard.is_empty() {
        return Err(Failure::own(format!(
            "--partition `{spec}`: shard {k} of {n} has no seeds (there are only {total}); use \
             fewer shards or more seeds"
        )));
    }
    Ok(shard)
}

struct SeedResult {
    seed: u64,
    outcome: Outcome,
    elapsed: Duration,
    log: PathBuf,
    output: PathBuf,
    intercepted: bool,
}

pub fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

pub fn shell_line(words: &[OsString]) -> String {
    words
        .iter()
        .map(|w| shell_word(&w.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last lines of a run's output, for the report.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Checks before any run that the JUnit report can be written (creating its directory), so a
/// sweep does not fail on it after all its seeds ran. Leaves no file behind.
pub fn check_writable_file(path: &Path, what: &str) -> Result<PathBuf, Failure> {
    let path = absolute(path)?;
    let cannot = |e: std::io::Error| {
        Failure::own(format!("cannot write the {what} {}: {e}", path.display()))
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(cannot)?;
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(cannot)?;
    if !existed {
        let _ = std::fs::remove_file(&path);
    }
    Ok(path)
}

/// Creates the output directory, checks that it is writable, and removes the `seed-N.jsonl` and
/// `seed-N.out` files an earlier sweep left there, so every file in it is this sweep's.
fn prepare_out_dir(dir: &Path) -> Result<(), Failure> {
    let cannot = |e: std::io::Error| {
        Failure::own(format!(
            "cannot use {} for the sweep's output: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(cannot)?;
    for entry in std::fs::read_dir(dir).map_err(cannot)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = name.strip_prefix("seed-").is_some_and(|rest| {
            let (n, ext) = rest.split_once('.').unwrap_or((rest, ""));
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && ["jsonl", "out"].contains(&ext)
        });
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(entry.path()).map_err(cannot)?;
        }
    }
    let probe = dir.join(format!(".chaos-sweep-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(cannot)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

pub fn sweep(args: SweepArgs) -> Result<u8, Failure> {
    trial::catch_interrupts();
    let seeds = partition(parse_seeds(&args.seeds)?, args.partition.as_deref())?;
    let timeout = trial::timeout_arg(&args.timeout)?;
    let jobs = match args.jobs {
        Some(0) => return Err(Failure::own("-j/--jobs must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let source = PolicySource::from_args(&args.source)?;
    let system = !source.load()?.system.is_empty();
    chaos_engine::quirk::resolve(args.platform.as_deref(), &[], &[]).map_err(Failure::own)?;
    let junit_path = match &args.junit {
        Some(p) => Some(check_writable_file(p, "JUnit report")?),
        None => None,
    };
    let out_dir = absolute(&args.out)?;
    prepare_out_dir(&out_dir)?;
    launch::preflight(&args.cmd[0], args.backend)?;
    let shim = crate::shim_path::find_shim()?;

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Result<SeedResult, Failure>>();
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(seeds.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds, {msg} [{elapsed}, ~{eta} left]",
            )
            .expect("valid template"),
        );
        Some(bar)
    } else {
        None
    };
    let mut results: Vec<SeedResult> = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(seeds.len()) {
            let tx = tx.clone();
            let (next, stop, seeds, source, shim, out_dir, args) =
                (&next, &stop, &seeds, &source, &shim, &out_dir, &args);
            scope.spawn(move || {
                loop {
                    if stop.load(Ordering::SeqCst) || trial::interrupted().is_some() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&seed) = seeds.get(i) else { break };
                    let log = out_dir.join(format!("seed-{seed}.jsonl"));
                    let output = out_dir.join(format!("seed-{seed}.out"));
                    let result = create_log(&log).and_then(|_| {
                        let cmd = launch::trial_command(
                            &args.cmd,
                            &Launch {
                                shim,
                                source,
                                seed: Some(seed),
                                log: &log,
                                platform: args.platform.as_deref(),
                                quirks: &[],
                                no_quirks: &[],
                                backend: args.backend,
                            },
                            system,
                        );
                        let done = trial::run(cmd, &output, timeout).map_err(|e| {
                            Failure::own(format!("{}: {e}", args.cmd[0].to_string_lossy()))
                        })?;
                        Ok(SeedResult {
                            seed,
                            intercepted: launch::intercepted(&log),
                            outcome: done.outcome,
                            elapsed: done.elapsed,
                            log,
                            output,
                        })
                    });
                    let failed = !matches!(&result, Ok(r) if r.outcome.passed());
                    if failed && !args.keep_going {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut failures = 0;
        for result in rx {
            let r = match result {
                Ok(r) => r,
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    errout!("chaos-ctl: {}", e.message);
                    continue;
                }
            };
            if !r.outcome.passed() {
                failures += 1;
            }
            match &progress {
                Some(bar) => {
                    bar.inc(1);
                    bar.set_message(format!("{failures} failed"));
                }
                None => errout!(
                    "chaos: seed {}: {} ({:.2} s)",
                    r.seed,
                    r.outcome.describe(),
                    r.elapsed.as_secs_f64()
                ),
            }
            results.push(r);
        }
    });
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    results.sort_by_key(|r| r.seed);
    let interrupted = trial::interrupted();
    if interrupted.is_none()
        && let Some(r) = results.iter().find(|r| !r.intercepted)
    {
        return Err(Failure::own(format!(
            "seed {}: {} never loaded the shim (no `start` event in {}): nothing was injected",
            r.seed,
            args.cmd[0].to_string_lossy(),
            r.log.display()
        )));
    }
    let done = Done {
        seeds: &seeds,
        results: &results,
        elapsed: started.elapsed(),
        interrupted,
        junit: junit_path.as_deref(),
    };
    report(&args, &source, &done)
}

/// What a sweep did, for its report.
struct Done<'a> {
    seeds: &'a [u64],
    results: &'a [SeedResult],
    elapsed: Duration,
    /// The SIGINT or SIGTERM that cut it short.
    interrupted: Option<i32>,
    junit: Option<&'a Path>,
}

fn report(args: &SweepArgs, source: &PolicySource, done: &Done) -> Result<u8, Failure> {
    let Done {
        seeds,
        results,
        elapsed,
        interrupted,
        junit,
    } = *done;
    let cmd_line = shell_line(&args.cmd);
    let policy_flag = match source {
        PolicySource::File(p) => format!("--policy {}", shell_word(&p.to_string_lossy())),
        PolicySource::Profile(n) => format!("--profile {}", shell_word(n)),
    };
    let platform_flag = args
        .platform
        .as_deref()
        .map(|p| format!(" --platform {}", shell_word(p)))
        .unwrap_or_default();
    let reproduce = |seed: u64| {
        format!("chaos-ctl run --seed {seed} {policy_flag}{platform_flag} -- {cmd_line}")
    };
    let verdict = |r: &&SeedResult| r.outcome != Outcome::Interrupted;
    let failed: Vec<&SeedResult> = results
        .iter()
        .filter(verdict)
        .filter(|r| !r.outcome.passed())
        .collect();
    let cut = results.len() - results.iter().filter(verdict).count();
    for r in results.iter().filter(|r| !verdict(r) || r.outcome.passed()) {
        let _ = std::fs::remove_file(&r.log);
        let _ = std::fs::remove_file(&r.output);
    }
    let name = |sig: i32| chaos_engine::signal::signal_name(sig);
    errout!(
        "chaos: sweep {} {} of {} in {:.1} s: {} failed{}",
        if interrupted.is_some() {
            "interrupted: finished"
        } else {
            "ran"
        },
        results.len() - cut,
        crate::account::count(seeds.len(), "seed", "seeds"),
        elapsed.as_secs_f64(),
        failed.len(),
        match interrupted {
            Some(sig) => format!(", {cut} killed by chaos-ctl on {}", name(sig)),
            None => String::new(),
        }
    );
    if !failed.is_empty() {
        errout!("  {:<8} {:<20} {:<40} reproduce", "seed", "result", "log");
        for r in &failed {
            errout!(
                "  {:<8} {:<20} {:<40} {}",
                r.seed,
                r.outcome.describe(),
                r.log.display(),
                reproduce(r.seed)
            );
        }
        errout!(
            "chaos: exact replay: chaos-ctl replay LOG -- {cmd_line}; smallest failing set: \
             chaos-ctl minimize LOG -- {cmd_line}"
        );
    }
    if let Some(path) = junit {
        let not_run = match interrupted {
            Some(sig) => format!("not run: the sweep was interrupted by {}", name(sig)),
            None => {
                "not run: the sweep stopped at the first failure (--keep-going runs every seed)"
                    .to_string()
            }
        };
        let mut cases: Vec<(u64, junit::Case)> = results
            .iter()
            .map(|r| {
                (
                    r.seed,
                    junit::Case {
                        name: format!("seed {}", r.seed),
                        seconds: r.elapsed.as_secs_f64(),
                        skipped: (r.outcome == Outcome::Interrupted).then(|| {
                            format!(
                                "killed after {:.1} s: the sweep was interrupted by {}",
                                r.elapsed.as_secs_f64(),
                                interrupted.map_or_else(|| "a signal".to_string(), name)
                            )
                        }),
                        failure: (verdict(&r) && !r.outcome.passed()).then(|| {
                            (
                                r.outcome.describe(),
                                format!(
                                    "reproduce: {}\nlog: {}\n\n{}",
                                    reproduce(r.seed),
                                    r.log.display(),
                                    tail(&r.output, 40)
                                ),
                            )
                        }),
                    },
                )
            })
            .collect();
        let ran: std::collections::HashSet<u64> = results.iter().map(|r| r.seed).collect();
        cases.extend(seeds.iter().filter(|s| !ran.contains(s)).map(|&s| {
            let case = junit::Case {
                name: format!("seed {s}"),
                seconds: 0.0,
                failure: None,
                skipped: Some(not_run.clone()),
            };
            (s, case)
        }));
        cases.sort_by_key(|(seed, _)| *seed);
        let cases: Vec<junit::Case> = cases.into_iter().map(|(_, c)| c).collect();
        let xml = junit::render(&format!("chaos sweep: {cmd_line}"), &cases);
        std::fs::write(path, xml)
            .map_err(|e| Failure::own(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(match interrupted {
        Some(sig) => trial::interrupted_status(sig),
        None if failed.is_empty() => 0,
        None => SOME_SEED_FAILED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_and_partitions() {
        assert_eq!(parse_seeds("1..5").unwrap(), vec![1, 2, 3, 4, 5]);
        assert!(parse_seeds("5..1").is_err());
        assert!(parse_seeds("1-5").is_err());
        let all = parse_seeds("1..10").unwrap();
        assert_eq!(
            partition(all.clone(), Some("1/3")).unwrap(),
            vec![1, 4, 7, 10]
        );
        assert_eq!(partition(all.clone(), Some("3/3")).unwrap(), vec![3, 6, 9]);
        let mut union: Vec<u64> = (1..=3)
            .flat_map(|k| partition(all.clone(), Some(&format!("{k}/3"))).unwrap())
            .collect();
        union.sort();
        assert_eq!(union, all);
        for bad in ["0/3", "4/3", "1/0", "x"] {
            assert!(partition(all.clone(), Some(bad)).is_err(), "{bad}");
        }
        let three = parse_seeds("1..3").unwrap();
        assert_eq!(partition(three.clone(), Some("3/5")).unwrap(), vec![3]);
        assert!(partition(three, Some("5/5")).is_err());
    }
}
