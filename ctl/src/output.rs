//! Writing to stdout and stderr without ever panicking.
//!
//! `println!` panics when stdout is a closed pipe (`chaos-ctl quirks | head -1`) or a full device
//! (`>/dev/full`). The printing commands write through `out!` instead, which returns an
//! `io::Result`; `main` turns a write error into a quiet exit the way coreutils do: 141 (128 +
//! SIGPIPE) for a closed pipe, with nothing printed, and 1 with one line on stderr for any other
//! error (ENOSPC). `errout!` is for diagnostics and progress on stderr: if stderr itself is gone there
//! is nobody left to tell, so its errors are ignored and the command carries on.

use crate::failure::Failure;
use std::io::{self, Write};

/// Exit status after a write to a closed pipe: what a shell reports for a death by SIGPIPE.
pub const BROKEN_PIPE: u8 = 128 + libc::SIGPIPE as u8;
/// Exit status after any other write error.
pub const WRITE_ERROR: u8 = 1;

/// Writes to stdout; the error, if any, is for `?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*))
    };
}

/// Writes a line to stderr, ignoring errors.
macro_rules! errout {
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!($($arg)*))
    };
}

pub(crate) use {errout, out};

pub fn stdout(args: std::fmt::Arguments) -> Result<(), Failure> {
    io::stdout().lock().write_fmt(args).map_err(write_failure)
}

pub fn stderr(args: std::fmt::Arguments) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args);
    let _ = err.write_all(b"\n");
}

/// Flushes stdout (`println!` buffers by line, `print!` may leave a partial line).
pub fn flush() -> Result<(), Failure> {
    io::stdout().lock().flush().map_err(write_failure)
}

/// A write error as chaos-ctl's exit: quiet for a closed pipe, one line otherwise.
pub fn write_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::quiet(BROKEN_PIPE)
    } else {
        Failure::with(WRITE_ERROR, format!("write error: {e}"))
    }
}

/// For code that still uses `print!` (outside this crate's printing commands): a panic caused by
/// a failed write to stdout or stderr exits like `write_failure`, with no backtrace. Any other panic
/// goes to the default hook.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to std") {
            if text.contains("Broken pipe") {
                std::process::exit(BROKEN_PIPE.into());
            }
            let detail = text.split_once(": ").map_or(text, |(_, d)| d);
            stderr(format_args!("chaos-ctl: write error: {detail}"));
            std::process::exit(WRITE_ERROR.into());
        }
        default(info);
    }));
}
