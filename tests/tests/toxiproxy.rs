//! Toxiproxy's HTTP API (`chaos-ctl toxiproxy`, `chaos-ctl run --toxiproxy-addr`): every
//! endpoint's status and body against what Toxiproxy's source (Shopify/toxiproxy api.go,
//! proxy_collection.go, toxic_collection.go) answers, and the relay its proxies become.

use chaos_tests::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// `chaos-ctl toxiproxy` on a free port, killed with its group when dropped.
fn standalone(extra: &[&str]) -> (Background, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let server = Background::spawn(
        Command::new(&bins().ctl)
            .args(["toxiproxy", "--listen", &addr])
            .args(extra)
            .stderr(std::process::Stdio::null()),
    );
    wait_for_port(port, 20);
    (server, addr)
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// One request, raw HTTP/1.1, as a Toxiproxy client sends it.
fn http(addr: &str, method: &str, path: &str, body: &str, agent: &str) -> Answer {
    let mut s = TcpStream::connect(addr).expect("the API listens");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {agent}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("an answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: body.to_string(),
    }
}

fn call(addr: &str, method: &str, path: &str, body: &str) -> Answer {
    http(addr, method, path, body, "toxiproxy-test")
}

fn expect(a: Answer, status: u16, body: &str) {
    assert_eq!((a.status, a.body.as_str()), (status, body), "{}", a.body);
}

#[test]
fn every_endpoint_answers_as_toxiproxys_source_does() {
    let (_server, api) = standalone(&[]);
    let up = "127.0.0.1:1";
    // api.go Version: `fmt.Sprintf("{\"version\": \"%s\"}\n", Version)`.
    let v = call(&api, "GET", "/version", "");
    assert_eq!(v.content_type, "application/json;charset=utf-8");
    expect(v, 200, "{\"version\": \"2.12.0\"}\n");
    expect(call(&api, "GET", "/proxies", ""), 200, "{}");

    // ProxyCreate: `response.WriteHeader(http.StatusCreated)`; `proxy.Listen =
    // proxy.listener.Addr().String()` reports the port bound.
    let created = call(
        &api,
        "POST",
        "/proxies",
        &format!(r#"{{"name":"redis","listen":"localhost:0","upstream":"{up}"}}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let v: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    let listen = v["listen"].as_str().unwrap().to_string();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{listen}"
    );
    let redis = format!(
        r#"{{"name":"redis","listen":"{listen}","upstream":"{up}","enabled":true,"toxics":[]}}"#
    );
    assert_eq!(created.body, redis);
    // ErrProxyAlreadyExists = newError("proxy already exists", http.StatusConflict), through
    // http.Error: text/plain, the JSON and a newline.
    let again = call(
        &api,
        "POST",
        "/proxies",
        &format!(r#"{{"name":"redis","upstream":"{up}"}}"#),
    );
    assert_eq!(again.content_type, "text/plain; charset=utf-8");
    expect(
        again,
        409,
        "{\"error\":\"proxy already exists\",\"status\":409}\n",
    );
    // `joinError(fmt.Errorf("name"), ErrMissingField)`.
    expect(
        call(&api, "POST", "/proxies", r#"{"upstream":"x:1"}"#),
        400,
        "{\"error\":\"missing required field: name\",\"status\":400}\n",
    );
    expect(
        call(&api, "POST", "/proxies", r#"{"name":"x"}"#),
        400,
        "{\"error\":\"missing required field: upstream\",\"status\":400}\n",
    );
    expect(
        call(&api, "POST", "/proxies", ""),
        400,
        "{\"error\":\"bad request body: EOF\",\"status\":400}\n",
    );
    expect(call(&api, "GET", "/proxies/redis", ""), 200, &redis);
    expect(
        call(&api, "GET", "/proxies", ""),
        200,
        &format!("{{\"redis\":{redis}}}"),
    );
    expect(
        call(&api, "GET", "/proxies/nope", ""),
        404,
        "{\"error\":\"proxy not found\",\"status\":404}\n",
    );

    // AddToxicJson: stream downstream, toxicity 1, name `<type>_<stream>`; ToxicCreate writes
    // no status of its own, so 200.
    let latency = r#"{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}"#;
    expect(
        call(
            &api,
            "POST",
            "/proxies/redis/toxics",
            r#"{"type":"latency","attributes":{"latency":100}}"#,
        ),
        200,
        latency,
    );
    expect(
        call(
            &api,
            "POST",
            "/proxies/redis/toxics",
            r#"{"type":"latency"}"#,
        ),
        409,
        "{\"error\":\"toxic already exists\",\"status\":409}\n",
    );
    expect(
        call(
            &api,
            "POST",
            "/proxies/redis/toxics",
            r#"{"type":"latency","stream":"sideways"}"#,
        ),
        400,
        "{\"error\":\"stream was invalid, can be either upstream or downstream\",\"status\":400}\n",
    );
    expect(
        call(&api, "POST", "/proxies/redis/toxics", r#"{"type":"lag"}"#),
        400,
        "{\"error\":\"invalid toxic type\",\"status\":400}\n",
    );
    let limit = r#"{"attributes":{"bytes":10},"name":"cut","type":"limit_data","stream":"upstream","toxicity":0.5}"#;
    expect(
        call(
            &api,
            "POST",
            "/proxies/redis/toxics",
            r#"{"name":"cut","type":"limit_data","stream":"upstream","toxicity":0.5,"attributes":{"bytes":10}}"#,
        ),
        200,
        limit,
    );
    // GetToxicArray: the upstream chain, then the downstream one.
    expect(
        call(&api, "GET", "/proxies/redis/toxics", ""),
        200,
        &format!("[{limit},{latency}]"),
    );
    expect(
        call(&api, "GET", "/proxies/redis/toxics/cut", ""),
        200,
        limit,
    );
    // UpdateToxicJson decodes onto the existing toxic; POST and PATCH both route to it.
    let updated = latency.replace("\"jitter\":0", "\"jitter\":5");
    expect(
        call(
            &api,
            "PATCH",
            "/proxies/redis/toxics/latency_downstream",
            r#"{"attributes":{"jitter":5}}"#,
        ),
        200,
        &updated,
    );
    expect(
        call(&api, "PATCH", "/proxies/redis/toxics/nope", "{}"),
        404,
        "{\"error\":\"toxic not found\",\"status\":404}\n",
    );
    expect(
        call(&api, "DELETE", "/proxies/redis/toxics/cut", ""),
        204,
        "",
    );
    expect(
        call(&api, "DELETE", "/proxies/redis/toxics/cut", ""),
        404,
        "{\"error\":\"toxic not found\",\"status\":404}\n",
    );

    // ProxyUpdate: fields not given keep their values.
    let off = call(&api, "PATCH", "/proxies/redis", r#"{"enabled":false}"#);
    assert_eq!(off.status, 200);
    assert!(off.body.contains("\"enabled\":false"), "{}", off.body);
    // ResetState: every proxy started again, every toxic removed; 204, with no body and so no
    // Content-Type.
    let reset = call(&api, "POST", "/reset", "");
    assert_eq!(reset.content_type, "");
    expect(reset, 204, "");
    expect(call(&api, "GET", "/proxies/redis", ""), 200, &redis);

    // Populate: 201 with the proxies; an existing one that does not differ is kept.
    let populated = call(
        &api,
        "POST",
        "/populate",
        &format!(r#"[{{"name":"redis","listen":"{listen}","upstream":"{up}"}}]"#),
    );
    expect(populated, 201, &format!("{{\"proxies\":[{redis}]}}"));
    // `joinError(fmt.Errorf("upstream at proxy %d", i+1), ErrMissingField)`, inline with the
    // (nil) proxies, as JSON.
    let refused = call(&api, "POST", "/populate", r#"[{"name":"a"}]"#);
    assert_eq!(refused.content_type, "application/json");
    expect(
        refused,
        400,
        r#"{"error":"missing required field: upstream at proxy 1","status":400,"proxies":null}"#,
    );

    // stopBrowsersMiddleware: `strings.HasPrefix(r.UserAgent(), "Mozilla/")` → 403.
    let browser = http(
        &api,
        "GET",
        "/proxies",
        "",
        "Mozilla/5.0 (X11; Linux x86_64)",
    );
    expect(browser, 403, "User agent not allowed\n");
    // gorilla/mux: no such route, and a route's path with another method.
    expect(call(&api, "GET", "/nope", ""), 404, "404 page not found\n");
    assert_eq!(call(&api, "PUT", "/proxies/redis", "").status, 405);

    expect(call(&api, "DELETE", "/proxies/redis", ""), 204, "");
    expect(
        call(&api, "DELETE", "/proxies/redis", ""),
        404,
        "{\"error\":\"proxy not found\",\"status\":404}\n",
    );
    expect(call(&api, "GET", "/proxies", ""), 200, "{}");
}

/// An echo server on a free port, for as long as the test runs.
fn echo_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Sends a line and reads its echo; how long the round trip took.
fn round_trip(conn: &mut TcpStream) -> Duration {
    let start = Instant::now();
    conn.write_all(b"ping\n").unwrap();
    let mut got = [0u8; 5];
    conn.read_exact(&mut got).expect("the echo");
    assert_eq!(&got, b"ping\n");
    start.elapsed()
}

fn connect(listen: &str) -> std::io::Result<TcpStream> {
    let conn = TcpStream::connect(listen)?;
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(conn)
}

#[test]
fn a_proxy_is_a_relay_under_its_toxics_and_disabling_it_refuses_and_closes() {
    let (_server, api) = standalone(&["--seed", "3"]);
    let up = echo_upstream();
    let created = call(
        &api,
        "POST",
        "/proxies",
        &format!(r#"{{"name":"echo","listen":"127.0.0.1:0","upstream":"{up}"}}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let v: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    let listen = v["listen"].as_str().unwrap().to_string();
    let mut conn = connect(&listen).expect("the relay listens");
    round_trip(&mut conn);

    // A toxic added to a live connection acts on it (Toxiproxy adds it to every link).
    let added = call(
        &api,
        "POST",
        "/proxies/echo/toxics",
        r#"{"type":"latency","attributes":{"latency":300}}"#,
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let slow = round_trip(&mut conn);
    assert!(
        slow >= Duration::from_millis(300),
        "the echo came back in {slow:?}"
    );
    assert_eq!(
        call(
            &api,
            "DELETE",
            "/proxies/echo/toxics/latency_downstream",
            ""
        )
        .status,
        204
    );

    // limit_data: the connection ends after that many bytes of the server's answer.
    let mut fresh = connect(&listen).unwrap();
    call(
        &api,
        "POST",
        "/proxies/echo/toxics",
        r#"{"type":"limit_data","attributes":{"bytes":3}}"#,
    );
    let mut limited = connect(&listen).unwrap();
    limited.write_all(b"ping\n").unwrap();
    let mut got = Vec::new();
    let _ = limited.read_to_end(&mut got);
    assert_eq!(got, b"pin", "3 bytes through, then the end");
    assert_eq!(call(&api, "POST", "/reset", "").status, 204);
    round_trip(&mut fresh);

    // proxy.go stop: the listener is closed and every connection with it.
    let off = call(&api, "PATCH", "/proxies/echo", r#"{"enabled":false}"#);
    assert_eq!(off.status, 200, "{}", off.body);
    let mut rest = Vec::new();
    assert!(
        matches!(conn.read_to_end(&mut rest), Ok(0) | Err(_)),
        "the open connection is closed"
    );
    let refused = connect(&listen).map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let on = call(&api, "PATCH", "/proxies/echo", r#"{"enabled":true}"#);
    assert_eq!(on.status, 200, "{}", on.body);
    round_trip(&mut connect(&listen).expect("served again"));
}

#[test]
fn run_logs_every_toxiproxy_change_as_a_control_line() {
    let Some(curl) = require("curl") else { return };
    let dir = TempDir::new("toxiproxy-run");
    let port = free_port();
    let api = format!("127.0.0.1:{port}");
    // The API is bound before the program starts, so its first request finds it.
    let script = format!(
        "{curl} -sf -X POST http://{api}/proxies -d '{{\"name\":\"r\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:1\"}}' >/dev/null && \
         {curl} -sf -X POST http://{api}/proxies/r/toxics -d '{{\"type\":\"latency\",\"attributes\":{{\"latency\":5}}}}' >/dev/null && \
         {curl} -sf -X DELETE http://{api}/proxies/r/toxics/latency_downstream",
        curl = curl.display()
    );
    let policy = dir.write("none.toml", "seed = 1\n");
    let done = run(
        Command::new(&bins().ctl)
            .arg("run")
            .arg("--policy")
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("run.jsonl"))
            .args(["--toxiproxy-addr", &api, "--", "sh", "-c", &script]),
        60,
    );
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    let lines: Vec<(String, Option<String>)> = read_events(&dir.join("run.jsonl"))
        .iter()
        .filter_map(Event::as_control)
        .filter(|c| c.by.as_deref() == Some("toxiproxy"))
        .map(|c| (c.what.clone(), c.rule.clone()))
        .collect();
    let whats: Vec<&str> = lines.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        whats,
        ["proxy-create", "toxic-add", "toxic-remove"],
        "{lines:?}"
    );
    let added = lines[1].1.as_deref().expect("toxic-add names its toxic");
    assert!(added.starts_with("r/latency_downstream {"), "{lines:?}");
    assert!(added.contains("\"latency\":5"), "{lines:?}");
}

/// tests/node with the npm clients installed (`.ci/run`: `npm ci --prefix tests/node`); under
/// CI a missing install fails the test.
fn node_clients() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let node = require("node")?;
    let dir = workspace_root().join("tests/node");
    if !dir.join("node_modules/toxiproxy-node-client").is_dir() {
        if std::env::var_os("CI").is_some() {
            panic!("tests/node/node_modules is missing: run `npm ci --prefix tests/node`");
        }
        eprintln!("SKIPPED: npm ci --prefix tests/node has not been run");
        return None;
    }
    Some((node, dir.join("toxiproxy_redis.js")))
}

fn redis_server(dir: &TempDir) -> Option<(Background, String)> {
    let server = require("redis-server")?;
    let port = free_port();
    let redis = Background::spawn(
        Command::new(server)
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null()),
    );
    wait_for_port(port, 20);
    Some((redis, format!("127.0.0.1:{port}")))
}

/// What the script measured with its PING under the latency toxic, and that it finished.
fn check_node_run(done: &Finished) {
    // The node script prints `toxic latency_downstream … MS`.
    fn ping(l: &str) -> Option<&str> {
        l.strip_prefix("toxic latency_downstream ")?
            .rsplit(' ')
            .next()
    }
    let steps = [
        "disabled: refused and closed",
        "enabled: served",
        "reset: no toxics",
        "ok",
    ];
    check_client_run(done, ping, &steps);
}

/// A client script's run: it exited 0, PING under the 200 ms latency toxic took at least that
/// long (`ping` finds the milliseconds in its line), and it printed every step.
fn check_client_run(done: &Finished, ping: fn(&str) -> Option<&str>, steps: &[&str]) {
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    let slow: f64 = done
        .stdout
        .lines()
        .find_map(ping)
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no PING under the toxic: {}", done.describe()));
    assert!(slow >= 200.0, "PING took {slow} ms under a 200 ms latency");
    for step in steps {
        assert!(
            done.stdout.lines().any(|l| l == *step),
            "{step}: {}",
            done.describe()
        );
    }
}

#[test]
fn toxiproxy_node_client_drives_the_relay_from_outside_the_run() {
    let Some((node, script)) = node_clients() else {
        return;
    };
    let dir = TempDir::new("toxiproxy-node-outside");
    let Some((_redis, upstream)) = redis_server(&dir) else {
        return;
    };
    let (_api, api) = standalone(&[]);
    let done = run(
        Command::new(node)
            .arg(script)
            .arg(format!("http://{api}"))
            .arg(&upstream),
        60,
    );
    check_node_run(&done);
}

#[test]
fn toxiproxy_node_client_drives_the_run_it_is_under() {
    let Some((node, script)) = node_clients() else {
        return;
    };
    let dir = TempDir::new("toxiproxy-node-under");
    let Some((_redis, upstream)) = redis_server(&dir) else {
        return;
    };
    let api = format!("127.0.0.1:{}", free_port());
    let policy = dir.write("none.toml", "seed = 1\n");
    let done = run(
        Command::new(&bins().ctl)
            .arg("run")
            .arg("--policy")
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("run.jsonl"))
            .args(["--toxiproxy-addr", &api, "--"])
            .arg(node)
            .arg(script)
            .arg(format!("http://{api}"))
            .arg(&upstream),
        90,
    );
    check_node_run(&done);
    let log = read_events(&dir.join("run.jsonl"));
    assert!(
        log.iter()
            .filter_map(Event::as_start)
            .any(|s| s.exe.as_deref().is_some_and(|x| x.ends_with("node"))),
        "node ran under the shim"
    );
    let changes = log
        .iter()
        .filter_map(Event::as_control)
        .filter(|c| c.by.as_deref() == Some("toxiproxy"))
        .count();
    assert_eq!(changes, 8, "every change the client made is a control line");
    // Under chaos the client's connection is made straight to redis, and the latency toxic
    // acted in node itself (its line), not in a relay.
    let node_pids: Vec<i32> = log
        .iter()
        .filter_map(Event::as_start)
        .filter(|s| s.exe.as_deref().is_some_and(|x| x.ends_with("node")))
        .map(|s| s.header.pid)
        .collect();
    assert!(
        fault_events(&log).iter().any(|f| f.rule == "toxiproxy"
            && f.effect.as_deref() == Some("latency")
            && node_pids.contains(&f.header.pid)),
        "the latency toxic acted in node"
    );
}

#[test]
fn a_bad_address_is_refused_with_125_naming_the_flag() {
    let done = run(
        Command::new(&bins().ctl).args(["toxiproxy", "--listen", "localhost"]),
        20,
    );
    assert_eq!(done.code(), Some(125), "{}", done.describe());
    assert!(
        done.stderr
            .contains("--listen `localhost`: expected IP:PORT"),
        "{}",
        done.describe()
    );
    let dir = TempDir::new("toxiproxy-bad-addr");
    let mut argv = vec!["run".to_string(), "--toxiproxy-addr".into(), "8474".into()];
    argv.extend([
        "--log".into(),
        dir.join("x.jsonl").display().to_string(),
        "--".into(),
        "true".into(),
    ]);
    let done = run(Command::new(&bins().ctl).args(&argv), 20);
    assert_eq!(done.code(), Some(125), "{}", done.describe());
    assert!(
        done.stderr.contains("--toxiproxy-addr `8474`"),
        "{}",
        done.describe()
    );
}

/// python3 with the PyPI client `toxiproxy-python` (`.ci/run` pip-installs it); under CI a
/// missing install fails the test.
fn python_client() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let python = require("python3")?;
    let found = run(Command::new(&python).args(["-c", "import toxiproxy"]), 20);
    if found.code() != Some(0) {
        if std::env::var_os("CI").is_some() {
            panic!("toxiproxy-python is missing: pip install toxiproxy-python==0.1.1");
        }
        eprintln!("SKIPPED: toxiproxy-python is not installed");
        return None;
    }
    Some((
        python,
        workspace_root().join("tests/python/toxiproxy_redis.py"),
    ))
}

fn check_python_run(done: &Finished) {
    fn ping(l: &str) -> Option<&str> {
        l.strip_prefix("toxics ['latency_downstream'] ping_ms ")
    }
    let steps = ["down: refused", "up: served", "reset: no toxics", "ok"];
    check_client_run(done, ping, &steps);
}

#[test]
fn toxiproxy_python_drives_the_relay_outside_and_under_a_run() {
    let Some((python, script)) = python_client() else {
        return;
    };
    let dir = TempDir::new("toxiproxy-python");
    let Some((_redis, upstream)) = redis_server(&dir) else {
        return;
    };
    let (_api, api) = standalone(&[]);
    let (host, port) = api.rsplit_once(':').unwrap();
    let done = run(
        Command::new(&python)
            .arg(&script)
            .args([host, port, &upstream]),
        60,
    );
    check_python_run(&done);

    let port = free_port().to_string();
    let policy = dir.write("none.toml", "seed = 1\n");
    let done = run(
        Command::new(&bins().ctl)
            .arg("run")
            .arg("--policy")
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("run.jsonl"))
            .args(["--toxiproxy-addr", &format!("127.0.0.1:{port}"), "--"])
            .arg(&python)
            .arg(&script)
            .args(["127.0.0.1", &port, &upstream]),
        90,
    );
    check_python_run(&done);
}

/// A proxy to a fresh echo server with one toxic on it; the relay's address.
fn proxy_with(api: &str, name: &str, toxic: &str) -> String {
    let up = echo_upstream();
    let created = call(
        api,
        "POST",
        "/proxies",
        &format!(r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"{up}"}}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let added = call(api, "POST", &format!("/proxies/{name}/toxics"), toxic);
    assert_eq!(added.status, 200, "{}", added.body);
    let v: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    v["listen"].as_str().unwrap().to_string()
}

#[test]
fn each_toxic_acts_in_the_relay_as_toxiproxys_does() {
    let (_server, api) = standalone(&[]);

    // reset_peer (toxics/reset_peer.go, link.go's linger 0): the first data ends the connection
    // with a reset.
    let listen = proxy_with(
        &api,
        "reset",
        r#"{"type":"reset_peer","attributes":{"timeout":0}}"#,
    );
    let mut conn = connect(&listen).unwrap();
    conn.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 16];
    let err = conn.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");

    // timeout (toxics/timeout.go): data is swallowed, and the connection closed `timeout` ms on.
    let listen = proxy_with(
        &api,
        "timeout",
        r#"{"type":"timeout","stream":"upstream","attributes":{"timeout":100}}"#,
    );
    let mut conn = connect(&listen).unwrap();
    conn.write_all(b"ping\n").unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "nothing reached the server to echo: {got:?}"
    );

    // bandwidth 1 KB/s (toxics/bandwidth.go: len * ms / rate): 500 bytes take 500 ms.
    let listen = proxy_with(
        &api,
        "slow",
        r#"{"type":"bandwidth","attributes":{"rate":1}}"#,
    );
    let mut conn = connect(&listen).unwrap();
    let start = Instant::now();
    conn.write_all(&[b'x'; 500]).unwrap();
    let mut got = vec![0u8; 500];
    conn.read_exact(&mut got).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );

    // slicer (toxics/slicer.go): one chunk arrives in pieces `delay` µs apart.
    let listen = proxy_with(
        &api,
        "sliced",
        r#"{"type":"slicer","attributes":{"average_size":1,"size_variation":0,"delay":20000}}"#,
    );
    let mut conn = connect(&listen).unwrap();
    conn.write_all(b"ping\n").unwrap();
    let (mut got, mut reads) = (Vec::new(), 0);
    while got.len() < 5 {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the echo ended early");
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert_eq!(got, b"ping\n");
    assert!(reads >= 2, "the echo came in one piece");

    // slow_close (toxics/slow_close.go): the end of the stream arrives `delay` ms late.
    let listen = proxy_with(
        &api,
        "lingers",
        r#"{"type":"slow_close","attributes":{"delay":300}}"#,
    );
    let mut conn = connect(&listen).unwrap();
    round_trip(&mut conn);
    let start = Instant::now();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}

/// Which of 12 connections a toxicity-0.5 latency toxic delays, under `--seed seed`: connected
/// one after another (so the relay numbers them in that order), measured together.
fn delayed_connections(seed: &str) -> Vec<bool> {
    let (_server, api) = standalone(&["--seed", seed]);
    let listen = proxy_with(
        &api,
        "half",
        r#"{"type":"latency","toxicity":0.5,"attributes":{"latency":1000}}"#,
    );
    let conns: Vec<TcpStream> = (0..12).map(|_| connect(&listen).unwrap()).collect();
    let timings: Vec<_> = conns
        .into_iter()
        .map(|mut c| std::thread::spawn(move || round_trip(&mut c)))
        .collect();
    timings
        .into_iter()
        .map(|t| t.join().unwrap() >= Duration::from_millis(1000))
        .collect()
}

#[test]
fn toxicity_draws_per_connection_and_the_seed_repeats_them() {
    let first = delayed_connections("5");
    assert!(
        first.contains(&true) && first.contains(&false),
        "toxicity 0.5 delays some connections, not all: {first:?}"
    );
    assert_eq!(
        delayed_connections("5"),
        first,
        "the same seed, the same connections"
    );
    assert_ne!(delayed_connections("6"), first, "another seed draws others");
}

#[test]
fn standing_alone_the_changes_go_to_a_new_private_log() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("toxiproxy-log");
    let log = dir.join("changes.jsonl");
    let (_server, api) = standalone(&["--log", log.to_str().unwrap()]);
    let created = call(
        &api,
        "POST",
        "/proxies",
        r#"{"name":"r","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let lines = read_events(&log);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let change = lines[0].as_control().expect("a control line");
    assert_eq!(
        (change.by.as_deref(), change.what.as_str()),
        (Some("toxiproxy"), "proxy-create")
    );
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
