//! `chaos-ctl minimize LOG [--] [CMD…]`: delta debugging (Zeller's ddmin) over a failing run's
//! faults. Each candidate subset is frozen and run `--runs` times: it counts as failing only if every
//! run fails; runs that disagree make it flaky, which is reported and never trusted.

use crate::cli::MinimizeArgs;
use crate::events::Log;
use crate::failure::Failure;
use crate::frozen::{self, LoggedFault};
use crate::launch::{self, Launch, absolute, create_log, duration_arg};
use crate::policy_source::PolicySource;
use crate::trial;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `minimize`'s exit status when the full replay does not fail, so there is nothing to shrink.
pub const NOT_FAILING: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Fails,
    Passes,
    Flaky,
}

/// Runs candidates and remembers their verdicts.
struct Tester<'a> {
    original: &'a Log,
    log_path: &'a Path,
    faults: &'a [LoggedFault],
    cmd: &'a [OsString],
    shim: PathBuf,
    dir: PathBuf,
    runs: u32,
    timeout: Duration,
    cache: HashMap<Vec<usize>, Verdict>,
    total_runs: usize,
    flaky: Vec<Vec<usize>>,
}

impl Tester<'_> {
    fn policy_text(&self, subset: &[usize]) -> String {
        let chosen: Vec<&LoggedFault> = subset.iter().map(|&i| &self.faults[i]).collect();
        frozen::render(self.original, self.log_path, &chosen, self.faults.len())
    }

    fn verdict(&mut self, subset: &[usize]) -> Result<Verdict, Failure> {
        if let Some(v) = self.cache.get(subset) {
            return Ok(*v);
        }
        let policy = self.dir.join("candidate.toml");
        std::fs::write(&policy, self.policy_text(subset))
            .map_err(|e| Failure::own(format!("cannot write {}: {e}", policy.display())))?;
        let source = PolicySource::File(policy);
        let log = self.dir.join("candidate.jsonl");
        let (mut fails, mut passes) = (0, 0);
        for _ in 0..self.runs {
            create_log(&log)?;
            let cmd = launch::command(
                self.cmd,
                &Launch {
                    shim: &self.shim,
                    source: &source,
                    seed: None,
                    log: &log,
                    platform: None,
                    quirks: &[],
                    no_quirks: &[],
                },
            );
            let done = trial::run(cmd, &self.dir.join("candidate.out"), self.timeout)
                .map_err(|e| Failure::own(format!("{}: {e}", self.cmd[0].to_string_lossy())))?;
            self.total_runs += 1;
            if !launch::intercepted(&log) {
                return Err(Failure::own(format!(
                    "{} never loaded the shim: nothing was injected",
                    self.cmd[0].to_string_lossy()
                )));
            }
            if done.outcome.passed() {
                passes += 1;
            } else {
                fails += 1;
            }
        }
        let v = match (fails, passes) {
            (_, 0) => Verdict::Fails,
            (0, _) => Verdict::Passes,
            _ => {
                self.flaky.push(subset.to_vec());
                Verdict::Flaky
            }
        };
        self.cache.insert(subset.to_vec(), v);
        Ok(v)
    }

    fn fails(&mut self, subset: &[usize]) -> Result<bool, Failure> {
        Ok(self.verdict(subset)? == Verdict::Fails)
    }
}

/// `n` nearly equal consecutive chunks of `set`.
fn chunks(set: &[usize], n: usize) -> Vec<Vec<usize>> {
    let (base, extra) = (set.len() / n, set.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        out.push(set[at..at + len].to_vec());
        at += len;
    }
    out
}

/// ddmin: a 1-minimal failing subset of `set` (removing any one fault makes it stop failing).
fn ddmin(t: &mut Tester, mut set: Vec<usize>) -> Result<Vec<usize>, Failure> {
    let mut n = 2;
    while set.len() >= 2 {
        let parts = chunks(&set, n);
        let mut reduced = false;
        for part in &parts {
            if t.fails(part)? {
                set = part.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && n > 2 {
            for i in 0..parts.len() {
                let complement: Vec<usize> = parts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, p)| p.iter().copied())
                    .collect();
                if t.fails(&complement)? {
                    set = complement;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= set.len() {
                break;
            }
            n = (2 * n).min(set.len());
        }
    }
    Ok(set)
}

pub fn minimize(args: MinimizeArgs) -> Result<u8, Failure> {
    let log_path = absolute(&args.log)?;
    let original = Log::read_or_fail(&log_path)?;
    let faults = frozen::logged_faults(&original, &log_path)?;
    let cmd = crate::replay::command_or_logged(&args.cmd, &original, &log_path)?;
    let timeout = duration_arg(&args.timeout, "--timeout")?;
    if args.runs == 0 {
        return Err(Failure::own("--runs must be at least 1"));
    }
    launch::preflight(&cmd[0])?;
    let out = match &args.out {
        Some(p) => absolute(p)?,
        None => log_path.with_extension("min.toml"),
    };
    let dir = log_path.with_extension("minimize");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::own(format!("cannot create {}: {e}", dir.display())))?;
    let mut t = Tester {
        original: &original,
        log_path: &log_path,
        faults: &faults,
        cmd: &cmd,
        shim: crate::shim_path::find_shim()?,
        dir: dir.clone(),
        runs: args.runs,
        timeout,
        cache: HashMap::new(),
        total_runs: 0,
        flaky: Vec::new(),
    };
    let all: Vec<usize> = (0..faults.len()).collect();
    let full = t.verdict(&all)?;
    if full != Verdict::Fails {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "chaos: minimize: replaying all {} fault(s) of {} {} ({} run(s)), so there is nothing \
             to shrink; the failure depended on something the log does not hold (timing, input)",
            faults.len(),
            log_path.display(),
            if full == Verdict::Flaky {
                "is flaky"
            } else {
                "passes"
            },
            t.total_runs
        );
        return Ok(NOT_FAILING);
    }
    let minimal = if t.fails(&[])? {
        Vec::new()
    } else {
        ddmin(&mut t, all)?
    };
    let text = t.policy_text(&minimal);
    frozen::check(&text, "minimized policy")?;
    std::fs::write(&out, &text)
        .map_err(|e| Failure::own(format!("cannot write {}: {e}", out.display())))?;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "chaos: minimize: {} faults → {} faults, {} runs{}",
        faults.len(),
        minimal.len(),
        t.total_runs,
        match t.flaky.len() {
            0 => String::new(),
            n => format!(
                " ({n} flaky candidate(s) retried {} times and not trusted)",
                args.runs
            ),
        }
    );
    for &i in &minimal {
        eprintln!("  {}", faults[i].describe);
    }
    if minimal.is_empty() {
        eprintln!("chaos: the program fails with no fault injected at all");
    }
    eprintln!("chaos: frozen policy {}", out.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_cover_the_set_in_order() {
        let set: Vec<usize> = (0..7).collect();
        let parts = chunks(&set, 3);
        assert_eq!(parts, vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
        assert_eq!(parts.concat(), set);
    }
}
