//! Test support for Warren's integration and escape tests.
//!
//! The root `warren` package owns `tests/` and `benches/`; this library is what
//! those tests share:
//!
//! - [`probe`]: the path of a small C probe program compiled by `build.rs` from
//!   `tests/probes/*.c` (static, plus the dynamically linked `dyn_hello_dynamic`);
//! - [`bin`]: the path of a workspace binary (`warren-jail`, `warrend`, `warren`)
//!   in the same target directory as the running test;
//! - [`Jail`] / [`jail_run`]: run `warren-jail run [FLAGS] -- PROGRAM [ARGS]` with a
//!   clean, controlled environment and collect an [`Outcome`] (exit code, stdout,
//!   stderr, and the `warren-jail: ` reason lines);
//! - [`random_u64`] / [`unique_name`]: collision-free names and keys so tests can
//!   run in parallel.
//!
//! Everything here panics with a clear message instead of returning errors: a
//! missing binary, probe or isolation layer must fail the test, never skip it.

pub mod daemon;

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Prefix of every line `warren-jail` itself writes on stderr.
pub const JAIL_PREFIX: &str = "warren-jail: ";

/// How long [`Jail::run`] lets a `warren-jail` process live before killing it
/// and failing the test. This is hang protection for a broken jail, not a
/// performance threshold: every cell a test starts either finishes on its own
/// or is bounded by its own `--timeout` far below this.
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// Lowest fd number used to park fds handed to [`Jail::inherit_fd`] before the
/// child's `dup2`, so parking never collides with a target fd.
const PARK_FD_MIN: RawFd = 1024;

/// Path of the probe program `name` built by `build.rs` from `tests/probes/<name>.c`.
///
/// # Panics
///
/// If the probe was not built (which means `build.rs` and the probe sources disagree).
pub fn probe(name: &str) -> PathBuf {
    let path = Path::new(env!("WARREN_PROBE_DIR")).join(name);
    assert!(
        path.is_file(),
        "probe `{name}` not found at {}: is there a tests/probes/{name}.c?",
        path.display()
    );
    path
}

/// Path of the workspace binary `name` (e.g. `warren-jail`) in the target
/// directory of the running test executable.
///
/// Test executables live in `target/<profile>/deps/`; binaries in `target/<profile>/`.
///
/// # Panics
///
/// If the binary has not been built.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("cannot find the running test executable");
    let mut dir = exe
        .parent()
        .expect("the test executable has a parent directory")
        .to_path_buf();
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "binary {name} not found at {}: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A random 64-bit number (seeded from the OS via `RandomState`, mixed with
/// the pid, the clock and a counter), good enough for unique names and IPC keys.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = SystemTime::now().duration_since(UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// A name unique to this call: `<prefix>-<pid>-<random hex>`.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}-{:016x}", std::process::id(), random_u64())
}

/// Runs `warren-jail run <args>` (the caller supplies the flags, `--` and the
/// program) with an empty environment, stdin from `/dev/null`, and collects
/// the outcome.
pub fn jail_run(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(bin("warren-jail"));
    cmd.arg("run").args(args);
    let description = describe(&cmd);
    cmd.env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    collect(child, description)
}

/// Builder for one `warren-jail run` invocation.
///
/// ```no_run
/// let out = warren::Jail::new()
///     .flags(["--memory", "32M"])
///     .run(warren::probe("mem_bomb"), &[]);
/// assert_eq!(out.exit_code(), 137, "{out}");
/// ```
#[derive(Debug, Default)]
pub struct Jail {
    flags: Vec<OsString>,
    host_env: Vec<(OsString, OsString)>,
    /// (parked fd, target fd number in `warren-jail`)
    inherit: Vec<(OwnedFd, RawFd)>,
}

impl Jail {
    /// A jail invocation with no flags, an empty host environment and no extra fds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one `warren-jail run` flag (or flag value), placed before `--`.
    #[must_use]
    pub fn flag(mut self, flag: impl AsRef<OsStr>) -> Self {
        self.flags.push(flag.as_ref().to_owned());
        self
    }

    /// Adds several `warren-jail run` flags, placed before `--`.
    #[must_use]
    pub fn flags<I, S>(mut self, flags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.flags
            .extend(flags.into_iter().map(|f| f.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable in `warren-jail`'s own (host) environment,
    /// which otherwise is empty. The cell must not see it.
    #[must_use]
    pub fn host_env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.host_env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Hands `fd` to `warren-jail` as fd number `target`, *without* close-on-exec,
    /// the way a careless parent leaks descriptors. The cell must not see it.
    ///
    /// # Panics
    ///
    /// If `target` is not in `3..1024` or the fd cannot be duplicated.
    #[must_use]
    pub fn inherit_fd(mut self, fd: impl Into<OwnedFd>, target: RawFd) -> Self {
        assert!(
            (3..PARK_FD_MIN).contains(&target),
            "inherit_fd target {target} must be in 3..{PARK_FD_MIN}"
        );
        let fd: OwnedFd = fd.into();
        // SAFETY: `fd` is a valid open descriptor owned by this function for the
        // duration of the call; F_DUPFD_CLOEXEC only creates a new descriptor.
        let parked = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, PARK_FD_MIN) };
        assert!(
            parked >= 0,
            "cannot duplicate fd {}: {}",
            fd.as_raw_fd(),
            std::io::Error::last_os_error()
        );
        // SAFETY: `parked` was just returned by fcntl(F_DUPFD_CLOEXEC), so it is a
        // valid descriptor that nothing else owns.
        let parked = unsafe { OwnedFd::from_raw_fd(parked) };
        self.inherit.push((parked, target));
        self
    }

    /// Applies the controlled environment and the leaked fds to `cmd`.
    fn setup(&self, cmd: &mut Command) {
        cmd.env_clear();
        for (k, v) in &self.host_env {
            cmd.env(k, v);
        }
        if !self.inherit.is_empty() {
            let pairs: Vec<(RawFd, RawFd)> = self
                .inherit
                .iter()
                .map(|(fd, target)| (fd.as_raw_fd(), *target))
                .collect();
            let hook = move || {
                for &(src, target) in &pairs {
                    // SAFETY: dup2 is async-signal-safe; `src` is a parked fd that the
                    // parent keeps open until after spawn returns, and `target` is a
                    // plain fd number (< PARK_FD_MIN, so never another parked fd).
                    // The new descriptor has close-on-exec cleared, which is the point.
                    if unsafe { libc::dup2(src, target) } < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            };
            // SAFETY: the hook runs between fork and exec in the child; it only
            // iterates an already-allocated Vec and calls dup2 (async-signal-safe),
            // and builds io::Error from errno, which does not allocate.
            unsafe {
                cmd.pre_exec(hook);
            }
        }
    }

    /// The `warren-jail run FLAGS -- PROGRAM ARGS` command with the controlled
    /// environment and fds, stdio not yet configured.
    fn command(&self, program: &OsStr, args: &[&str]) -> (Command, String) {
        let mut cmd = Command::new(bin("warren-jail"));
        cmd.arg("run")
            .args(&self.flags)
            .arg("--")
            .arg(program)
            .args(args);
        let description = describe(&cmd);
        self.setup(&mut cmd);
        (cmd, description)
    }

    /// Runs `PROGRAM ARGS` in a cell, stdin from `/dev/null`, and collects the outcome.
    ///
    /// # Panics
    ///
    /// If `warren-jail` cannot be started or outlives [`WATCHDOG`].
    pub fn run(self, program: impl AsRef<OsStr>, args: &[&str]) -> Outcome {
        let (cmd, description) = self.command(program.as_ref(), args);
        run_to_end(cmd, description, self)
    }

    /// Control experiment: runs `PROGRAM ARGS` directly on the host, *without*
    /// `warren-jail`, with the same host environment and inherited fds. Tests
    /// use it to prove their setup really exposes what the jail must hide.
    ///
    /// # Panics
    ///
    /// If the program cannot be started or outlives [`WATCHDOG`].
    pub fn run_unjailed(self, program: impl AsRef<OsStr>, args: &[&str]) -> Outcome {
        let mut cmd = Command::new(program.as_ref());
        cmd.args(args);
        self.setup(&mut cmd);
        let description = describe(&cmd);
        run_to_end(cmd, description, self)
    }

    /// Starts `PROGRAM ARGS` in a cell with stdin, stdout and stderr piped, for
    /// tests that talk to a running cell. The caller waits for it.
    ///
    /// # Panics
    ///
    /// If `warren-jail` cannot be started.
    pub fn spawn(self, program: impl AsRef<OsStr>, args: &[&str]) -> Child {
        let (mut cmd, description) = self.command(program.as_ref(), args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"))
    }
}

/// What one `warren-jail run` did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The command line, for messages.
    pub command: String,
    /// `warren-jail`'s exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed `warren-jail` itself, if one did (a jail bug).
    pub signal: Option<i32>,
    /// Everything the cell (and `warren-jail`) wrote to stdout.
    pub stdout: String,
    /// Everything the cell (and `warren-jail`) wrote to stderr.
    pub stderr: String,
}

impl Outcome {
    /// The exit code.
    ///
    /// # Panics
    ///
    /// If `warren-jail` itself was killed by a signal instead of exiting.
    pub fn exit_code(&self) -> i32 {
        match self.code {
            Some(code) => code,
            None => panic!("warren-jail itself did not exit normally:\n{self}"),
        }
    }

    /// The stderr lines `warren-jail` wrote about the cell (starting `warren-jail: `).
    pub fn jail_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with(JAIL_PREFIX))
            .collect()
    }

    /// The one `warren-jail: ` reason line.
    ///
    /// # Panics
    ///
    /// Unless there is exactly one such line.
    pub fn reason(&self) -> &str {
        match self.jail_lines().as_slice() {
            [line] => line,
            lines => panic!(
                "expected exactly one `{JAIL_PREFIX}` line on stderr, found {}:\n{self}",
                lines.len()
            ),
        }
    }

    /// The stdout lines.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        match (self.code, self.signal) {
            (Some(code), _) => writeln!(f, "exit code: {code}")?,
            (None, Some(sig)) => writeln!(f, "warren-jail killed by signal {sig}")?,
            (None, None) => writeln!(f, "no exit status")?,
        }
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Reads a pipe to its end on a thread; the text arrives on the returned channel.
fn reader(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            // A read error leaves what was read so far; the test sees it.
            let _ = p.read_to_end(&mut buf);
        }
        // The receiver is gone only if the test already panicked.
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// Waits for `child` and gathers its output, within [`WATCHDOG`].
///
/// Output pipes reach end-of-file only when every process holding them is
/// gone, so a cell process that outlives `warren-jail` is caught here too.
/// Start `cmd` with stdin closed and stdout/stderr piped, and collect its outcome. `keep`
/// (the builder, which owns the fds the child inherits) lives until the child has started.
fn run_to_end<K>(mut cmd: Command, description: String, keep: K) -> Outcome {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    drop(keep);
    collect(child, description)
}

fn collect(mut child: Child, command: String) -> Outcome {
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("watchdog: `{command}` still running after {WATCHDOG:?}; killed it");
            }
            Err(e) => panic!("waiting for `{command}` failed: {e}"),
        }
    };
    let take = |rx: mpsc::Receiver<String>, name: &str| {
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "`{command}` exited ({status}) but its {name} stayed open until the \
                 watchdog fired: some process of the cell outlived warren-jail"
            )
        })
    };
    let stdout = take(out, "stdout");
    let stderr = take(err, "stderr");
    Outcome {
        command,
        code: status.code(),
        signal: status.signal(),
        stdout,
        stderr,
    }
}

/// Path of the C example guest (`examples/c/counter.c`: the counter, written in C from
/// `docs/protocol.md` alone), compiled by `build.rs` into `$OUT_DIR/examples/c_counter`.
///
/// # Panics
///
/// If the guest was not built (which means `build.rs` and `examples/c/` disagree).
pub fn c_guest() -> PathBuf {
    let path = PathBuf::from(env!("WARREN_C_GUEST"));
    assert!(
        path.is_file(),
        "the C example guest is missing at {}: build.rs compiles examples/c/counter.c there",
        path.display()
    );
    path
}
