//! Prometheus metrics from a real daemon: `promtool check metrics` accepts them, the values
//! move as requests happen, and no object name ever becomes a label.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use warren::daemon::{example, Daemon};

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{metrics}"))
}

fn promtool_check(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool must be installed (Debian package `prometheus`; scripts/test installs it)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_pass_promtool_and_move_with_requests() {
    let d = Daemon::start();
    assert_eq!(
        d.deploy("hostile", &example("hostile"), "timeout=1s")
            .status,
        201
    );
    let object = "secret-object-name-4711";
    for _ in 0..3 {
        assert_eq!(
            d.fetch("hostile", object, "POST", "/write", b"").status,
            200
        );
    }
    assert_eq!(
        d.fetch(
            "hostile",
            object,
            "POST",
            "/write-then-status?status=500",
            b""
        )
        .status,
        500
    );
    assert_eq!(
        d.fetch("hostile", object, "POST", "/write-then-crash", b"")
            .status,
        502
    );
    assert_eq!(d.fetch("hostile", object, "GET", "/hang", b"").status, 504);
    let m = d.request("GET", "/metrics", b"");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    promtool_check(&text);
    assert!(
        !text.contains(object),
        "an object name leaked into the metrics"
    );
    assert_eq!(
        value(
            &text,
            r#"warren_requests_total{outcome="ok",worker="hostile"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            r#"warren_requests_total{outcome="server_error",worker="hostile"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"warren_requests_total{outcome="guest_crashed",worker="hostile"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"warren_requests_total{outcome="guest_timeout",worker="hostile"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&text, r#"warren_instance_kills_total{reason="crash"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"warren_instance_kills_total{reason="timeout"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"warren_limit_rejections_total{kind="timeout"}"#),
        1.0
    );
    assert!(
        value(
            &text,
            r#"warren_sql_statements_total{result="ok",worker="hostile"}"#
        ) >= 4.0
    );
    // one instance for the first five requests, a new one after the crash
    assert_eq!(value(&text, "warren_instance_spawn_seconds_count"), 2.0);
    assert!(value(&text, r#"warren_storage_bytes{worker="hostile"}"#) >= 4096.0);
    assert_eq!(value(&text, "warren_workers"), 1.0);
    assert_eq!(value(&text, "warren_objects"), 1.0);
    assert!(text.contains("warren_build_info{"));
    assert!(value(&text, "warren_husks_warm") >= 0.0);
    // the same metrics on the TCP listener
    let addr = d.listen_addr("metrics");
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains(r#"warren_requests_total{outcome="ok",worker="hostile"} 3"#),
        "{out}"
    );
    // deleting the worker removes its series
    assert_eq!(d.request("DELETE", "/v1/workers/hostile", b"").status, 200);
    let text = d.request("GET", "/metrics", b"").text();
    assert!(!text.contains(r#"worker="hostile""#), "{text}");
}
