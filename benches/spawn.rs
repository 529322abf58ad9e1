//! Spawn benchmark: how long a jailed program takes to start, side by side with peers.
//!
//! Two measurements, each through (a) Warren's husk pool, (b) plain fork+exec of the same
//! static program, (c) `bwrap` with an empty root and every namespace (Debian's bubblewrap;
//! `scripts/bench` installs it):
//!
//! * spawn-to-exit: start a static no-op program and wait for it to be reaped;
//! * spawn-to-first-byte: start a program that writes one byte to fd 3, and read it.
//!
//! Pool figures are for a *warm* pool: between timed iterations the benchmark waits (untimed)
//! for the background refill, so each iteration takes a ready husk. The time to make a husk
//! (the refill cost) and the memory of idle husks are reported separately.
//!
//! Run as root: `scripts/bench spawn` (or `cargo bench --bench spawn`). Set
//! `WARREN_BENCH_ITERS` to change the iteration count (default 300).

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use warren_jail::pool::HuskPool;
use warren_jail::zygote::Zygote;
use warren_jail::{Limits, Profile, Program, StartRequest};

fn main() {
    // The zygote must be forked while this process is still single-threaded.
    let zygote = Zygote::start(Profile::default(), Limits::default()).unwrap_or_else(|e| {
        eprintln!("spawn bench: cannot start the zygote (run as root): {e}");
        std::process::exit(1)
    });
    let iters: usize = std::env::var("WARREN_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let noop_path = warren::probe("noop");
    let byte_path = warren::probe("fd3_byte");
    let noop = Program::from_path(&noop_path).expect("noop probe");
    let byte = Program::from_path(&byte_path).expect("fd3_byte probe");
    let bwrap = which("bwrap");

    // husk creation cost, measured directly on the zygote
    let mut make = Vec::with_capacity(iters.min(100));
    for _ in 0..iters.min(100) {
        let t = Instant::now();
        let h = zygote.make_husk().expect("make husk");
        make.push(t.elapsed());
        drop(h);
    }

    // a husk made just before, with nothing else running: the floor of the pool's cost
    let direct = measure(iters, || {
        let husk = zygote.make_husk().expect("make husk");
        let null = std::fs::File::open("/dev/null").expect("/dev/null");
        let t = Instant::now();
        let mut cell = husk.start(request(&noop, &null, None)).expect("start");
        let o = cell.wait(None).expect("wait");
        let d = t.elapsed();
        assert_eq!(o.exit_code(), 0);
        d
    });

    let pool = HuskPool::new(zygote, 4);
    pool.wait_full(Duration::from_secs(10));
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");

    let mut rows: Vec<(&str, &str, Vec<Duration>)> = vec![("spawn-to-exit", "warren husk", direct)];

    // ---- spawn-to-exit
    rows.push((
        "spawn-to-exit",
        "warren pool",
        measure(iters, || {
            pool.wait_full(Duration::from_secs(5));
            let t = Instant::now();
            let husk = pool.take().expect("take husk");
            let mut cell = husk.start(request(&noop, &null, None)).expect("start");
            let o = cell.wait(None).expect("wait");
            let d = t.elapsed();
            assert_eq!(o.exit_code(), 0, "noop in cell: {o:?}");
            d
        }),
    ));
    rows.push((
        "spawn-to-exit",
        "fork+exec",
        measure(iters, || {
            let t = Instant::now();
            let st = Command::new(&noop_path)
                .stdin(Stdio::null())
                .status()
                .expect("spawn");
            let d = t.elapsed();
            assert!(st.success());
            d
        }),
    ));
    if let Some(bwrap) = &bwrap {
        rows.push((
            "spawn-to-exit",
            "bwrap",
            measure(iters, || {
                let t = Instant::now();
                let st = bwrap_cmd(bwrap, &noop_path).status().expect("bwrap");
                let d = t.elapsed();
                assert!(st.success(), "bwrap failed: {st}");
                d
            }),
        ));
    }

    // ---- spawn-to-first-byte on fd 3
    rows.push((
        "first-byte",
        "warren pool",
        measure(iters, || {
            pool.wait_full(Duration::from_secs(5));
            let (mut mine, theirs) = UnixStream::pair().expect("socketpair");
            let t = Instant::now();
            let husk = pool.take().expect("take husk");
            let mut cell = husk
                .start(request(&byte, &null, Some(theirs.as_fd())))
                .expect("start");
            let mut b = [0u8; 1];
            mine.read_exact(&mut b).expect("first byte");
            let d = t.elapsed();
            drop(theirs);
            let o = cell.wait(None).expect("wait");
            assert_eq!(o.exit_code(), 0);
            d
        }),
    ));
    rows.push((
        "first-byte",
        "fork+exec",
        measure(iters, || {
            let (mut mine, theirs) = UnixStream::pair().expect("socketpair");
            let t = Instant::now();
            let mut child = with_fd3(Command::new(&byte_path), theirs.into())
                .spawn()
                .expect("spawn");
            let mut b = [0u8; 1];
            mine.read_exact(&mut b).expect("first byte");
            let d = t.elapsed();
            child.wait().expect("wait");
            d
        }),
    ));
    if let Some(bwrap) = &bwrap {
        rows.push((
            "first-byte",
            "bwrap",
            measure(iters, || {
                let (mut mine, theirs) = UnixStream::pair().expect("socketpair");
                let t = Instant::now();
                let mut child = with_fd3(bwrap_cmd(bwrap, &byte_path), theirs.into())
                    .spawn()
                    .expect("bwrap");
                let mut b = [0u8; 1];
                mine.read_exact(&mut b).expect("first byte through bwrap");
                let d = t.elapsed();
                child.wait().expect("wait");
                d
            }),
        ));
    }

    // ---- report
    println!("\nspawn benchmark: {iters} iterations each, static C program, warm pool of 4");
    println!(
        "{:<14} {:<12} {:>10} {:>10} {:>12} {:>10}",
        "measure", "runner", "median", "p99", "vs fork+exec", "vs bwrap"
    );
    for (measure_name, runner, samples) in &rows {
        let med = percentile(samples, 50);
        let p99 = percentile(samples, 99);
        let base = |who: &str| {
            rows.iter()
                .find(|(m, r, _)| m == measure_name && *r == who)
                .map(|(_, _, s)| percentile(s, 50))
        };
        let ratio = |who: &str| {
            base(who)
                .map(|b| format!("{:.2}x", med.as_secs_f64() / b.as_secs_f64()))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<14} {:<12} {:>10} {:>10} {:>12} {:>10}",
            measure_name,
            runner,
            ms(med),
            ms(p99),
            ratio("fork+exec"),
            ratio("bwrap")
        );
    }
    if bwrap.is_none() {
        println!("(bwrap not found: install bubblewrap, e.g. with scripts/bench, to compare)");
    }
    println!(
        "\nhusk creation (zygote, refill cost): median {} p99 {}",
        ms(percentile(&make, 50)),
        ms(percentile(&make, 99))
    );
    pool.wait_full(Duration::from_secs(10));
    let mem: Vec<(u64, u64, u64)> = pool
        .warm_pids()
        .iter()
        .filter_map(|p| smaps_rollup(*p))
        .collect();
    if !mem.is_empty() {
        let avg =
            |f: fn(&(u64, u64, u64)) -> u64| mem.iter().map(f).sum::<u64>() / mem.len() as u64;
        println!(
            "idle husk memory ({} husks, average): RSS {} KiB, PSS {} KiB, private {} KiB",
            mem.len(),
            avg(|m| m.0),
            avg(|m| m.1),
            avg(|m| m.2)
        );
    }
}

fn request<'a>(
    p: &'a Program,
    null: &'a std::fs::File,
    fd3: Option<std::os::fd::BorrowedFd<'a>>,
) -> StartRequest<'a> {
    StartRequest {
        program: p,
        argv: vec![OsStr::new(p.name())],
        env: vec![],
        stdin: null.as_fd(),
        stdout: null.as_fd(),
        stderr: null.as_fd(),
        fd3,
        limits: None,
    }
}

fn bwrap_cmd(bwrap: &Path, program: &Path) -> Command {
    let mut c = Command::new(bwrap);
    c.args([
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
    ])
    .arg(program)
    .arg("/prog")
    .arg("/prog")
    .stdin(Stdio::null());
    c
}

/// Make `fd` the child's fd 3.
fn with_fd3(mut c: Command, fd: OwnedFd) -> Command {
    let raw = fd.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only calls dup2, which is
    // async-signal-safe; `fd` is kept alive by moving it into the closure.
    unsafe {
        c.pre_exec(move || {
            let _keep = &fd;
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.stdin(Stdio::null());
    c
}

fn measure(iters: usize, mut f: impl FnMut() -> Duration) -> Vec<Duration> {
    for _ in 0..iters / 10 {
        f();
    }
    (0..iters).map(|_| f()).collect()
}

/// The `p`th percentile (nearest rank), `p` in percent.
fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    let idx = (p * (s.len() - 1) + 50) / 100;
    s[idx.min(s.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// (RSS, PSS, private) in KiB of a process, from smaps_rollup.
fn smaps_rollup(pid: i32) -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some((
        field("Rss:"),
        field("Pss:"),
        field("Private_Clean:") + field("Private_Dirty:"),
    ))
}
