//! The Landlock layer: what the program may do with the cell's files and the network, and
//! what it may reach outside its own domain.
//!
//! Applied by the husk once the cell is built (so the program inherits it), at the best ABI the kernel
//! offers (at least 6, which brings abstract-socket and signal scoping; a kernel below that
//! is an error naming Landlock). Every filesystem right of that ABI is *handled*, so anything
//! not granted below is denied:
//!
//! | cell path | rights |
//! |---|---|
//! | `/` and everything below | list directories |
//! | library dirs, read-only binds | read files |
//! | the system's dynamic loaders ([`crate::rootfs::KNOWN_LOADERS`]) | read, execute |
//! | `/dev/null`, `/dev/zero` | read, write |
//! | `/dev/urandom` | read |
//! | `/tmp` (when present) | read, write, create, remove, truncate; never execute |
//!
//! TCP bind and connect are handled with no rule (denied); abstract Unix sockets and signals
//! are scoped to the cell's own domain. The returned status is checked: anything short of
//! "fully enforced" is an error.

use std::path::Path;

use ::landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use crate::error::{JailError, Layer, Result};
use crate::rootfs::RootPlan;

/// The lowest Landlock ABI Warren accepts (6: scoping of abstract sockets and signals).
pub const MIN_ABI: i32 = 6;

/// The Landlock ABI version this kernel offers (0 when Landlock is absent or disabled).
pub fn kernel_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with the VERSION flag and a NULL attribute of size 0, landlock_create_ruleset
    // only returns the ABI number; it reads no memory and creates no descriptor.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(v).unwrap_or(0).max(0)
}

/// Check that the kernel's Landlock is good enough; the error names the layer.
pub fn check_available() -> Result<i32> {
    let abi = kernel_abi();
    if abi < MIN_ABI {
        return Err(JailError::LayerUnavailable {
            layer: Layer::Landlock,
            reason: if abi == 0 {
                "Landlock is not enabled in this kernel (boot with lsm=...,landlock)".into()
            } else {
                format!("kernel Landlock ABI {abi} is below the required {MIN_ABI}")
            },
        });
    }
    Ok(abi)
}

/// Restrict the calling thread (and what it executes) to the cell's rules.
pub(crate) fn restrict(plan: &RootPlan) -> Result<()> {
    let abi = ABI::from(check_available()?);
    let read = AccessFs::ReadFile.into();
    let all_fs = AccessFs::from_all(abi);
    let tmp_rights = all_fs & !(AccessFs::Execute | AccessFs::MakeChar | AccessFs::MakeBlock);
    let mut rules: Vec<(&Path, BitFlags<AccessFs>)> = vec![
        (Path::new("/"), AccessFs::ReadDir.into()),
        (
            Path::new("/dev/null"),
            AccessFs::ReadFile | AccessFs::WriteFile,
        ),
        (
            Path::new("/dev/zero"),
            AccessFs::ReadFile | AccessFs::WriteFile,
        ),
        (Path::new("/dev/urandom"), read),
    ];
    rules.extend(plan.lib_paths.iter().map(|p| (p.as_path(), read)));
    rules.extend(plan.bind_paths.iter().map(|p| (p.as_path(), read)));
    if plan.has_tmp() {
        rules.push((Path::new("/tmp"), tmp_rights));
    }
    for loader in &plan.loaders {
        rules.push((loader.as_path(), AccessFs::ReadFile | AccessFs::Execute));
    }
    let ll = |call: &str| {
        let call = call.to_string();
        move |e: ::landlock::RulesetError| JailError::Sys {
            layer: Layer::Landlock,
            call: call.clone(),
            source: std::io::Error::other(e.to_string()),
        }
    };
    let mut created = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all_fs)
        .map_err(ll("handle filesystem access"))?
        .handle_access(AccessNet::from_all(abi))
        .map_err(ll("handle network access"))?
        .scope(Scope::from_all(abi))
        .map_err(ll("scope signals and abstract sockets"))?
        .create()
        .map_err(ll("landlock_create_ruleset"))?;
    for (path, access) in rules {
        let fd = PathFd::new(path).map_err(|e| JailError::Sys {
            layer: Layer::Landlock,
            call: format!("open {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        // A file rule may only carry file rights.
        let access = if path.is_dir() {
            access
        } else {
            access & AccessFs::from_file(abi)
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(ll(&format!("landlock_add_rule {}", path.display())))?;
    }
    let status = created
        .restrict_self()
        .map_err(ll("landlock_restrict_self"))?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(JailError::LayerUnavailable {
            layer: Layer::Landlock,
            reason: format!(
                "ruleset {:?}, no_new_privs {}",
                status.ruleset, status.no_new_privs
            ),
        });
    }
    Ok(())
}
