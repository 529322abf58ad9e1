//! `doctor`: which isolation layers this kernel and host offer, each checked for real, so an
//! operator sees at once what is missing and why before anything is started.

use crate::cgroup::CgroupDriver;
use crate::error::Layer;
use crate::landlock_rules;
use crate::profile::Profile;
use crate::rootfs::RootPlan;
use crate::seccomp::SeccompPolicy;

/// The state of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerReport {
    /// the layer
    pub layer: Layer,
    /// whether it is usable here
    pub ok: bool,
    /// what was found, or what is missing
    pub detail: String,
}

fn report(layer: Layer, r: Result<String, String>) -> LayerReport {
    match r {
        Ok(detail) => LayerReport {
            layer,
            ok: true,
            detail,
        },
        Err(detail) => LayerReport {
            layer,
            ok: false,
            detail,
        },
    }
}

/// Check every layer without starting a cell (see the `warren-jail doctor` command for the
/// live check that also starts one).
pub fn check(profile: &Profile) -> Vec<LayerReport> {
    let cgroups = CgroupDriver::detect(crate::CGROUP_GROUP)
        .map(|d| d.describe())
        .map_err(|e| e.to_string());
    check_layers(profile, cgroups)
}

/// Like [`check`], reporting the cgroup driver a running jail already uses (detecting again
/// could move processes on a delegated cgroup v2 host).
pub fn check_with(profile: &Profile, cgroups: Option<&CgroupDriver>) -> Vec<LayerReport> {
    let cgroups = match cgroups {
        Some(d) => Ok(d.describe()),
        None => Err("turned off in this profile".to_string()),
    };
    check_layers(profile, cgroups)
}

fn check_layers(profile: &Profile, cgroups: Result<String, String>) -> Vec<LayerReport> {
    let ns = ["user", "pid", "mnt", "net", "ipc", "uts", "cgroup"];
    let missing: Vec<&str> = ns
        .iter()
        .copied()
        .filter(|n| !std::path::Path::new(&format!("/proc/self/ns/{n}")).exists())
        .collect();
    let max_userns = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let namespaces = if !missing.is_empty() {
        Err(format!("kernel lacks namespaces: {}", missing.join(", ")))
    } else if max_userns == Some(0) {
        Err("user namespaces are disabled (user.max_user_namespaces = 0)".into())
    } else {
        Ok("user, pid, mount, ipc, uts, cgroup; one shared empty network namespace".into())
    };
    let filesystem = RootPlan::resolve(profile)
        .map(|p| {
            format!(
                "pivot_root into an empty read-only root; library dirs: {}",
                if p.lib_paths.is_empty() {
                    "none found".to_string()
                } else {
                    p.lib_paths
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )
        })
        .map_err(|e| e.to_string());
    let landlock = landlock_rules::check_available()
        .map(|abi| format!("ABI {abi} (required >= {})", landlock_rules::MIN_ABI))
        .map_err(|e| e.to_string());
    let seccomp = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .map_err(|e| format!("seccomp unavailable: {e}"))
        .and_then(|a| {
            if a.split_whitespace().any(|x| x == "user_notif") {
                SeccompPolicy::compile()
                    .map(|_| "filter mode with user notification; policy compiles".to_string())
                    .map_err(|e| e.to_string())
            } else {
                Err("the kernel lacks seccomp user notification".into())
            }
        });
    vec![
        report(Layer::Namespaces, namespaces),
        report(Layer::Filesystem, filesystem),
        report(Layer::Landlock, landlock),
        report(Layer::Seccomp, seccomp),
        report(Layer::Cgroups, cgroups),
        report(
            Layer::Rlimits,
            Ok("core 0, fsize, nofile, stack, memlock, msgqueue, rtprio, sigpending".into()),
        ),
        report(
            Layer::Privileges,
            Ok(
                "no_new_privs, all capabilities dropped, securebits locked, pdeathsig, new session"
                    .into(),
            ),
        ),
    ]
}
