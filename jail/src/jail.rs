//! [`Jail`]: checks every isolation layer once (failing closed, naming what is missing),
//! then makes [`Husk`]s — pre-built cells — and starts programs in them.
//!
//! A `Jail` lives in a single-threaded process (the daemon's zygote, or the `warren-jail`
//! runner): husks are cloned from it, and cloning a multi-threaded process is not safe.
//! Creating a `Jail` moves the calling process into a new, empty network namespace that all
//! its cells share. That is safe because nothing in it can be configured by a cell (it is
//! owned by the host's user namespace, where cells have no capabilities), it holds only a
//! down loopback, no socket family but `AF_UNIX` is allowed by seccomp, and the one thing
//! cells could share there — abstract Unix socket names — is cut by Landlock's
//! abstract-socket scoping, which confines each cell to sockets created in its own domain.
//! Sharing saves the ~1 ms a network namespace costs to create and to tear down per cell.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::unistd::Pid;

use crate::cell::Cell;
use crate::cgroup::{next_cell_name, CellCgroup, CgroupDriver};
use crate::error::{JailError, Layer, Result};
use crate::husk::{clone_husk, HuskPlan};
use crate::landlock_rules;
use crate::profile::{Limits, Profile};
use crate::program::Program;
use crate::rootfs::RootPlan;
use crate::seccomp::SeccompPolicy;
use crate::wire::{self, FromHusk, StartSpec, ToHusk};

/// The cgroup directory Warren's cells live under.
pub const CGROUP_GROUP: &str = "warren";

/// A checked jail profile, ready to make husks.
#[derive(Debug)]
pub struct Jail {
    profile: Profile,
    root: RootPlan,
    seccomp: Option<SeccompPolicy>,
    cgroups: Option<CgroupDriver>,
    limits: Limits,
}

/// A pre-built cell waiting for one program.
#[derive(Debug)]
pub struct Husk {
    pub(crate) proc: CellProcess,
}

/// The supervisor's handles on one cell's init process. Dropping it kills the cell, reaps
/// the init (when this process is its parent) and removes the cell's cgroup.
#[derive(Debug)]
pub(crate) struct CellProcess {
    pub(crate) pid: Pid,
    pub(crate) pidfd: OwnedFd,
    pub(crate) control: OwnedFd,
    pub(crate) cgroup: Option<CellCgroup>,
    /// whether this process is the init's parent and must reap it
    pub(crate) reap: bool,
    /// whether dropping kills the cell (false once handed to another process)
    pub(crate) armed: bool,
    /// the cell's seccomp user-notification listener (none with seccomp off)
    pub(crate) listener: Option<OwnedFd>,
}

/// What to run in a husk.
#[derive(Debug)]
pub struct StartRequest<'a> {
    /// the program
    pub program: &'a Program,
    /// argv, including argv\[0\]
    pub argv: Vec<&'a OsStr>,
    /// the whole environment (`K=V`); nothing of the host's is added
    pub env: Vec<(&'a str, &'a str)>,
    /// the program's fd 0
    pub stdin: BorrowedFd<'a>,
    /// the program's fd 1
    pub stdout: BorrowedFd<'a>,
    /// the program's fd 2
    pub stderr: BorrowedFd<'a>,
    /// the program's fd 3, if any (the guest socket)
    pub fd3: Option<BorrowedFd<'a>>,
    /// limits for this program, replacing the husk's defaults
    pub limits: Option<Limits>,
}

impl Jail {
    /// Check every layer the profile enables, then enter the shared empty network namespace.
    pub fn new(profile: Profile, limits: Limits) -> Result<Self> {
        let cgroups = if profile.layers.cgroups {
            Some(CgroupDriver::detect(CGROUP_GROUP)?)
        } else {
            None
        };
        Self::with_cgroups(profile, limits, cgroups)
    }

    /// Like [`Jail::new`] with a cgroup driver detected earlier (the zygote's parent detects
    /// once, so the supervisor and the zygote agree on where cells live).
    pub fn with_cgroups(
        profile: Profile,
        limits: Limits,
        cgroups: Option<CgroupDriver>,
    ) -> Result<Self> {
        profile.validate()?;
        if profile.layers.cgroups && cgroups.is_none() {
            return Err(JailError::LayerUnavailable {
                layer: Layer::Cgroups,
                reason: "no cgroup driver was given".into(),
            });
        }
        ensure_single_threaded()?;
        let root = RootPlan::resolve(&profile)?;
        let seccomp = if profile.layers.seccomp {
            check_seccomp_notify()?;
            Some(SeccompPolicy::compile()?)
        } else {
            None
        };
        if profile.layers.landlock {
            landlock_rules::check_available()?;
        }
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
            JailError::LayerUnavailable {
                layer: Layer::Namespaces,
                reason: format!("unshare(CLONE_NEWNET): {e}"),
            }
        })?;
        Ok(Jail {
            profile,
            root,
            seccomp,
            cgroups,
            limits,
        })
    }

    /// The profile this jail enforces.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The cgroup driver in use (none if the cgroup layer was turned off).
    pub fn cgroups(&self) -> Option<&CgroupDriver> {
        self.cgroups.as_ref()
    }

    /// Make one husk with the jail's default limits.
    pub fn make_husk(&self) -> Result<Husk> {
        self.make_husk_with(&self.limits)
    }

    /// Make one husk whose cgroup starts with `limits`.
    pub fn make_husk_with(&self, limits: &Limits) -> Result<Husk> {
        let cgroup = match &self.cgroups {
            Some(d) => Some(d.create_cell(&next_cell_name(), limits)?),
            None => None,
        };
        let (parent, child) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| JailError::sys(Layer::Namespaces, "socketpair", e))?;
        let plan = HuskPlan {
            profile: &self.profile,
            root: &self.root,
            seccomp: self.seccomp.as_ref(),
        };
        let pid = match clone_husk(&plan, child) {
            Ok(pid) => pid,
            Err(e) => {
                if let Some(c) = &cgroup {
                    let _ = c.remove();
                }
                return Err(e);
            }
        };
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                return Err(e);
            }
        };
        let husk = Husk {
            proc: CellProcess {
                pid,
                pidfd,
                control: parent,
                cgroup,
                reap: true,
                armed: true,
                listener: None,
            },
        };
        // From here on, dropping `husk` kills and reaps the child and removes its cgroup.
        self.map_ids(pid)?;
        if let Some(c) = &husk.proc.cgroup {
            c.add_process(pid.as_raw())?;
        }
        husk.proc.send(&ToHusk::Go, &[])?;
        match husk.proc.recv()? {
            (FromHusk::Ready, mut fds) if fds.len() == usize::from(self.seccomp.is_some()) => {
                let mut husk = husk;
                husk.proc.listener = fds.pop();
                Ok(husk)
            }
            (FromHusk::Failed(msg), _) => {
                Err(JailError::Start(format!("building the cell: {msg}")))
            }
            (other, _) => Err(JailError::Channel {
                peer: "husk",
                reason: format!("expected ready, got {other:?}"),
            }),
        }
    }

    fn map_ids(&self, pid: Pid) -> Result<()> {
        let write = |file: &str, content: String| {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, content).map_err(|e| JailError::Sys {
                layer: Layer::Namespaces,
                call: format!("write {path}"),
                source: e,
            })
        };
        write("uid_map", format!("0 {} 1\n", self.profile.host_uid))?;
        write("gid_map", format!("0 {} 1\n", self.profile.host_gid))
    }
}

impl Husk {
    /// Host pid of the husk's init.
    pub fn pid(&self) -> i32 {
        self.proc.pid.as_raw()
    }

    /// Whether the husk's init is still running (its pidfd is not yet readable).
    pub fn is_alive(&self) -> bool {
        let mut fds = [nix::poll::PollFd::new(
            self.proc.pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        matches!(
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO),
            Ok(0)
        )
    }
}

impl CellProcess {
    /// Let the program's one exec through (see [`crate::seccomp::allow_program_exec`]), or
    /// return why the start failed. Without seccomp there is nothing to allow.
    fn allow_program_exec(&self) -> Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (exec_ready, control_ready) = {
                let mut fds = [
                    PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.control.as_fd(), PollFlags::POLLIN),
                ];
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(JailError::Start(
                        "the cell did not reach exec within 30s".into(),
                    ));
                }
                let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(JailError::sys(Layer::Seccomp, "poll listener", e)),
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if exec_ready {
                return match crate::seccomp::allow_program_exec(listener)? {
                    Ok(()) => Ok(()),
                    Err(v) => Err(JailError::Start(format!(
                        "the cell made a disallowed call before its program started: {}",
                        v.name
                    ))),
                };
            }
            if control_ready {
                return match self.recv() {
                    Ok((FromHusk::Failed(msg), _)) => Err(JailError::Start(msg)),
                    Ok((other, _)) => Err(JailError::Channel {
                        peer: "husk",
                        reason: format!("unexpected {other:?} before the program's exec"),
                    }),
                    Err(e) => Err(e),
                };
            }
        }
    }

    /// Close this process's handles on drop without killing the cell or removing its cgroup.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }

    pub(crate) fn send(&self, msg: &ToHusk, fds: &[i32]) -> Result<()> {
        let bytes = msg.encode()?;
        wire::send(self.control.as_fd(), &bytes, fds).map_err(|e| JailError::Channel {
            peer: "husk",
            reason: format!("send: {e}"),
        })
    }

    pub(crate) fn recv(&self) -> Result<(FromHusk, Vec<OwnedFd>)> {
        match wire::recv(self.control.as_fd()) {
            Ok(Some((m, fds))) => {
                FromHusk::decode(&m)
                    .map(|msg| (msg, fds))
                    .ok_or_else(|| JailError::Channel {
                        peer: "husk",
                        reason: "undecodable message".into(),
                    })
            }
            Ok(None) => Err(JailError::Channel {
                peer: "husk",
                reason: "the husk exited unexpectedly".into(),
            }),
            Err(e) => Err(JailError::Channel {
                peer: "husk",
                reason: format!("recv: {e}"),
            }),
        }
    }
}

impl Husk {
    /// Start a program in this husk. Returns as soon as the request is handed over; the
    /// [`Cell`] reports whether the program started, and how it ended.
    pub fn start(self, req: StartRequest<'_>) -> Result<Cell> {
        if let (Some(limits), Some(cg)) = (&req.limits, &self.proc.cgroup) {
            cg.set_limits(limits)?;
        }
        let cstr = |b: &[u8], what: &str| {
            CString::new(b).map_err(|_| JailError::Invalid {
                what: what.into(),
                reason: "contains a NUL byte".into(),
            })
        };
        let argv = req
            .argv
            .iter()
            .map(|a| cstr(a.as_bytes(), "argument"))
            .collect::<Result<Vec<_>>>()?;
        let envp = req
            .env
            .iter()
            .map(|(k, v)| {
                if k.is_empty() || k.contains('=') {
                    return Err(JailError::Invalid {
                        what: format!("environment variable {k:?}"),
                        reason: "name must be non-empty and contain no '='".into(),
                    });
                }
                cstr(format!("{k}={v}").as_bytes(), "environment variable")
            })
            .collect::<Result<Vec<_>>>()?;
        let spec = StartSpec {
            argv,
            envp,
            interp: req.program.interp().map(|p| p.to_path_buf()),
        };
        let mut fds = vec![
            req.program.fd().as_raw_fd(),
            req.stdin.as_raw_fd(),
            req.stdout.as_raw_fd(),
            req.stderr.as_raw_fd(),
        ];
        fds.extend(req.fd3.map(|f| f.as_raw_fd()));
        self.proc.send(&ToHusk::Start(spec), &fds)?;
        self.proc.allow_program_exec()?;
        Ok(Cell::new(self.proc))
    }
}

impl Drop for CellProcess {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = pidfd_kill(&self.pidfd);
        if self.reap {
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
        if let Some(c) = &self.cgroup {
            let _ = c.remove();
        }
    }
}

pub(crate) fn pidfd_open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(JailError::last_os(
            Layer::Privileges,
            format!("pidfd_open({pid})"),
        ));
    }
    let fd = i32::try_from(fd).map_err(|_| JailError::Invalid {
        what: "pidfd".into(),
        reason: fd.to_string(),
    })?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// SIGKILL the process behind `pidfd` (no pid-reuse race).
pub(crate) fn pidfd_kill(pidfd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal with a NULL siginfo sends a plain SIGKILL; no memory is read.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn ensure_single_threaded() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| JailError::io("read /proc/self/status", e))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(0);
    if threads != 1 {
        return Err(JailError::Invalid {
            what: "jail process".into(),
            reason: format!(
                "must be single-threaded to clone cells, has {threads} threads (start the jail in a zygote)"
            ),
        });
    }
    Ok(())
}

fn check_seccomp_notify() -> Result<()> {
    let avail = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").map_err(|e| {
        JailError::LayerUnavailable {
            layer: Layer::Seccomp,
            reason: format!("read /proc/sys/kernel/seccomp/actions_avail: {e}"),
        }
    })?;
    if !avail.split_whitespace().any(|a| a == "user_notif") {
        return Err(JailError::LayerUnavailable {
            layer: Layer::Seccomp,
            reason: "the kernel lacks seccomp user notification".into(),
        });
    }
    Ok(())
}
