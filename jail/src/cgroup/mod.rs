//! The cgroup layer: per-cell memory, pids and CPU limits, accounting, and killing a cell as
//! a group. Two drivers behind one enum:
//!
//! * [`v2::V2`] for pure cgroup v2 (production: a subtree delegated by systemd), and
//! * [`v1::V1`] for v1 controller hierarchies (this project's CI machines use a *hybrid*
//!   layout: v1 memory/pids/cpu/cpuacct/freezer plus a controller-less cgroup2 that still
//!   offers `cgroup.kill`).
//!
//! [`CgroupDriver::detect`] reads `/proc/self/mountinfo` once. Every cgroupfs root is a
//! parameter, so the writers are unit-tested against a fake cgroupfs in a temp dir.
//! A missing controller is a [`JailError::LayerUnavailable`] naming it: never silently unlimited.

pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{JailError, Layer, Result};
use crate::profile::Limits;

/// What the kernel counted for one cell.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CellStats {
    /// processes the OOM killer killed in this cell
    pub oom_kills: u64,
    /// times a fork or clone failed because of the pids limit
    pub pids_limit_hits: u64,
    /// CPU time used, microseconds
    pub cpu_usage_usec: u64,
}

/// How a CPU accounting file reports usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CpuFormat {
    /// v1 `cpuacct.usage`: nanoseconds
    Nanos,
    /// `cpu.stat`: a `usage_usec N` line
    StatUsec,
}

/// An open cgroup CPU accounting file.
#[derive(Debug)]
pub struct CpuMeter {
    file: std::fs::File,
    format: CpuFormat,
}

impl CpuMeter {
    /// CPU time used by the cell so far, microseconds (0 if it cannot be read).
    pub fn usec(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 512];
        let n = self.file.read_at(&mut buf, 0).unwrap_or(0);
        let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
        match self.format {
            CpuFormat::Nanos => text.trim().parse::<u64>().map(|ns| ns / 1000).unwrap_or(0),
            CpuFormat::StatUsec => text
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        }
    }
}

/// The cgroup driver of this host.
#[derive(Debug, Clone)]
pub enum CgroupDriver {
    /// cgroup v1 controller hierarchies (optionally with a cgroup2 mount for `cgroup.kill`)
    V1(v1::V1),
    /// pure cgroup v2
    V2(v2::V2),
}

/// One cell's cgroup(s). Cloning gives another handle on the same directories (to read
/// counters or adjust limits from elsewhere); only the cell's owner removes them.
#[derive(Debug, Clone)]
pub enum CellCgroup {
    /// v1 cell: one directory per hierarchy
    V1(v1::V1Cell),
    /// v2 cell: one directory
    V2(v2::V2Cell),
}

static CELL_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh cell cgroup name, unique on this host: `cell-<pid>-<seq>`.
pub fn next_cell_name() -> String {
    format!(
        "cell-{}-{}",
        std::process::id(),
        CELL_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl CgroupDriver {
    /// Detect the host's cgroup layout and prepare Warren's subtree in it.
    ///
    /// `group` names Warren's directory under the caller's own cgroup (`warren`). On pure v2
    /// running as a systemd service with `Delegate=yes`, the service's own cgroup is used.
    pub fn detect(group: &str) -> Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| JailError::io("read /proc/self/mountinfo", e))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| JailError::io("read /proc/self/cgroup", e))?;
        let mounts = parse_mountinfo(&mountinfo);
        let memberships = parse_proc_cgroup(&own);
        let v1_has = |c: &str| mounts.iter().any(|m| m.controllers.iter().any(|x| x == c));
        if v1_has("memory") || v1_has("pids") {
            v1::V1::from_mounts(&mounts, &memberships, group).map(CgroupDriver::V1)
        } else if let Some(unified) = mounts.iter().find(|m| m.is_v2) {
            let own_path = memberships
                .iter()
                .find(|m| m.hierarchy_id == 0)
                .map(|m| m.path.clone())
                .unwrap_or_else(|| "/".into());
            v2::V2::prepare_on_host(&unified.mount_point, &own_path, group).map(CgroupDriver::V2)
        } else {
            Err(JailError::LayerUnavailable {
                layer: Layer::Cgroups,
                reason: "no cgroup filesystem is mounted".into(),
            })
        }
    }

    /// Create a new, empty cell cgroup named `name`, with `limits` already written.
    pub fn create_cell(&self, name: &str, limits: &Limits) -> Result<CellCgroup> {
        let cell = match self {
            CgroupDriver::V1(d) => CellCgroup::V1(d.create_cell(name)?),
            CgroupDriver::V2(d) => CellCgroup::V2(d.create_cell(name)?),
        };
        if let Err(e) = cell.set_limits(limits) {
            let _ = cell.remove();
            return Err(e);
        }
        Ok(cell)
    }

    /// The cgroup of an existing cell made by another process (the zygote) from this driver.
    pub fn open_cell(&self, name: &str) -> Result<CellCgroup> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(JailError::Invalid {
                what: "cell cgroup name".into(),
                reason: format!("{name:?}"),
            });
        }
        Ok(match self {
            CgroupDriver::V1(d) => CellCgroup::V1(d.cell_paths(name)),
            CgroupDriver::V2(d) => CellCgroup::V2(d.cell_paths(name)),
        })
    }

    /// Remove cell cgroups left behind by supervisors that are gone (killed with SIGKILL, say):
    /// `cell-<pid>-<n>` directories whose `<pid>` no longer runs. Returns how many went.
    pub fn sweep_stale(&self) -> usize {
        let bases = match self {
            CgroupDriver::V1(d) => d.base_dirs(),
            CgroupDriver::V2(d) => vec![d.cells_dir()],
        };
        let mut stale = std::collections::BTreeSet::new();
        for base in &bases {
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let owner = name
                    .strip_prefix("cell-")
                    .and_then(|r| r.split('-').next())
                    .and_then(|p| p.parse::<i32>().ok());
                if let Some(pid) = owner {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        stale.insert(name);
                    }
                }
            }
        }
        stale
            .iter()
            .filter(|name| self.open_cell(name).and_then(|c| c.remove()).is_ok())
            .count()
    }

    /// A one-line description for `doctor` and logs.
    pub fn describe(&self) -> String {
        match self {
            CgroupDriver::V1(d) => d.describe(),
            CgroupDriver::V2(d) => d.describe(),
        }
    }
}

impl CellCgroup {
    /// Write memory, pids and CPU limits.
    pub fn set_limits(&self, limits: &Limits) -> Result<()> {
        match self {
            CellCgroup::V1(c) => c.set_limits(limits),
            CellCgroup::V2(c) => c.set_limits(limits),
        }
    }

    /// Move process `pid` (host pid) into the cell.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        match self {
            CellCgroup::V1(c) => c.add_process(pid),
            CellCgroup::V2(c) => c.add_process(pid),
        }
    }

    /// The cell's name (its directory name in every hierarchy).
    pub fn name(&self) -> String {
        let dirs = match self {
            CellCgroup::V1(c) => c.dirs(),
            CellCgroup::V2(c) => c.dirs(),
        };
        dirs[0]
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Kill every process in the cell.
    pub fn kill(&self) -> Result<()> {
        match self {
            CellCgroup::V1(c) => c.kill(),
            CellCgroup::V2(c) => c.kill(),
        }
    }

    /// The kernel's counters for this cell.
    pub fn stats(&self) -> CellStats {
        match self {
            CellCgroup::V1(c) => c.stats(),
            CellCgroup::V2(c) => c.stats(),
        }
    }

    /// An open handle on the cell's CPU accounting, cheap to read repeatedly (one `pread`).
    pub fn cpu_meter(&self) -> Option<CpuMeter> {
        let (path, format) = match self {
            CellCgroup::V1(c) => c.cpu_usage_file()?,
            CellCgroup::V2(c) => (c.dirs()[0].join("cpu.stat"), CpuFormat::StatUsec),
        };
        let file = std::fs::File::open(path).ok()?;
        Some(CpuMeter { file, format })
    }

    /// The cell's directories (one per v1 hierarchy, one on v2).
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self {
            CellCgroup::V1(c) => c.dirs(),
            CellCgroup::V2(c) => c.dirs(),
        }
    }

    /// Kill what is left and remove the cgroup directories. Waits (briefly) for killed
    /// processes to leave; an error names the directory that could not be removed.
    pub fn remove(&self) -> Result<()> {
        let dirs = match self {
            CellCgroup::V1(c) => c.dirs(),
            CellCgroup::V2(c) => c.dirs(),
        };
        let mut last_err = None;
        for attempt in 0..200 {
            last_err = None;
            for d in &dirs {
                match std::fs::remove_dir(d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => last_err = Some((d.clone(), e)),
                }
            }
            if last_err.is_none() {
                return Ok(());
            }
            if attempt == 0 {
                let _ = self.kill();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (path, source) = last_err.expect("an error was recorded");
        Err(JailError::Cgroup { path, source })
    }
}

/// Write `value` to a cgroup control file.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| JailError::Cgroup {
        path: path.to_path_buf(),
        source,
    })
}

/// Read the value of `key` from a flat-keyed cgroup file (`key value` lines).
pub(crate) fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Create a directory (and parents); an existing one is fine.
pub(crate) fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| JailError::Cgroup {
        path: path.to_path_buf(),
        source,
    })
}

/// A cgroup filesystem mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    pub mount_point: PathBuf,
    pub is_v2: bool,
    /// v1 controllers bound to this hierarchy (from the super options)
    pub controllers: Vec<String>,
}

/// One line of `/proc/self/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    pub hierarchy_id: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

pub(crate) fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    const V1_CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "cpuacct", "freezer"];
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mount_point = pre.split(' ').nth(4)?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let _source = post.next();
            let super_opts = post.next().unwrap_or_default();
            match fstype {
                "cgroup2" => Some(CgroupMount {
                    mount_point: PathBuf::from(mount_point),
                    is_v2: true,
                    controllers: Vec::new(),
                }),
                "cgroup" => Some(CgroupMount {
                    mount_point: PathBuf::from(mount_point),
                    is_v2: false,
                    controllers: super_opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o))
                        .map(str::to_string)
                        .collect(),
                }),
                _ => None,
            }
        })
        .collect()
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let ctrls = parts.next()?;
            let path = parts.next()?.to_string();
            Some(Membership {
                hierarchy_id: id,
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn parses_hybrid_mountinfo() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 7);
        assert!(m
            .iter()
            .any(|x| x.is_v2 && x.mount_point == Path::new("/sys/fs/cgroup/unified")));
        let mem = m.iter().find(|x| x.controllers == ["memory"]).unwrap();
        assert_eq!(mem.mount_point, Path::new("/sys/fs/cgroup/memory"));
        let sysd = m
            .iter()
            .find(|x| x.mount_point.ends_with("systemd"))
            .unwrap();
        assert!(sysd.controllers.is_empty());
    }

    #[test]
    fn parses_proc_cgroup() {
        let m = parse_proc_cgroup(
            "4:memory:/process_api/x\n2:cpu,cpuacct:/\n0::/system.slice/warrend.service\n",
        );
        assert_eq!(m[0].controllers, ["memory"]);
        assert_eq!(m[0].path, "/process_api/x");
        assert_eq!(m[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(m[2].hierarchy_id, 0);
        assert_eq!(m[2].path, "/system.slice/warrend.service");
    }

    #[test]
    fn cell_names_are_unique() {
        assert_ne!(next_cell_name(), next_cell_name());
    }
}
