//! `warren-jail`: fail-closed cells for untrusted native programs.
//!
//! A *cell* is a process tree in its own user, pid, mount, ipc, uts and cgroup namespaces,
//! sharing one empty network namespace with other cells, on an empty read-only root with only
//! the system library directories, three device nodes and an optional small `/tmp`, under
//! Landlock, a seccomp allowlist, cgroup limits and rlimits, with no capabilities.
//!
//! * [`Jail`] checks every layer once and makes [`Husk`]s: cells built ahead of time, waiting
//!   for a program.
//! * [`Husk::start`] hands a [`Program`] (a sealed memfd, never a host path) to a husk;
//!   the [`Cell`] reports how it ended ([`Outcome`]).
//! * [`zygote`] runs a `Jail` in a single-threaded fork server; [`pool::HuskPool`] keeps a
//!   bounded number of husks warm.
//! * [`doctor`] reports which layers this kernel offers.
//!
//! The setup order is documented step by step in [`husk`], [`rootfs`] and `docs/jail.md`.

pub mod cell;
pub mod cgroup;
pub mod doctor;
pub mod error;
pub mod husk;
mod jail;
pub mod landlock_rules;
pub mod pool;
pub mod privileges;
pub mod profile;
pub mod program;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod units;
mod wire;
pub mod zygote;

pub use cell::{Cell, KillHandle, KillReason, Outcome, Termination};
pub use error::{JailError, Layer, Result};
pub use jail::{Husk, Jail, StartRequest, CGROUP_GROUP};
pub use profile::{Bind, Layers, Limits, Profile, Rlimits};
pub use program::Program;
