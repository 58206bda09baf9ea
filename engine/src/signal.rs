//! Signal names as policies write them.

const NAMES: &[(&str, i32)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
];

/// `SIGUSR1`, `USR1`, or `SIGRTMIN+N` (glibc's SIGRTMIN is 34: 32 and 33 are its own).
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let t = text.trim();
    let full = if t.starts_with("SIG") {
        t.to_string()
    } else {
        format!("SIG{t}")
    };
    if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == full) {
        return Ok(*n);
    }
    if let Some(rest) = full.strip_prefix("SIGRTMIN")
        && let Ok(k) = rest
            .trim_start_matches('+')
            .parse::<i32>()
            .or(if rest.is_empty() { Ok(0) } else { Err(()) })
        && (0..=30).contains(&k)
    {
        return Ok(34 + k);
    }
    Err(format!(
        "unknown signal `{text}`; expected a name such as SIGUSR1, SIGCHLD, SIGWINCH or SIGRTMIN+2 \
         (SIGKILL and SIGSTOP cannot have handlers)"
    ))
}

/// Signals no handler can catch, or that only a fault raises: named in `exit` lines, never
/// accepted where a handler is meant.
const UNCATCHABLE_OR_FATAL: &[(&str, i32)] = &[
    ("SIGKILL", libc::SIGKILL),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
];

/// The name of a signal below SIGRTMIN, without allocating (the shim's `exit` lines).
pub fn static_name(signo: i32) -> Option<&'static str> {
    NAMES
        .iter()
        .chain(UNCATCHABLE_OR_FATAL)
        .find(|(_, n)| *n == signo)
        .map(|(name, _)| *name)
}

pub fn signal_name(signo: i32) -> String {
    match static_name(signo) {
        Some(name) => name.to_string(),
        None if signo >= 34 => format!("SIGRTMIN+{}", signo - 34),
        None => format!("signal {signo}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_signal("SIGUSR1"), Ok(libc::SIGUSR1));
        assert_eq!(
            parse_signal("usr1".to_uppercase().as_str()),
            Ok(libc::SIGUSR1)
        );
        assert_eq!(parse_signal("SIGRTMIN+2"), Ok(36));
        assert_eq!(signal_name(36), "SIGRTMIN+2");
        assert_eq!(signal_name(libc::SIGCHLD), "SIGCHLD");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(static_name(libc::SIGSEGV), Some("SIGSEGV"));
        assert!(parse_signal("SIGKILL").unwrap_err().contains("SIGKILL"));
        assert!(parse_signal("SIGFOO").is_err());
    }
}
