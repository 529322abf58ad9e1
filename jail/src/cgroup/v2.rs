//! cgroup v2 driver, for production hosts: Warren's cells live in one subtree
//! (`<base>/cells/<cell>`) where the memory, pids and cpu controllers are enabled.
//!
//! Under systemd with `Delegate=yes` the base is the service's own cgroup. The no-internal-
//! processes rule forbids enabling controllers for children of a cgroup that holds processes,
//! so [`V2::prepare_on_host`] first moves the supervisor itself into `<base>/supervisor`.
//! Elsewhere (root, no delegation) the base is `<mount>/<group>`.

use std::path::{Path, PathBuf};

use super::{mkdir, read_key, write, CellStats};
use crate::error::{JailError, Layer, Result};
use crate::profile::Limits;

const CPU_PERIOD_US: u64 = 100_000;
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// Warren's v2 subtree.
#[derive(Debug, Clone)]
pub struct V2 {
    cells: PathBuf,
}

/// One cell's directory.
#[derive(Debug, Clone)]
pub struct V2Cell {
    dir: PathBuf,
}

impl V2 {
    /// Prepare the subtree on a real host (see the module doc for where it goes).
    pub(crate) fn prepare_on_host(mount: &Path, own: &str, group: &str) -> Result<Self> {
        let own_dir = mount.join(own.trim_start_matches('/'));
        let delegated = own != "/" && own.ends_with(".service") && is_writable(&own_dir);
        let base = if delegated {
            let supervisor = own_dir.join("supervisor");
            mkdir(&supervisor)?;
            // Move every process of the service (at this point: the supervisor and the zygote,
            // if already forked) into the leaf so the service cgroup may delegate controllers.
            let procs = std::fs::read_to_string(own_dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter(|l| !l.trim().is_empty()) {
                write(&supervisor.join("cgroup.procs"), pid.trim())?;
            }
            own_dir
        } else {
            mount.join(group)
        };
        Self::with_base(&base)
    }

    /// Use `base` as Warren's subtree root (tests point this at a fake cgroupfs). Enables the
    /// memory, pids and cpu controllers for `base` and `base/cells`; a controller missing from
    /// `cgroup.controllers` is an error naming it.
    pub fn with_base(base: &Path) -> Result<Self> {
        mkdir(base)?;
        enable_controllers(base)?;
        let cells = base.join("cells");
        mkdir(&cells)?;
        enable_controllers(&cells)?;
        Ok(V2 { cells })
    }

    pub(crate) fn cells_dir(&self) -> PathBuf {
        self.cells.clone()
    }

    pub(crate) fn cell_paths(&self, name: &str) -> V2Cell {
        V2Cell {
            dir: self.cells.join(name),
        }
    }

    pub(crate) fn create_cell(&self, name: &str) -> Result<V2Cell> {
        let dir = self.cells.join(name);
        std::fs::create_dir(&dir).map_err(|source| JailError::Cgroup {
            path: dir.clone(),
            source,
        })?;
        Ok(V2Cell { dir })
    }

    pub(crate) fn describe(&self) -> String {
        format!("cgroup v2 ({})", self.cells.display())
    }
}

fn is_writable(dir: &Path) -> bool {
    nix::unistd::access(
        &dir.join("cgroup.subtree_control"),
        nix::unistd::AccessFlags::W_OK,
    )
    .is_ok()
}

fn enable_controllers(dir: &Path) -> Result<()> {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).map_err(|source| {
        JailError::Cgroup {
            path: dir.join("cgroup.controllers"),
            source,
        }
    })?;
    let available: Vec<&str> = available.split_whitespace().collect();
    for c in CONTROLLERS {
        if !available.contains(&c) {
            return Err(JailError::LayerUnavailable {
                layer: Layer::Cgroups,
                reason: format!(
                    "the cgroup v2 {c} controller is not available in {} (delegate it, e.g. systemd Delegate=yes)",
                    dir.display()
                ),
            });
        }
    }
    write(&dir.join("cgroup.subtree_control"), "+memory +pids +cpu")
}

impl V2Cell {
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    pub(crate) fn set_limits(&self, l: &Limits) -> Result<()> {
        write(&self.dir.join("memory.max"), &l.memory.to_string())?;
        let swap = self.dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, "0")?;
        }
        write(&self.dir.join("pids.max"), &l.pids.to_string())?;
        write(
            &self.dir.join("cpu.max"),
            &format!("{} {CPU_PERIOD_US}", super::v1::cpu_quota_us(l.cpu)),
        )
    }

    pub(crate) fn add_process(&self, pid: i32) -> Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    pub(crate) fn kill(&self) -> Result<()> {
        write(&self.dir.join("cgroup.kill"), "1")
    }

    pub(crate) fn stats(&self) -> CellStats {
        CellStats {
            oom_kills: read_key(&self.dir.join("memory.events"), "oom_kill").unwrap_or(0),
            pids_limit_hits: read_key(&self.dir.join("pids.events"), "max").unwrap_or(0),
            cpu_usage_usec: read_key(&self.dir.join("cpu.stat"), "usage_usec").unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroupfs root offering `controllers`, as the kernel would show them.
    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), controllers).unwrap();
        t
    }

    #[test]
    fn enables_controllers_and_writes_limits() {
        let t = fake_root("cpuset cpu io memory hugetlb pids rdma misc\n");
        // the kernel fills a new child's cgroup.controllers from the parent's subtree_control
        std::fs::create_dir(t.path().join("cells")).unwrap();
        std::fs::write(t.path().join("cells/cgroup.controllers"), "cpu memory pids").unwrap();
        let d = V2::with_base(t.path()).unwrap();
        let r = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(r("cgroup.subtree_control"), "+memory +pids +cpu");
        assert_eq!(r("cells/cgroup.subtree_control"), "+memory +pids +cpu");
        let c = d.create_cell("cell-9").unwrap();
        std::fs::write(t.path().join("cells/cell-9/memory.swap.max"), "max").unwrap();
        c.set_limits(&Limits {
            memory: 32 << 20,
            pids: 8,
            cpu: 1.5,
        })
        .unwrap();
        assert_eq!(r("cells/cell-9/memory.max"), "33554432");
        assert_eq!(r("cells/cell-9/memory.swap.max"), "0");
        assert_eq!(r("cells/cell-9/pids.max"), "8");
        assert_eq!(r("cells/cell-9/cpu.max"), "150000 100000");
        c.add_process(42).unwrap();
        assert_eq!(r("cells/cell-9/cgroup.procs"), "42");
        c.kill().unwrap();
        assert_eq!(r("cells/cell-9/cgroup.kill"), "1");
    }

    #[test]
    fn stale_cells_of_dead_supervisors_are_swept() {
        let t = fake_root("cpu memory pids");
        std::fs::create_dir(t.path().join("cells")).unwrap();
        std::fs::write(t.path().join("cells/cgroup.controllers"), "cpu memory pids").unwrap();
        let d = super::super::CgroupDriver::V2(V2::with_base(t.path()).unwrap());
        // pid 2^22+1 is above the kernel's pid_max: never running
        let dead = t.path().join("cells/cell-4194305-0");
        let alive = t
            .path()
            .join(format!("cells/cell-{}-0", std::process::id()));
        std::fs::create_dir(&dead).unwrap();
        std::fs::create_dir(&alive).unwrap();
        assert_eq!(d.sweep_stale(), 1);
        assert!(!dead.exists());
        assert!(alive.exists());
    }

    #[test]
    fn missing_controller_fails_closed_naming_it() {
        let t = fake_root("cpu memory\n");
        let e = V2::with_base(t.path()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("pids controller"), "{msg}");
        assert!(msg.contains("cgroups"), "{msg}");
    }

    #[test]
    fn reads_stats() {
        let t = fake_root("cpu memory pids");
        std::fs::create_dir(t.path().join("cells")).unwrap();
        std::fs::write(t.path().join("cells/cgroup.controllers"), "cpu memory pids").unwrap();
        let d = V2::with_base(t.path()).unwrap();
        let c = d.create_cell("c").unwrap();
        std::fs::write(
            t.path().join("cells/c/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        std::fs::write(t.path().join("cells/c/pids.events"), "max 4\n").unwrap();
        std::fs::write(
            t.path().join("cells/c/cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        )
        .unwrap();
        assert_eq!(
            c.stats(),
            CellStats {
                oom_kills: 1,
                pids_limit_hits: 4,
                cpu_usage_usec: 1500
            }
        );
    }
}
