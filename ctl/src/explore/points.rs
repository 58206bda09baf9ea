//! Fault points as a run's census logged them (`{"ev":"point"}` lines), and the policy that puts
//! one fault on one of them.

use crate::log::Log;
use chaos_engine::event::schema::Event;
use chaos_engine::key::Key;
use serde::{Deserialize, Serialize};

/// A place where the program calls something that could fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// What tells it apart from every other point: `op@object+0xOFFSET` for a call site in native
    /// code; `op@kind:target#site` when the census could not name a call site.
    pub id: String,
    pub op: String,
    pub kind: String,
    /// The peer or path the call acted on when it was first reached ("" if none).
    pub target: String,
    /// The decision key it was first reached at: an `[[inject]]` there puts a fault on it.
    pub process: u64,
    pub conn: u64,
    pub site: String,
    /// In a system of processes: the process that reached it (`srv#0`, `workload`), which
    /// prefixes the id (`srv#0:open@...`), so that one call site in two replicas is two points,
    /// each injected only in its own process (the key's process part).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub in_process: String,
}

impl Point {
    /// The call site for people: `open in explore_bugs+0x1234`, and in a system the process
    /// (`open in server+0x1234 (srv#0)`).
    pub fn place(&self) -> String {
        let id = self
            .id
            .strip_prefix(&format!("{}:", self.in_process))
            .filter(|_| !self.in_process.is_empty())
            .unwrap_or(&self.id);
        let place = match id.split_once('@') {
            Some((op, at)) => {
                let short = at.rsplit('/').next().unwrap_or(at);
                format!("{op} in {short}")
            }
            None => id.to_string(),
        };
        match self.in_process.as_str() {
            "" => place,
            name => format!("{place} ({name})"),
        }
    }
}

/// The name a point gives the file that holds the program's output: every run has its own
/// (`runs/NAME.out`), and a point named by it would be new in every run.
pub const OUTPUT: &str = "(output)";

/// The name a point gives its run's directory (`LOG.run/`: a system's data directories and
/// process outputs), which has another path in every run.
pub const RUN_DIR: &str = "(run)";

/// The points a run's log names, in the order it logged them; lines with a key that does not
/// parse are left out (the shim always writes one that does). `output` is the file the run's
/// stdout and stderr went to; `run_dir` the run's directory (a system's).
pub fn points_of(log: &Log, output: &std::path::Path, run_dir: &std::path::Path) -> Vec<Point> {
    let output = output.to_string_lossy();
    let run_dir = format!("{}/", run_dir.to_string_lossy());
    // A system's processes are named in their `start` lines; a program alone has no name.
    let names: std::collections::HashMap<&str, &str> = log
        .starts()
        .filter_map(|s| Some((s.header.proc.as_str(), s.process.as_deref()?)))
        .collect();
    log.events
        .iter()
        .filter_map(|e| match e {
            Event::Point(p) => Some(p),
            _ => None,
        })
        .filter_map(|p| {
            let key: Key = p.key.parse().ok()?;
            let kind = p.kind.clone().unwrap_or_default();
            let target = p
                .peer
                .clone()
                .or_else(|| p.path.clone())
                .unwrap_or_default();
            // Without a call site (an interpreter's calls), the path or connection and the
            // call's place on it: names that do not change between runs (a peer's port may).
            let on = p
                .path
                .clone()
                .map(|path| {
                    if path == output {
                        OUTPUT.to_string()
                    } else if let Some(rest) = path.strip_prefix(&run_dir) {
                        format!("{RUN_DIR}/{rest}")
                    } else {
                        path
                    }
                })
                .or_else(|| p.conn.clone())
                .unwrap_or_else(|| format!("{:016x}", key.conn));
            let id = if p.object.is_empty() {
                format!("{}@{kind}:{on}#{}", p.op, key.site)
            } else {
                format!("{}@{}+0x{:x}", p.op, p.object, p.offset)
            };
            let in_process = names
                .get(p.header.proc.as_str())
                .map_or(String::new(), |n| n.to_string());
            let id = match in_process.as_str() {
                "" => id,
                name => format!("{name}:{id}"),
            };
            Some(Point {
                id,
                op: p.op.clone(),
                kind,
                target,
                process: key.process,
                conn: key.conn,
                site: key.site.to_string(),
                in_process,
            })
        })
        .collect()
}

/// `base` (the user's policy without its rules) plus one exact injection of `fault` at `point`.
pub fn policy_with(base: &str, point: &Point, fault: &str) -> String {
    format!(
        "{base}\n# explore: {fault} at {} ({})\n[[inject]]\nprocess = \"{:016x}\"\nconn = \
         \"{:016x}\"\nat = \"{}\"\non = \"{}\"\nfault = {fault}\n",
        point.place(),
        point.id.replace('\n', " "),
        point.process,
        point.conn,
        point.site,
        point.op,
    )
}

/// Whether the run's log shows the injection at `point` (the realism model may have refused it
/// there: then it is not in the log).
pub fn fired(log: &Log, point: &Point) -> bool {
    log.faults().any(|f| {
        f.parsed_key().and_then(Result::ok).is_some_and(|k| {
            k.process == point.process && k.conn == point.conn && k.site.to_string() == point.site
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINT: &str = r#"{"ev":"point","ts_ns":1,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"open","fd":-1,"kind":"file","path":"/tmp/a.cfg","object":"/tmp/t/explore_bugs","offset":4660,"key":"c2459c08352fe84d-0000000000000042/inject/opens#0"}"#;

    #[test]
    fn a_point_line_names_its_call_site_and_key() {
        let log = Log::parse(POINT);
        let points = points_of(&log, "/tmp/t/out".as_ref(), "/tmp/t/x.run".as_ref());
        assert_eq!(points.len(), 1, "{points:?}");
        let p = &points[0];
        assert_eq!(p.id, "open@/tmp/t/explore_bugs+0x1234");
        assert_eq!(p.place(), "open in explore_bugs+0x1234");
        assert_eq!((p.process, p.conn), (0xc2459c08352fe84d, 0x42));
        assert_eq!(p.site, "opens#0");
        assert_eq!(p.target, "/tmp/a.cfg");
        let text = policy_with("seed = 1\n", p, "\"EACCES\"");
        let policy = chaos_engine::parse::parse_policy(&text, "t").unwrap();
        assert_eq!(policy.injections.len(), 1, "{text}");
    }

    #[test]
    fn in_a_system_a_point_is_the_process_s_own() {
        let start = |name: &str, proc_key: &str| {
            format!(
                r#"{{"ev":"start","ts_ns":1,"pid":7,"ppid":1,"proc":"{proc_key}","via":"exec","process":"{name}"}}"#
            )
        };
        let other = POINT.replace("c2459c08352fe84d", "00000000000000aa");
        let text = [
            start("srv#0", "c2459c08352fe84d"),
            start("srv#1", "00000000000000aa"),
            POINT.to_string(),
            other,
        ]
        .join("\n");
        let points = points_of(&Log::parse(&text), "/o".as_ref(), "/tmp/t".as_ref());
        let ids: Vec<&str> = points.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "srv#0:open@/tmp/t/explore_bugs+0x1234",
                "srv#1:open@/tmp/t/explore_bugs+0x1234"
            ]
        );
        assert_eq!(points[1].place(), "open in explore_bugs+0x1234 (srv#1)");
        assert_eq!(points[1].process, 0xaa);
        // A path under the run's directory, another in every run, is named (run)/.
        assert_eq!(points[0].target, "/tmp/a.cfg");
        let in_run = POINT.replace("/tmp/a.cfg", "/tmp/t/srv-0/a.cfg").replace(
            r#""object":"/tmp/t/explore_bugs","offset":4660"#,
            r#""offset":0"#,
        );
        let p = &points_of(&Log::parse(&in_run), "/o".as_ref(), "/tmp/t".as_ref())[0];
        assert_eq!(p.id, "open@file:(run)/srv-0/a.cfg#opens#0");
    }

    #[test]
    fn an_interpreters_point_is_named_by_what_it_acts_on_and_where() {
        let interp = POINT
            .replace(
                r#""object":"/tmp/t/explore_bugs","offset":4660"#,
                r#""offset":0"#,
            )
            .replace("opens#0", "opens#2");
        let p = &points_of(
            &Log::parse(&interp),
            "/tmp/t/out".as_ref(),
            "/tmp/t/x.run".as_ref(),
        )[0];
        assert_eq!(p.id, "open@file:/tmp/a.cfg#opens#2");
        assert_eq!(p.site, "opens#2");
        // The file that takes the run's output has another name in every run: not in the id.
        let output = interp.replace("/tmp/a.cfg", "/tmp/t/runs/1.out");
        let p = &points_of(
            &Log::parse(&output),
            "/tmp/t/runs/1.out".as_ref(),
            "/tmp/t/x.run".as_ref(),
        )[0];
        assert_eq!(p.id, "open@file:(output)#opens#2");
    }
}
