//! Husks: pre-built cells waiting for a program, and the code that runs inside them.
//!
//! The supervisor side ([`crate::Jail::make_husk`]) and the cell side ([`husk_main`]) follow
//! one sequence. The supervisor (root, single-threaded):
//!
//! 1. creates the cell's cgroup with its limits;
//! 2. clones the husk into new user, mount, pid, ipc and uts namespaces (the network namespace
//!    is the shared empty one the jail entered at start);
//! 3. maps the cell's uid/gid 0 to the profile's unprivileged host ids and moves the husk into
//!    the cgroup, then says *go*.
//!
//! The husk, pid 1 of its pid namespace, then:
//!
//! 4. closes every inherited descriptor but its control socket;
//! 5. clears supplementary groups and switches to the mapped ids (so on the host it is the
//!    unprivileged cell id, never root), then sets its parent-death signal — after the id
//!    switch, which would clear it; a supervisor that died before this is seen as EOF on the
//!    control socket, which ends the husk;
//! 6. enters a new cgroup namespace rooted at its cgroup, starts a new session, sets the
//!    hostname;
//! 7. builds the root filesystem ([`crate::rootfs`]);
//! 8. sets no_new_privs and drops every capability for good ([`crate::privileges`]);
//! 9. restricts itself with Landlock and installs the seccomp filter, which the program will
//!    inherit (doing this ahead of time keeps it off the start path), and hands the seccomp
//!    listener to the supervisor with its *ready* report; then waits.
//!
//! While idle the husk (the cell's init) has already forked the program's process, which
//! waits for the *start* request itself, so starting costs no fork. On *start* it places its
//! descriptors (0-2 stdio, 3 optional extra, the program at [`PROGRAM_FD`]), closes all others,
//! applies rlimits and calls `execveat` on the program. The init reports *started* (or why exec failed), reaps
//! every process of the cell, and reports the program's wait status when it ends. A husk runs
//! at most one program.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::unistd::Pid;

use crate::error::{JailError, Layer, Result};
use crate::profile::Profile;
use crate::rootfs::RootPlan;
use crate::seccomp::{SeccompPolicy, PROGRAM_FD};
use crate::wire::{self, FromHusk, StartSpec, ToHusk};

/// Descriptor numbers the program's process uses for its own plumbing before exec (all
/// close-on-exec, all above the program's `RLIMIT_NOFILE`).
const CONTROL_FD: RawFd = PROGRAM_FD + 1;
const EXEC_ERR_FD: RawFd = PROGRAM_FD + 2;
const STAGING_FD_BASE: RawFd = PROGRAM_FD + 10;

/// What the cell side needs, prepared by the supervisor before cloning (copied into the husk
/// by the clone).
#[derive(Debug)]
pub(crate) struct HuskPlan<'a> {
    pub profile: &'a Profile,
    pub root: &'a RootPlan,
    pub seccomp: Option<&'a SeccompPolicy>,
}

/// Clone flags of a husk. The network namespace is deliberately absent: see
/// [`crate::Jail::new`].
pub(crate) const CLONE_FLAGS: libc::c_ulong = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS) as libc::c_ulong;

/// Clone a husk. Returns the child's pid in the parent; runs `husk_main` in the child and
/// never returns there.
pub(crate) fn clone_husk(plan: &HuskPlan<'_>, control: OwnedFd) -> Result<Pid> {
    // SAFETY: clone without CLONE_VM and with a NULL stack behaves like fork: the child gets a
    // copy of this (single-threaded, as Jail::new checked) address space and continues on a
    // copy of the stack, so no other thread's locks can be held in the child.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            CLONE_FLAGS | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match rc {
        -1 => {
            let err = std::io::Error::last_os_error();
            Err(JailError::LayerUnavailable {
                layer: Layer::Namespaces,
                reason: format!(
                    "clone(CLONE_NEWUSER|NEWNS|NEWPID|NEWIPC|NEWUTS): {err} (are user namespaces enabled? see user.max_user_namespaces)"
                ),
            })
        }
        0 => husk_main(plan, control),
        pid => Ok(Pid::from_raw(i32::try_from(pid).map_err(|_| {
            JailError::Invalid {
                what: "clone result".into(),
                reason: pid.to_string(),
            }
        })?)),
    }
}

/// Report a failure to the supervisor and end the husk.
fn fail(control: BorrowedFd<'_>, err: &JailError) -> ! {
    let _ = wire::send(control, &FromHusk::Failed(err.to_string()).encode(), &[]);
    // SAFETY: _exit ends the process immediately without running atexit handlers or
    // destructors that belong to the supervisor's copy of this address space.
    unsafe { libc::_exit(1) }
}

fn husk_main(plan: &HuskPlan<'_>, control: OwnedFd) -> ! {
    let ctl = control.as_fd();
    // 4. nothing inherited but the control socket, and no signal state of the supervisor's
    if let Err(e) = close_all_except(ctl.as_raw_fd()).and_then(|_| reset_signals()) {
        fail(ctl, &e)
    }
    // wait for the supervisor's maps and cgroup; EOF means it is gone
    match wire::recv(ctl) {
        Ok(Some((m, _))) if ToHusk::decode(&m) == Some(ToHusk::Go) => {}
        // SAFETY: see `fail`: end this copy of the process without the parent's cleanup.
        _ => unsafe { libc::_exit(1) },
    }
    if let Err(e) = build_cell(plan) {
        fail(ctl, &e)
    }
    let listener = match restrict_cell(plan) {
        Ok(l) => l,
        Err(e) => fail(ctl, &e),
    };
    let listener_fd: Vec<RawFd> = listener.iter().map(|l| l.as_raw_fd()).collect();
    if wire::send(ctl, &FromHusk::Ready.encode(), &listener_fd).is_err() {
        // SAFETY: see `fail`.
        unsafe { libc::_exit(1) }
    }
    // the listener must never stay in the cell: a cell could answer its own notifications
    drop(listener);
    run_init(plan, ctl)
}

/// Step 9: Landlock and seccomp, inherited by the program. Returns the seccomp listener.
fn restrict_cell(plan: &HuskPlan<'_>) -> Result<Option<OwnedFd>> {
    if plan.profile.layers.landlock {
        crate::landlock_rules::restrict(plan.root)?;
    }
    plan.seccomp.map(|p| p.install()).transpose()
}

/// Steps 5 to 8 of the module doc.
fn build_cell(plan: &HuskPlan<'_>) -> Result<()> {
    let ids = |call: &str| {
        let call = call.to_string();
        move |e| JailError::sys(Layer::Namespaces, call.clone(), e)
    };
    nix::unistd::setgroups(&[]).map_err(ids("setgroups([])"))?;
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid).map_err(ids("setresgid(0)"))?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid).map_err(ids("setresuid(0)"))?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| JailError::sys(Layer::Privileges, "prctl(PR_SET_PDEATHSIG)", e))?;
    if plan.profile.layers.cgroups {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(ids("unshare(CLONE_NEWCGROUP)"))?;
    }
    nix::unistd::setsid().map_err(|e| JailError::sys(Layer::Privileges, "setsid", e))?;
    nix::unistd::sethostname(&plan.profile.hostname).map_err(ids("sethostname"))?;
    plan.root.build()?;
    crate::privileges::set_no_new_privs()?;
    crate::privileges::drop_all_capabilities()?;
    // the init's own stdio
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| JailError::sys(Layer::Filesystem, "open /dev/null", e))?;
    for fd in 0..3 {
        if null != fd {
            nix::unistd::dup2(null, fd)
                .map_err(|e| JailError::sys(Layer::Filesystem, "dup2", e))?;
        }
    }
    if null > 2 {
        let _ = nix::unistd::close(null);
    }
    Ok(())
}

/// Unblock every signal and restore default dispositions: a supervisor may block or ignore
/// signals (Rust ignores SIGPIPE), and ignored dispositions would survive exec.
fn reset_signals() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    SigSet::empty()
        .thread_set_mask()
        .map_err(|e| JailError::sys(Layer::Privileges, "sigprocmask", e))?;
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if sig == Signal::SIGKILL || sig == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        unsafe { sigaction(sig, &default) }
            .map_err(|e| JailError::sys(Layer::Privileges, format!("sigaction({sig})"), e))?;
    }
    Ok(())
}

fn close_all_except(keep: RawFd) -> Result<()> {
    let keep = u32::try_from(keep).map_err(|_| JailError::Invalid {
        what: "control descriptor".into(),
        reason: keep.to_string(),
    })?;
    let close = |first: u32, last: u32| {
        if first > last {
            return Ok(());
        }
        // SAFETY: close_range only closes descriptors of this process; the one we still need
        // (`keep`) is outside the range.
        let rc = unsafe { libc::close_range(first, last, 0) };
        if rc < 0 {
            return Err(JailError::last_os(Layer::Privileges, "close_range"));
        }
        Ok(())
    };
    if keep > 0 {
        close(0, keep - 1)?;
    }
    close(keep + 1, u32::MAX)
}

/// The cell's init: start the program, then reap until it ends.
fn run_init(plan: &HuskPlan<'_>, ctl: BorrowedFd<'_>) -> ! {
    let (err_r, err_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => fail(ctl, &JailError::sys(Layer::Privileges, "pipe2", e)),
    };
    // The program's process is forked now, while the husk is idle, so that starting a program
    // costs no fork: it waits for the start request itself.
    // SAFETY: fork in a single-threaded process (the init never starts threads); the child
    // only runs `await_start`, which ends in execveat or _exit.
    match unsafe { nix::unistd::fork() } {
        Err(e) => fail(ctl, &JailError::sys(Layer::Privileges, "fork program", e)),
        Ok(nix::unistd::ForkResult::Child) => {
            drop(err_r);
            await_start(plan, ctl, err_w)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(err_w);
            // EOF: the program was executed; data: why it was not
            let mut buf = [0u8; 1024];
            let n = loop {
                match nix::unistd::read(err_r.as_raw_fd(), &mut buf) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other.unwrap_or(0),
                }
            };
            let report = if n == 0 {
                FromHusk::Started
            } else {
                FromHusk::Failed(String::from_utf8_lossy(&buf[..n]).into_owned())
            };
            let _ = wire::send(ctl, &report.encode(), &[]);
            reap_until(ctl, child)
        }
    }
}

/// The program's process before exec: wait for the start request, check it, run it.
fn await_start(plan: &HuskPlan<'_>, ctl: BorrowedFd<'_>, err_w: OwnedFd) -> ! {
    let (spec, fds) = match wire::recv(ctl) {
        Ok(Some((m, fds))) => match ToHusk::decode(&m) {
            Some(ToHusk::Start(spec)) if (4..=5).contains(&fds.len()) => (spec, fds),
            _ => exec_fail(
                err_w.as_raw_fd(),
                "malformed start request (expected 4 or 5 descriptors)",
            ),
        },
        // the supervisor is gone
        // SAFETY: see `fail`.
        _ => unsafe { libc::_exit(1) },
    };
    if let Some(interp) = &spec.interp {
        if plan.profile.layers.landlock && !plan.root.loaders.contains(interp) {
            let allowed: Vec<String> = plan
                .root
                .loaders
                .iter()
                .map(|l| l.display().to_string())
                .collect();
            exec_fail(
                err_w.as_raw_fd(),
                &format!(
                    "the program's ELF interpreter {} is not a loader the cell may execute (allowed: {})",
                    interp.display(),
                    if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
                ),
            )
        }
    }
    exec_program(plan, ctl, err_w, &spec, fds)
}

fn reap_until(ctl: BorrowedFd<'_>, program: Pid) -> ! {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into our local integer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == program.as_raw() {
            let _ = wire::send(ctl, &FromHusk::Exited(status).encode(), &[]);
            // SAFETY: see `fail`. Leaving pid 1 ends every other process of the cell.
            unsafe { libc::_exit(0) }
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // SAFETY: see `fail`.
            unsafe { libc::_exit(1) }
        }
    }
}

/// Report an exec-stage failure through the exec error pipe and end the process.
fn exec_fail(err_w: RawFd, msg: &str) -> ! {
    let _ = nix::unistd::write(
        // SAFETY: err_w is this process's open pipe end for the duration of the call.
        unsafe { BorrowedFd::borrow_raw(err_w) },
        msg.as_bytes(),
    );
    // SAFETY: see `fail`.
    unsafe { libc::_exit(127) }
}

/// The program's process: place descriptors, restrict, exec. Never returns.
fn exec_program(
    plan: &HuskPlan<'_>,
    ctl: BorrowedFd<'_>,
    err_w: OwnedFd,
    spec: &StartSpec,
    fds: Vec<OwnedFd>,
) -> ! {
    let err_raw = err_w.as_raw_fd();
    let result = (|| -> Result<()> {
        let sys = |call: &str| {
            let call = call.to_string();
            move |e| JailError::sys(Layer::Privileges, call.clone(), e)
        };
        // plumbing to fixed close-on-exec numbers above the program's fd limit
        dup_to(ctl.as_raw_fd(), CONTROL_FD)?;
        dup_to(err_raw, EXEC_ERR_FD)?;
        // lift every received descriptor out of the way first
        let mut staged = Vec::with_capacity(fds.len());
        for fd in &fds {
            let hi = nix::fcntl::fcntl(
                fd.as_raw_fd(),
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(STAGING_FD_BASE),
            )
            .map_err(sys("fcntl(F_DUPFD_CLOEXEC)"))?;
            staged.push(hi);
        }
        drop(fds);
        dup_to(staged[0], PROGRAM_FD)?;
        let mut target = 0;
        for &fd in &staged[1..] {
            // dup2 clears close-on-exec on the target: these are the program's descriptors
            nix::unistd::dup2(fd, target).map_err(sys("dup2"))?;
            target += 1;
        }
        // close everything else: [target, PROGRAM_FD) and above our plumbing
        let first = u32::try_from(target).unwrap_or(3);
        // SAFETY: closes only this process's descriptors, none of which is still needed
        // (the program's are below `first`, the plumbing at PROGRAM_FD..=EXEC_ERR_FD).
        if unsafe { libc::close_range(first, (PROGRAM_FD - 1) as u32, 0) } < 0 {
            return Err(JailError::last_os(Layer::Privileges, "close_range"));
        }
        // SAFETY: as above; everything past the plumbing is closed.
        if unsafe { libc::close_range((EXEC_ERR_FD + 1) as u32, u32::MAX, 0) } < 0 {
            return Err(JailError::last_os(Layer::Privileges, "close_range"));
        }
        crate::rlimits::apply(&plan.profile.rlimits)?;
        Ok(())
    })();
    if let Err(e) = result {
        exec_fail(EXEC_ERR_FD, &format!("{e}"))
    }
    let argv: Vec<*const libc::c_char> = spec
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = spec
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let empty = CString::default();
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into `spec`'s CStrings,
    // all alive until exec replaces this process (or returns an error).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            PROGRAM_FD,
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    let err = std::io::Error::last_os_error();
    exec_fail(EXEC_ERR_FD, &format!("execveat: {err}"))
}

/// `dup3(from, to, O_CLOEXEC)`.
fn dup_to(from: RawFd, to: RawFd) -> Result<()> {
    // SAFETY: dup3 only manipulates this process's descriptor table.
    if unsafe { libc::dup3(from, to, libc::O_CLOEXEC) } < 0 {
        return Err(JailError::last_os(
            Layer::Privileges,
            format!("dup3({from}, {to})"),
        ));
    }
    Ok(())
}
