//! `chaos-ctl report --html` and `run --html`: one self-contained page (no network: the chart
//! library, the data and the code are inline), so CI can keep it as an artifact. The data is
//! `timeline::build`'s; the page's code is `ctl/assets/timeline.js`, drawing with Apache ECharts
//! (`ctl/assets/echarts.min.js`, Apache-2.0, its licence beside it).

use crate::failure::Failure;
use crate::log::Log;
use crate::output::out;
use std::path::Path;

const TEMPLATE: &str = include_str!("../assets/timeline.html");
const ECHARTS: &str = include_str!("../assets/echarts.min.js");
const APP: &str = include_str!("../assets/timeline.js");

/// The page for `logs` (path, parsed log), titled `title`.
pub fn page(logs: &[(String, Log)], title: &str) -> String {
    let data = crate::timeline::build(logs).to_string();
    // Inside <script> only "</" could end the element early; "<\/" is the same JSON string.
    let data = data.replace("</", "<\\/");
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    fill(
        TEMPLATE,
        &[
            ("TITLE", &title),
            ("ECHARTS", ECHARTS),
            ("DATA", &data),
            ("APP", APP),
        ],
    )
}

/// `template` with each `{{NAME}}` replaced by its value, in one pass (a value is never searched
/// for placeholders).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find("}}").and_then(|end| {
            let name = &after[..end];
            values.iter().find(|v| v.0 == name).map(|v| (v.1, end))
        }) {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Writes the page of the logs at `paths` to `out` (`-`: stdout).
pub fn write(paths: &[&Path], out: &Path) -> Result<(), Failure> {
    let mut logs = Vec::new();
    for p in paths {
        logs.push((p.display().to_string(), Log::read_chaos_log(p)?));
    }
    let title = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let html = page(&logs, &title);
    if out.as_os_str() == "-" {
        out!("{html}")?;
        return Ok(());
    }
    std::fs::write(out, html)
        .map_err(|e| Failure::own(format!("cannot write {}: {e}", out.display())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_holds_everything_inline_and_a_script_end_in_the_data_cannot_close_it() {
        let log = crate::log::Log::parse(concat!(
            r#"{"ev":"start","ts_ns":1,"pid":5,"ppid":1,"proc":"00000000000000aa","via":"exec","#,
            r#""exe":"/bin/x</script><b>{{APP}}","argv":["x"]}"#
        ));
        let html = super::page(&[("a.jsonl".into(), log)], "a <b>");
        for p in ["{{TITLE}}", "{{ECHARTS}}", "{{DATA}}"] {
            assert!(!html.contains(p), "{p} filled");
        }
        assert_eq!(
            html.matches("window.chaosTimeline =").count(),
            1,
            "the app once"
        );
        assert!(html.contains("script><b>{{APP}} 5"), "the data as it was");
        assert!(
            !html.contains("src=\"http"),
            "nothing loaded from the network"
        );
        assert_eq!(
            html.matches("</script>").count(),
            4,
            "only the page's own scripts end"
        );
        assert!(html.contains("<title>chaos run: a &lt;b&gt;</title>"));
    }
}
