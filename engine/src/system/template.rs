//! `{i}`, `{port}`, `{data}`, `{run}` and `{peers}` in a process's `cmd`, `env`, `data` and `ready`.

/// What a replica's templates expand to.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    pub i: u32,
    pub port: Option<u16>,
    pub data: Option<String>,
    pub run: String,
    /// The other replicas' addresses, comma-separated.
    pub peers: String,
}

/// The placeholders a template may use.
pub const NAMES: &[&str] = &["i", "port", "data", "run", "peers"];

/// Checks that every `{…}` in `text` is a known placeholder (`{{` and `}}` are literal braces);
/// `allowed` narrows the set (`data` cannot refer to itself).
pub fn check(text: &str, allowed: &[&str]) -> Result<(), String> {
    expand_with(text, |name| allowed.contains(&name).then(String::new)).map(|_| ())
}

/// Expands `text`; fails on a placeholder without a value (`{port}` where there is no port).
pub fn expand(text: &str, v: &Vars) -> Result<String, String> {
    expand_with(text, |name| match name {
        "i" => Some(v.i.to_string()),
        "port" => v.port.map(|p| p.to_string()),
        "data" => v.data.clone(),
        "run" => Some(v.run.clone()),
        "peers" => Some(v.peers.clone()),
        _ => None,
    })
}

fn expand_with(text: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(t) = tail.strip_prefix("{{") {
            out.push('{');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("}}") {
            out.push('}');
            rest = t;
        } else if tail.starts_with('}') {
            return Err(format!("`{text}`: a lone `}}` (write `}}}}` for a brace)"));
        } else {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("`{text}`: `{{` without its `}}`"))?;
            let name = &tail[1..end];
            let v = value(name).ok_or_else(|| {
                if NAMES.contains(&name) {
                    format!("`{text}`: {{{name}}} has no value here")
                } else {
                    format!(
                        "`{text}`: unknown placeholder {{{name}}}; expected one of {{i}}, {{port}}, \
                         {{data}}, {{run}}, {{peers}}"
                    )
                }
            })?;
            out.push_str(&v);
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_and_unknown_ones_are_refused() {
        let v = Vars {
            i: 2,
            port: Some(7102),
            data: Some("/r/kv-2".into()),
            run: "/r".into(),
            peers: "127.0.0.1:7100,127.0.0.1:7101".into(),
        };
        assert_eq!(
            expand("--port={port} --data {data} #{i} {{x}}", &v).unwrap(),
            "--port=7102 --data /r/kv-2 #2 {x}"
        );
        assert_eq!(expand("{peers}", &v).unwrap(), v.peers);
        assert!(
            expand("{prot}", &v)
                .unwrap_err()
                .contains("unknown placeholder {prot}")
        );
        assert!(expand("{port", &v).is_err());
        let no_port = Vars::default();
        assert!(
            expand("{port}", &no_port)
                .unwrap_err()
                .contains("has no value")
        );
        assert!(check("{run}/kv-{i}", &["i", "run"]).is_ok());
        assert!(check("{data}", &["i", "run"]).is_err());
    }
}
