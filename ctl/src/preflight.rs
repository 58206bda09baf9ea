//! Before launching: can the shim reach this program at all?
//!
//! LD_PRELOAD only works for dynamically linked glibc programs of our own architecture that are not
//! setuid and that call libc for their I/O. Each check below is one way a run could silently inject
//! nothing; it is refused (or, with --force, warned about) before the program starts.

use crate::failure::{self, Failure};
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Architecture, Endianness, FileKind, Object};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the shim cannot (fully) reach a program.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Which backend serves a program: the shim (`preload`), chaos-ctl's seccomp notification
/// supervisor (`seccomp`), or whichever reaches it (`auto`: preload where the loader runs the
/// shim, seccomp for static binaries, Go programs and other libcs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    #[default]
    Auto,
    Preload,
    Seccomp,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Preload => "preload",
            Backend::Seccomp => "seccomp",
        }
    }
}

/// Refusals that are only about LD_PRELOAD (no loader, another libc, Go's own system calls):
/// the seccomp backend sees system calls, so none of these stop it.
const PRELOAD_ONLY: [&str; 3] = ["is statically linked", "not glibc's", "is a Go program"];

fn preload_only(r: &Refusal) -> bool {
    PRELOAD_ONLY.iter().any(|p| r.0.contains(p))
}

/// The backend that serves `program` when `asked` is given, with every reason it would not
/// (fully) reach it. `auto` becomes seccomp exactly when the preload backend's only refusals
/// are ones seccomp does not have, and this kernel can run it.
pub fn choose(program: &Path, asked: Backend) -> (Backend, Vec<Refusal>) {
    let refusals = check(program);
    let seccomp = |refusals: Vec<Refusal>| {
        let mut left: Vec<Refusal> = refusals.into_iter().filter(|r| !preload_only(r)).collect();
        if let Err(why) = crate::seccomp::available() {
            left.push(Refusal(format!(
                "{}: the seccomp backend cannot run here: {why}",
                program.display()
            )));
        }
        (Backend::Seccomp, left)
    };
    match asked {
        Backend::Preload => (Backend::Preload, refusals),
        Backend::Seccomp => seccomp(refusals),
        Backend::Auto if refusals.is_empty() => (Backend::Preload, refusals),
        Backend::Auto if refusals.iter().all(preload_only) => {
            let (b, left) = seccomp(refusals);
            if left.is_empty() {
                (b, left)
            } else {
                // Say why neither backend reaches it.
                let mut all = check(program);
                all.extend(left.into_iter().filter(|r| !preload_only(r)));
                (Backend::Preload, all)
            }
        }
        Backend::Auto => (Backend::Preload, refusals),
    }
}

/// The backend `program` runs under, without the reasons (for a launch already preflighted).
pub fn resolve_backend(program: &std::ffi::OsStr, asked: Backend) -> Backend {
    match asked {
        Backend::Auto => match resolve_command(program) {
            Ok(path) => choose(&path, asked).0,
            Err(_) => Backend::Preload,
        },
        b => b,
    }
}

/// Resolves `cmd` like execvp: a name with a slash as is, otherwise the first match in PATH.
pub fn resolve_command(cmd: &OsStr) -> Result<PathBuf, Failure> {
    let path = Path::new(cmd);
    let found = if cmd.as_encoded_bytes().contains(&b'/') {
        path.exists().then(|| path.to_path_buf())
    } else {
        which(cmd)
    };
    let found = found.ok_or_else(|| {
        Failure::with(
            failure::NOT_FOUND,
            format!("{}: command not found", path.display()),
        )
    })?;
    let meta = std::fs::metadata(&found)
        .map_err(|e| Failure::with(failure::CANNOT_EXECUTE, format!("{}: {e}", found.display())))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(Failure::with(
            failure::CANNOT_EXECUTE,
            format!("{}: not an executable file", found.display()),
        ));
    }
    Ok(found)
}

fn which(name: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Checks the program (following `#!` to the interpreter that really runs). Returns every reason
/// the shim would not reach it.
pub fn check(program: &Path) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    let mut current = program.to_path_buf();
    for _ in 0..4 {
        match interpreter_of(&current) {
            Ok(Some(interp)) => current = interp,
            Ok(None) => break,
            Err(r) => {
                refusals.push(r);
                return refusals;
            }
        }
    }
    check_privileges(&current, &mut refusals);
    check_elf(&current, &mut refusals);
    refusals
}

/// For a `#!` script, the interpreter that will run it (`env NAME` resolved through PATH).
fn interpreter_of(path: &Path) -> Result<Option<PathBuf>, Refusal> {
    let head = read_head(path, 256).map_err(|e| Refusal(format!("{}: {e}", path.display())))?;
    let Some(line) = head.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let Some(interp) = words.next() else {
        return Err(Refusal(format!("{}: empty #! line", path.display())));
    };
    let interp = PathBuf::from(interp);
    if interp.file_name() == Some(OsStr::new("env")) {
        let name = words
            .find(|w| !w.starts_with('-'))
            .ok_or_else(|| Refusal(format!("{}: `#!{line}` names no program", path.display())))?;
        return which(OsStr::new(name)).map(Some).ok_or_else(|| {
            Refusal(format!(
                "{}: its interpreter `{name}` is not in PATH",
                path.display()
            ))
        });
    }
    Ok(Some(interp))
}

fn read_head(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(n);
    std::fs::File::open(path)?
        .take(n as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

fn check_privileges(path: &Path, refusals: &mut Vec<Refusal>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o6000 != 0 {
        refusals.push(Refusal(format!(
            "{} is setuid/setgid: the loader ignores LD_PRELOAD for it (secure-execution mode)",
            path.display()
        )));
    }
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: both strings are NUL-terminated CStrings alive across the call; a null buffer of size
    // 0 asks only for the value's size.
    let has_caps = unsafe {
        libc::getxattr(
            cpath.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    } > 0;
    if has_caps {
        refusals.push(Refusal(format!(
            "{} has file capabilities: the loader ignores LD_PRELOAD for it (secure-execution mode)",
            path.display()
        )));
    }
}

fn host_architecture() -> Architecture {
    if cfg!(target_arch = "x86_64") {
        Architecture::X86_64
    } else if cfg!(target_arch = "aarch64") {
        Architecture::Aarch64
    } else {
        Architecture::Unknown
    }
}

fn check_elf(path: &Path, refusals: &mut Vec<Refusal>) {
    let shown = path.display();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => return refusals.push(Refusal(format!("{shown}: {e}"))),
    };
    match FileKind::parse(&*data) {
        Ok(FileKind::Elf64) => {}
        Ok(FileKind::Elf32) => {
            return refusals.push(Refusal(format!(
                "{shown} is a 32-bit program; the shim is 64-bit and the loader would skip it"
            )));
        }
        _ => {
            return refusals.push(Refusal(format!(
                "{shown} is neither an ELF program nor a #! script"
            )));
        }
    }
    let elf = match ElfFile64::<Endianness>::parse(&*data) {
        Ok(elf) => elf,
        Err(e) => return refusals.push(Refusal(format!("{shown}: unreadable ELF: {e}"))),
    };
    if elf.architecture() != host_architecture() {
        refusals.push(Refusal(format!(
            "{shown} is built for {:?}, the shim for {:?}",
            elf.architecture(),
            host_architecture()
        )));
    }
    let endian = elf.endian();
    let interp = elf
        .elf_program_headers()
        .iter()
        .find(|ph| ph.p_type(endian) == object::elf::PT_INTERP)
        .and_then(|ph| ph.data(endian, &*data).ok())
        .map(|bytes| {
            String::from_utf8_lossy(bytes)
                .trim_end_matches('\0')
                .to_string()
        });
    match interp {
        None => refusals.push(Refusal(format!(
            "{shown} is statically linked (no PT_INTERP): no dynamic loader runs, so nothing can be \
             preloaded (the seccomp backend reaches it: --backend seccomp)"
        ))),
        Some(i) if !i.contains("ld-linux") => refusals.push(Refusal(format!(
            "{shown} uses the loader {i}, not glibc's (musl or another libc?); the shim needs glibc (the seccomp backend does not: --backend seccomp)"
        ))),
        Some(_) => {}
    }
    if elf.section_by_name(".go.buildinfo").is_some()
        || elf.section_by_name(".note.go.buildid").is_some()
    {
        refusals.push(Refusal(format!(
            "{shown} is a Go program: Go makes its socket system calls directly, not through libc, \
             so the shim sees none of them (the seccomp backend does: --backend seccomp)"
        )));
    }
}
