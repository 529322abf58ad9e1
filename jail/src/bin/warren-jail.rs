//! `warren-jail`: run one program in a cell with the daemon's profile, or report which
//! isolation layers this machine offers.
//!
//! Exit codes: the program's own, or 128+signal when it was killed (a seccomp violation
//! counts as SIGSYS: 159); 125 when the jail itself failed, 126 when the program cannot be
//! run (not an x86-64 ELF), 127 when it does not exist; 2 for bad flags.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use warren_jail::units::{format_size, parse_cpus, parse_duration, parse_size};
use warren_jail::{Bind, Jail, JailError, Layers, Limits, Profile, Program, StartRequest};

#[derive(Parser, Debug)]
#[command(
    name = "warren-jail",
    version,
    about = "Run a program in a Warren cell"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run PROGRAM (read from the host, handed in as a sealed fd) in a new cell.
    Run(RunArgs),
    /// List each isolation layer and whether this machine has it; start one test cell.
    Doctor,
    /// (internal) the self-check `doctor` runs inside a cell
    #[command(hide = true, name = "__cell-check")]
    CellCheck,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// memory limit, e.g. 64M
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256M")]
    memory: u64,
    /// maximum number of processes and threads
    #[arg(long, value_name = "N", value_parser = parse_pids, default_value = "64")]
    pids: u64,
    /// CPU bandwidth in CPUs, e.g. 0.5
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus, default_value = "1")]
    cpu: f64,
    /// wall-clock limit, e.g. 5s (default: none)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// give the cell a private /tmp of this size (noexec)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    tmp: Option<u64>,
    /// bind a host path read-only into the cell
    #[arg(long = "ro-bind", value_name = "HOST:CELL", value_parser = parse_bind)]
    ro_bind: Vec<Bind>,
    /// set an environment variable in the cell (the environment is otherwise empty)
    #[arg(long, value_name = "K=V", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// turn an isolation layer off (landlock, seccomp, cgroups): an explicit weakening
    #[arg(long, value_name = "LAYER", value_parser = ["landlock", "seccomp", "cgroups"])]
    disable: Vec<String>,
    /// the program and its arguments
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]...")]
    program: Vec<OsString>,
}

fn parse_pids(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a process count (1 to 1000000)")),
    }
}

fn parse_bind(s: &str) -> Result<Bind, String> {
    Bind::parse(s).map_err(|e| e.to_string())
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("{s:?} is not K=V")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Doctor => doctor(),
        Command::CellCheck => cell_check(),
    }
}

fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("warren-jail: {e}");
    ExitCode::from(code)
}

/// Find PROGRAM like a shell would: as a path if it has a slash, else on the host's PATH.
fn resolve_program(name: &OsString) -> Option<PathBuf> {
    let p = Path::new(name);
    if name.as_encoded_bytes().contains(&b'/') {
        return Some(p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(p))
            .find(|c| c.is_file())
    })
}

fn run(args: RunArgs) -> ExitCode {
    let name = &args.program[0];
    let Some(path) = resolve_program(name) else {
        return fail(
            127,
            format!("program {}: not found on PATH", name.to_string_lossy()),
        );
    };
    let program = match Program::from_path(&path) {
        Ok(p) => p,
        Err(e) => {
            let missing = matches!(&e, JailError::BadProgram { .. }) && !path.exists();
            return fail(if missing { 127 } else { 126 }, e);
        }
    };
    let mut layers = Layers::default();
    for l in &args.disable {
        match l.as_str() {
            "landlock" => layers.landlock = false,
            "seccomp" => layers.seccomp = false,
            _ => layers.cgroups = false,
        }
        eprintln!("warren-jail: warning: isolation layer {l} is turned off");
    }
    let profile = Profile {
        tmp_size: args.tmp,
        ro_binds: args.ro_bind.clone(),
        layers,
        ..Profile::default()
    };
    let limits = Limits {
        memory: args.memory,
        pids: args.pids,
        cpu: args.cpu,
    };
    match run_cell(&args, profile, limits, &program) {
        Ok(code) => code,
        Err(e) => fail(125, format!("{e:#}")),
    }
}

fn run_cell(
    args: &RunArgs,
    profile: Profile,
    limits: Limits,
    program: &Program,
) -> anyhow::Result<ExitCode> {
    let jail = Jail::new(profile, limits)?;
    let husk = jail.make_husk().context("make cell")?;
    // Signals that would end the runner instead kill the cell, so nothing is left behind.
    // Blocked only after the husk exists: the mask would otherwise be inherited by the program.
    let mut mask = nix::sys::signal::SigSet::empty();
    for s in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    mask.thread_block().context("block signals")?;
    let sigfd =
        nix::sys::signalfd::SignalFd::with_flags(&mask, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
            .context("signalfd")?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let env: Vec<(&str, &str)> = args
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut cell = husk.start(StartRequest {
        program,
        argv: args.program.iter().map(|a| a.as_os_str()).collect(),
        env,
        stdin: stdin.as_fd(),
        stdout: stdout.as_fd(),
        stderr: stderr.as_fd(),
        fd3: None,
        limits: None,
    })?;
    let outcome = match cell.wait_or_interrupt(args.timeout, sigfd.as_fd())? {
        Some(o) => o,
        None => {
            let sig = sigfd
                .read_signal()
                .ok()
                .flatten()
                .map(|s| s.ssi_signo)
                .unwrap_or(libc::SIGTERM as u32);
            cell.kill(warren_jail::KillReason::Requested);
            let _ = cell.wait(None);
            drop(cell);
            let name = nix::sys::signal::Signal::try_from(i32::try_from(sig).unwrap_or(0))
                .map(|s| s.as_str())
                .unwrap_or("signal");
            eprintln!("warren-jail: interrupted by {name}: cell killed");
            return Ok(ExitCode::from(u8::try_from(128 + sig).unwrap_or(255)));
        }
    };
    let stats = outcome.stats;
    drop(cell);
    if let Some(line) = outcome.describe() {
        let line = match &outcome.reason {
            Some(warren_jail::KillReason::MemoryLimit) => {
                format!(
                    "cell killed: memory limit of {} reached (out of memory)",
                    format_size(limits.memory)
                )
            }
            _ => line,
        };
        eprintln!("warren-jail: {line}");
    }
    if stats.pids_limit_hits > 0 {
        eprintln!(
            "warren-jail: pids limit of {} reached ({} process creations refused)",
            limits.pids, stats.pids_limit_hits
        );
    }
    let code = outcome.exit_code();
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

fn doctor() -> ExitCode {
    let profile = Profile::default();
    let reports = warren_jail::doctor::check(&profile);
    let mut all_ok = true;
    for r in &reports {
        all_ok &= r.ok;
        println!(
            "{:<11} {:<8} {}",
            r.layer.to_string(),
            if r.ok { "ok" } else { "MISSING" },
            r.detail
        );
    }
    let live = if all_ok {
        live_check(profile)
    } else {
        Err(anyhow!("skipped: a layer is missing"))
    };
    match &live {
        Ok(ms) => println!(
            "{:<11} {:<8} started a program in a fresh cell in {ms:.2} ms",
            "cell", "ok"
        ),
        Err(e) => println!("{:<11} {:<8} {e:#}", "cell", "FAILED"),
    }
    if all_ok && live.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Start this binary in a cell with `__cell-check` and require it to report success.
fn live_check(profile: Profile) -> anyhow::Result<f64> {
    let exe = std::env::current_exe().context("find own executable")?;
    let program = Program::from_path(&exe)?;
    let jail = Jail::new(profile, Limits::default())?;
    let t0 = std::time::Instant::now();
    let husk = jail.make_husk()?;
    let (mine, theirs) = std::os::unix::net::UnixStream::pair().context("socketpair")?;
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let mut cell = husk.start(StartRequest {
        program: &program,
        argv: vec![
            std::ffi::OsStr::new("warren-jail"),
            std::ffi::OsStr::new("__cell-check"),
        ],
        env: vec![],
        stdin: null.as_fd(),
        stdout: theirs.as_fd(),
        stderr: null.as_fd(),
        fd3: None,
        limits: None,
    })?;
    drop(theirs);
    let outcome = cell.wait(Some(Duration::from_secs(10)))?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut report = String::new();
    use std::io::Read;
    let _ = (&mine).read_to_string(&mut report);
    if outcome.exit_code() != 0 || report.trim() != "ok" {
        return Err(anyhow!(
            "self-check in a cell failed (exit {}{}): {}",
            outcome.exit_code(),
            outcome
                .describe()
                .map(|d| format!(", {d}"))
                .unwrap_or_default(),
            report.trim()
        ));
    }
    Ok(ms)
}

/// Runs inside a cell: verify what the cell promises, print `ok` or what is wrong.
fn cell_check() -> ExitCode {
    let mut problems = Vec::new();
    // SAFETY: prctl(PR_GET_NO_NEW_PRIVS) takes no pointers and only returns a value.
    if unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } != 1 {
        problems.push("no_new_privs is not set");
    }
    if Path::new("/etc").exists() || Path::new("/proc/self").exists() {
        problems.push("host filesystem is visible");
    }
    if std::fs::write("/x", b"x").is_ok() {
        problems.push("root is writable");
    }
    if std::net::TcpStream::connect("127.0.0.1:1").is_ok() {
        problems.push("network reachable");
    }
    if std::env::vars_os().next().is_some() {
        problems.push("environment is not empty");
    }
    if problems.is_empty() {
        println!("ok");
        ExitCode::SUCCESS
    } else {
        println!("{}", problems.join("; "));
        ExitCode::from(1)
    }
}
