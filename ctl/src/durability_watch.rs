//! `[durability]` for the processes chaos-ctl does not reap (a grandchild under `sh -c`, a test
//! runner's child): the shim of whoever reaps one killed by SIGKILL leaves a `PID.crashed` file
//! next to its journal and waits inside its wait call; this thread undoes that process's
//! unsynced changes and removes the file, so the program, back from its wait, finds the files as
//! the crash left them. (A reaper that is not under the shim, a static or Go parent, asks for
//! nothing: its children's crashes are undone only with the whole process's.)

use chaos_engine::policy::Policy;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How often the journal directories are looked at: a reaper waits at most about this long.
const POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// The watching thread; stopped and joined when dropped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts watching `RUN/durability/*/` when the policy has `[durability]`.
pub fn start(policy: &Policy, seed: u64, run_dir: &Path, log: &Path) -> Option<Watch> {
    let durability = policy.durability.clone()?;
    let root = run_dir.join("durability");
    let log = log.to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("chaos-durability".into())
        .spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                for (dir, pid, request) in requests(&root) {
                    crate::durability::after_crash_of(&durability, seed, &dir, pid, &log);
                    let _ = std::fs::remove_file(request);
                }
                std::thread::sleep(POLL);
            }
        })
        .ok()?;
    Some(Watch {
        stop,
        thread: Some(thread),
    })
}

/// Every `DIR/PID.crashed` under `root`: the journal directory, the pid, the request's path.
fn requests(root: &Path) -> Vec<(PathBuf, u32, PathBuf)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root) else {
        return out;
    };
    for dir in dirs.flatten().map(|d| d.path()) {
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for file in files.flatten().map(|f| f.path()) {
            if file.extension().and_then(|e| e.to_str()) != Some("crashed") {
                continue;
            }
            if let Some(pid) = file
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
            {
                out.push((dir.clone(), pid, file));
            }
        }
    }
    out
}
