//! A path a call names, made absolute the way the kernel resolves it: a relative one joined to its
//! base (the working directory, or an `*at` call's directory fd) with leading `./` dropped, so that
//! `path` globs match what the program meant whichever directory it was in. Symlinks and `..` are
//! left as written (resolving them would take system calls per component). Both backends use it:
//! the shim with the base it reads through its own process, the seccomp supervisor with the base
//! it reads in /proc/PID; so a static build's path is its dynamic build's. No allocation: the
//! shim calls it inside hooks.

/// PATH_MAX: the longest path the kernel accepts.
pub const MAX: usize = 4096;

/// Finishes `out` as the absolute form of `given`, whose base (None: `given` is absolute, or
/// its base could not be read) is already in `out[..base_len]`; returns the length. A path whose
/// base is unknown or that would not fit is kept as given (cut to `out`'s length).
pub fn absolute_into(out: &mut [u8], base_len: Option<usize>, given: &[u8]) -> usize {
    let cap = out.len();
    let mut len = 0;
    let mut rel = given;
    if !given.starts_with(b"/") {
        len = base_len.filter(|&n| n < cap).unwrap_or(0);
        while let Some(rest) = rel.strip_prefix(b"./") {
            rel = rest;
        }
        if rel == b"." {
            rel = b"";
        }
        if len > 0 && out[len - 1] != b'/' && !rel.is_empty() && len < cap {
            out[len] = b'/';
            len += 1;
        }
        if len == 0 {
            rel = given;
        }
    }
    if len + rel.len() > cap {
        len = 0;
        rel = &given[..given.len().min(cap)];
    }
    out[len..len + rel.len()].copy_from_slice(rel);
    len + rel.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abs(base: Option<&str>, given: &str) -> String {
        let mut out = [0u8; MAX];
        let base_len = base.map(|b| {
            out[..b.len()].copy_from_slice(b.as_bytes());
            b.len()
        });
        let n = absolute_into(&mut out, base_len, given.as_bytes());
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_relative_path_joins_its_base_without_leading_dots() {
        assert_eq!(abs(Some("/srv/db"), "wal/0001"), "/srv/db/wal/0001");
        assert_eq!(abs(Some("/srv/db"), "././wal"), "/srv/db/wal");
        assert_eq!(abs(Some("/srv/db/"), "wal"), "/srv/db/wal");
        assert_eq!(abs(Some("/srv/db"), "."), "/srv/db");
        assert_eq!(abs(Some("/"), "x"), "/x");
    }

    #[test]
    fn an_absolute_path_is_kept_and_an_unknown_base_keeps_the_path_as_given() {
        assert_eq!(abs(Some("/srv"), "/etc/hosts"), "/etc/hosts");
        assert_eq!(abs(None, "/etc/hosts"), "/etc/hosts");
        assert_eq!(abs(None, "./wal"), "./wal");
    }

    #[test]
    fn a_path_that_would_not_fit_is_kept_as_given() {
        let long = "a".repeat(MAX - 3);
        assert_eq!(abs(Some("/srv/db"), &long), long);
    }
}
