//! Paths from the command line, made absolute while the working directory is still ours: the
//! program under test, a replica or a staged copy may run from another one.

use crate::failure::Failure;
use std::path::{Path, PathBuf};

pub fn absolute(p: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(p).map_err(|e| Failure::own(format!("{}: {e}", p.display())))
}
