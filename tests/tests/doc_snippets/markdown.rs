//! Just enough Markdown for the snippet checks: fenced blocks with their info strings, headings
//! as GitHub turns them into anchors, and relative links. Not a Markdown parser: the documents
//! are ours, and a construct this misreads shows up as a failing check, not a silent pass.

use std::path::{Path, PathBuf};

/// One fenced code block.
pub struct Block {
    pub file: PathBuf,
    /// Line of the opening fence (1-based), for messages.
    pub line: usize,
    /// The info string's words: "toml fragment" and "toml,fragment" both give ["toml", "fragment"].
    pub info: Vec<String>,
    pub body: String,
}

impl Block {
    pub fn lang(&self) -> &str {
        self.info.first().map(String::as_str).unwrap_or("")
    }
    pub fn has(&self, word: &str) -> bool {
        self.info.iter().skip(1).any(|w| w == word)
    }
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// The fenced blocks of `text`. A fence may be indented (inside a list item); the body loses the
/// fence's indentation.
pub fn blocks(file: &Path, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, Vec<String>, Vec<String>)> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match &mut open {
            None if trimmed.starts_with("```") => {
                let info = trimmed[3..]
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect();
                open = Some((i + 1, indent, info, Vec::new()));
            }
            None => {}
            Some(_) if trimmed.starts_with("```") => {
                let (line, _, info, body) = open.take().unwrap();
                out.push(Block {
                    file: file.to_path_buf(),
                    line,
                    info,
                    body: body.join("\n"),
                });
            }
            Some((_, fence_indent, _, body)) => {
                let cut = indent.min(*fence_indent);
                body.push(line[cut..].to_string());
            }
        }
    }
    assert!(
        open.is_none(),
        "{}: a code fence is never closed",
        file.display()
    );
    out
}

/// The lines outside fenced blocks, numbered from 1.
fn outside_fences(text: &str) -> Vec<(usize, &str)> {
    let mut inside = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if !inside {
            out.push((i + 1, line));
        }
    }
    out
}

/// The text outside fenced blocks, with inline code spans left out, line numbers kept.
pub fn prose(text: &str) -> Vec<(usize, String)> {
    outside_fences(text)
        .into_iter()
        .map(|(n, line)| (n, without_code_spans(line)))
        .collect()
}

fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = "`".repeat(ticks);
        out.push_str(&rest[..start]);
        match rest[start + ticks..].find(&fence) {
            Some(end) => rest = &rest[start + ticks + end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The anchors GitHub gives the headings of `text`: lowercased, punctuation dropped, spaces
/// turned into hyphens, a repeated one suffixed -1, -2...
pub fn anchors(text: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (_, line) in outside_fences(text) {
        // A code span in a heading keeps its text in the anchor, without the backticks.
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.iter().filter(|s| **s == slug).count();
        seen.push(slug.clone());
        out.push(if n == 0 { slug } else { format!("{slug}-{n}") });
    }
    out
}

/// Every `](target)` outside code, with its line: links and images alike.
pub fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            if let Some(end) = rest.find(')') {
                out.push((n, rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
    }
    out
}
