//! Every snippet in the documentation is checked, so the docs cannot drift from the code: each
//! ```toml block of README.md, docs/*.md and bench/README.md is a whole policy the engine's
//! parser accepts (```toml fragment: valid TOML only), each ```json block is JSON, each chaos-ctl
//! command line in a ```sh or ```console block names commands and flags chaos-ctl has, and every
//! relative link (and its #anchor) resolves. The convention is written down in the README,
//! "Code snippets in these documents". The last tests feed each check a broken snippet, so a
//! check that stopped looking would fail too.

mod cli;
mod markdown;

use chaos_tests::workspace_root;
use cli::{Cli, command_lines};
use markdown::{Block, anchors, blocks, links};
use std::path::{Path, PathBuf};

/// The documents a user or contributor reads: the README, docs/*.md, bench/README.md.
fn documents() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut docs = vec![root.join("README.md"), root.join("bench/README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// Paths relative to the workspace, so messages read `docs/guide.md:12`.
fn relative(p: &Path) -> PathBuf {
    p.strip_prefix(workspace_root()).unwrap_or(p).to_path_buf()
}

fn all_blocks() -> Vec<Block> {
    documents()
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            blocks(&relative(p), &text)
        })
        .collect()
}

/// What is wrong with a ```toml block, if anything.
fn toml_problem(b: &Block) -> Option<String> {
    if b.has("fragment") {
        return toml::from_str::<toml::Table>(&b.body)
            .err()
            .map(|e| format!("{}: not valid TOML: {e}", b.at()));
    }
    // Blank lines in place of the document's lines before the block: the parser's line numbers
    // are then the document's.
    let text = format!("{}{}", "\n".repeat(b.line), b.body);
    chaos_engine::parse::parse_policy(&text, &b.file.display().to_string())
        .err()
        .map(|e| format!("{e} (mark a partial policy ```toml fragment)"))
}

/// What is wrong with the chaos-ctl command lines of a shell block.
fn command_problems(cli: &mut Cli, b: &Block) -> Vec<String> {
    command_lines(b.lang(), &b.body)
        .iter()
        .filter_map(|words| {
            cli.check(words)
                .err()
                .map(|e| format!("{}: `chaos-ctl {}`: {e}", b.at(), words.join(" ")))
        })
        .collect()
}

fn json_problem(b: &Block) -> Option<String> {
    serde_json::Deserializer::from_str(&b.body)
        .into_iter::<serde_json::Value>()
        .find_map(Result::err)
        .map(|e| format!("{}: not valid JSON: {e}", b.at()))
}

/// What is wrong with the relative links of `doc` (whose text is `text`).
fn link_problems(doc: &Path, text: &str) -> Vec<String> {
    let dir = doc.parent().unwrap();
    let mut out = Vec::new();
    for (line, target) in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let at = format!("{}:{line}", relative(doc).display());
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target.as_str(), None),
        };
        let file = if path.is_empty() {
            doc.to_path_buf()
        } else {
            dir.join(path)
        };
        if !file.exists() {
            out.push(format!("{at}: link to `{target}`: no such file"));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if file.extension().is_none_or(|e| e != "md") {
            out.push(format!(
                "{at}: link to `{target}`: an anchor into a file that is not Markdown"
            ));
            continue;
        }
        let target_text = std::fs::read_to_string(&file).unwrap();
        if !anchors(&target_text).iter().any(|a| a == anchor) {
            out.push(format!(
                "{at}: link to `{target}`: {} has no heading with that anchor",
                relative(&file).display()
            ));
        }
    }
    out
}

fn assert_none(what: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} {what}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_policy_in_the_docs_parses() {
    let blocks = all_blocks();
    let tomls: Vec<&Block> = blocks.iter().filter(|b| b.lang() == "toml").collect();
    assert!(
        tomls.len() >= 5,
        "found only {} toml blocks: is the fence scanner broken?",
        tomls.len()
    );
    assert_none(
        "policies in the docs do not parse",
        tomls.iter().filter_map(|b| toml_problem(b)).collect(),
    );
}

#[test]
fn every_chaos_ctl_command_line_in_the_docs_exists() {
    let mut cli = Cli::default();
    let blocks = all_blocks();
    let shells: Vec<&Block> = blocks
        .iter()
        .filter(|b| matches!(b.lang(), "sh" | "console" | "bash" | "shell"))
        .collect();
    let lines: usize = shells
        .iter()
        .map(|b| command_lines(b.lang(), &b.body).len())
        .sum();
    assert!(
        lines >= 20,
        "found only {lines} chaos-ctl command lines: is the scanner broken?"
    );
    assert_none(
        "command lines in the docs name what chaos-ctl does not have",
        shells
            .iter()
            .flat_map(|b| command_problems(&mut cli, b))
            .collect(),
    );
}

#[test]
fn every_json_example_in_the_docs_is_json() {
    assert_none(
        "JSON examples in the docs do not parse",
        all_blocks()
            .iter()
            .filter(|b| b.lang() == "json")
            .filter_map(json_problem)
            .collect(),
    );
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    assert_none(
        "links in the docs lead nowhere",
        documents()
            .iter()
            .flat_map(|d| link_problems(d, &std::fs::read_to_string(d).unwrap()))
            .collect(),
    );
}

#[test]
fn every_code_block_says_what_it_holds() {
    // An unlabelled block escapes every check above: label it (```text for output).
    assert_none(
        "code blocks without a language",
        all_blocks()
            .iter()
            .filter(|b| b.lang().is_empty())
            .map(|b| format!("{}: a ``` block with no language", b.at()))
            .collect(),
    );
}

/// The modules `lib_rs` declares that its `//!` overview does not name (as `name` or `name::…`).
fn unlisted_modules(lib_rs: &str) -> Vec<String> {
    let overview: String = lib_rs
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    lib_rs
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';')
        })
        .filter(|m| !overview.contains(&format!("`{m}`")) && !overview.contains(&format!("`{m}::")))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_crate_overviews_name_every_module() {
    for lib in ["shim/src/lib.rs", "engine/src/lib.rs"] {
        let text = std::fs::read_to_string(workspace_root().join(lib)).unwrap();
        let missing = unlisted_modules(&text);
        assert!(
            missing.is_empty(),
            "{lib}: its //! overview does not mention {missing:?}; add a line for each"
        );
    }
    let stale = "//! Layout: `real` (the real functions).\nmod real;\nmod plan;\npub mod log;\n";
    assert_eq!(unlisted_modules(stale), ["plan", "log"]);
}

// The checks catch what they are meant to catch: broken snippets of each kind are reported.

fn block(info: &str, body: &str) -> Block {
    blocks(
        Path::new("broken.md"),
        &format!("text\n\n```{info}\n{body}\n```\n"),
    )
    .pop()
    .unwrap()
}

#[test]
fn a_broken_policy_is_reported() {
    let misspelt = block("toml", "[[rules]]\non = \"recieve\"\nfault = \"EINTR\"");
    let problem = toml_problem(&misspelt).expect("a misspelt op is reported");
    assert!(problem.contains("broken.md:5:"), "{problem}");
    assert!(problem.contains("recieve"), "{problem}");
    // A fragment is not a policy, but it must still be TOML.
    let fragment = block("toml,fragment", "peer = \"127.0.0.1:6379\"");
    assert_eq!(toml_problem(&fragment), None);
    assert!(toml_problem(&block("toml fragment", "peer = ")).is_some());
    assert!(toml_problem(&block("toml", "peer = \"127.0.0.1:6379\"")).is_some());
}

#[test]
fn a_command_line_naming_what_chaos_ctl_lacks_is_reported() {
    let mut cli = Cli::default();
    let cases = [
        ("sh", "chaos-ctl runn -- ./client", "no subcommand `runn`"),
        (
            "sh",
            "chaos-ctl run --polcy p.toml -- ./client",
            "no option `--polcy`",
        ),
        (
            "sh",
            "chaos-ctl control --run X heal --now",
            "no option `--now`",
        ),
        ("sh", "chaos-ctl profiles shw benign", "no subcommand `shw`"),
        (
            "console",
            "$ cd /src && chaos-ctl sweep --sed 1..2 -- ./c",
            "no option `--sed`",
        ),
        (
            "sh",
            "make x && chaos-ctl report run.jsonl [--jsn]",
            "no option `--jsn`",
        ),
    ];
    for (lang, line, expected) in cases {
        let problems = command_problems(&mut cli, &block(lang, line));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{line}: expected a problem with `{expected}`, got {problems:?}"
        );
    }
    let fine = [
        (
            "sh",
            "chaos-ctl run --seed 4 -- ./client --polcy x   # the program's flags are its own",
        ),
        (
            "sh",
            "chaos-ctl control --run LOG.run partition kv#0,workload kv#1 [--one-way]",
        ),
        (
            "console",
            "$ chaos-ctl validate -\nchaos-ctl --nonsense is output, not a command",
        ),
        (
            "sh",
            "chaos-ctl sweep --seeds 1..9 -j 2 \\\n  --keep-going -- ./client",
        ),
    ];
    for (lang, line) in fine {
        assert_eq!(
            command_problems(&mut cli, &block(lang, line)),
            Vec::<String>::new()
        );
    }
}

#[test]
fn a_link_to_a_missing_file_or_heading_is_reported() {
    let dir = chaos_tests::TempDir::new("doc-links");
    let doc = dir.write(
        "a.md",
        "# Title\n\n## Two words: `code`\n\nSee [x](#two-words-code), [y](b.md), [z](#nope) and [w](a.md#title).\n",
    );
    let text = std::fs::read_to_string(&doc).unwrap();
    let problems = link_problems(&doc, &text);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("`b.md`: no such file"), "{problems:?}");
    assert!(problems[1].contains("`#nope`"), "{problems:?}");
}
