//! Every limit of a worker against a hostile guest: the exact status and reason, nothing
//! partial kept, and a second, well-behaved object answering meanwhile. Plus metering accuracy.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use warren::daemon::{example, Daemon, Reply};

fn deploy(d: &Daemon, query: &str) {
    let r = d.deploy("hostile", &example("hostile"), query);
    assert_eq!(r.status, 201, "{}", r.text());
}

fn error_code(r: &Reply) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_string()
}

/// Run `attack` on one object while another object is asked to count, repeatedly; returns the
/// attack's reply and how many calm requests succeeded while it ran.
fn under_attack(
    d: &Arc<Daemon>,
    attack: impl FnOnce(&Daemon) -> Reply + Send + 'static,
) -> (Reply, usize) {
    assert_eq!(d.fetch("hostile", "calm", "GET", "/count", b"").status, 200);
    let d2 = Arc::clone(d);
    let attacker = thread::spawn(move || attack(&d2));
    let mut calm = 0;
    while !attacker.is_finished() {
        let r = d.fetch("hostile", "calm", "GET", "/count", b"");
        assert_eq!(
            r.status,
            200,
            "the calm object must keep answering: {}",
            r.text()
        );
        calm += 1;
        thread::sleep(Duration::from_millis(20));
    }
    (attacker.join().unwrap(), calm)
}

#[test]
fn memory_bomb_is_killed_while_others_answer() {
    let d = Arc::new(Daemon::start());
    deploy(&d, "memory=48M&timeout=30s");
    let (r, calm) = under_attack(&d, |d| d.fetch("hostile", "bomb", "POST", "/memory", b""));
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (502, "guest_killed"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("memory limit"), "{}", r.text());
    assert!(calm >= 1);
}

#[test]
fn cpu_budget_kills_a_spinning_request() {
    let d = Arc::new(Daemon::start());
    deploy(&d, "cpu_budget=300ms&timeout=30s");
    let (r, calm) = under_attack(&d, |d| {
        d.fetch("hostile", "spinner", "GET", "/spin?ms=20000", b"")
    });
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (502, "guest_killed"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("CPU budget of 300ms"), "{}", r.text());
    assert!(calm >= 1);
    // a request within its budget is fine, on a fresh instance
    assert_eq!(
        d.fetch("hostile", "spinner", "GET", "/spin?ms=50", b"")
            .status,
        200
    );
}

#[test]
fn wall_clock_timeout_is_504() {
    let d = Arc::new(Daemon::start());
    deploy(&d, "timeout=500ms");
    let (r, calm) = under_attack(&d, |d| d.fetch("hostile", "sleeper", "GET", "/hang", b""));
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (504, "guest_timeout"),
        "{}",
        r.text()
    );
    assert!(calm >= 1);
}

#[test]
fn storage_quota_stops_a_filler_and_keeps_nothing_partial() {
    let d = Arc::new(Daemon::start());
    deploy(&d, "storage=2M");
    let (r, _) = under_attack(&d, |d| {
        d.fetch("hostile", "filler", "POST", "/fill?mb=8", b"")
    });
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().starts_with("error 6 storage quota exceeded"),
        "{}",
        r.text()
    );
    assert_eq!(
        d.fetch("hostile", "filler", "GET", "/blobs", b"").text(),
        "0"
    );
    // under the quota, writes work
    let r = d.fetch("hostile", "filler", "POST", "/fill?mb=1", b"");
    assert_eq!(r.text(), "filled");
    assert_eq!(
        d.fetch("hostile", "filler", "GET", "/blobs", b"").text(),
        "4"
    );
}

#[test]
fn object_creator_is_refused_past_max_objects() {
    let d = Daemon::start();
    deploy(&d, "max_objects=3");
    for i in 0..3 {
        assert_eq!(
            d.fetch("hostile", &format!("o{i}"), "POST", "/write", b"")
                .status,
            200
        );
    }
    let r = d.fetch("hostile", "o3", "POST", "/write", b"");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (409, "too_many_objects"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("limit of 3"), "{}", r.text());
    assert_eq!(d.fetch("hostile", "o0", "GET", "/count", b"").text(), "1");
}

#[test]
fn huge_response_is_refused_and_rolled_back() {
    let d = Daemon::start();
    deploy(&d, "max_response=64K");
    assert_eq!(
        d.fetch("hostile", "o", "GET", "/big?n=65536", b"").status,
        200
    );
    let r = d.fetch("hostile", "o", "GET", "/big?n=65537", b"");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (502, "response_too_large"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("65537"), "{}", r.text());
}

#[test]
fn limits_change_without_a_redeploy() {
    let d = Daemon::start();
    deploy(&d, "");
    assert_eq!(
        d.fetch("hostile", "o", "GET", "/big?n=4096", b"").status,
        200
    );
    let r = d.request(
        "PATCH",
        "/v1/workers/hostile?max_response=1K&memory=96M",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], 1, "no new version");
    assert_eq!(r.json()["limits"]["max_response"], 1024);
    let r = d.fetch("hostile", "o", "GET", "/big?n=4096", b"");
    assert_eq!(error_code(&r), "response_too_large", "{}", r.text());
    assert_eq!(
        d.request("PATCH", "/v1/workers/hostile?memory=12Q", b"")
            .status,
        400
    );
    assert_eq!(
        d.request("PATCH", "/v1/workers/ghost?memory=64M", b"")
            .status,
        404
    );
}

#[test]
fn instances_per_worker_stop_idle_ones_first_then_refuse() {
    let d = Arc::new(Daemon::start());
    deploy(&d, "max_instances=1&timeout=6s");
    assert_eq!(d.fetch("hostile", "a", "POST", "/write", b"").status, 200);
    // a's instance is idle: b gets room by stopping it
    assert_eq!(d.fetch("hostile", "b", "POST", "/write", b"").status, 200);
    // a comes back (stopping b), with its data
    assert_eq!(d.fetch("hostile", "a", "GET", "/count", b"").text(), "1");
    // while a is busy, c waits, then is refused with a reason
    let d2 = Arc::clone(&d);
    let busy = thread::spawn(move || d2.fetch("hostile", "a", "GET", "/hang", b""));
    thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let r = d.fetch("hostile", "c", "GET", "/count", b"");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (503, "unavailable"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("limit of 1 instances"), "{}", r.text());
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "it waited for room before refusing"
    );
    assert_eq!(busy.join().unwrap().status, 504);
}

#[test]
fn usage_bills_cpu_and_counts_requests_exactly_across_restarts() {
    let mut d = Daemon::start();
    deploy(&d, "timeout=30s");
    // about 200 ms of CPU
    assert_eq!(
        d.fetch("hostile", "burner", "GET", "/spin?ms=200", b"")
            .status,
        200
    );
    for _ in 0..9 {
        assert_eq!(
            d.fetch("hostile", "counted", "POST", "/write", b"").status,
            200
        );
    }
    let usage = |d: &Daemon| d.request("GET", "/v1/usage?worker=hostile", b"").json();
    let u = usage(&d);
    let objects = u["workers"][0]["objects"].as_array().unwrap().clone();
    let get = |name: &str, field: &str| -> u64 {
        objects
            .iter()
            .find(|o| o["object"] == name)
            .unwrap_or_else(|| panic!("no usage for {name}: {u}"))[field]
            .as_u64()
            .unwrap()
    };
    let cpu_ms = get("burner", "cpu_us") / 1000;
    assert!(
        (150..=250).contains(&cpu_ms),
        "200 ms of CPU billed as {cpu_ms} ms"
    );
    assert_eq!(get("counted", "requests"), 9);
    assert_eq!(get("counted", "rows_written"), 9);
    assert!(get("counted", "instance_starts") >= 1);
    assert_eq!(u["workers"][0]["requests"], 10);
    d.restart();
    assert_eq!(
        usage(&d)["workers"][0]["requests"],
        10,
        "no double counting after a restart"
    );
    assert_eq!(
        d.fetch("hostile", "counted", "POST", "/write", b"").status,
        200
    );
    assert_eq!(usage(&d)["workers"][0]["requests"], 11);
    let r = d.request("GET", "/v1/usage?since=yesterday", b"");
    assert_eq!(r.status, 400);
}
