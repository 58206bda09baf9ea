//! chaos-ctl command lines in the docs, checked against chaos-ctl's own `--help`: every
//! subcommand named must be listed by its parent, every flag listed by the command it is given
//! to. The help is the built binary's, so a renamed flag or command fails here.

use chaos_tests::{bins, run};
use std::collections::HashMap;
use std::process::Command;

/// What `chaos-ctl SUB... --help` says about one command.
#[derive(Default)]
struct Help {
    subcommands: Vec<String>,
    /// Flags (`--policy`, `-p`) and whether each takes a value.
    flags: HashMap<String, bool>,
    /// The command's operands end in CMD...: the first operand starts the program's command line.
    trailing_cmd: bool,
}

fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut in_commands = false;
    for line in text.lines() {
        if let Some(usage) = line.strip_prefix("Usage: ") {
            help.trailing_cmd = usage.contains("CMD]...") || usage.contains("CMD>...");
        }
        if line == "Commands:" {
            in_commands = true;
            continue;
        }
        if line.trim().is_empty() || !line.starts_with(' ') {
            in_commands = false;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if in_commands {
            if let Some(name) = words.first() {
                help.subcommands.push(name.to_string());
            }
            continue;
        }
        // "  -p, --policy <POLICY>  ...", "      --force  ...", "  -h, --help"
        let mut i = 0;
        let mut names = Vec::new();
        while let Some(w) = words.get(i) {
            let w = w.trim_end_matches(',');
            if w.starts_with('-') && w.len() > 1 && names.len() < 2 {
                names.push(w.to_string());
                i += 1;
            } else {
                break;
            }
        }
        let takes_value = words.get(i).is_some_and(|w| w.starts_with('<'));
        for n in names {
            help.flags.insert(n, takes_value);
        }
    }
    help
}

/// `chaos-ctl` help, per command path, asked of the binary once each.
#[derive(Default)]
pub struct Cli {
    cache: HashMap<Vec<String>, Help>,
}

impl Cli {
    fn help(&mut self, path: &[String]) -> &Help {
        self.cache.entry(path.to_vec()).or_insert_with(|| {
            let done = run(Command::new(&bins().ctl).args(path).arg("--help"), 30);
            assert!(
                done.status.success(),
                "chaos-ctl {} --help failed: {}",
                path.join(" "),
                done.describe()
            );
            parse_help(&done.stdout)
        })
    }

    /// Checks one command line (the words after `chaos-ctl`). Err says what is wrong.
    pub fn check(&mut self, words: &[String]) -> Result<(), String> {
        let mut path: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            if w == "--" {
                return Ok(());
            }
            let help = self.help(&path);
            if w.starts_with('-') && w != "-" {
                let name = w.split('=').next().unwrap();
                // Short flags may be bundled (`-qj2` is not used in the docs; `-j` is).
                let Some(&takes_value) = help.flags.get(name) else {
                    return Err(format!(
                        "`chaos-ctl {}` has no option `{name}`",
                        path.join(" ")
                    ));
                };
                i += if takes_value && !w.contains('=') {
                    2
                } else {
                    1
                };
                continue;
            }
            if !help.subcommands.is_empty() {
                if !help.subcommands.iter().any(|s| s == w) {
                    return Err(format!(
                        "`chaos-ctl {}` has no subcommand `{w}`; it has {}",
                        path.join(" "),
                        help.subcommands.join(", ")
                    ));
                }
                path.push(w.to_string());
                i += 1;
                continue;
            }
            if help.trailing_cmd {
                // The program's command line starts here: its flags are not ours.
                return Ok(());
            }
            i += 1;
        }
        Ok(())
    }
}

/// The chaos-ctl command lines of a shell snippet: `console` blocks only on `$ ` lines (the rest
/// is output), `sh` blocks on every line; continuation lines joined, comments dropped, each
/// invocation cut at the shell operator that ends it. Documentation placeholders are unwrapped:
/// `[--json]` is checked as `--json`.
pub fn command_lines(lang: &str, body: &str) -> Vec<Vec<String>> {
    let joined = body.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = match lang {
            "console" => match line.trim_start().strip_prefix("$ ") {
                Some(l) => l,
                None => continue,
            },
            _ => line,
        };
        let words = shell_words(line);
        let mut start = None;
        for (i, w) in words.iter().enumerate() {
            if w == "chaos-ctl" || w.ends_with("/chaos-ctl") {
                start = Some(i + 1);
            }
            if let Some(s) = start
                && is_operator(w)
            {
                out.push(words[s..i].to_vec());
                start = None;
            }
        }
        if let Some(s) = start {
            out.push(words[s..].to_vec());
        }
    }
    out.into_iter()
        .map(|ws| {
            ws.into_iter()
                .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
                .filter(|w| !w.is_empty())
                .collect()
        })
        .collect()
}

fn is_operator(w: &str) -> bool {
    matches!(w, "&&" | "||" | ";" | "|" | ">" | ">>" | "<" | ")" | "&")
}

/// Splits a line into words as a shell would for our purposes: quotes group, a word starting with
/// `#` starts a comment, `;` `|` `>` `<` `&` `)` are words of their own.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    let flush = |cur: &mut String, words: &mut Vec<String>| {
        if !cur.is_empty() {
            words.push(std::mem::take(cur));
        }
    };
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' if cur.is_empty() => break,
                c if c.is_whitespace() => flush(&mut cur, &mut words),
                ';' | '|' | '>' | '<' | '&' | ')' => {
                    flush(&mut cur, &mut words);
                    let mut op = c.to_string();
                    if let Some(&n) = chars.peek()
                        && (n == c || (c == '>' && n == '>'))
                    {
                        op.push(n);
                        chars.next();
                    }
                    words.push(op);
                }
                _ => cur.push(c),
            },
        }
    }
    flush(&mut cur, &mut words);
    words
}
