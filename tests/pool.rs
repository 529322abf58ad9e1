//! The zygote and the husk pool against the real kernel: husks are made by a separate
//! single-threaded process, each is used once, limits land in real cgroups (v1 here),
//! nothing is left behind, and the death of the zygote takes its husks with it.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use warren_jail::cgroup::CgroupDriver;
use warren_jail::pool::HuskPool;
use warren_jail::zygote::Zygote;
use warren_jail::{KillReason, Limits, Profile, Program, StartRequest, Termination};

fn request<'a>(
    program: &'a Program,
    null: &'a std::fs::File,
    args: &'a [&'a str],
    limits: Option<Limits>,
) -> StartRequest<'a> {
    let mut argv = vec![OsStr::new(program.name())];
    argv.extend(args.iter().map(OsStr::new));
    StartRequest {
        program,
        argv,
        env: vec![],
        stdin: null.as_fd(),
        stdout: null.as_fd(),
        stderr: null.as_fd(),
        fd3: None,
        limits,
    }
}

fn alive(pid: i32) -> bool {
    // a zombie still has a /proc entry; check its state
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

fn wait_dead(pid: i32) -> bool {
    for _ in 0..400 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn pool_hands_out_fresh_husks_with_real_cgroup_limits_and_cleans_up() {
    let zygote = Zygote::start(Profile::default(), Limits::default()).expect("zygote starts");
    let zygote_pid = zygote.pid();
    let pool = HuskPool::new(zygote, 3);
    assert_eq!(
        pool.wait_full(Duration::from_secs(20)),
        3,
        "{:?}",
        pool.last_error()
    );
    let warm = pool.warm_pids();
    assert_eq!(warm.len(), 3);

    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap();
    let spin = Program::from_path(&warren::probe("spin")).unwrap();
    let husk = pool.take().unwrap();
    let husk_pid = husk.pid();
    assert!(warm.contains(&husk_pid), "take() returns a warm husk");
    let limits = Limits {
        memory: 48 << 20,
        pids: 7,
        cpu: 0.25,
    };
    let mut cell = husk
        .start(request(&spin, &null, &[], Some(limits)))
        .unwrap();
    cell.wait_started().unwrap();
    let dirs = cell.cgroup().expect("cgroup layer is on").dirs();
    let read = |file: &str| -> String {
        let d = dirs
            .iter()
            .find(|d| d.join(file).exists())
            .unwrap_or_else(|| panic!("no cgroup dir has {file}: {dirs:?}"));
        std::fs::read_to_string(d.join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    // this machine is cgroup v1 (hybrid); production v2 is covered by the fake-root unit tests
    assert_eq!(read("memory.limit_in_bytes"), (48u64 << 20).to_string());
    assert_eq!(read("pids.max"), "7");
    assert_eq!(read("cpu.cfs_quota_us"), "25000");
    assert!(read("cgroup.procs")
        .lines()
        .any(|l| l == husk_pid.to_string()));

    let outcome = cell.wait(Some(Duration::from_millis(300))).unwrap();
    assert_eq!(
        outcome.reason,
        Some(KillReason::Timeout(Duration::from_millis(300)))
    );
    assert_eq!(outcome.termination, Termination::Signaled(libc::SIGKILL));
    assert!(outcome.stats.cpu_usage_usec > 0, "{outcome:?}");
    drop(cell);
    for d in &dirs {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
    assert!(wait_dead(husk_pid), "the cell's init is gone");

    // the pool refills and never hands out the same husk twice
    assert_eq!(pool.wait_full(Duration::from_secs(20)), 3);
    let again = pool.warm_pids();
    assert!(!again.contains(&husk_pid));

    // a husk is single-use: after its program ends, the husk is gone
    let noop = Program::from_path(&warren::probe("noop")).unwrap();
    let h = pool.take().unwrap();
    let mut c = h.start(request(&noop, &null, &[], None)).unwrap();
    assert_eq!(c.wait(None).unwrap().exit_code(), 0);
    let pid = c.pid();
    drop(c);
    assert!(wait_dead(pid));

    // the zygote's death takes every warm husk with it
    pool.wait_full(Duration::from_secs(20));
    let orphans = pool.warm_pids();
    assert!(!orphans.is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(zygote_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for p in orphans {
        assert!(wait_dead(p), "husk {p} outlived its zygote");
    }
    // and the pool says so instead of hanging
    let err = pool.take().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("zygote") || err.contains("husk"),
        "taking from a pool whose zygote died: {err}"
    );
}

#[test]
fn this_host_is_hybrid_so_the_v1_driver_is_used() {
    // The v2 writer is unit-tested against a fake cgroupfs (jail/src/cgroup/v2.rs); a real v2
    // run needs a host whose cgroup2 mount has controllers. This test pins down which case this
    // machine is, so a change of host cannot silently skip the real-cgroup tests above.
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    let driver = CgroupDriver::detect(warren_jail::CGROUP_GROUP).expect("cgroups detected");
    if unified.exists() {
        assert!(matches!(driver, CgroupDriver::V1(_)), "{driver:?}");
        assert!(driver.describe().contains("cgroup.kill") || driver.describe().contains("cgroup2"));
    } else {
        assert!(matches!(driver, CgroupDriver::V2(_)), "{driver:?}");
    }
}
