//! Resource limits of the program's process, set just before it starts. They complement the
//! cgroup limits with per-process bounds: no core dumps, bounded file size, few descriptors
//! (the hard `RLIMIT_NOFILE` stays below [`crate::seccomp::PROGRAM_FD`], which is what makes
//! the program's one `execveat` impossible to repeat), no locked memory beyond 64 KiB, no
//! POSIX message queues, no real-time priority. Hard and soft values are equal: the program
//! can only lower them.

use nix::sys::resource::{setrlimit, Resource};

use crate::error::{JailError, Layer, Result};
use crate::profile::Rlimits;

/// The limits applied for `r`, in order (`RLIMIT_NOFILE` last).
pub(crate) fn table(r: &Rlimits) -> [(Resource, u64, &'static str); 8] {
    [
        (Resource::RLIMIT_CORE, 0, "RLIMIT_CORE"),
        (Resource::RLIMIT_FSIZE, r.fsize, "RLIMIT_FSIZE"),
        (Resource::RLIMIT_STACK, r.stack, "RLIMIT_STACK"),
        (Resource::RLIMIT_MEMLOCK, 64 << 10, "RLIMIT_MEMLOCK"),
        (Resource::RLIMIT_MSGQUEUE, 0, "RLIMIT_MSGQUEUE"),
        (Resource::RLIMIT_RTPRIO, 0, "RLIMIT_RTPRIO"),
        (Resource::RLIMIT_SIGPENDING, 4096, "RLIMIT_SIGPENDING"),
        (Resource::RLIMIT_NOFILE, r.nofile, "RLIMIT_NOFILE"),
    ]
}

/// Apply the limits to the calling process.
pub(crate) fn apply(r: &Rlimits) -> Result<()> {
    for (resource, value, name) in table(r) {
        setrlimit(resource, value, value).map_err(|e| {
            JailError::sys(Layer::Rlimits, format!("setrlimit({name}, {value})"), e)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofile_is_last_and_below_the_program_fd() {
        let t = table(&Rlimits::default());
        let (res, v, _) = t[t.len() - 1];
        assert_eq!(res, Resource::RLIMIT_NOFILE);
        assert!(v < crate::seccomp::PROGRAM_FD as u64);
        assert!(t
            .iter()
            .any(|(r, v, _)| *r == Resource::RLIMIT_CORE && *v == 0));
    }
}
