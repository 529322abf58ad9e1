//! What a cell looks like: its [`Profile`] (filesystem view, identity, which layers are on)
//! and its [`Limits`] (memory, pids, CPU). The defaults are the daemon's profile; every
//! isolation layer is on unless the caller turns it off explicitly.

use std::path::{Path, PathBuf};

use crate::error::{JailError, Result};

/// Host directories that hold the system's shared libraries. Bound read-only into every cell
/// (when they exist) so dynamically linked programs run; symlinks among them (Debian's
/// merged `/usr`: `/lib -> usr/lib`) are recreated as the same symlinks.
pub const DEFAULT_LIB_DIRS: &[&str] = &["/lib", "/lib64", "/usr/lib", "/usr/lib64"];

/// The host uid and gid a cell's uid/gid 0 maps to by default: an id no account owns, so no
/// host process shares it (a host process with the cell's uid would own its user namespace).
pub const DEFAULT_HOST_ID: u32 = 2_147_000_000;

/// A read-only bind of a host path into the cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// path on the host
    pub host: PathBuf,
    /// absolute path inside the cell
    pub cell: PathBuf,
}

impl Bind {
    /// Parse `HOST:CELL` (both absolute; `CELL` must not be `/` or contain `..`).
    pub fn parse(spec: &str) -> Result<Self> {
        let invalid = |reason: &str| JailError::Invalid {
            what: format!("bind {spec:?}"),
            reason: reason.to_string(),
        };
        let (host, cell) = spec
            .split_once(':')
            .ok_or_else(|| invalid("expected HOST:CELL"))?;
        let bind = Bind {
            host: PathBuf::from(host),
            cell: PathBuf::from(cell),
        };
        bind.validate().map_err(|e| invalid(&e))?;
        Ok(bind)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if !self.host.is_absolute() || !self.cell.is_absolute() {
            return Err("both paths must be absolute".into());
        }
        if self.cell == Path::new("/") {
            return Err("cannot bind over the cell's root".into());
        }
        if self
            .cell
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err("cell path must not contain ..".into());
        }
        if self.cell.starts_with("/dev") || self.cell.starts_with("/tmp") {
            return Err("cell path must not be under /dev or /tmp".into());
        }
        Ok(())
    }
}

/// Which optional layers are enforced. All on by default; turning one off is an explicit,
/// logged weakening of the profile. Namespaces, the private root, privileges and rlimits
/// cannot be turned off: without them there is no cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// Landlock filesystem, network and scope rules
    pub landlock: bool,
    /// the seccomp syscall filter
    pub seccomp: bool,
    /// memory, pids and CPU cgroups
    pub cgroups: bool,
}

impl Default for Layers {
    fn default() -> Self {
        Layers {
            landlock: true,
            seccomp: true,
            cgroups: true,
        }
    }
}

/// Resource limits of one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// memory limit in bytes (no swap on top)
    pub memory: u64,
    /// maximum number of tasks (processes and threads)
    pub pids: u64,
    /// CPU bandwidth in CPUs (0.5 = half of one CPU)
    pub cpu: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 256 << 20,
            pids: 64,
            cpu: 1.0,
        }
    }
}

/// Per-process resource limits set in the cell before the program starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimits {
    /// largest file the program may write (RLIMIT_FSIZE), bytes
    pub fsize: u64,
    /// open descriptors (RLIMIT_NOFILE); must stay below [`crate::seccomp::PROGRAM_FD`]
    pub nofile: u64,
    /// stack size (RLIMIT_STACK), bytes
    pub stack: u64,
}

impl Default for Rlimits {
    fn default() -> Self {
        Rlimits {
            fsize: 1 << 30,
            nofile: 256,
            stack: 8 << 20,
        }
    }
}

/// Everything about a cell that is decided before a program is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// host library directories bound read-only (see [`DEFAULT_LIB_DIRS`])
    pub lib_dirs: Vec<PathBuf>,
    /// size of the cell's private `/tmp` (tmpfs, noexec), or none for no `/tmp`
    pub tmp_size: Option<u64>,
    /// extra read-only binds
    pub ro_binds: Vec<Bind>,
    /// host uid the cell's uid 0 maps to
    pub host_uid: u32,
    /// host gid the cell's gid 0 maps to
    pub host_gid: u32,
    /// the cell's hostname
    pub hostname: String,
    /// optional layers
    pub layers: Layers,
    /// per-process limits
    pub rlimits: Rlimits,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            lib_dirs: DEFAULT_LIB_DIRS.iter().map(PathBuf::from).collect(),
            tmp_size: None,
            ro_binds: Vec::new(),
            host_uid: DEFAULT_HOST_ID,
            host_gid: DEFAULT_HOST_ID,
            hostname: "cell".into(),
            layers: Layers::default(),
            rlimits: Rlimits::default(),
        }
    }
}

impl Profile {
    /// Check the profile before any process is made from it.
    pub fn validate(&self) -> Result<()> {
        for b in &self.ro_binds {
            b.validate().map_err(|reason| JailError::Invalid {
                what: format!("bind {}:{}", b.host.display(), b.cell.display()),
                reason,
            })?;
            if !b.host.exists() {
                return Err(JailError::Invalid {
                    what: format!("bind {}:{}", b.host.display(), b.cell.display()),
                    reason: format!("host path {} does not exist", b.host.display()),
                });
            }
        }
        if self.host_uid == 0 || self.host_gid == 0 {
            return Err(JailError::Invalid {
                what: "host id".into(),
                reason: "a cell must not map to host root".into(),
            });
        }
        if self.rlimits.nofile >= crate::seccomp::PROGRAM_FD as u64 || self.rlimits.nofile < 8 {
            return Err(JailError::Invalid {
                what: "rlimit nofile".into(),
                reason: format!(
                    "must be between 8 and {} (the program descriptor)",
                    crate::seccomp::PROGRAM_FD - 1
                ),
            });
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return Err(JailError::Invalid {
                what: "hostname".into(),
                reason: "must be 1 to 64 bytes".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_strictly() {
        let b = Bind::parse("/srv/data:/data").unwrap();
        assert_eq!(b.host, PathBuf::from("/srv/data"));
        assert_eq!(b.cell, PathBuf::from("/data"));
        for bad in [
            "/a",
            "rel:/x",
            "/a:rel",
            "/a:/",
            "/a:/x/../etc",
            "/a:/dev/x",
            "/a:/tmp",
        ] {
            assert!(Bind::parse(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn default_profile_is_valid_and_never_root() {
        Profile::default().validate().unwrap();
        let p = Profile {
            host_uid: 0,
            ..Profile::default()
        };
        assert!(p.validate().is_err());
        let p = Profile {
            rlimits: Rlimits {
                nofile: 5000,
                ..Rlimits::default()
            },
            ..Profile::default()
        };
        assert!(p.validate().is_err());
    }
}
