//! `[durability]` after a process of the run ends: a crash (SIGKILL: attrition's crash or wipe, a
//! `crash` fault, an OOM kill, a kill from outside) undoes what its shims journaled and no sync
//! made durable, newest first, before anything restarts; a graceful end keeps everything (the
//! page cache would have been written back). Each undone change is logged as a `durability`
//! line, `undone`, or `undo-failed` with the error when the file could not be put back (the
//! crash state then is not one Linux could leave, and the summary says so). Which changes are undone is the engine's (`chaos_engine::durability::to_undo`).

use chaos_engine::durability::{Record, Why, to_undo, torn_prefix};
use chaos_engine::policy::Policy;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The journal directory of process `name` (`None`: a single program's run).
pub fn journal_dir(run_dir: &Path, name: Option<&str>) -> PathBuf {
    run_dir
        .join("durability")
        .join(chaos_engine::durability::dir_name(name))
}

/// Makes the run's `durability/` directory, writable by the processes of any user the run starts
/// (each makes its own journal directory there).
pub fn prepare(policy: &Policy, run_dir: &Path) -> Result<(), crate::failure::Failure> {
    if policy.durability.is_none() {
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = run_dir.join("durability");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)))
        .map_err(|e| crate::failure::Failure::own(format!("cannot make {}: {e}", dir.display())))
}

/// A process ended: undo its unsynced changes if it `crashed`, then start its journal afresh
/// (what is on disk now is all durable). `seed`: the run's, which draws a torn write's prefix.
/// `power_loss`: the supervisor killed it as a power loss (attrition, `[[nemesis]]`, control),
/// which undoes even under `crash = "process"`. Returns how many changes it tried to undo.
pub fn after_exit(
    policy: &Policy,
    seed: u64,
    run_dir: &Path,
    name: Option<&str>,
    crashed: bool,
    power_loss: bool,
    log: &Path,
) -> usize {
    let Some(durability) = &policy.durability else {
        return 0;
    };
    let dir = journal_dir(run_dir, name);
    if !dir.exists() {
        return 0;
    }
    let _one_at_a_time = UNDOING.lock();
    // A SIGKILL is a power loss unless the policy says only the process died; a `power-loss`
    // fault or event always is one.
    let lost = crashed
        && (power_loss
            || durability.crash == chaos_engine::durability::Crash::PowerLoss
            || power_lost(log, name));
    let undone = if lost {
        restore(&dir, durability, seed, name, log, None)
    } else {
        0
    };
    let _ = std::fs::remove_dir_all(&dir);
    undone
}

/// Whether a `power-loss` fault took down the processes journaling as `name` (None: the
/// program of a one-program run) in their current life: one of their fault lines says so, since
/// the last time chaos-ctl started the process.
fn power_lost(log: &Path, name: Option<&str>) -> bool {
    let Ok(log) = crate::log::Log::read(log) else {
        return false;
    };
    let since = name.map_or(0, |n| {
        log.process_events()
            .filter(|e| e.name == n && matches!(e.what.as_str(), "start" | "restart"))
            .map(|e| e.ts_ns)
            .max()
            .unwrap_or(0)
    });
    let ours: std::collections::HashSet<i32> = log
        .starts()
        .filter(|s| name.is_none() || s.process.as_deref() == name)
        .map(|s| s.header.pid)
        .collect();
    log.faults()
        .any(|f| f.fault == "power-loss" && f.header.ts_ns >= since && ours.contains(&f.header.pid))
}

/// Undos of a process name's journals are made one at a time (a grandchild's, asked for by its
/// reaper, and its whole process's, when that ends).
static UNDOING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Process `pid`, one of the processes journaling into `dir` but not chaos-ctl's child, died by
/// SIGKILL: undo what it left unsynced (as the model decides over every journal of the
/// directory), then keep only its syncs, which still settle the others' changes.
pub fn after_crash_of(
    durability: &chaos_engine::durability::Durability,
    seed: u64,
    dir: &Path,
    pid: u32,
    log: &Path,
) -> usize {
    let _one_at_a_time = UNDOING.lock();
    let journal = dir.join(format!("{pid}.journal"));
    if !journal.exists() {
        return 0;
    }
    let name = dir.file_name().and_then(|n| n.to_str()).map(str::to_string);
    let undone = restore(
        dir,
        durability,
        seed,
        name.as_deref(),
        log,
        Some(&journal.with_extension("blob")),
    );
    let syncs: String = std::fs::read_to_string(&journal)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            serde_json::from_str::<Record>(l)
                .is_ok_and(|r| matches!(r.op.as_str(), "sync" | "syncfail" | "dirsync" | "syncfs"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let _ = std::fs::write(&journal, syncs);
    let _ = std::fs::remove_file(journal.with_extension("blob"));
    undone
}

/// Every record of the directory's journals, with the blob its old bytes are in.
fn read_journals(dir: &Path) -> Vec<(Record, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("journal") {
            continue;
        }
        let blob = path.with_extension("blob");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // A line cut by the crash (the process died inside its write) is no record.
        for line in text.lines() {
            if let Ok(r) = serde_json::from_str::<Record>(line) {
                out.push((r, blob.clone()));
            }
        }
    }
    out
}

fn restore(
    dir: &Path,
    durability: &chaos_engine::durability::Durability,
    seed: u64,
    name: Option<&str>,
    log: &Path,
    only: Option<&Path>,
) -> usize {
    let torn = durability.torn;
    let journals = read_journals(dir);
    let records: Vec<Record> = journals.iter().map(|(r, _)| r.clone()).collect();
    let blob_of = |seq: u64| {
        journals
            .iter()
            .find(|(r, _)| r.seq == seq)
            .map(|(_, b)| b.clone())
    };
    let mut undo = to_undo(&records, durability.model);
    // One process's crash: only its own changes (its journal's blob names it).
    if let Some(blob) = only {
        undo.retain(|(r, _)| blob_of(r.seq).as_deref() == Some(blob));
    }
    // `torn`: the newest undone write keeps a seeded prefix of what it wrote.
    let torn_seq = torn.and_then(|_| {
        undo.iter()
            .find(|(r, _)| r.op == "write")
            .map(|(r, _)| r.seq)
    });
    let mut count = 0;
    for (r, why) in &undo {
        let kept = match (torn, torn_seq) {
            (Some(unit), Some(seq)) if seq == r.seq => {
                torn_prefix(seed, r.seq, r.wrote.unwrap_or(0), unit)
            }
            _ => 0,
        };
        let outcome = apply(r, *why, kept, blob_of(r.seq).as_deref());
        log_undone(log, name, r, *why, kept, outcome.err());
        count += 1;
    }
    count
}

/// Whether the file at `path` is still the one a record is about (an inode replaced by a durable
/// rename is gone, and its changes with it).
fn same_file(path: &str, ino: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == ino)
}

/// Undoes one change. `kept`: bytes of a torn write that survive.
fn apply(r: &Record, why: Why, kept: u64, blob: Option<&Path>) -> std::io::Result<()> {
    if matches!(r.op.as_str(), "write" | "truncate" | "create") && !same_file(&r.path, r.ino) {
        return Ok(());
    }
    match r.op.as_str() {
        "write" if why == Why::SyncFailed => {
            // Its pages were dropped by the failed writeback and never reached the disk, while
            // the size (and data synced after it) did: the old bytes where there were some,
            // zeros past the old end, the file as long as it is.
            let file = OpenOptions::new().write(true).open(&r.path)?;
            let (off, len) = (r.off.unwrap_or(0), r.len.unwrap_or(0));
            let end = (off + r.wrote.unwrap_or(len)).min(file.metadata()?.len());
            let mut old = vec![0u8; end.saturating_sub(off) as usize];
            if let Some(blob) = blob.filter(|_| len > 0) {
                let mut b = std::fs::File::open(blob)?;
                b.seek(SeekFrom::Start(r.blob.unwrap_or(0)))?;
                let n = (len as usize).min(old.len());
                b.read_exact(&mut old[..n])?;
            }
            file.write_all_at(&old, off)
        }
        "write" | "truncate" => {
            let file = OpenOptions::new().write(true).open(&r.path)?;
            let off = r.off.unwrap_or(0);
            let len = r.len.unwrap_or(0);
            if len > kept {
                let mut old = vec![0u8; (len - kept) as usize];
                if let Some(blob) = blob {
                    let mut b = std::fs::File::open(blob)?;
                    b.seek(SeekFrom::Start(r.blob.unwrap_or(0) + kept))?;
                    b.read_exact(&mut old)?;
                }
                file.write_all_at(&old, off + kept)?;
            }
            let size = r
                .old_size
                .unwrap_or(0)
                .max(if kept > 0 { off + kept } else { 0 });
            file.set_len(size)?;
            Ok(())
        }
        "create" => match std::fs::remove_file(&r.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
        "rename" => {
            let to = r.to.as_deref().unwrap_or_default();
            std::fs::rename(to, &r.path)?;
            if let Some(stash) = &r.stash {
                std::fs::rename(stash, to)?;
            }
            Ok(())
        }
        "unlink" => match &r.stash {
            Some(stash) => std::fs::rename(stash, &r.path),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn log_undone(
    log: &Path,
    name: Option<&str>,
    r: &Record,
    why: Why,
    kept: u64,
    error: Option<std::io::Error>,
) {
    let mut line = serde_json::json!({
        "ev": "durability",
        "ts_ns": crate::system::journal::now_ns(),
        "what": if error.is_some() { "undo-failed" } else { "undone" },
        "process": name.unwrap_or("workload"),
        "op": r.op,
        "path": r.path,
        "why": why.name(),
    });
    let obj = line.as_object_mut().expect("an object");
    match r.op.as_str() {
        "write" | "truncate" => {
            let off = r.off.unwrap_or(0);
            let end = off + r.wrote.unwrap_or(r.len.unwrap_or(0));
            obj.insert("range".into(), serde_json::json!([off + kept, end]));
            obj.insert(
                "old_size".into(),
                serde_json::json!(r.old_size.unwrap_or(0)),
            );
            if kept > 0 {
                obj.insert("torn_kept".into(), serde_json::json!(kept));
            }
        }
        "rename" => {
            obj.insert("to".into(), serde_json::json!(r.to));
        }
        _ => {}
    }
    if let Some(e) = error {
        obj.insert("error".into(), serde_json::json!(e.to_string()));
    }
    // One write: whole among the lines the run's other processes are writing.
    if let Ok(mut f) = OpenOptions::new().append(true).open(log) {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}
