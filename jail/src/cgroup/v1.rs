//! cgroup v1 driver: one directory per controller hierarchy (memory, pids, cpu, and where
//! present cpuacct for accounting), plus — on hybrid hosts — a directory in the cgroup2
//! mount, whose `cgroup.kill` kills the whole cell atomically. Without a cgroup2 mount the
//! freezer hierarchy is used to kill: freeze, SIGKILL every task, thaw.
//!
//! Warren's directories live under the caller's own cgroup in each hierarchy, so the cells'
//! usage is charged to the supervisor's own limits too.

use std::path::{Path, PathBuf};

use super::{mkdir, read_key, write, CellStats, CgroupMount, Membership};
use crate::error::{JailError, Layer, Result};
use crate::profile::Limits;

const CPU_PERIOD_US: u64 = 100_000;

/// Warren's base directories in each v1 hierarchy.
#[derive(Debug, Clone)]
pub struct V1 {
    memory: PathBuf,
    pids: PathBuf,
    cpu: PathBuf,
    cpuacct: Option<PathBuf>,
    freezer: Option<PathBuf>,
    unified: Option<PathBuf>,
}

/// One cell's directories.
#[derive(Debug, Clone)]
pub struct V1Cell {
    memory: PathBuf,
    pids: PathBuf,
    cpu: PathBuf,
    cpuacct: Option<PathBuf>,
    freezer: Option<PathBuf>,
    unified: Option<PathBuf>,
}

impl V1 {
    /// Use explicit base directories (tests point these at a fake cgroupfs).
    pub fn with_bases(
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
        cpuacct: Option<PathBuf>,
        freezer: Option<PathBuf>,
        unified: Option<PathBuf>,
    ) -> Result<Self> {
        let v1 = V1 {
            memory,
            pids,
            cpu,
            cpuacct,
            freezer,
            unified,
        };
        for d in v1.base_dirs() {
            mkdir(&d)?;
        }
        Ok(v1)
    }

    pub(crate) fn from_mounts(
        mounts: &[CgroupMount],
        memberships: &[Membership],
        group: &str,
    ) -> Result<Self> {
        let base_for = |controller: &str| -> Option<PathBuf> {
            let m = mounts
                .iter()
                .find(|m| !m.is_v2 && m.controllers.iter().any(|c| c == controller))?;
            let own = memberships
                .iter()
                .find(|x| x.controllers.iter().any(|c| c == controller))
                .map(|x| x.path.as_str())
                .unwrap_or("/");
            Some(m.mount_point.join(own.trim_start_matches('/')).join(group))
        };
        let need = |controller: &str| {
            base_for(controller).ok_or_else(|| JailError::LayerUnavailable {
                layer: Layer::Cgroups,
                reason: format!("the cgroup v1 {controller} controller is not mounted"),
            })
        };
        let unified = mounts.iter().find(|m| m.is_v2).map(|m| {
            let own = memberships
                .iter()
                .find(|x| x.hierarchy_id == 0)
                .map(|x| x.path.as_str())
                .unwrap_or("/");
            m.mount_point.join(own.trim_start_matches('/')).join(group)
        });
        Self::with_bases(
            need("memory")?,
            need("pids")?,
            need("cpu")?,
            base_for("cpuacct"),
            base_for("freezer"),
            unified,
        )
    }

    pub(crate) fn base_dirs(&self) -> Vec<PathBuf> {
        let mut v = vec![self.memory.clone(), self.pids.clone(), self.cpu.clone()];
        v.extend(self.cpuacct.iter().cloned());
        v.extend(self.freezer.iter().cloned());
        v.extend(self.unified.iter().cloned());
        v.dedup();
        v
    }

    pub(crate) fn cell_paths(&self, name: &str) -> V1Cell {
        V1Cell {
            memory: self.memory.join(name),
            pids: self.pids.join(name),
            cpu: self.cpu.join(name),
            cpuacct: self.cpuacct.as_ref().map(|p| p.join(name)),
            freezer: self.freezer.as_ref().map(|p| p.join(name)),
            unified: self.unified.as_ref().map(|p| p.join(name)),
        }
    }

    pub(crate) fn create_cell(&self, name: &str) -> Result<V1Cell> {
        let cell = self.cell_paths(name);
        for d in cell.dirs() {
            if let Err(e) = std::fs::create_dir(&d) {
                let _ = super::CellCgroup::V1(cell).remove();
                return Err(JailError::Cgroup { path: d, source: e });
            }
        }
        Ok(cell)
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "cgroup v1 (memory {}, pids {}, cpu {}{})",
            self.memory.display(),
            self.pids.display(),
            self.cpu.display(),
            match &self.unified {
                Some(u) => format!(", kill via cgroup2 {}", u.display()),
                None => ", kill via freezer".into(),
            }
        )
    }
}

impl V1Cell {
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        let mut v = vec![self.memory.clone(), self.pids.clone(), self.cpu.clone()];
        v.extend(self.cpuacct.iter().cloned());
        v.extend(self.freezer.iter().cloned());
        v.extend(self.unified.iter().cloned());
        v.dedup();
        v
    }

    pub(crate) fn set_limits(&self, l: &Limits) -> Result<()> {
        let bytes = l.memory.to_string();
        write(&self.memory.join("memory.limit_in_bytes"), &bytes)?;
        // memory+swap: no swap on top of the limit, when swap accounting exists.
        let memsw = self.memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            write(&memsw, &bytes)?;
        }
        write(&self.pids.join("pids.max"), &l.pids.to_string())?;
        write(
            &self.cpu.join("cpu.cfs_period_us"),
            &CPU_PERIOD_US.to_string(),
        )?;
        write(
            &self.cpu.join("cpu.cfs_quota_us"),
            &cpu_quota_us(l.cpu).to_string(),
        )
    }

    pub(crate) fn add_process(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for d in self.dirs() {
            write(&d.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    pub(crate) fn kill(&self) -> Result<()> {
        if let Some(u) = &self.unified {
            return write(&u.join("cgroup.kill"), "1");
        }
        let freezer = self
            .freezer
            .as_ref()
            .ok_or_else(|| JailError::LayerUnavailable {
                layer: Layer::Cgroups,
                reason: "no cgroup2 mount and no v1 freezer: cannot kill a cell as a group".into(),
            })?;
        let state = freezer.join("freezer.state");
        write(&state, "FROZEN")?;
        let procs = std::fs::read_to_string(self.pids.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        write(&state, "THAWED")
    }

    /// The file this cell's CPU usage is read from.
    pub(crate) fn cpu_usage_file(&self) -> Option<(PathBuf, super::CpuFormat)> {
        if let Some(d) = &self.cpuacct {
            return Some((d.join("cpuacct.usage"), super::CpuFormat::Nanos));
        }
        self.unified
            .as_ref()
            .map(|u| (u.join("cpu.stat"), super::CpuFormat::StatUsec))
    }

    pub(crate) fn stats(&self) -> CellStats {
        let cpu_usage_usec = self
            .cpuacct
            .as_ref()
            .and_then(|d| read_u64(&d.join("cpuacct.usage")))
            .map(|ns| ns / 1000)
            .or_else(|| {
                self.unified
                    .as_ref()
                    .and_then(|u| read_key(&u.join("cpu.stat"), "usage_usec"))
            })
            .unwrap_or(0);
        CellStats {
            oom_kills: read_key(&self.memory.join("memory.oom_control"), "oom_kill").unwrap_or(0),
            pids_limit_hits: read_key(&self.pids.join("pids.events"), "max").unwrap_or(0),
            cpu_usage_usec,
        }
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// CFS quota for `cpus` CPUs over a 100 ms period (at least the kernel's 1 ms minimum).
pub(crate) fn cpu_quota_us(cpus: f64) -> u64 {
    let q = (cpus * CPU_PERIOD_US as f64).round();
    if q < 1000.0 {
        1000
    } else {
        // cpus is validated to at most 4096, so this fits in u64 exactly.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let q = q as u64;
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(root: &Path) -> V1 {
        V1::with_bases(
            root.join("memory/warren"),
            root.join("pids/warren"),
            root.join("cpu/warren"),
            Some(root.join("cpuacct/warren")),
            Some(root.join("freezer/warren")),
            None,
        )
        .unwrap()
    }

    #[test]
    fn writes_limits_to_each_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        let d = fake(t.path());
        let c = d.create_cell("cell-1").unwrap();
        std::fs::write(
            t.path()
                .join("memory/warren/cell-1/memory.memsw.limit_in_bytes"),
            "",
        )
        .unwrap();
        c.set_limits(&Limits {
            memory: 64 << 20,
            pids: 16,
            cpu: 0.5,
        })
        .unwrap();
        let r = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(r("memory/warren/cell-1/memory.limit_in_bytes"), "67108864");
        assert_eq!(
            r("memory/warren/cell-1/memory.memsw.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(r("pids/warren/cell-1/pids.max"), "16");
        assert_eq!(r("cpu/warren/cell-1/cpu.cfs_period_us"), "100000");
        assert_eq!(r("cpu/warren/cell-1/cpu.cfs_quota_us"), "50000");
        c.add_process(1234).unwrap();
        assert_eq!(r("freezer/warren/cell-1/cgroup.procs"), "1234");
    }

    #[test]
    fn reads_stats() {
        let t = tempfile::tempdir().unwrap();
        let d = fake(t.path());
        let c = d.create_cell("c").unwrap();
        std::fs::write(
            t.path().join("memory/warren/c/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        std::fs::write(t.path().join("pids/warren/c/pids.events"), "max 7\n").unwrap();
        std::fs::write(t.path().join("cpuacct/warren/c/cpuacct.usage"), "2500000\n").unwrap();
        assert_eq!(
            c.stats(),
            CellStats {
                oom_kills: 2,
                pids_limit_hits: 7,
                cpu_usage_usec: 2500
            }
        );
    }

    #[test]
    fn cpu_meter_reads_the_accounting_file_again_and_again() {
        let t = tempfile::tempdir().unwrap();
        let d = fake(t.path());
        let c = super::super::CellCgroup::V1(d.create_cell("m").unwrap());
        let f = t.path().join("cpuacct/warren/m/cpuacct.usage");
        std::fs::write(&f, "2000000\n").unwrap();
        let meter = c.cpu_meter().unwrap();
        assert_eq!(meter.usec(), 2000);
        std::fs::write(&f, "5000000\n").unwrap();
        assert_eq!(meter.usec(), 5000);
    }

    #[test]
    fn quota_has_a_floor() {
        assert_eq!(cpu_quota_us(0.001), 1000);
        assert_eq!(cpu_quota_us(2.0), 200_000);
    }

    #[test]
    fn missing_controller_is_named() {
        let mounts = super::super::parse_mountinfo(
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        let e = V1::from_mounts(&mounts, &[], "warren-test-missing").unwrap_err();
        assert!(e.to_string().contains("pids controller"), "{e}");
    }
}
