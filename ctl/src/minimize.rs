//! `chaos-ctl minimize LOG [--] [CMD…]`: delta debugging (Zeller's ddmin) over a failing run's
//! faults. Each candidate subset is frozen and run `--runs` times: it counts as failing only if every
//! run fails; runs that disagree make it flaky, which is reported and never trusted.

use crate::cli::MinimizeArgs;
use crate::failure::Failure;
use crate::frozen::{self, LoggedFault};
use crate::launch::{self, Launch, create_log};
use crate::log::Log;
use crate::output::errout;
use crate::paths::absolute;
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
    /// A system run's process events; the set being shrunk is the faults, then these.
    nemesis: &'a [frozen::LoggedNemesis],
    cmd: &'a [OsString],
    shim: PathBuf,
    dir: PathBuf,
    runs: u32,
    backend: crate::preflight::Backend,
    timeout: Duration,
    cache: HashMap<Vec<usize>, Verdict>,
    total_runs: usize,
    flaky: Vec<Vec<usize>>,
    /// The smallest subset seen failing so far (what an interrupted minimize can still offer).
    best: Option<Vec<usize>>,
    /// On a terminal: runs made, the smallest failing set so far, time taken.
    progress: Option<indicatif::ProgressBar>,
}

impl Tester<'_> {
    fn policy_text(&self, subset: &[usize]) -> String {
        let n = self.faults.len();
        let chosen: Vec<&LoggedFault> = subset
            .iter()
            .filter(|&&i| i < n)
            .map(|&i| &self.faults[i])
            .collect();
        let events: Vec<&frozen::LoggedNemesis> = subset
            .iter()
            .filter(|&&i| i >= n)
            .map(|&i| &self.nemesis[i - n])
            .collect();
        frozen::render(self.original, self.log_path, &chosen, n, &events)
    }

    /// One line for item `i` of the set: a fault, or a process event.
    fn describe(&self, i: usize) -> &str {
        match self.faults.get(i) {
            Some(f) => &f.describe,
            None => &self.nemesis[i - self.faults.len()].describe,
        }
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
            let cmd = launch::trial_command(
                self.cmd,
                &Launch {
                    shim: &self.shim,
                    source: &source,
                    seed: None,
                    log: &log,
                    platform: None,
                    quirks: &[],
                    no_quirks: &[],
                    backend: self.backend,
                },
                self.original.system().is_some(),
            );
            let done = trial::run(cmd, &self.dir.join("candidate.out"), self.timeout)
                .map_err(|e| Failure::own(format!("{}: {e}", self.cmd[0].to_string_lossy())))?;
            if let Some(sig) = trial::interrupted() {
                return Err(Failure::quiet(trial::interrupted_status(sig)));
            }
            self.total_runs += 1;
            if let Some(bar) = &self.progress {
                bar.set_message(format!(
                    "{} run(s); smallest failing set so far: {} of {}",
                    self.total_runs,
                    self.best
                        .as_ref()
                        .map_or(self.faults.len() + self.nemesis.len(), Vec::len),
                    self.faults.len() + self.nemesis.len()
                ));
            }
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
        if v == Verdict::Fails && self.best.as_ref().is_none_or(|b| subset.len() < b.len()) {
            self.best = Some(subset.to_vec());
        }
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
    original.require_start(&args.log)?;
    let faults = frozen::logged_faults(&original, &log_path)?;
    let nemesis = frozen::logged_nemesis(&original);
    let cmd = crate::replay::command_or_logged(&args.cmd, &original, &log_path)?;
    let timeout = trial::timeout_arg(&args.timeout)?;
    if args.runs == 0 {
        return Err(Failure::own("--runs must be at least 1"));
    }
    let out = match &args.out {
        Some(p) => absolute(p)?,
        None => log_path.with_extension("min.toml"),
    };
    let out = crate::sweep::check_writable_file(&out, "minimized policy")?;
    launch::preflight(&cmd[0], args.backend)?;
    trial::catch_interrupts();
    let dir = log_path.with_extension("minimize");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::own(format!("cannot create {}: {e}", dir.display())))?;
    let mut t = Tester {
        original: &original,
        log_path: &log_path,
        faults: &faults,
        nemesis: &nemesis,
        cmd: &cmd,
        shim: crate::shim_path::find_shim()?,
        dir: dir.clone(),
        runs: args.runs,
        backend: args.backend,
        timeout,
        cache: HashMap::new(),
        total_runs: 0,
        flaky: Vec::new(),
        best: None,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        }),
    };
    let size = faults.len() + nemesis.len();
    let all: Vec<usize> = (0..size).collect();
    let searched = search(&mut t, all);
    if let Some(bar) = t.progress.take() {
        bar.finish_and_clear();
    }
    if let Some(sig) = trial::interrupted() {
        let _ = std::fs::remove_dir_all(&dir);
        return interrupted(&t, &out, sig);
    }
    let Some(minimal) = searched? else {
        let _ = std::fs::remove_dir_all(&dir);
        errout!(
            "chaos: minimize: replaying all {} of {} {} ({}), so there is nothing to shrink; the \
             failure depended on something the log does not hold (timing, input)",
            crate::account::count(size, "fault", "faults"),
            log_path.display(),
            if t.cache.get(&(0..size).collect::<Vec<_>>()) == Some(&Verdict::Flaky) {
                "is flaky"
            } else {
                "passes"
            },
            crate::account::count(t.total_runs, "run", "runs")
        );
        return Ok(NOT_FAILING);
    };
    let what = if nemesis.is_empty() {
        "faults"
    } else {
        "faults and process events"
    };
    let text = t.policy_text(&minimal);
    frozen::check(&text, "minimized policy")?;
    std::fs::write(&out, &text)
        .map_err(|e| Failure::own(format!("cannot write {}: {e}", out.display())))?;
    let _ = std::fs::remove_dir_all(&dir);
    errout!(
        "chaos: minimize: {} {what} → {} {what}, {} runs{}",
        size,
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
        errout!("  {}", t.describe(i));
    }
    if minimal.is_empty() {
        errout!("chaos: the program fails with no fault injected at all");
    }
    errout!("chaos: frozen policy {}", out.display());
    Ok(0)
}

/// The minimal failing subset, or None when replaying every fault does not fail.
fn search(t: &mut Tester, all: Vec<usize>) -> Result<Option<Vec<usize>>, Failure> {
    if t.verdict(&all)? != Verdict::Fails {
        return Ok(None);
    }
    if t.fails(&[])? {
        return Ok(Some(Vec::new()));
    }
    ddmin(t, all).map(Some)
}

/// SIGINT/SIGTERM: the run in progress was killed; report how far the search got and keep the
/// smallest failing set found, which is a real (if not minimal) reproduction.
fn interrupted(t: &Tester, out: &Path, sig: i32) -> Result<u8, Failure> {
    let signal = chaos_engine::signal::signal_name(sig);
    match &t.best {
        None => errout!(
            "chaos: minimize interrupted by {signal} after {} run(s), before any failing set was \
             confirmed; nothing written",
            t.total_runs
        ),
        Some(best) => {
            let text = t.policy_text(best);
            let written = frozen::check(&text, "minimized policy")
                .and_then(|_| {
                    std::fs::write(out, &text)
                        .map_err(|e| Failure::own(format!("cannot write {}: {e}", out.display())))
                })
                .map(|_| format!("; frozen policy {}", out.display()));
            errout!(
                "chaos: minimize interrupted by {signal} after {} run(s): smallest failing set so \
                 far {} of {} fault(s) (not yet minimal){}",
                t.total_runs,
                best.len(),
                t.faults.len() + t.nemesis.len(),
                written.unwrap_or_else(|e| format!("; {}", e.message))
            );
        }
    }
    Ok(trial::interrupted_status(sig))
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
