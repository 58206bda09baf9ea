//! Allocation-free glob matching for unix socket paths and file paths.
//!
//! The shim matches while classifying an fd inside a hook, where it may not allocate, so the usual
//! glob crates (which compile to regexes) don't fit. Supported: `*` (any run of bytes, `/` included,
//! like fnmatch without FNM_PATHNAME), `?` (one byte), everything else literal.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob(pub String);

impl Glob {
    pub fn matches(&self, text: &[u8]) -> bool {
        glob_match(self.0.as_bytes(), text)
    }
}

/// Iterative wildcard match with single-star backtracking: O(len(pattern) * len(text)), no recursion.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn stars_and_marks() {
        assert!(glob_match(b"/var/lib/app/*", b"/var/lib/app/x/y.db"));
        assert!(glob_match(b"/tmp/*.sock", b"/tmp/a.sock"));
        assert!(!glob_match(b"/tmp/*.sock", b"/tmp/a.sockx"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"ac"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
    }
}
