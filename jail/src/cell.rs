//! A running program in its cell: wait for it with an optional timeout, watch its seccomp
//! listener, kill it, and say exactly why it ended.
//!
//! A denied syscall arrives as a seccomp user notification on the listener the program's
//! process sent before exec; the cell is killed at once and the outcome names the syscall.
//! By convention such an end is reported as death by `SIGSYS` (exit code 159), like the
//! kernel's own seccomp kill, although the supervisor kills with SIGKILL.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::cgroup::CellStats;
use crate::error::{JailError, Result};
use crate::jail::{pidfd_kill, CellProcess};
use crate::seccomp::receive_violation;
use crate::units::format_duration;
use crate::wire::FromHusk;

/// Why the supervisor (or the kernel, on its behalf) ended a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillReason {
    /// the wall-clock timeout passed
    Timeout(Duration),
    /// the memory cgroup's OOM killer ended the program
    MemoryLimit,
    /// the program made a syscall outside the policy
    Seccomp(String),
    /// the caller asked for it
    Requested,
    /// the cell's init vanished without reporting (killed from outside)
    InitLost,
}

impl std::fmt::Display for KillReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KillReason::Timeout(d) => write!(f, "timeout after {}", format_duration(*d)),
            KillReason::MemoryLimit => f.write_str("memory limit reached (out of memory)"),
            KillReason::Seccomp(name) => write!(f, "seccomp violation: {name}"),
            KillReason::Requested => f.write_str("killed on request"),
            KillReason::InitLost => f.write_str("cell init was killed"),
        }
    }
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// it exited with this code
    Exited(i32),
    /// it was killed by this signal
    Signaled(i32),
}

/// The end of a program, with the cell's accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// how it ended
    pub termination: Termination,
    /// why the supervisor or kernel ended it, if it did
    pub reason: Option<KillReason>,
    /// cgroup counters at the end
    pub stats: CellStats,
    /// wall time from start to end
    pub wall: Duration,
}

impl Outcome {
    /// Shell-style exit code: the program's own, or 128 + signal.
    pub fn exit_code(&self) -> i32 {
        match self.termination {
            Termination::Exited(c) => c,
            Termination::Signaled(s) => 128 + s,
        }
    }

    /// One line saying why the cell ended, when it did not simply exit.
    pub fn describe(&self) -> Option<String> {
        match (&self.reason, self.termination) {
            (Some(r), _) => Some(format!("cell killed: {r}")),
            (None, Termination::Signaled(s)) => Some(format!(
                "program killed by signal {}",
                Signal::try_from(s)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| s.to_string())
            )),
            (None, Termination::Exited(_)) => None,
        }
    }
}

/// Kills a cell from any thread: SIGKILL to the cell's init through its pidfd, which ends
/// the cell's pid namespace and with it every process of the cell.
#[derive(Debug)]
pub struct KillHandle {
    pidfd: OwnedFd,
}

impl KillHandle {
    /// Kill the cell now (a cell that already ended is not an error).
    pub fn kill(&self) {
        let _ = pidfd_kill(&self.pidfd);
    }
}

/// A program running in its cell.
#[derive(Debug)]
pub struct Cell {
    proc: CellProcess,
    listener: Option<OwnedFd>,
    started: bool,
    reason: Option<KillReason>,
    outcome: Option<Outcome>,
    since: Instant,
}

impl Cell {
    pub(crate) fn new(mut proc: CellProcess) -> Self {
        Cell {
            listener: proc.listener.take(),
            proc,
            started: false,
            reason: None,
            outcome: None,
            since: Instant::now(),
        }
    }

    /// Host pid of the cell's init.
    pub fn pid(&self) -> i32 {
        self.proc.pid.as_raw()
    }

    /// Kill the whole cell now, recording `reason` (the first reason recorded wins).
    pub fn kill(&mut self, reason: KillReason) {
        if self.reason.is_none() {
            self.reason = Some(reason);
        }
        let _ = pidfd_kill(&self.proc.pidfd);
        if let Some(c) = &self.proc.cgroup {
            let _ = c.kill();
        }
    }

    /// A handle that kills this cell from another thread (the cell itself may be waited on
    /// elsewhere).
    pub fn kill_handle(&self) -> Result<KillHandle> {
        let pidfd = self
            .proc
            .pidfd
            .try_clone()
            .map_err(|e| JailError::io("duplicate cell pidfd", e))?;
        Ok(KillHandle { pidfd })
    }

    /// The cell's cgroup (none when the cgroup layer is off).
    pub fn cgroup(&self) -> Option<&crate::cgroup::CellCgroup> {
        self.proc.cgroup.as_ref()
    }

    /// The cell's cgroup counters so far.
    pub fn stats(&self) -> CellStats {
        self.proc
            .cgroup
            .as_ref()
            .map(|c| c.stats())
            .unwrap_or_default()
    }

    /// Wait until the program has started (`Ok`) or failed to start (`Err`).
    pub fn wait_started(&mut self) -> Result<()> {
        while !self.started && self.outcome.is_none() {
            self.step(None, None)?;
        }
        Ok(())
    }

    /// Wait for the program to end, killing the cell if `timeout` passes first.
    /// A program that could not be started is an `Err` naming why.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Outcome> {
        Ok(self
            .wait_inner(timeout, None)?
            .expect("no interrupt descriptor, so the wait only ends with an outcome"))
    }

    /// Like [`Cell::wait`], but return `Ok(None)` as soon as `interrupt` becomes readable
    /// (a signalfd, say), leaving the cell running.
    pub fn wait_or_interrupt(
        &mut self,
        timeout: Option<Duration>,
        interrupt: BorrowedFd<'_>,
    ) -> Result<Option<Outcome>> {
        self.wait_inner(timeout, Some(interrupt))
    }

    fn wait_inner(
        &mut self,
        timeout: Option<Duration>,
        interrupt: Option<BorrowedFd<'_>>,
    ) -> Result<Option<Outcome>> {
        let deadline = timeout.map(|t| (self.since + t, t));
        loop {
            if let Some(o) = &self.outcome {
                return Ok(Some(o.clone()));
            }
            let remaining = match deadline {
                Some((at, t)) if self.reason.is_none() => {
                    let now = Instant::now();
                    if now >= at {
                        self.kill(KillReason::Timeout(t));
                        continue;
                    }
                    Some(at - now)
                }
                _ => None,
            };
            if self.step(remaining, interrupt)? {
                return Ok(None);
            }
        }
    }

    /// Poll the control socket, the seccomp listener and `interrupt` once; true when
    /// `interrupt` is readable.
    fn step(
        &mut self,
        timeout: Option<Duration>,
        interrupt: Option<BorrowedFd<'_>>,
    ) -> Result<bool> {
        let (ctl_ready, listener_ready, interrupted) = {
            let mut fds = vec![PollFd::new(self.proc.control.as_fd(), PollFlags::POLLIN)];
            if let Some(i) = interrupt {
                fds.push(PollFd::new(i, PollFlags::POLLIN));
            }
            if let Some(l) = &self.listener {
                fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            }
            let t = match timeout {
                None => PollTimeout::NONE,
                Some(d) => PollTimeout::try_from(d.as_millis().clamp(1, 60_000) as i32)
                    .unwrap_or(PollTimeout::MAX),
            };
            match poll(&mut fds, t) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(false),
                Ok(_) => {}
                Err(e) => {
                    return Err(JailError::Channel {
                        peer: "husk",
                        reason: format!("poll: {e}"),
                    })
                }
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            let interrupted = interrupt.is_some() && ready(&fds[1]);
            let l = if interrupt.is_some() { 2 } else { 1 };
            (
                ready(&fds[0]),
                fds.get(l).map(ready).unwrap_or(false),
                interrupted,
            )
        };
        if interrupted {
            return Ok(true);
        }
        if listener_ready {
            let listener = self.listener.as_ref().expect("polled listener exists");
            match receive_violation(listener) {
                Ok(Some(v)) => self.kill(KillReason::Seccomp(v.name)),
                // the filter's processes are gone (POLLHUP) or the notification vanished
                Ok(None) | Err(_) => self.listener = None,
            }
        }
        if ctl_ready {
            match crate::wire::recv(self.proc.control.as_fd()) {
                Ok(Some((m, _))) => match FromHusk::decode(&m) {
                    Some(FromHusk::Started) => self.started = true,
                    Some(FromHusk::Failed(msg)) => {
                        self.kill(KillReason::Requested);
                        return Err(JailError::Start(msg));
                    }
                    Some(FromHusk::Exited(status)) => self.finish(Some(status)),
                    _ => {
                        self.kill(KillReason::InitLost);
                        return Err(JailError::Channel {
                            peer: "husk",
                            reason: "unexpected message from cell init".into(),
                        });
                    }
                },
                Ok(None) | Err(_) => self.finish(None),
            }
        }
        Ok(false)
    }

    fn finish(&mut self, status: Option<i32>) {
        if status.is_none() && self.reason.is_none() {
            self.reason = Some(KillReason::InitLost);
        }
        // Nothing of the cell outlives its program: after reporting, the init exits, which ends
        // its pid namespace; without a report it is gone already. The kill makes sure.
        let _ = pidfd_kill(&self.proc.pidfd);
        let stats = self.stats();
        let mut termination = match status {
            Some(s) if libc::WIFEXITED(s) => Termination::Exited(libc::WEXITSTATUS(s)),
            Some(s) if libc::WIFSIGNALED(s) => Termination::Signaled(libc::WTERMSIG(s)),
            _ => Termination::Signaled(libc::SIGKILL),
        };
        if termination == Termination::Signaled(libc::SIGKILL)
            && stats.oom_kills > 0
            && matches!(self.reason, None | Some(KillReason::InitLost))
        {
            self.reason = Some(KillReason::MemoryLimit);
        }
        if matches!(self.reason, Some(KillReason::Seccomp(_))) {
            termination = Termination::Signaled(libc::SIGSYS);
        } else if matches!(self.reason, Some(KillReason::Timeout(_))) {
            termination = Termination::Signaled(libc::SIGKILL);
        }
        self.outcome = Some(Outcome {
            termination,
            reason: self.reason.clone(),
            stats,
            wall: self.since.elapsed(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(termination: Termination, reason: Option<KillReason>) -> Outcome {
        Outcome {
            termination,
            reason,
            stats: CellStats::default(),
            wall: Duration::ZERO,
        }
    }

    #[test]
    fn exit_codes_and_lines() {
        let o = outcome(Termination::Exited(42), None);
        assert_eq!(o.exit_code(), 42);
        assert_eq!(o.describe(), None);
        let o = outcome(Termination::Signaled(11), None);
        assert_eq!(o.exit_code(), 139);
        assert_eq!(o.describe().unwrap(), "program killed by signal SIGSEGV");
        let o = outcome(
            Termination::Signaled(31),
            Some(KillReason::Seccomp("ptrace".into())),
        );
        assert_eq!(o.exit_code(), 159);
        assert_eq!(
            o.describe().unwrap(),
            "cell killed: seccomp violation: ptrace"
        );
        let o = outcome(
            Termination::Signaled(9),
            Some(KillReason::Timeout(Duration::from_secs(1))),
        );
        assert_eq!(o.describe().unwrap(), "cell killed: timeout after 1s");
    }
}
