//! `warrend` end to end: a real daemon on a real socket, real cells, real SQLite files.
//! Guests: the `counter` example, the C guest written from docs/protocol.md alone, and the
//! `hostile` test guest (tests/guests/hostile.rs), which misbehaves on request.

use std::sync::Arc;

use warren::daemon::{example, http, Daemon};

fn deploy_hostile(d: &Daemon, query: &str) {
    let r = d.deploy("hostile", &example("hostile"), query);
    assert_eq!(r.status, 201, "{}", r.text());
}

fn count(d: &Daemon, object: &str) -> String {
    let r = d.fetch("hostile", object, "GET", "/count", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[test]
fn deploy_then_fetch_the_counter_and_it_persists_across_restarts() {
    let mut d = Daemon::start();
    let r = d.deploy("counter", &example("counter"), "memory=64M&timeout=5s");
    assert_eq!(r.status, 201, "{}", r.text());
    let w = r.json();
    assert_eq!(w["name"], "counter");
    assert_eq!(w["version"], 1);
    assert_eq!(w["limits"]["memory"], 64 << 20);
    for expected in ["1", "2", "3"] {
        let r = d.fetch("counter", "alice", "POST", "/increment", b"");
        assert_eq!(
            (r.status, r.text().trim().to_string()),
            (200, expected.to_string())
        );
    }
    assert_eq!(
        d.fetch("counter", "alice", "GET", "/", b"").text().trim(),
        "3"
    );
    // objects are isolated from each other
    assert_eq!(
        d.fetch("counter", "bob", "GET", "/", b"").text().trim(),
        "0"
    );
    d.restart();
    assert_eq!(
        d.fetch("counter", "alice", "GET", "/", b"").text().trim(),
        "3"
    );
    // an acknowledged write survives a crash of the daemon
    assert_eq!(
        d.fetch("counter", "alice", "POST", "/increment", b"")
            .text()
            .trim(),
        "4"
    );
    d.crash();
    d.restart();
    assert_eq!(
        d.fetch("counter", "alice", "GET", "/", b"").text().trim(),
        "4"
    );
    // object names are arbitrary UTF-8 and cannot reach outside the state dir
    for name in ["../../etc/passwd", "chat/room 1", "名前", "%00x"] {
        let r = d.fetch("counter", name, "POST", "/increment", b"");
        assert_eq!((r.status, r.text().trim()), (200, "1"), "object {name:?}");
    }
    let objects = d.request("GET", "/v1/workers/counter/objects", b"").json();
    let names: Vec<&str> = objects["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"../../etc/passwd") && names.contains(&"chat/room 1"),
        "{names:?}"
    );
    let files: Vec<_> = std::fs::read_dir(d.state_dir().join("objects/counter"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        files
            .iter()
            .all(|f| f.len() >= 64 && f[..64].bytes().all(|b| b.is_ascii_hexdigit())),
        "{files:?}"
    );
}

#[test]
fn the_c_guest_written_from_the_protocol_doc_works() {
    let d = Daemon::start();
    let r = d.deploy("ccounter", &warren::c_guest(), "");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        d.fetch("ccounter", "x", "POST", "/increment", b"")
            .text()
            .trim(),
        "1"
    );
    assert_eq!(
        d.fetch("ccounter", "x", "POST", "/increment", b"")
            .text()
            .trim(),
        "2"
    );
    assert_eq!(d.fetch("ccounter", "x", "GET", "/", b"").text().trim(), "2");
}

#[test]
fn a_hundred_concurrent_increments_give_exactly_a_hundred() {
    let d = Arc::new(Daemon::start());
    assert_eq!(d.deploy("counter", &example("counter"), "").status, 201);
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let d = Arc::clone(&d);
            std::thread::spawn(move || d.fetch("counter", "hot", "POST", "/increment", b"").status)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(
        d.fetch("counter", "hot", "GET", "/", b"").text().trim(),
        "100"
    );
}

#[test]
fn failed_requests_leave_no_writes_and_the_next_request_works() {
    let d = Daemon::start();
    deploy_hostile(&d, "timeout=3s");
    assert_eq!(d.fetch("hostile", "o", "POST", "/write", b"").status, 200);
    assert_eq!(count(&d, "o"), "1");
    // the guest crashes mid-request after writing
    let r = d.fetch("hostile", "o", "POST", "/write-then-crash", b"");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "guest_crashed");
    assert!(r.text().contains("SIGABRT"), "{}", r.text());
    assert_eq!(count(&d, "o"), "1");
    // error statuses roll back; success commits
    for status in ["500", "400", "404"] {
        let r = d.fetch(
            "hostile",
            "o",
            "POST",
            &format!("/write-then-status?status={status}"),
            b"",
        );
        assert_eq!(r.status.to_string(), status);
        assert_eq!(
            count(&d, "o"),
            "1",
            "a {status} answer must leave no writes"
        );
    }
    let r = d.fetch("hostile", "o", "POST", "/write-then-status?status=201", b"");
    assert_eq!(r.status, 201);
    assert_eq!(count(&d, "o"), "2");
    // a 1xx is not a final answer: the SDK turns it into a 500 before it leaves the guest
    let r = d.fetch("hostile", "o", "POST", "/write-then-status?status=101", b"");
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(count(&d, "o"), "2");
    // garbage frames end only that instance
    let r = d.fetch("hostile", "o", "POST", "/write-then-garbage", b"");
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (502, Some("guest_protocol")),
        "{}",
        r.text()
    );
    assert_eq!(count(&d, "o"), "2");
    // a hang is cut at the worker's timeout
    let r = d.fetch("hostile", "o", "GET", "/hang", b"");
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (504, Some("guest_timeout"))
    );
    // a seccomp violation kills the instance and says which call
    let r = d.fetch("hostile", "o", "POST", "/exec", b"");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "guest_killed");
    assert!(r.text().contains("seccomp violation"), "{}", r.text());
    assert_eq!(count(&d, "o"), "2");
}

#[test]
fn a_memory_bomb_is_killed_and_reported() {
    let d = Daemon::start();
    deploy_hostile(&d, "memory=32M&timeout=20s");
    let r = d.fetch("hostile", "m", "POST", "/memory", b"");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "guest_killed");
    assert!(r.text().contains("memory limit"), "{}", r.text());
    assert_eq!(count(&d, "m"), "0");
}

#[test]
fn guest_sql_cannot_reach_other_files_load_extensions_or_change_settings() {
    let d = Daemon::start();
    deploy_hostile(&d, "");
    assert_eq!(
        d.fetch("hostile", "victim", "POST", "/write", b"").status,
        200
    );
    let victim = std::fs::read_dir(d.state_dir().join("objects/hostile"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .unwrap();
    let stolen = d.state_dir().join("stolen.db");
    let attacks = [
        format!("ATTACH DATABASE '{}' AS v", victim.display()),
        format!("ATTACH DATABASE '{}' AS s", stolen.display()),
        format!("VACUUM INTO '{}'", stolen.display()),
        "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libc.so.6')".to_string(),
        "PRAGMA journal_mode = DELETE".to_string(),
        "PRAGMA synchronous = OFF".to_string(),
        "PRAGMA max_page_count = 2147483647".to_string(),
        "PRAGMA writable_schema = ON".to_string(),
        "COMMIT".to_string(),
        "BEGIN IMMEDIATE".to_string(),
        "SELECT 1; DELETE FROM t".to_string(),
        "CREATE VIRTUAL TABLE v USING fts5(x)".to_string(),
    ];
    for sql in &attacks {
        let r = d.fetch("hostile", "attacker", "POST", "/sql", sql.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.text().starts_with("error "),
            "{sql} must fail, got {}",
            r.text()
        );
    }
    assert!(!stolen.exists(), "no file was created through SQL");
    assert_eq!(count(&d, "victim"), "1", "the other object is untouched");
    let r = d.fetch(
        "hostile",
        "attacker",
        "POST",
        "/sql",
        b"PRAGMA journal_mode",
    );
    assert!(r.text().starts_with("error 3"), "{}", r.text());
}

#[test]
fn a_runaway_query_is_interrupted_while_another_object_keeps_answering() {
    let d = Arc::new(Daemon::start());
    deploy_hostile(&d, "timeout=30s");
    assert_eq!(count(&d, "calm"), "0");
    let runaway = {
        let d = Arc::clone(&d);
        std::thread::spawn(move || {
            let r = d.fetch(
                "hostile",
                "spinner",
                "POST",
                "/sql",
                b"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            );
            (r, std::time::Instant::now())
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let calm = d.fetch("hostile", "calm", "POST", "/write", b"");
    let calm_done = std::time::Instant::now();
    assert_eq!(calm.status, 200);
    let (r, runaway_done) = runaway.join().unwrap();
    assert!(r.text().starts_with("error 4"), "{}", r.text());
    assert!(
        calm_done < runaway_done,
        "the calm object answered while the runaway ran"
    );
}

#[test]
fn bad_client_input_gets_a_json_4xx() {
    let d = Daemon::start_with("max_request_body = \"64K\"");
    let check = |r: warren::daemon::Reply, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], code, "{}", r.text());
        assert_eq!(r.header("x-warren-error"), Some(code));
        assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
    };
    check(d.fetch("nope", "x", "GET", "/", b""), 404, "not_found");
    check(
        d.request("PUT", "/v1/workers/elfless", b"#!/bin/sh\necho hi\n"),
        415,
        "not_elf",
    );
    check(
        d.request("PUT", "/v1/workers/empty", b""),
        400,
        "bad_request",
    );
    check(
        d.deploy("Bad%20Name", &example("counter"), ""),
        400,
        "bad_name",
    );
    check(
        d.deploy("counter", &example("counter"), "memory=12Q"),
        400,
        "bad_request",
    );
    check(
        d.deploy("counter", &example("counter"), "colour=blue"),
        400,
        "bad_request",
    );
    assert_eq!(
        d.deploy("counter", &example("counter"), "max_objects=2")
            .status,
        201
    );
    check(
        d.request("GET", "/v1/workers/counter/objects/%FF/fetch/", b""),
        400,
        "bad_name",
    );
    check(
        d.request(
            "GET",
            &format!("/v1/workers/counter/objects/{}/fetch/", "x".repeat(300)),
            b"",
        ),
        400,
        "bad_name",
    );
    check(
        d.fetch("counter", "a", "POST", "/increment", &vec![b'x'; 100 << 10]),
        413,
        "too_large",
    );
    check(d.request("GET", "/v2/anything", b""), 404, "not_found");
    check(
        d.request("PATCH", "/v1/workers", b""),
        405,
        "method_not_allowed",
    );
    check(
        d.request("DELETE", "/v1/workers/ghost", b""),
        404,
        "not_found",
    );
    // the object limit refuses a new object and keeps the old ones working
    assert_eq!(
        d.fetch("counter", "a", "POST", "/increment", b"").status,
        200
    );
    assert_eq!(
        d.fetch("counter", "b", "POST", "/increment", b"").status,
        200
    );
    check(
        d.fetch("counter", "c", "POST", "/increment", b""),
        409,
        "too_many_objects",
    );
    assert_eq!(d.fetch("counter", "a", "GET", "/", b"").text().trim(), "1");
}

#[test]
fn redeploy_moves_new_requests_to_the_new_version_and_rm_deletes() {
    let d = Daemon::start();
    assert_eq!(d.deploy("app", &example("counter"), "").status, 201);
    assert_eq!(
        d.fetch("app", "o", "POST", "/increment", b"").text().trim(),
        "1"
    );
    // a new version: the hostile guest, on the same object data
    let r = d.deploy("app", &example("hostile"), "");
    assert_eq!(r.json()["version"], 2);
    let r = d.fetch("app", "o", "GET", "/count", b"");
    assert_eq!(r.status, 200, "the new version answers: {}", r.text());
    let detail = d.request("GET", "/v1/workers/app", b"").json();
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
    let r = d.request("DELETE", "/v1/workers/app/objects/o", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        d.request("GET", "/v1/workers/app/objects", b"").json()["objects"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(d.request("DELETE", "/v1/workers/app", b"").status, 200);
    assert_eq!(
        d.request("GET", "/v1/workers", b"").json()["workers"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(d.fetch("app", "o", "GET", "/", b"").status, 404);
}

#[test]
fn the_control_socket_is_0660_and_ingress_serves_objects_but_never_admin() {
    let d = Daemon::start_with("ingress = \"127.0.0.1:0\"");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    assert_eq!(d.deploy("counter", &example("counter"), "").status, 201);
    let addr = d.listen_addr("ingress");
    let get = |path: &str, method: &str| -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.split(' ').nth(1).unwrap().parse().unwrap();
        (
            status,
            out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
        )
    };
    assert_eq!(get("/counter/web/increment", "POST"), (200, "1".into()));
    assert_eq!(get("/counter/web/", "GET"), (200, "1".into()));
    // admin operations are not routed on the ingress
    assert_eq!(get("/v1/workers", "GET").0, 404);
    assert_eq!(get("/v1/workers/counter", "DELETE").0, 404);
    assert_eq!(
        d.request("GET", "/v1/workers", b"").json()["workers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let _ = http;
}

#[test]
fn the_warren_cli_drives_the_daemon() {
    let d = Daemon::start();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(warren::bin("warren"))
            .arg("--socket")
            .arg(d.socket())
            .args(args)
            .output()
            .expect("run warren");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let counter = example("counter");
    let (code, _, err) = cli(&[
        "deploy",
        "counter",
        counter.to_str().unwrap(),
        "--memory",
        "64M",
        "--timeout",
        "5s",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        cli(&["fetch", "counter", "alice", "/increment", "-X", "POST"])
            .1
            .trim(),
        "1"
    );
    assert_eq!(
        cli(&["fetch", "counter", "alice", "/increment", "-X", "POST"])
            .1
            .trim(),
        "2"
    );
    assert_eq!(cli(&["fetch", "counter", "alice"]).1.trim(), "2");
    let (code, out, _) = cli(&["ls"]);
    assert_eq!(code, 0);
    assert!(out.contains("counter"), "{out}");
    let (code, out, _) = cli(&["ls", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["workers"][0]["name"], "counter");
    let (code, out, _) = cli(&["objects", "counter"]);
    assert_eq!(code, 0);
    assert!(out.contains("alice"), "{out}");
    // a status >= 400 exits non-zero with one line on stderr
    let (code, _, err) = cli(&["fetch", "counter", "alice", "/nope"]);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, err) = cli(&["fetch", "ghost", "alice"]);
    assert_ne!(code, 0);
    assert!(
        err.starts_with("warren: ") && err.contains("ghost"),
        "{err}"
    );
    let (code, _, err) = cli(&["deploy", "bad", "/etc/hostname"]);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    // operators' commands
    let (code, out, err) = cli(&[
        "sql",
        "counter",
        "alice",
        "SELECT value FROM counter WHERE id = ?",
        "--param",
        "0",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("value") && out.contains('2'), "{out}");
    let (code, out, err) = cli(&["usage", "counter", "--json"]);
    assert_eq!(code, 0, "{err}");
    let u: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u["workers"][0]["worker"], "counter");
    assert!(u["workers"][0]["requests"].as_u64().unwrap() >= 3, "{u}");
    let (code, out, err) = cli(&["limits", "counter", "--timeout", "7s"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("7"), "{out}");
    let (code, out, err) = cli(&["doctor"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("landlock") && out.contains("seccomp"), "{out}");
    assert_eq!(cli(&["rm", "counter", "alice"]).0, 0);
    assert_eq!(cli(&["fetch", "counter", "alice"]).1.trim(), "0");
    assert_eq!(cli(&["rm", "counter"]).0, 0);
    assert_ne!(cli(&["fetch", "counter", "alice"]).0, 0);
}

#[test]
fn the_control_socket_refuses_peers_outside_root_and_the_group() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let d = Daemon::start();
    // open the path up so only SO_PEERCRED stands between an unprivileged peer and the API
    std::fs::set_permissions(
        d.socket().parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(d.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let socket = d.socket();
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.arg("-c").arg(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
         s.sendall(b'GET /v1/workers HTTP/1.1\\r\\nhost: x\\r\\nconnection: close\\r\\n\\r\\n')\n\
         d=b''\nwhile True:\n  c=s.recv(4096)\n  if not c: break\n  d+=c\nsys.stdout.write(d.decode())",
    );
    cmd.arg(&socket);
    // SAFETY: setgid/setuid to nobody in the child before exec; both are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run python as nobody");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HTTP/1.1 403"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\"forbidden\""), "{text}");
    // root is served
    assert_eq!(d.request("GET", "/v1/workers", b"").status, 200);
}

#[test]
fn the_todo_app_serves_its_page_and_keeps_items_per_object() {
    let d = Daemon::start();
    assert_eq!(d.deploy("todo", &example("todo"), "").status, 201);
    let page = d.fetch("todo", "alice", "GET", "/", b"");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(
        page.text().contains("<html") || page.text().contains("<!doctype"),
        "{}",
        page.text()
    );
    let r = d.fetch(
        "todo",
        "alice",
        "POST",
        "/api/items",
        br#"{"title": "milk \"2%\""}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["title"], "milk \"2%\"");
    let r = d.fetch(
        "todo",
        "alice",
        "PATCH",
        &format!("/api/items/{id}"),
        br#"{"done": true}"#,
    );
    assert_eq!(
        (r.status, r.json()["done"].as_bool()),
        (200, Some(true)),
        "{}",
        r.text()
    );
    let list = d.fetch("todo", "alice", "GET", "/api/items", b"").json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // another object has its own list; bad JSON is a 400 that leaves nothing behind
    assert_eq!(
        d.fetch("todo", "bob", "GET", "/api/items", b"")
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let r = d.fetch("todo", "bob", "POST", "/api/items", b"{\"title\": ");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        d.fetch("todo", "bob", "GET", "/api/items", b"")
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        d.fetch("todo", "alice", "DELETE", &format!("/api/items/{id}"), b"")
            .status,
        204
    );
    assert_eq!(
        d.fetch("todo", "alice", "GET", "/api/items", b"")
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn idle_instances_stop_and_come_back_with_their_data() {
    let d = Daemon::start_with("idle_timeout = \"300ms\"");
    assert_eq!(d.deploy("counter", &example("counter"), "").status, 201);
    assert_eq!(
        d.fetch("counter", "sleepy", "POST", "/increment", b"")
            .text()
            .trim(),
        "1"
    );
    let active = |d: &Daemon| {
        d.request("GET", "/v1/workers/counter/objects", b"").json()["objects"][0]["active"]
            .as_bool()
            .unwrap()
    };
    assert!(active(&d));
    let health = d.request("GET", "/v1/health", b"").json();
    assert_eq!(health["instances"], 1);
    // wait (bounded) for the idle timeout to stop the instance
    let t0 = std::time::Instant::now();
    while active(&d) && t0.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!active(&d), "the idle instance was stopped");
    assert_eq!(d.request("GET", "/v1/health", b"").json()["instances"], 0);
    assert_eq!(
        d.fetch("counter", "sleepy", "POST", "/increment", b"")
            .text()
            .trim(),
        "2"
    );
}

#[test]
fn operators_can_query_an_object_and_ask_the_daemon_for_its_layers() {
    let d = Daemon::start();
    assert_eq!(d.deploy("counter", &example("counter"), "").status, 201);
    assert_eq!(
        d.fetch("counter", "alice", "POST", "/increment", b"")
            .status,
        200
    );
    let r = d.request(
        "POST",
        "/v1/workers/counter/objects/alice/sql",
        br#"{"sql": "SELECT value FROM counter WHERE id = ?", "params": [0]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["columns"][0], "value");
    assert_eq!(r.json()["rows"][0][0], 1);
    // the same guards as guest SQL
    let r = d.request(
        "POST",
        "/v1/workers/counter/objects/alice/sql",
        br#"{"sql": "PRAGMA synchronous = OFF"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("SQL error 3"), "{}", r.text());
    let r = d.request(
        "POST",
        "/v1/workers/counter/objects/nobody/sql",
        br#"{"sql": "SELECT 1"}"#,
    );
    assert_eq!(r.status, 404);
    let r = d.request("POST", "/v1/workers/counter/objects/alice/sql", b"not json");
    assert_eq!(r.status, 400);
    let doc = d.request("GET", "/v1/doctor", b"").json();
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 7);
    assert!(layers.iter().all(|l| l["ok"] == true), "{doc}");
}
