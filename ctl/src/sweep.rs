//! `chaos-ctl sweep --seeds A..B [-j N] … -- CMD`: CMD under each seed, N at a time. A seed fails
//! when CMD exits nonzero or runs past the timeout. Failing seeds keep their log and output; the
//! summary gives the command that reproduces each.

use crate::cli::SweepArgs;
use crate::failure::Failure;
use crate::junit;
use crate::launch::{self, Launch, absolute, create_log, duration_arg};
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

/// `K/N`: the seeds at positions K-1, K-1+N, K-1+2N… of the list.
fn partition(seeds: Vec<u64>, spec: Option<&str>) -> Result<Vec<u64>, Failure> {
    let Some(spec) = spec else { return Ok(seeds) };
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
    Ok(seeds.into_iter().skip(k - 1).step_by(n).collect())
}

struct SeedResult {
    seed: u64,
    outcome: Outcome,
    elapsed: Duration,
    log: PathBuf,
    output: PathBuf,
    intercepted: bool,
}

fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

fn shell_line(words: &[OsString]) -> String {
    words
        .iter()
        .map(|w| shell_word(&w.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last lines of a run's output, for the report.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn sweep(args: SweepArgs) -> Result<u8, Failure> {
    let seeds = partition(parse_seeds(&args.seeds)?, args.partition.as_deref())?;
    let timeout = duration_arg(&args.timeout, "--timeout")?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let source = PolicySource::from_args(&args.source)?;
    source.load()?;
    chaos_engine::quirk::resolve(args.platform.as_deref(), &[], &[]).map_err(Failure::own)?;
    launch::preflight(&args.cmd[0])?;
    let shim = crate::shim_path::find_shim()?;
    let out_dir = absolute(&args.out)?;
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::own(format!("cannot create {}: {e}", out_dir.display())))?;

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Result<SeedResult, Failure>>();
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(seeds.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {msg} [{elapsed}]")
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
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&seed) = seeds.get(i) else { break };
                    let log = out_dir.join(format!("seed-{seed}.jsonl"));
                    let output = out_dir.join(format!("seed-{seed}.out"));
                    let result = create_log(&log).and_then(|_| {
                        let cmd = launch::command(
                            &args.cmd,
                            &Launch {
                                shim,
                                source,
                                seed: Some(seed),
                                log: &log,
                                platform: args.platform.as_deref(),
                                quirks: &[],
                                no_quirks: &[],
                            },
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
                    eprintln!("chaos-ctl: {}", e.message);
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
                None => eprintln!(
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
    if let Some(r) = results.iter().find(|r| !r.intercepted) {
        return Err(Failure::own(format!(
            "seed {}: {} never loaded the shim (no `start` event in {}): nothing was injected",
            r.seed,
            args.cmd[0].to_string_lossy(),
            r.log.display()
        )));
    }
    report(&args, &source, &seeds, &results, started.elapsed())
}

fn report(
    args: &SweepArgs,
    source: &PolicySource,
    seeds: &[u64],
    results: &[SeedResult],
    elapsed: Duration,
) -> Result<u8, Failure> {
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
    let failed: Vec<&SeedResult> = results.iter().filter(|r| !r.outcome.passed()).collect();
    for r in results.iter().filter(|r| r.outcome.passed()) {
        let _ = std::fs::remove_file(&r.log);
        let _ = std::fs::remove_file(&r.output);
    }
    eprintln!(
        "chaos: sweep ran {} of {} seed(s) in {:.1} s: {} failed",
        results.len(),
        seeds.len(),
        elapsed.as_secs_f64(),
        failed.len()
    );
    if !failed.is_empty() {
        eprintln!("  {:<8} {:<20} {:<40} reproduce", "seed", "result", "log");
        for r in &failed {
            eprintln!(
                "  {:<8} {:<20} {:<40} {}",
                r.seed,
                r.outcome.describe(),
                r.log.display(),
                reproduce(r.seed)
            );
        }
        eprintln!(
            "chaos: exact replay: chaos-ctl replay LOG -- {cmd_line}; smallest failing set: \
             chaos-ctl minimize LOG -- {cmd_line}"
        );
    }
    if let Some(path) = &args.junit {
        let cases: Vec<junit::Case> = results
            .iter()
            .map(|r| junit::Case {
                name: format!("seed {}", r.seed),
                seconds: r.elapsed.as_secs_f64(),
                failure: (!r.outcome.passed()).then(|| {
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
            })
            .collect();
        let xml = junit::render(&format!("chaos sweep: {cmd_line}"), &cases);
        std::fs::write(path, xml)
            .map_err(|e| Failure::own(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(if failed.is_empty() {
        0
    } else {
        SOME_SEED_FAILED
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
    }
}
