//! chaos-ctl's own failures and their exit statuses.
//!
//! `run` passes the program's status through, so its own failures use the statuses a shell or
//! `env`/`timeout` would: 125 for chaos-ctl itself (bad arguments, bad policy, preflight refusal,
//! missing shim, not intercepted), 126 when the command cannot be executed, 127 when it is not found.

/// chaos-ctl itself failed, including bad command-line usage.
pub const OWN: u8 = 125;
pub const USAGE: u8 = 125;
pub const CANNOT_EXECUTE: u8 = 126;
pub const NOT_FOUND: u8 = 127;
/// `validate` on a policy with errors.
pub const INVALID_POLICY: u8 = 1;

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn own(message: impl Into<String>) -> Failure {
        Failure {
            code: OWN,
            message: message.into(),
        }
    }
    /// Exit with `code` and print nothing (the reason was already shown, or needs no words).
    pub fn quiet(code: u8) -> Failure {
        Failure {
            code,
            message: String::new(),
        }
    }
    pub fn with(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}
