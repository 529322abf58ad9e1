//! Daemon benchmark: what a request costs through `warrend`, over its Unix socket.
//!
//! * cold: first response from a never-seen object (instance from the warm pool, handshake,
//!   database created), one new object per iteration, the pool refilled (untimed) between;
//! * warm: round trip to an object whose instance is running, no SQL;
//! * insert: round trip with one committed single-row insert (`synchronous=FULL`);
//! * throughput: requests per second with 1 and 32 concurrent clients, each on its own object
//!   (warm, no SQL);
//! * references measured in the same run: a raw Unix socketpair round trip (1 byte each way)
//!   between two threads and between two processes, and a plain fork+exec+wait of a static
//!   no-op program.
//!
//! The guest is the `hostile` test guest: `GET /big?n=2` answers two bytes without SQL,
//! `POST /write` inserts one row. Run as root: `cargo bench --bench daemon`
//! (`WARREN_BENCH_ITERS`, default 300).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use warren::daemon::{example, Conn, Daemon};

fn main() {
    let iters: usize = std::env::var("WARREN_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // measured first, while this process is single-threaded (it forks)
    let pair_proc = socketpair_round_trip_processes(iters * 10);
    let d = Daemon::start_with("pool_size = 8\nidle_timeout = \"10m\"\nmax_instances = 4096");
    let r = d.deploy("bench", &example("hostile"), "timeout=10s");
    assert_eq!(r.status, 201, "{}", r.text());
    let mut conn = Conn::open(&d.socket());

    // cold: a new object each time, from a refilled pool
    let mut cold = Vec::with_capacity(iters);
    for i in 0..iters {
        wait_pool_full(&mut conn, 8);
        let t = Instant::now();
        let (s, _) = conn.request(
            "GET",
            &format!("/v1/workers/bench/objects/cold-{i}/fetch/big?n=2"),
            b"",
        );
        cold.push(t.elapsed());
        assert_eq!(s, 200);
    }
    // warm
    let (s, _) = conn.request("GET", "/v1/workers/bench/objects/warm/fetch/big?n=2", b"");
    assert_eq!(s, 200);
    let warm = measure(iters, || {
        let t = Instant::now();
        let (s, _) = conn.request("GET", "/v1/workers/bench/objects/warm/fetch/big?n=2", b"");
        let e = t.elapsed();
        assert_eq!(s, 200);
        e
    });
    let insert = measure(iters, || {
        let t = Instant::now();
        let (s, _) = conn.request("POST", "/v1/workers/bench/objects/warm/fetch/write", b"");
        let e = t.elapsed();
        assert_eq!(s, 200);
        e
    });
    let rps1 = throughput(&d, 1, Duration::from_secs(3));
    let rps32 = throughput(&d, 32, Duration::from_secs(3));
    let pair = socketpair_round_trip(iters * 10);
    let fork = fork_exec(iters);

    println!("\ndaemon benchmark: {iters} iterations each, over the control socket");
    println!(
        "{:<34} {:>10} {:>10} {:>14}",
        "measure", "median", "p99", "vs reference"
    );
    let p = |name: &str, s: &[Duration], reference: Option<(&str, Duration)>| {
        let med = pct(s, 50);
        let ratio = reference
            .map(|(n, r)| format!("{:.1}x {n}", med.as_secs_f64() / r.as_secs_f64()))
            .unwrap_or_default();
        println!(
            "{name:<34} {:>10} {:>10} {ratio:>14}",
            ms(med),
            ms(pct(s, 99))
        );
    };
    let pair_med = pct(&pair, 50);
    let fork_med = pct(&fork, 50);
    p(
        "cold first response (new object)",
        &cold,
        Some(("fork+exec", fork_med)),
    );
    p(
        "warm round trip (no SQL)",
        &warm,
        Some(("socketpair", pair_med)),
    );
    p(
        "warm round trip + 1-row insert",
        &insert,
        Some(("socketpair", pair_med)),
    );
    let proc_med = pct(&pair_proc, 50);
    p(
        "warm round trip (no SQL)",
        &warm,
        Some(("socketpair 2 procs", proc_med)),
    );
    p("reference: socketpair, 2 threads", &pair, None);
    p("reference: socketpair, 2 processes", &pair_proc, None);
    p("reference: fork+exec+wait (static)", &fork, None);
    println!("throughput, warm, no SQL: 1 client {rps1:.0} req/s; 32 clients on 32 objects {rps32:.0} req/s");
}

fn wait_pool_full(conn: &mut Conn, n: u64) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        let (_, body) = conn.request("GET", "/v1/health", b"");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("health json");
        if v["warm_husks"].as_u64().unwrap_or(0) >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn throughput(d: &Daemon, clients: usize, dur: Duration) -> f64 {
    let socket = d.socket();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::open(&socket);
                let path = format!("/v1/workers/bench/objects/tp-{c}/fetch/big?n=2");
                assert_eq!(conn.request("GET", &path, b"").0, 200);
                let t0 = Instant::now();
                let mut n = 0u64;
                while t0.elapsed() < dur {
                    assert_eq!(conn.request("GET", &path, b"").0, 200);
                    n += 1;
                }
                n as f64 / t0.elapsed().as_secs_f64()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("client")).sum()
}

fn socketpair_round_trip(n: usize) -> Vec<Duration> {
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().expect("pair");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 1];
        while b.read_exact(&mut buf).is_ok() {
            if b.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let out = ping_pong(&mut a, n);
    drop(a);
    let _ = echo.join();
    out
}

/// `n` one-byte round trips over `a`, timed one by one.
fn ping_pong(a: &mut std::os::unix::net::UnixStream, n: usize) -> Vec<Duration> {
    let mut buf = [0u8; 1];
    (0..n)
        .map(|_| {
            let t = Instant::now();
            a.write_all(b"x").expect("write");
            a.read_exact(&mut buf).expect("read");
            t.elapsed()
        })
        .collect()
}

/// Round trips of one byte between this process and a forked echo process.
fn socketpair_round_trip_processes(n: usize) -> Vec<Duration> {
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().expect("pair");
    // SAFETY: this process is single-threaded here; the child only echoes bytes and exits.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            drop(a);
            let mut buf = [0u8; 1];
            while b.read_exact(&mut buf).is_ok() {
                if b.write_all(&buf).is_err() {
                    break;
                }
            }
            std::process::exit(0)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(b);
            let out = ping_pong(&mut a, n);
            drop(a);
            let _ = nix::sys::wait::waitpid(child, None);
            out
        }
    }
}

fn fork_exec(n: usize) -> Vec<Duration> {
    let noop = warren::probe("noop");
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let s = std::process::Command::new(&noop).status().expect("spawn");
            assert!(s.success());
            t.elapsed()
        })
        .collect()
}

fn measure(iters: usize, mut f: impl FnMut() -> Duration) -> Vec<Duration> {
    for _ in 0..iters / 10 {
        f();
    }
    (0..iters).map(|_| f()).collect()
}

fn pct(samples: &[Duration], p: usize) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[((p * (s.len() - 1) + 50) / 100).min(s.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
