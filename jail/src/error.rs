//! The jail's error type.
//!
//! Every failure names what failed and on what: the isolation layer, the syscall, the path.
//! A missing kernel feature is [`JailError::LayerUnavailable`], never a silent downgrade.

use std::io;
use std::path::PathBuf;

/// One isolation layer of a cell. Used to name what is missing or what failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// user, pid, mount, net, ipc, uts and cgroup namespaces
    Namespaces,
    /// the empty read-only root built with pivot_root
    Filesystem,
    /// the Landlock LSM
    Landlock,
    /// the seccomp-bpf syscall filter
    Seccomp,
    /// memory, pids and CPU cgroups
    Cgroups,
    /// resource limits
    Rlimits,
    /// capabilities, no_new_privs, parent-death signal, new session
    Privileges,
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layer::Namespaces => "namespaces",
            Layer::Filesystem => "filesystem",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
            Layer::Cgroups => "cgroups",
            Layer::Rlimits => "rlimits",
            Layer::Privileges => "privileges",
        })
    }
}

/// Errors of the jail.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// The kernel (or this host's setup) lacks an isolation layer the profile requires.
    #[error("isolation layer {layer} is unavailable: {reason}")]
    LayerUnavailable {
        /// the missing layer
        layer: Layer,
        /// what exactly is missing
        reason: String,
    },
    /// A syscall failed while building or running a cell.
    #[error("{layer}: {call}: {source}")]
    Sys {
        /// the layer being built
        layer: Layer,
        /// the syscall and its main argument, e.g. `mount /usr/lib`
        call: String,
        /// the errno
        #[source]
        source: io::Error,
    },
    /// Reading or writing a cgroup file failed.
    #[error("cgroup {path}: {source}")]
    Cgroup {
        /// the cgroupfs file or directory
        path: PathBuf,
        /// the error
        #[source]
        source: io::Error,
    },
    /// The program handed to the jail is not something it can run.
    #[error("program {path}: {reason}")]
    BadProgram {
        /// where the program was read from
        path: PathBuf,
        /// why it is rejected
        reason: String,
    },
    /// The cell's init reported that starting the program failed.
    #[error("start program in cell: {0}")]
    Start(String),
    /// A configuration value is invalid.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// which setting
        what: String,
        /// why
        reason: String,
    },
    /// Talking to a husk or the zygote failed.
    #[error("{peer} channel: {reason}")]
    Channel {
        /// `husk` or `zygote`
        peer: &'static str,
        /// what went wrong
        reason: String,
    },
    /// Plain I/O error with context.
    #[error("{context}: {source}")]
    Io {
        /// what was being done
        context: String,
        /// the error
        #[source]
        source: io::Error,
    },
}

/// Result alias of the jail.
pub type Result<T, E = JailError> = std::result::Result<T, E>;

impl JailError {
    /// A syscall failure on `layer`, taking errno from the calling thread.
    pub(crate) fn last_os(layer: Layer, call: impl Into<String>) -> Self {
        JailError::Sys {
            layer,
            call: call.into(),
            source: io::Error::last_os_error(),
        }
    }

    /// A syscall failure from an explicit errno.
    pub(crate) fn sys(layer: Layer, call: impl Into<String>, errno: nix::errno::Errno) -> Self {
        JailError::Sys {
            layer,
            call: call.into(),
            source: io::Error::from_raw_os_error(errno as i32),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        JailError::Io {
            context: context.into(),
            source,
        }
    }
}
