//! The zygote: a single-threaded fork server that owns a [`Jail`] and makes husks on request.
//!
//! The supervisor calls [`Zygote::start`] before it creates any thread (before its async
//! runtime), because only a single-threaded process can be forked safely. The zygote:
//!
//! * dies with the supervisor (parent-death signal, checked against the original parent
//!   pid so a supervisor that died first is noticed), and its husks die with it;
//! * checks every isolation layer once and reports success or the failing layer, so the
//!   supervisor fails closed at start;
//! * answers each request on its `SOCK_SEQPACKET` channel with one husk: the husk's control
//!   socket and pidfd (passed with `SCM_RIGHTS`), its pid and its cgroup name;
//! * reaps every husk it made (it is their parent), via a signalfd for `SIGCHLD`.
//!
//! The supervisor side, [`Zygote`], is `Sync`: requests are serialised by a mutex.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use crate::cgroup::CgroupDriver;
use crate::error::{JailError, Result};
use crate::jail::{CellProcess, Husk, Jail, CGROUP_GROUP};
use crate::profile::{Limits, Profile};
use crate::wire;

/// The supervisor's handle on its zygote.
#[derive(Debug)]
pub struct Zygote {
    channel: Mutex<OwnedFd>,
    pid: Pid,
    cgroups: Option<CgroupDriver>,
}

const MAKE_HUSK: &[u8] = b"H";

impl Zygote {
    /// Fork the zygote. Must be called while the process is single-threaded. Fails with the
    /// zygote's own error (naming the isolation layer) if it cannot make cells here.
    pub fn start(profile: Profile, limits: Limits) -> Result<Self> {
        let cgroups = if profile.layers.cgroups {
            let d = CgroupDriver::detect(CGROUP_GROUP)?;
            d.sweep_stale();
            Some(d)
        } else {
            None
        };
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| JailError::io("zygote socketpair", e.into()))?;
        let parent = nix::unistd::getpid();
        // SAFETY: the caller guarantees this process is single-threaded (Jail::with_cgroups
        // re-checks it in the child), so the child is a complete copy with no locks held by
        // threads that do not exist there.
        match unsafe { nix::unistd::fork() } {
            Err(e) => Err(JailError::io("fork zygote", e.into())),
            Ok(nix::unistd::ForkResult::Child) => {
                drop(ours);
                zygote_main(parent, theirs, profile, limits, cgroups.clone())
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                drop(theirs);
                let z = Zygote {
                    channel: Mutex::new(ours),
                    pid: child,
                    cgroups,
                };
                let ch = z.channel.lock().expect("fresh mutex");
                let first = wire::recv(ch.as_fd());
                drop(ch);
                match first {
                    Ok(Some((m, _))) if m == b"R" => Ok(z),
                    Ok(Some((m, _))) if m.first() == Some(&b'F') => Err(JailError::Channel {
                        peer: "zygote",
                        reason: String::from_utf8_lossy(&m[1..]).into_owned(),
                    }),
                    other => Err(JailError::Channel {
                        peer: "zygote",
                        reason: format!("zygote did not start: {other:?}"),
                    }),
                }
            }
        }
    }

    /// The cgroup driver the zygote's cells use.
    pub fn cgroups(&self) -> Option<&CgroupDriver> {
        self.cgroups.as_ref()
    }

    /// The zygote's pid.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Ask the zygote for one husk (blocks for the husk's construction, about a millisecond).
    pub fn make_husk(&self) -> Result<Husk> {
        let ch = self.channel.lock().map_err(|_| JailError::Channel {
            peer: "zygote",
            reason: "channel lock poisoned".into(),
        })?;
        let err = |reason: String| JailError::Channel {
            peer: "zygote",
            reason,
        };
        wire::send(ch.as_fd(), MAKE_HUSK, &[]).map_err(|e| err(format!("send: {e}")))?;
        let (m, mut fds) = match wire::recv(ch.as_fd()) {
            Ok(Some(x)) => x,
            Ok(None) => return Err(err("the zygote exited".into())),
            Err(e) => return Err(err(format!("recv: {e}"))),
        };
        drop(ch);
        match m.first() {
            Some(b'K') if m.len() >= 5 && (fds.len() == 2 || fds.len() == 3) => {
                let pid = i32::from_le_bytes(m[1..5].try_into().expect("4 bytes"));
                let name = String::from_utf8_lossy(&m[5..]).into_owned();
                let cgroup = match (&self.cgroups, name.is_empty()) {
                    (Some(d), false) => Some(d.open_cell(&name)?),
                    (None, true) => None,
                    _ => return Err(err("cgroup mismatch between supervisor and zygote".into())),
                };
                let listener = if fds.len() == 3 { fds.pop() } else { None };
                let pidfd = fds.pop().expect("two descriptors");
                let control = fds.pop().expect("two descriptors");
                Ok(Husk {
                    proc: CellProcess {
                        pid: Pid::from_raw(pid),
                        pidfd,
                        control,
                        cgroup,
                        reap: false,
                        armed: true,
                        listener,
                    },
                })
            }
            Some(b'F') => Err(JailError::Start(
                String::from_utf8_lossy(&m[1..]).into_owned(),
            )),
            _ => Err(err("malformed reply".into())),
        }
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        // Closing the channel ends the zygote; its husks die with it (parent-death signal).
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

fn zygote_main(
    parent: Pid,
    channel: OwnedFd,
    profile: Profile,
    limits: Limits,
    cgroups: Option<CgroupDriver>,
) -> ! {
    let ch = channel.as_fd();
    let die = |code: i32| -> ! {
        // SAFETY: _exit ends this forked copy without running the supervisor's destructors.
        unsafe { libc::_exit(code) }
    };
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || nix::unistd::getppid() != parent
    {
        die(1)
    }
    // only the channel survives from the supervisor
    let keep = u32::try_from(ch.as_raw_fd()).unwrap_or(0);
    // SAFETY: closes only this process's descriptors; the channel is outside both ranges.
    unsafe {
        libc::close_range(3, keep.saturating_sub(1).max(3), 0);
    }
    if keep >= 3 {
        // SAFETY: as above.
        unsafe {
            libc::close_range(keep + 1, u32::MAX, 0);
        }
    }
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let sigfd = chld.thread_block().ok().and_then(|_| {
        nix::sys::signalfd::SignalFd::with_flags(
            &chld,
            nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
        )
        .ok()
    });
    let Some(sigfd) = sigfd else { die(1) };
    let jail = match Jail::with_cgroups(profile, limits, cgroups) {
        Ok(j) => j,
        Err(e) => {
            let mut m = b"F".to_vec();
            m.extend_from_slice(e.to_string().as_bytes());
            let _ = wire::send(ch, &m, &[]);
            die(1)
        }
    };
    if wire::send(ch, b"R", &[]).is_err() {
        die(1)
    }
    loop {
        let mut fds = [
            nix::poll::PollFd::new(ch, nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(sigfd.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        if let Err(e) = nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            if e != nix::errno::Errno::EINTR {
                die(1)
            }
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            reap_children();
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            match wire::recv(ch) {
                Ok(Some((m, _))) if m == MAKE_HUSK => {
                    let reply = match jail.make_husk() {
                        Ok(husk) => {
                            let mut m = b"K".to_vec();
                            m.extend_from_slice(&husk.proc.pid.as_raw().to_le_bytes());
                            if let Some(c) = &husk.proc.cgroup {
                                m.extend_from_slice(c.name().as_bytes());
                            }
                            let mut fds =
                                vec![husk.proc.control.as_raw_fd(), husk.proc.pidfd.as_raw_fd()];
                            fds.extend(husk.proc.listener.as_ref().map(|l| l.as_raw_fd()));
                            let sent = wire::send(ch, &m, &fds);
                            if sent.is_ok() {
                                // the supervisor owns the husk now: close our handles without
                                // killing it; its pid is still reaped here
                                husk.proc.disarm();
                                None
                            } else {
                                Some(b"Fsending the husk to the supervisor failed".to_vec())
                            }
                        }
                        Err(e) => {
                            let mut m = b"F".to_vec();
                            m.extend_from_slice(e.to_string().as_bytes());
                            Some(m)
                        }
                    };
                    if let Some(m) = reply {
                        let _ = wire::send(ch, &m, &[]);
                    }
                    reap_children();
                }
                Ok(Some(_)) => {}
                // the supervisor is gone
                Ok(None) | Err(_) => die(0),
            }
        }
    }
}

fn reap_children() {
    loop {
        match nix::sys::wait::waitpid(
            Pid::from_raw(-1),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
