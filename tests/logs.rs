//! Guest logs through a real daemon: lines tagged with worker, object and request id; a guest
//! that prints forever is capped (dropped lines counted and said) while the daemon and other
//! objects keep going; `follow` streams; the `warren logs` CLI prints them.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warren::daemon::{example, Daemon};

fn entries(d: &Daemon, query: &str) -> Vec<serde_json::Value> {
    let r = d.request("GET", &format!("/v1/workers/hostile/logs?{query}"), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    r.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Poll (bounded) until `f` holds for the log entries.
fn wait_for(
    d: &Daemon,
    query: &str,
    f: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let e = entries(d, query);
        if f(&e) || t0.elapsed() > Duration::from_secs(15) {
            return e;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lines_are_tagged_with_object_and_request_and_the_cli_prints_them() {
    let d = Daemon::start();
    assert_eq!(d.deploy("hostile", &example("hostile"), "").status, 201);
    assert_eq!(
        d.fetch("hostile", "talker", "GET", "/flood?lines=3", b"")
            .status,
        200
    );
    let e = wait_for(&d, "object=talker", |e| e.len() >= 3);
    assert_eq!(e.len(), 3, "{e:?}");
    let id = e[0]["request_id"].as_u64().expect("a request id");
    for (i, x) in e.iter().enumerate() {
        assert_eq!(x["worker"], "hostile");
        assert_eq!(x["object"], "talker");
        assert_eq!(x["stream"], "stdout");
        assert_eq!(x["request_id"].as_u64(), Some(id));
        assert!(x["line"]
            .as_str()
            .unwrap()
            .starts_with(&format!("flood line {i} ")));
    }
    assert!(entries(&d, "object=someone-else").is_empty());
    let out = std::process::Command::new(warren::bin("warren"))
        .arg("--socket")
        .arg(d.socket())
        .args(["logs", "hostile", "--object", "talker"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains(&format!("talker [{id}] stdout: flood line 0")),
        "{text}"
    );
    assert_eq!(d.request("GET", "/v1/workers/ghost/logs", b"").status, 404);
}

#[test]
fn a_log_flooder_is_capped_and_said_while_others_answer() {
    let d = Arc::new(Daemon::start());
    assert_eq!(
        d.deploy("hostile", &example("hostile"), "log_bytes=64K&timeout=3s")
            .status,
        201
    );
    assert_eq!(d.fetch("hostile", "calm", "GET", "/count", b"").status, 200);
    let d2 = Arc::clone(&d);
    let flood = std::thread::spawn(move || d2.fetch("hostile", "flooder", "GET", "/flood", b""));
    let mut calm = 0;
    while !flood.is_finished() {
        assert_eq!(d.fetch("hostile", "calm", "GET", "/count", b"").status, 200);
        calm += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(calm >= 1);
    let r = flood.join().unwrap();
    assert_eq!(r.status, 504, "the flooder never answers: {}", r.text());
    let e = wait_for(&d, "object=flooder&tail=10000", |e| {
        e.iter().any(|x| {
            x["stream"] == "system" && x["line"].as_str().unwrap_or("").contains("lines dropped")
        })
    });
    let kept: usize = e
        .iter()
        .filter(|x| x["stream"] == "stdout")
        .map(|x| x["line"].as_str().unwrap().len() + 1)
        .sum();
    assert!(kept <= 64 << 10, "kept {kept} bytes past a 64K cap");
    assert!(
        e.iter()
            .any(|x| x["stream"] == "system"
                && x["line"].as_str().unwrap().contains("lines dropped")),
        "the drop is said: {:?}",
        e.iter()
            .filter(|x| x["stream"] == "system")
            .collect::<Vec<_>>()
    );
    let metrics = d.request("GET", "/metrics", b"").text();
    let dropped: f64 = metrics
        .lines()
        .find(|l| l.starts_with(r#"warren_log_lines_dropped_total{worker="hostile"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(dropped > 0.0, "dropped lines are counted in the metrics");
}

#[test]
fn follow_streams_new_lines() {
    let d = Daemon::start();
    assert_eq!(d.deploy("hostile", &example("hostile"), "").status, 201);
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /v1/workers/hostile/logs?follow=1&tail=0 HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    assert_eq!(
        d.fetch("hostile", "live", "GET", "/flood?lines=2", b"")
            .status,
        200
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.contains("flood line") {
            seen.push(line.clone());
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].contains("\"object\":\"live\""), "{}", seen[0]);
}
