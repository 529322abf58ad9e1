//! The seccomp-bpf layer: the guest's syscall allowlist, kept as data in
//! `jail/seccomp/policy.json` (one entry per syscall, each with a comment saying who needs it)
//! and compiled with seccompiler.
//!
//! Three filters are stacked; the kernel applies the strictest answer:
//!
//! * `guest`: the allowlist. A call that matches no entry is reported to the supervisor through
//!   a seccomp *user notification*; the supervisor names the syscall and kills the cell
//!   (seccompiler has no user-notify action, so its `trap` return is rewritten to
//!   `SECCOMP_RET_USER_NOTIF` after compiling, see [`SeccompPolicy::compile`]).
//! * `enosys`: `clone3` fails with ENOSYS (its flags live in memory, where a filter cannot
//!   check them; libc then falls back to `clone`, whose flags are checked).
//! * `eafnosupport`: `socket`/`socketpair` of any family but `AF_UNIX` fail with EAFNOSUPPORT.
//!
//! The filter's architecture check kills the process for any non-x86_64 ABI (i386 `int 0x80`);
//! x32 syscall numbers match no allowlist entry. `execve` and `execveat` are not on the
//! allowlist either: the one exec that starts the program is let through by the supervisor,
//! which answers that single notification with "continue" ([`allow_program_exec`]) after
//! checking it executes [`PROGRAM_FD`]; any later exec is a violation that kills the cell.
//!
//! This module must never install a filter in a process that still has work to do for the
//! supervisor: installing is the last step before exec.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use seccompiler::{BpfProgram, TargetArch};

use crate::error::{JailError, Layer, Result};

/// The descriptor number the program is executed from. Kept above the guest's hard
/// `RLIMIT_NOFILE` so the guest can never hold a descriptor with this number.
pub const PROGRAM_FD: RawFd = 1000;

/// The policy as shipped, compiled into the binary.
const POLICY_JSON: &str = include_str!("../seccomp/policy.json");

const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;

/// The compiled filters, ready to install (compiled once, installed per program).
#[derive(Debug, Clone)]
pub struct SeccompPolicy {
    errno_filters: Vec<BpfProgram>,
    guest: BpfProgram,
}

impl SeccompPolicy {
    /// Compile the shipped policy for this machine's architecture.
    pub fn compile() -> Result<Self> {
        Self::compile_json(POLICY_JSON)
    }

    fn compile_json(json: &str) -> Result<Self> {
        let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| {
            JailError::LayerUnavailable {
                layer: Layer::Seccomp,
                reason: format!("architecture {}: {e}", std::env::consts::ARCH),
            }
        })?;
        let mut map = seccompiler::compile_from_json(json.as_bytes(), arch).map_err(|e| {
            JailError::Invalid {
                what: "seccomp policy".into(),
                reason: e.to_string(),
            }
        })?;
        let mut take = |name: &str| {
            map.remove(name).ok_or_else(|| JailError::Invalid {
                what: "seccomp policy".into(),
                reason: format!("filter {name:?} missing"),
            })
        };
        let mut guest = take("guest")?;
        let errno_filters = vec![take("enosys")?, take("eafnosupport")?];
        let mut rewritten = 0;
        for insn in guest.iter_mut() {
            if insn.code == BPF_RET_K && insn.k == SECCOMP_RET_TRAP {
                insn.k = libc::SECCOMP_RET_USER_NOTIF;
                rewritten += 1;
            }
        }
        if rewritten == 0 {
            return Err(JailError::Invalid {
                what: "seccomp policy".into(),
                reason: "the guest filter has no mismatch return to turn into a notification"
                    .into(),
            });
        }
        Ok(SeccompPolicy {
            errno_filters,
            guest,
        })
    }

    /// Install the filters on the calling thread and return the user-notification listener.
    ///
    /// The caller must have set no_new_privs and must be single-threaded.
    pub fn install(&self) -> Result<OwnedFd> {
        for prog in &self.errno_filters {
            install_filter(prog, 0)?;
        }
        let fd = install_filter(&self.guest, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
        // SAFETY: with FLAG_NEW_LISTENER a successful seccomp(2) returns a new descriptor that
        // nothing else owns; we take ownership of it exactly once.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn install_filter(prog: &BpfProgram, flags: libc::c_ulong) -> Result<RawFd> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| JailError::Invalid {
            what: "seccomp policy".into(),
            reason: "filter longer than 65535 instructions".into(),
        })?,
        // seccompiler's sock_filter is layout-compatible with the kernel's (u16, u8, u8, u32).
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel copies the program
    // before returning and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(JailError::last_os(
            Layer::Seccomp,
            "seccomp(SET_MODE_FILTER)",
        ));
    }
    RawFd::try_from(rc).map_err(|_| JailError::Invalid {
        what: "seccomp listener".into(),
        reason: format!("kernel returned {rc}"),
    })
}

/// One denied syscall, as reported by the kernel to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// syscall number
    pub nr: i32,
    /// the syscall's name, or `syscall_N` when unknown
    pub name: String,
}

/// Receive one notification from a cell's listener. Blocks unless the caller has polled the
/// descriptor readable first. `Ok(None)` means the notification vanished (the process died
/// between the poll and the read).
fn receive(listener: &OwnedFd) -> Result<Option<libc::seccomp_notif>> {
    // SAFETY: seccomp_notif is plain old data; all-zero is the state the kernel requires.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one `seccomp_notif` into the struct we pass, which is live
    // and correctly sized for SECCOMP_IOCTL_NOTIF_RECV.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut notif as *mut libc::seccomp_notif,
        )
    };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EINTR) => Ok(None),
            _ => Err(JailError::Sys {
                layer: Layer::Seccomp,
                call: "ioctl(SECCOMP_IOCTL_NOTIF_RECV)".into(),
                source: err,
            }),
        };
    }
    Ok(Some(notif))
}

/// Receive one denied syscall from a cell's listener (see [`receive`] for `Ok(None)`).
pub fn receive_violation(listener: &OwnedFd) -> Result<Option<Violation>> {
    Ok(receive(listener)?.map(|n| Violation {
        nr: n.data.nr,
        name: syscall_name(n.data.nr),
    }))
}

/// Answer the first notification of a cell that is about to start its program: it must be
/// `execveat(PROGRAM_FD, "", .., .., AT_EMPTY_PATH)` from the cell's own start code (the
/// program cannot run before this exec, so nothing else can be first). Anything else is
/// returned as a violation for the caller to kill the cell.
pub fn allow_program_exec(listener: &OwnedFd) -> Result<std::result::Result<(), Violation>> {
    let notif = receive(listener)?
        .ok_or_else(|| JailError::Start("the cell died before its program was executed".into()))?;
    let nr = notif.data.nr;
    // int arguments: the kernel looks at the low 32 bits only
    let low = |a: u64| a & 0xffff_ffff;
    let is_program_exec = i64::from(nr) == libc::SYS_execveat
        && low(notif.data.args[0]) == u64::from(PROGRAM_FD.unsigned_abs())
        && low(notif.data.args[4]) == u64::from(libc::AT_EMPTY_PATH.unsigned_abs());
    if !is_program_exec {
        return Ok(Err(Violation {
            nr,
            name: syscall_name(nr),
        }));
    }
    let resp = libc::seccomp_notif_resp {
        id: notif.id,
        val: 0,
        error: 0,
        flags: u32::try_from(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE).expect("flag fits in u32"),
    };
    // SAFETY: the ioctl reads one `seccomp_notif_resp` from the live, correctly sized struct.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &resp as *const libc::seccomp_notif_resp,
        )
    };
    if rc < 0 {
        return Err(JailError::last_os(
            Layer::Seccomp,
            "ioctl(SECCOMP_IOCTL_NOTIF_SEND)",
        ));
    }
    Ok(Ok(()))
}

/// The name of an x86_64 syscall number (`ptrace`), or `syscall_N` when unknown.
pub fn syscall_name(nr: i32) -> String {
    const X32_BIT: i32 = 0x4000_0000;
    if nr & X32_BIT != 0 {
        return format!("x32 syscall {}", nr & !X32_BIT);
    }
    match usize::try_from(nr) {
        Ok(n) => match syscalls::Sysno::new(n) {
            Some(s) => s.name().to_string(),
            None => format!("syscall_{nr}"),
        },
        Err(_) => format!("syscall_{nr}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policy_compiles_and_notifies_on_mismatch() {
        let p = SeccompPolicy::compile().expect("policy compiles");
        assert!(p
            .guest
            .iter()
            .any(|i| i.code == BPF_RET_K && i.k == libc::SECCOMP_RET_USER_NOTIF));
        assert!(!p
            .guest
            .iter()
            .any(|i| i.code == BPF_RET_K && i.k == SECCOMP_RET_TRAP));
        assert_eq!(p.errno_filters.len(), 2);
    }

    #[test]
    fn every_rule_has_a_comment_and_dangerous_calls_are_absent() {
        let v: serde_json::Value = serde_json::from_str(POLICY_JSON).expect("policy is JSON");
        let rules = v["guest"]["filter"].as_array().expect("guest rules");
        assert!(rules.len() > 100);
        let names: Vec<&str> = rules
            .iter()
            .map(|r| r["syscall"].as_str().expect("syscall name"))
            .collect();
        for r in rules {
            assert!(
                r["comment"].as_str().is_some_and(|c| !c.is_empty()),
                "allowlist entry {r} has no comment"
            );
        }
        for forbidden in [
            "execve",
            "ptrace",
            "mount",
            "umount2",
            "unshare",
            "setns",
            "chroot",
            "pivot_root",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "io_uring_setup",
            "keyctl",
            "add_key",
            "request_key",
            "open_by_handle_at",
            "name_to_handle_at",
            "seccomp",
            "process_vm_readv",
            "process_vm_writev",
            "clone3",
            "kexec_load",
            "init_module",
            "finit_module",
            "reboot",
            "personality",
            "mknod",
            "mknodat",
            "sync",
            "landlock_restrict_self",
            "pidfd_getfd",
            "kcmp",
            "open_tree",
            "move_mount",
            "fsopen",
        ] {
            assert!(
                !names.contains(&forbidden),
                "{forbidden} must not be on the allowlist"
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(syscall_name(101), "ptrace");
        assert_eq!(syscall_name(59), "execve");
        assert_eq!(syscall_name(0x4000_0000 | 59), "x32 syscall 59");
        assert_eq!(syscall_name(99_999), "syscall_99999");
    }

    #[test]
    fn a_policy_without_a_trap_is_rejected() {
        let json = r#"{"guest":{"mismatch_action":"kill_process","match_action":"allow","filter":[{"syscall":"read"}]},
            "enosys":{"mismatch_action":"allow","match_action":{"errno":38},"filter":[{"syscall":"clone3"}]},
            "eafnosupport":{"mismatch_action":"allow","match_action":{"errno":97},"filter":[{"syscall":"socket"}]}}"#;
        assert!(SeccompPolicy::compile_json(json).is_err());
    }
}
