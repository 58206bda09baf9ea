//! `[durability]`: what a crash keeps. The shim journals, for files under the glob, every change
//! that is not yet durable (the old bytes of an overwritten or truncated range, the old size, a
//! create, a rename, an unlink) and every sync; after a process dies by a crash, chaos-ctl undoes
//! what no sync made durable, newest first, so the restart finds what a machine that lost power
//! at that moment would have kept (`docs/kernel-facts.md` F4, F6, F10-F13). This module is the
//! model: which journaled changes a crash undoes, under the filesystem `model` the policy names,
//! and the journal's line format (`format_record`, read back as a `Record`), shared by the shim
//! and the seccomp supervisor, which write the same journal.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durability {
    pub path: crate::glob::Glob,
    /// `torn = "4096"`: the newest undone write keeps a seeded prefix of whole units this size.
    pub torn: Option<u64>,
    pub model: Model,
    pub crash: Crash,
}

/// `crash = "power-loss" | "process"`: what a SIGKILL of a covered process stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Crash {
    /// The machine lost power as the process died (or its kernel crashed): what no sync made
    /// durable is undone. The default, so that a `crash` fault or an attrition kill tests
    /// recovery from lost writes.
    #[default]
    PowerLoss,
    /// Only the process died: Linux keeps everything it wrote in the page cache, so nothing is
    /// undone, except by a `power-loss` fault, which takes the machine down with it.
    Process,
}

impl Crash {
    pub fn name(self) -> &'static str {
        match self {
            Crash::PowerLoss => "power-loss",
            Crash::Process => "process",
        }
    }

    pub fn from_name(name: &str) -> Option<Crash> {
        match name {
            "power-loss" => Some(Crash::PowerLoss),
            "process" => Some(Crash::Process),
            _ => None,
        }
    }
}

/// `model = "ext4" | "posix"`: which filesystem's crash guarantees the undo follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Model {
    /// ext4 with its defaults (data=ordered, journaled metadata, auto_da_alloc), the filesystem
    /// most Linux machines and CI runners write to: metadata changes are journaled in order and any
    /// successful sync on the filesystem commits every one made before it (a crash keeps a
    /// prefix); a file's data is durable after its own sync; a rename over an existing file
    /// flushes the renamed file's data with the rename (F10-F13).
    #[default]
    Ext4,
    /// Only what POSIX promises: a file's data after its fsync, a directory entry after its
    /// directory's fsync. Stricter than any mainstream Linux filesystem.
    Posix,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Ext4 => "ext4",
            Model::Posix => "posix",
        }
    }

    pub fn from_name(name: &str) -> Option<Model> {
        match name {
            "ext4" => Some(Model::Ext4),
            "posix" => Some(Model::Posix),
            _ => None,
        }
    }
}

/// One journal line, as the shim writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Order across every process of the run (a counter in the control page).
    pub seq: u64,
    /// `write`, `truncate` (the old bytes of `[off, off + len)` are in the blob at `blob`, the
    /// size was `old_size`), `create`, `rename` (to `to`; a file it replaced kept at `stash`),
    /// `unlink` (the file kept at `stash`), `sync` (the file `ino` is durable), `syncfail` (its
    /// unsynced data is lost whatever later syncs say), `dirsync` (the entries of directory
    /// `path` are durable), `syncfs` (everything is), `close` (of the file `ino`), `void` (the
    /// change journaled at this `seq` was never made).
    pub op: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub ino: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<u64>,
    /// Old bytes saved (overwritten or truncated away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Bytes the write wrote (for `torn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrote: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stash: Option<String>,
}

/// What a journal record holds beyond its `seq`, `op`, `path` and `ino`: the one format both
/// writers use (the shim from its hooks, the seccomp supervisor from its notification loop),
/// read back as a [`Record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail<'a> {
    /// `create`, `sync`, `syncfail`, `dirsync`, `syncfs`, `close`, `void`.
    Plain,
    /// `write`: the old bytes of `[off, off + len)` are in the blob at `blob`; it wrote `wrote`.
    Write {
        old_size: u64,
        off: u64,
        len: u64,
        wrote: u64,
        blob: u64,
    },
    /// `truncate`: what it cut away, `[off, off + len)`, is in the blob at `blob`.
    Truncate {
        old_size: u64,
        off: u64,
        len: u64,
        blob: u64,
    },
    /// `rename` to `to`; the file it replaced kept at `stash`.
    Rename {
        to: &'a [u8],
        stash: Option<&'a [u8]>,
    },
    /// `unlink`: the file kept at `stash`.
    Unlink { stash: &'a [u8] },
}

/// Formats one journal line into `line` (no allocation: the shim calls this from its hooks) and
/// returns its bytes, newline included, to be written with one `write`.
pub fn format_record<'l>(
    line: &'l mut crate::event::LineBuf,
    seq: u64,
    op: &str,
    path: &[u8],
    ino: u64,
    detail: Detail<'_>,
) -> &'l [u8] {
    line.begin();
    line.field_num("seq", seq);
    line.field_str("op", op.as_bytes());
    line.field_str("path", path);
    line.field_num("ino", ino);
    match detail {
        Detail::Plain => {}
        Detail::Write {
            old_size,
            off,
            len,
            wrote,
            blob,
        } => {
            line.field_num("old_size", old_size);
            line.field_num("off", off);
            line.field_num("len", len);
            line.field_num("wrote", wrote);
            line.field_num("blob", blob);
        }
        Detail::Truncate {
            old_size,
            off,
            len,
            blob,
        } => {
            line.field_num("old_size", old_size);
            line.field_num("off", off);
            line.field_num("len", len);
            line.field_num("blob", blob);
        }
        Detail::Rename { to, stash } => {
            line.field_str("to", to);
            if let Some(stash) = stash {
                line.field_str("stash", stash);
            }
        }
        Detail::Unlink { stash } => line.field_str("stash", stash),
    }
    line.finish()
}

/// A process's journal directory name under the run's `durability/`: its name in the system
/// (`kv#1` → `kv-1`), or `workload` (a single program, or a system's workload).
pub fn dir_name(process: Option<&str>) -> String {
    process.unwrap_or("workload").replace('#', "-")
}

/// Why a change is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// No fsync/fdatasync of the file after it.
    NotSynced,
    /// An fsync of the file failed after it: the kernel dropped the dirty pages (F4).
    SyncFailed,
    /// No fsync of its directory after it.
    DirectoryNotSynced,
    /// ext4: no sync on the filesystem after it committed the journal that holds it.
    NotCommitted,
}

impl Why {
    pub fn name(self) -> &'static str {
        match self {
            Why::NotSynced => "not fsynced",
            Why::SyncFailed => "fsync failed",
            Why::DirectoryNotSynced => "directory not fsynced",
            Why::NotCommitted => "no journal commit",
        }
    }
}

/// The directory a path is in.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The changes a crash undoes, newest first, with why. `records` in any order. A write's path is
/// where the file is when the undo reaches it (renames made durable after it are followed).
/// Linear in the records: a long-lived database journals hundreds of thousands between crashes.
pub fn to_undo(records: &[Record], model: Model) -> Vec<(Record, Why)> {
    let mut recs: Vec<Record> = records.to_vec();
    recs.sort_by_key(|r| r.seq);
    // `void`: the change journaled at that seq was never made (it failed, or a crash fault
    // stopped it first).
    let voided: std::collections::HashSet<u64> = recs
        .iter()
        .filter(|r| r.op == "void")
        .map(|r| r.seq)
        .collect();
    recs.retain(|r| !voided.contains(&r.seq));
    let (durable, lost) = match model {
        Model::Posix => posix_durable(&recs),
        Model::Ext4 => ext4_durable(&recs),
    };
    in_undo_order(recs, &durable, &lost, model)
}

/// POSIX: a file's sync settles its data changes, a directory's its entries.
fn posix_durable(recs: &[Record]) -> (Vec<bool>, Vec<bool>) {
    use std::collections::HashMap;
    // Per record: made durable by a later sync, or lost by a later failed one.
    let mut durable = vec![false; recs.len()];
    let mut lost = vec![false; recs.len()];
    // What each sync can still settle: data changes per inode, entry changes per directory.
    let mut pending_data: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut pending_entries: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        match r.op.as_str() {
            _ if is_data(r) => pending_data.entry(r.ino).or_default().push(i),
            _ if is_entry(r) => pending_entries
                .entry(entry_dir(r).to_string())
                .or_default()
                .push(i),
            "sync" => {
                for j in pending_data.remove(&r.ino).unwrap_or_default() {
                    durable[j] = true;
                }
            }
            "syncfail" => {
                for j in pending_data.remove(&r.ino).unwrap_or_default() {
                    lost[j] = true;
                }
            }
            "dirsync" => {
                for j in pending_entries.remove(&r.path).unwrap_or_default() {
                    durable[j] = true;
                }
            }
            "syncfs" => {
                for j in pending_data.drain().flat_map(|(_, v)| v) {
                    durable[j] = true;
                }
                for j in pending_entries.drain().flat_map(|(_, v)| v) {
                    durable[j] = true;
                }
            }
            _ => {}
        }
    }
    (durable, lost)
}

/// ext4 (data=ordered): metadata (entries and sizes set by a truncation) is durable up to the
/// last successful sync of any kind, which commits the journal (F10); a write's data after its
/// file's sync, a syncfs, or a rename over another file followed by a commit (auto_da_alloc,
/// F12), or a truncation to zero, writes and a close followed by a commit (F13). A write's
/// growth of the size is its data's: delayed allocation puts the new size on disk with the
/// blocks (F11).
fn ext4_durable(recs: &[Record]) -> (Vec<bool>, Vec<bool>) {
    use std::collections::HashMap;
    let last_commit = recs
        .iter()
        .rposition(|r| matches!(r.op.as_str(), "sync" | "dirsync" | "syncfs"));
    let committed = |i: usize| last_commit.is_some_and(|c| i < c);
    let mut durable = vec![false; recs.len()];
    let mut lost = vec![false; recs.len()];
    let mut pending: HashMap<u64, Vec<usize>> = HashMap::new();
    // Files truncated to zero: their close flushes what was written since (auto_da_alloc, F13).
    let mut emptied: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for (i, r) in recs.iter().enumerate() {
        match r.op.as_str() {
            "write" => pending.entry(r.ino).or_default().push(i),
            "truncate" => {
                durable[i] = committed(i);
                if r.off == Some(0) {
                    emptied.insert(r.ino);
                }
            }
            // The close flushes (and forgets the truncation); a commit after it holds the data.
            "close" if emptied.remove(&r.ino) && committed(i) => {
                for j in pending.remove(&r.ino).unwrap_or_default() {
                    durable[j] = true;
                }
            }
            "create" | "unlink" => durable[i] = committed(i),
            "rename" => {
                durable[i] = committed(i);
                // auto_da_alloc: replacing a file flushes the renamed one's delayed data, which
                // ordered mode writes before the commit that holds the rename.
                if r.stash.is_some() && r.ino != 0 && durable[i] {
                    for j in pending.remove(&r.ino).unwrap_or_default() {
                        durable[j] = true;
                    }
                }
            }
            "sync" => {
                for j in pending.remove(&r.ino).unwrap_or_default() {
                    durable[j] = true;
                }
            }
            "syncfail" => {
                for j in pending.remove(&r.ino).unwrap_or_default() {
                    lost[j] = true;
                }
            }
            "syncfs" => {
                for j in pending.drain().flat_map(|(_, v)| v) {
                    durable[j] = true;
                }
            }
            _ => {}
        }
    }
    (durable, lost)
}

/// The undone records, newest first, each with why and at the path its file has then.
fn in_undo_order(
    mut recs: Vec<Record>,
    durable: &[bool],
    lost: &[bool],
    model: Model,
) -> Vec<(Record, Why)> {
    use std::collections::HashMap;
    // Writes to a file renamed later, durably, are undone at its new name: follow the undone
    // data changes by path through the renames in order.
    let mut undone_at: HashMap<String, Vec<usize>> = HashMap::new();
    for i in 0..recs.len() {
        if is_data(&recs[i]) && !durable[i] {
            undone_at.entry(recs[i].path.clone()).or_default().push(i);
        } else if recs[i].op == "rename" && durable[i] {
            let to = recs[i].to.clone().unwrap_or_default();
            if let Some(moved) = undone_at.remove(&recs[i].path) {
                for &j in &moved {
                    recs[j].path = to.clone();
                }
                undone_at.entry(to).or_default().extend(moved);
            }
        }
    }
    let mut out = Vec::new();
    for (i, r) in recs.iter().enumerate().rev() {
        if durable[i] || !(is_data(r) || is_entry(r)) {
            continue;
        }
        let why = if lost[i] {
            Why::SyncFailed
        } else if model == Model::Ext4 && r.op != "write" {
            Why::NotCommitted
        } else if is_entry(r) {
            Why::DirectoryNotSynced
        } else {
            Why::NotSynced
        };
        out.push((r.clone(), why));
    }
    out
}

fn is_data(r: &Record) -> bool {
    matches!(r.op.as_str(), "write" | "truncate")
}

fn is_entry(r: &Record) -> bool {
    matches!(r.op.as_str(), "create" | "rename" | "unlink")
}

/// The directory whose fsync makes an entry change durable: a rename's new parent.
fn entry_dir(r: &Record) -> &str {
    match (&r.op[..], &r.to) {
        ("rename", Some(to)) => parent(to),
        _ => parent(&r.path),
    }
}

/// `torn`: how much of the newest undone write survives, a seeded number of whole `unit`s of
/// the `wrote` bytes (possibly none, never all of it).
pub fn torn_prefix(seed: u64, seq: u64, wrote: u64, unit: u64) -> u64 {
    let units = wrote / unit.max(1);
    if units == 0 {
        return 0;
    }
    let draw = crate::hash::mix(&[seed, seq, 0x746f_726e]);
    (draw % units) * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, op: &str, path: &str, ino: u64) -> Record {
        Record {
            seq,
            op: op.into(),
            path: path.into(),
            ino,
            to: None,
            old_size: Some(0),
            off: Some(0),
            len: Some(0),
            wrote: None,
            blob: None,
            stash: None,
        }
    }

    fn undone(records: &[Record]) -> Vec<(u64, &'static str)> {
        undone_in(records, Model::Posix)
    }

    fn undone_in(records: &[Record], model: Model) -> Vec<(u64, &'static str)> {
        to_undo(records, model)
            .into_iter()
            .map(|(r, w)| (r.seq, w.name()))
            .collect()
    }

    #[test]
    fn an_fsync_makes_the_writes_before_it_durable_not_those_after() {
        let r = [
            rec(1, "write", "/d/a", 7),
            rec(2, "sync", "/d/a", 7),
            rec(3, "write", "/d/a", 7),
            rec(4, "write", "/d/b", 8),
        ];
        assert_eq!(undone(&r), [(4, "not fsynced"), (3, "not fsynced")]);
    }

    #[test]
    fn after_a_failed_fsync_the_data_is_lost_whatever_later_fsyncs_say() {
        let r = [
            rec(1, "write", "/d/a", 7),
            rec(2, "syncfail", "/d/a", 7),
            rec(3, "sync", "/d/a", 7),
            rec(4, "write", "/d/a", 7),
            rec(5, "sync", "/d/a", 7),
        ];
        assert_eq!(undone(&r), [(1, "fsync failed")]);
    }

    #[test]
    fn entries_need_their_directory_synced() {
        let mut rename = rec(4, "rename", "/d/tmp", 7);
        rename.to = Some("/d/final".into());
        let naive = [
            rec(1, "create", "/d/tmp", 7),
            rec(2, "write", "/d/tmp", 7),
            rec(3, "sync", "/d/tmp", 7),
            rename.clone(),
        ];
        // The file's fsync keeps its bytes, not its names.
        assert_eq!(
            undone(&naive),
            [(4, "directory not fsynced"), (1, "directory not fsynced")]
        );
        let mut fixed = naive.to_vec();
        fixed.push(rec(5, "dirsync", "/d", 0));
        assert_eq!(undone(&fixed), []);
    }

    #[test]
    fn a_write_before_a_durable_rename_is_undone_at_the_new_name() {
        let mut rename = rec(2, "rename", "/d/tmp", 7);
        rename.to = Some("/d/final".into());
        let r = [
            rec(1, "write", "/d/tmp", 7),
            rename,
            rec(3, "dirsync", "/d", 0),
        ];
        let u = to_undo(&r, Model::Posix);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].0.path, "/d/final");
    }

    fn rename(seq: u64, from: &str, to: &str, ino: u64, replaced: bool) -> Record {
        let mut r = rec(seq, "rename", from, ino);
        r.to = Some(to.into());
        r.stash = replaced.then(|| format!("/run/stash-{seq}"));
        r
    }

    #[test]
    fn ext4_a_file_sync_commits_the_create_before_it_posix_does_not() {
        // The append log: created, 10 records, fsync, 10 more, fsync, 4 more, crash.
        let mut r = vec![rec(1, "create", "/d/log", 7)];
        let mut seq = 2;
        for n in 1..=24 {
            r.push(rec(seq, "write", "/d/log", 7));
            seq += 1;
            if n == 10 || n == 20 {
                r.push(rec(seq, "sync", "/d/log", 7));
                seq += 1;
            }
        }
        let unsynced: Vec<(u64, &str)> = (24..=27).rev().map(|s| (s, "not fsynced")).collect();
        assert_eq!(undone_in(&r, Model::Ext4), unsynced);
        let posix = undone_in(&r, Model::Posix);
        assert_eq!(posix[..4], unsynced[..]);
        assert_eq!(posix[4..], [(1, "directory not fsynced")]);
    }

    #[test]
    fn ext4_any_sync_commits_every_earlier_metadata_change_and_keeps_a_prefix() {
        let r = [
            rec(1, "create", "/d/a", 7),
            rec(2, "unlink", "/e/old", 0),
            rec(3, "truncate", "/d/c", 9),
            rec(4, "write", "/d/b", 8),
            // Another file's sync: a commit of the whole journal, not of b's data.
            rec(5, "sync", "/d/b", 8),
            rec(6, "create", "/d/later", 10),
            rename(7, "/d/a", "/e/a", 7, false),
            rec(8, "syncfail", "/d/c", 9),
        ];
        // A failed fsync commits nothing (the writeback error returns before the journal).
        assert_eq!(
            undone_in(&r, Model::Ext4),
            [(7, "no journal commit"), (6, "no journal commit")]
        );
        let mut with_syncfs = r.to_vec();
        with_syncfs.push(rec(9, "syncfs", "", 0));
        assert_eq!(undone_in(&with_syncfs, Model::Ext4), []);
        // A directory's fsync is a commit too.
        let mut with_dirsync = r.to_vec();
        with_dirsync.push(rec(9, "dirsync", "/x", 0));
        assert_eq!(undone_in(&with_dirsync, Model::Ext4), []);
    }

    #[test]
    fn ext4_data_needs_its_own_files_sync() {
        let r = [
            rec(1, "write", "/d/a", 7),
            rec(2, "write", "/d/b", 8),
            rec(3, "sync", "/d/b", 8),
            rec(4, "write", "/d/b", 8),
            rec(5, "syncfail", "/d/a", 7),
        ];
        assert_eq!(
            undone_in(&r, Model::Ext4),
            [(4, "not fsynced"), (1, "fsync failed")]
        );
    }

    #[test]
    fn ext4_a_rename_over_a_file_flushes_the_new_data_with_the_rename() {
        // Write a temp file, rename it over the old one, no fsync; a later commit (another
        // file's sync) holds the rename, and auto_da_alloc put the data before it.
        let replace = [
            rec(1, "create", "/d/tmp", 7),
            rec(2, "write", "/d/tmp", 7),
            rename(3, "/d/tmp", "/d/conf", 7, true),
            rec(4, "sync", "/d/other", 9),
        ];
        assert_eq!(undone_in(&replace, Model::Ext4), []);
        // Without the commit the rename and create are undone: the old content is back.
        assert_eq!(
            undone_in(&replace[..3], Model::Ext4),
            [
                (3, "no journal commit"),
                (2, "not fsynced"),
                (1, "no journal commit")
            ]
        );
        // A rename to a new name flushes nothing: the name survives, the data does not.
        let mut fresh = replace.to_vec();
        fresh[2] = rename(3, "/d/tmp", "/d/conf", 7, false);
        let u = to_undo(&fresh, Model::Ext4);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].0.seq, u[0].0.path.as_str()), (2, "/d/conf"));
    }

    #[test]
    fn ext4_truncating_to_zero_flushes_the_rewrite_at_close() {
        let mut emptied = rec(1, "truncate", "/d/conf", 7);
        emptied.old_size = Some(10);
        let r = [
            emptied.clone(),
            rec(2, "write", "/d/conf", 7),
            rec(3, "close", "/d/conf", 7),
            rec(4, "sync", "/d/other", 9),
        ];
        assert_eq!(undone_in(&r, Model::Ext4), []);
        // Not closed before the commit: the new content is not flushed, the truncation is.
        let open = [emptied.clone(), rec(2, "write", "/d/conf", 7), r[3].clone()];
        assert_eq!(undone_in(&open, Model::Ext4), [(2, "not fsynced")]);
        // A truncation to another size flushes nothing at close.
        let mut shrunk = emptied;
        shrunk.off = Some(4);
        let r = [shrunk, r[1].clone(), r[2].clone(), r[3].clone()];
        assert_eq!(undone_in(&r, Model::Ext4), [(2, "not fsynced")]);
        // POSIX promises nothing of the kind.
        assert_eq!(
            undone_in(&r, Model::Posix),
            [(2, "not fsynced"), (1, "not fsynced")]
        );
    }

    #[test]
    fn a_change_that_was_never_made_is_not_undone() {
        let r = [
            rec(1, "write", "/d/a", 7),
            rec(2, "write", "/d/a", 7),
            rec(2, "void", "", 0),
        ];
        for model in [Model::Ext4, Model::Posix] {
            assert_eq!(undone_in(&r, model), [(1, "not fsynced")]);
        }
    }

    #[test]
    fn every_record_format_reads_back_as_the_record_it_wrote() {
        let parse = |seq, op, detail| {
            let mut line = crate::event::LineBuf::new();
            let bytes = format_record(&mut line, seq, op, b"/d/a", 7, detail).to_vec();
            assert_eq!(bytes.last(), Some(&b'\n'));
            serde_json::from_slice::<Record>(&bytes).expect("a journal line parses")
        };
        let w = parse(
            3,
            "write",
            Detail::Write {
                old_size: 10,
                off: 4,
                len: 6,
                wrote: 9,
                blob: 128,
            },
        );
        assert_eq!(
            (w.seq, w.op.as_str(), w.path.as_str(), w.ino),
            (3, "write", "/d/a", 7)
        );
        assert_eq!(
            (w.old_size, w.off, w.len, w.wrote, w.blob),
            (Some(10), Some(4), Some(6), Some(9), Some(128))
        );
        let t = parse(
            4,
            "truncate",
            Detail::Truncate {
                old_size: 10,
                off: 0,
                len: 10,
                blob: 0,
            },
        );
        assert_eq!((t.old_size, t.len, t.wrote), (Some(10), Some(10), None));
        let r = parse(
            5,
            "rename",
            Detail::Rename {
                to: b"/d/b",
                stash: Some(b"/j/1.stash-5"),
            },
        );
        assert_eq!(r.to.as_deref(), Some("/d/b"));
        assert_eq!(r.stash.as_deref(), Some("/j/1.stash-5"));
        let u = parse(
            6,
            "unlink",
            Detail::Unlink {
                stash: b"/j/1.stash-6",
            },
        );
        assert_eq!(u.stash.as_deref(), Some("/j/1.stash-6"));
        let v = parse(6, "void", Detail::Plain);
        assert_eq!((v.op.as_str(), v.to, v.old_size), ("void", None, None));
    }

    #[test]
    fn torn_keeps_whole_units_and_never_everything() {
        for seq in 0..50 {
            let kept = torn_prefix(1, seq, 4 * 4096 + 100, 4096);
            assert_eq!(kept % 4096, 0);
            assert!(kept < 4 * 4096 + 100);
        }
        assert_eq!(torn_prefix(1, 1, 100, 4096), 0);
    }
}
