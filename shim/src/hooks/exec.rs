//! The exec entry points a program can call through the PLT (dash and bash call `execve`,
//! CPython's subprocess `execve`/`execv`, `env`, `xargs` and `timeout` `execvp`): before each, a
//! descendant of a system's process leaves its key for the program it becomes (see `lineage`).
//! Nothing else: the exec itself is the program's, errno included.

use crate::{lineage, real};
use libc::{c_char, c_int};

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    lineage::before_exec();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::execve(path, argv, envp) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    lineage::before_exec();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::execv(path, argv) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    lineage::before_exec();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::execvp(file, argv) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    lineage::before_exec();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::execvpe(file, argv, envp) }
}
