//! The cell's filesystem: a fresh, empty, read-only root.
//!
//! [`RootPlan`] is worked out in the supervisor (which host paths exist, which are symlinks);
//! [`RootPlan::build`] runs inside the new mount namespace, after the husk has switched to its
//! unprivileged host identity (so it can only bind what any user may read). Steps, in order:
//!
//! 1. make every mount private, so nothing propagates back to the host;
//! 2. mount a small tmpfs over `/tmp` (private to this namespace) as the new root;
//! 3. `pivot_root` into it, keeping the host's root at `/.oldroot` for the binds;
//! 4. bind `/dev/null`, `/dev/zero`, `/dev/urandom` (read-only mounts; nodes stay usable);
//! 5. bind the system library directories read-only, recreating host symlinks among them;
//! 6. bind the caller's read-only paths;
//! 7. mount the optional size-capped `noexec,nosuid,nodev` `/tmp`;
//! 8. detach `/.oldroot` and remove it: nothing of the host is reachable any more;
//! 9. make the root itself read-only.
//!
//! It must never bind anything the plan does not name, and never leave the old root attached.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{JailError, Layer, Result};
use crate::profile::Profile;

/// Where the new root is mounted before pivot_root (private to the cell's mount namespace).
const STAGING: &str = "/tmp";
const OLD_ROOT: &str = "/.oldroot";
const DEV_NODES: [&str; 3] = ["/dev/null", "/dev/zero", "/dev/urandom"];

/// ELF interpreters (dynamic loaders) a cell may execute, when the host has them inside its
/// library directories. They are the only files Landlock lets a cell execute.
pub const KNOWN_LOADERS: &[&str] = &[
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-linux-x86-64.so.2",
    "/lib/ld-musl-x86_64.so.1",
];

/// One entry of the cell's filesystem, decided on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// read-only bind of host `src` (canonical) at cell path `dst`; `file` if not a directory
    Bind {
        src: PathBuf,
        dst: PathBuf,
        file: bool,
    },
    /// a symlink at `path` pointing to `target`, as the host has it
    Symlink { path: PathBuf, target: PathBuf },
}

/// The cell's filesystem, resolved on the host before the husk is made.
#[derive(Debug, Clone)]
pub struct RootPlan {
    entries: Vec<Entry>,
    tmp_size: Option<u64>,
    /// cell paths of the library directories (for Landlock read rules)
    pub(crate) lib_paths: Vec<PathBuf>,
    /// cell paths of the caller's read-only binds (for Landlock read rules)
    pub(crate) bind_paths: Vec<PathBuf>,
    /// dynamic loaders present in the library directories (the only executable files)
    pub(crate) loaders: Vec<PathBuf>,
}

impl RootPlan {
    /// Resolve the profile's library directories and binds on the host.
    pub fn resolve(profile: &Profile) -> Result<Self> {
        let mut entries = Vec::new();
        let mut lib_paths = Vec::new();
        let mut lib_sources = Vec::new();
        for dir in &profile.lib_dirs {
            let Ok(meta) = std::fs::symlink_metadata(dir) else {
                continue; // a library directory this host does not have
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(dir)
                    .map_err(|e| JailError::io(format!("readlink {}", dir.display()), e))?;
                entries.push(Entry::Symlink {
                    path: dir.clone(),
                    target,
                });
            } else if meta.is_dir() {
                let src = std::fs::canonicalize(dir)
                    .map_err(|e| JailError::io(format!("resolve {}", dir.display()), e))?;
                lib_sources.push(src.clone());
                entries.push(Entry::Bind {
                    src,
                    dst: dir.clone(),
                    file: false,
                });
                lib_paths.push(dir.clone());
            }
        }
        let mut bind_paths = Vec::new();
        for b in &profile.ro_binds {
            let src = std::fs::canonicalize(&b.host)
                .map_err(|e| JailError::io(format!("bind source {}", b.host.display()), e))?;
            if let Some(sock) = find_socket(&src)? {
                return Err(JailError::Invalid {
                    what: format!("bind {}", b.host.display()),
                    reason: format!(
                        "{} is a Unix socket: a cell could connect to it through a read-only bind, and this kernel's Landlock cannot stop that; bind a directory without sockets",
                        sock.display()
                    ),
                });
            }
            let file = !src.is_dir();
            entries.push(Entry::Bind {
                src,
                dst: b.cell.clone(),
                file,
            });
            bind_paths.push(b.cell.clone());
        }
        let loaders = KNOWN_LOADERS
            .iter()
            .map(PathBuf::from)
            .filter(|l| {
                std::fs::canonicalize(l)
                    .map(|c| lib_sources.iter().any(|b| c.starts_with(b)))
                    .unwrap_or(false)
            })
            .collect();
        Ok(RootPlan {
            entries,
            tmp_size: profile.tmp_size,
            lib_paths,
            bind_paths,
            loaders,
        })
    }

    /// The dynamic loaders the cell may execute.
    pub fn loaders(&self) -> &[PathBuf] {
        &self.loaders
    }

    /// Whether the cell gets a writable `/tmp`.
    pub fn has_tmp(&self) -> bool {
        self.tmp_size.is_some()
    }

    /// Build the root and pivot into it. Runs in the husk, in its own mount namespace.
    pub(crate) fn build(&self) -> Result<()> {
        let fs =
            |call: String| move |e: nix::errno::Errno| JailError::sys(Layer::Filesystem, call, e);
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(fs("make / private".into()))?;
        mount(
            Some("tmpfs"),
            STAGING,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=1m,nr_inodes=512,mode=0755"),
        )
        .map_err(fs("mount root tmpfs".into()))?;
        let old = Path::new(STAGING).join(OLD_ROOT.trim_start_matches('/'));
        mkdir(&old, 0o700)?;
        nix::unistd::pivot_root(STAGING, &old).map_err(fs("pivot_root".into()))?;
        nix::unistd::chdir("/").map_err(fs("chdir /".into()))?;

        mkdir(Path::new("/dev"), 0o755)?;
        for node in DEV_NODES {
            bind(&host(Path::new(node)), Path::new(node), true, false)?;
        }
        for e in &self.entries {
            match e {
                Entry::Bind { src, dst, file } => bind(&host(src), dst, *file, true)?,
                Entry::Symlink { path, target } => {
                    mkdir_all(path.parent().unwrap_or(Path::new("/")))?;
                    std::os::unix::fs::symlink(target, path).map_err(|e| {
                        JailError::io(format!("symlink {} in cell", path.display()), e)
                    })?;
                }
            }
        }
        if let Some(size) = self.tmp_size {
            mkdir(Path::new("/tmp"), 0o1777)?;
            let inodes = (size / 4096).clamp(256, 1 << 20);
            mount(
                Some("tmpfs"),
                "/tmp",
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(format!("size={size},nr_inodes={inodes},mode=1777").as_str()),
            )
            .map_err(fs("mount /tmp".into()))?;
        }
        umount2(OLD_ROOT, MntFlags::MNT_DETACH).map_err(fs("detach old root".into()))?;
        std::fs::remove_dir(OLD_ROOT).map_err(|e| JailError::io("remove /.oldroot", e))?;
        set_read_only(Path::new("/"), false, false)
    }
}

/// Most entries a bind source may have before it is refused as too large to check.
const MAX_BIND_ENTRIES: usize = 100_000;

/// The first Unix socket at or below `root` (symlinks are not followed: inside the cell they
/// resolve within the cell). Refuses trees too large to check.
fn find_socket(root: &Path) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::FileTypeExt;
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0usize;
    while let Some(p) = stack.pop() {
        seen += 1;
        if seen > MAX_BIND_ENTRIES {
            return Err(JailError::Invalid {
                what: format!("bind {}", root.display()),
                reason: format!("more than {MAX_BIND_ENTRIES} entries to check for sockets"),
            });
        }
        let meta = std::fs::symlink_metadata(&p)
            .map_err(|e| JailError::io(format!("bind source {}", p.display()), e))?;
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(Some(p));
        }
        if ft.is_dir() {
            let rd = std::fs::read_dir(&p)
                .map_err(|e| JailError::io(format!("bind source {}", p.display()), e))?;
            for entry in rd {
                let entry =
                    entry.map_err(|e| JailError::io(format!("bind source {}", p.display()), e))?;
                stack.push(entry.path());
            }
        }
    }
    Ok(None)
}

/// The host path `p` as seen from inside the new root, before the old root is detached.
fn host(p: &Path) -> PathBuf {
    Path::new(OLD_ROOT).join(p.strip_prefix("/").unwrap_or(p))
}

fn mkdir(p: &Path, mode: u32) -> Result<()> {
    match nix::unistd::mkdir(p, nix::sys::stat::Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(JailError::sys(
            Layer::Filesystem,
            format!("mkdir {}", p.display()),
            e,
        )),
    }
}

fn mkdir_all(p: &Path) -> Result<()> {
    let mut cur = PathBuf::from("/");
    for c in p.components().skip(1) {
        cur.push(c);
        mkdir(&cur, 0o755)?;
    }
    Ok(())
}

/// Bind `src` (a path under the old root) at `dst` in the new root, read-only. Library and
/// caller binds also get `nodev` (device nodes are only ever the three named ones).
fn bind(src: &Path, dst: &Path, file: bool, nodev: bool) -> Result<()> {
    if file {
        mkdir_all(dst.parent().unwrap_or(Path::new("/")))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dst)
            .map_err(|e| JailError::io(format!("create mount point {}", dst.display()), e))?;
    } else {
        mkdir_all(dst)?;
    }
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        JailError::sys(
            Layer::Filesystem,
            format!("bind {} to {}", src.display(), dst.display()),
            e,
        )
    })?;
    set_read_only(dst, true, nodev)
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// Add read-only and nosuid (and nodev) to the mount at `path` without touching its other
/// flags (some are locked because the mount came from the host's namespace).
fn set_read_only(path: &Path, recursive: bool, nodev: bool) -> Result<()> {
    let mut attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    if nodev {
        attr.attr_set |= MOUNT_ATTR_NODEV;
    }
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| JailError::Invalid {
        what: "cell path".into(),
        reason: format!("{} contains NUL", path.display()),
    })?;
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `cpath` and `attr` are live for the call and `attr`'s size is passed exactly;
    // mount_setattr only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            cpath.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(JailError::last_os(
            Layer::Filesystem,
            format!("make {} read-only", path.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Bind;

    #[test]
    fn plan_recreates_symlinks_and_binds_dirs() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("usr-lib");
        std::fs::create_dir(&real).unwrap();
        let link = t.path().join("lib");
        std::os::unix::fs::symlink("usr-lib", &link).unwrap();
        let profile = Profile {
            lib_dirs: vec![link.clone(), real.clone(), t.path().join("absent")],
            ro_binds: vec![Bind {
                host: real.clone(),
                cell: "/data".into(),
            }],
            ..Profile::default()
        };
        let plan = RootPlan::resolve(&profile).unwrap();
        assert_eq!(
            plan.entries,
            vec![
                Entry::Symlink {
                    path: link,
                    target: "usr-lib".into()
                },
                Entry::Bind {
                    src: real.clone(),
                    dst: real.clone(),
                    file: false
                },
                Entry::Bind {
                    src: real.clone(),
                    dst: "/data".into(),
                    file: false
                },
            ]
        );
        assert_eq!(plan.lib_paths, vec![real]);
        assert_eq!(plan.bind_paths, vec![PathBuf::from("/data")]);
        assert!(!plan.has_tmp());
    }

    #[test]
    fn binds_holding_a_unix_socket_are_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("sub")).unwrap();
        let sock = t.path().join("sub/s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let profile = Profile {
            ro_binds: vec![Bind {
                host: t.path().to_path_buf(),
                cell: "/data".into(),
            }],
            ..Profile::default()
        };
        let e = RootPlan::resolve(&profile).unwrap_err().to_string();
        assert!(e.contains("s.sock") && e.contains("Unix socket"), "{e}");
    }

    #[test]
    fn missing_bind_source_is_an_error_naming_it() {
        let profile = Profile {
            ro_binds: vec![Bind {
                host: "/nonexistent/warren".into(),
                cell: "/data".into(),
            }],
            ..Profile::default()
        };
        let e = RootPlan::resolve(&profile).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/warren"), "{e}");
    }
}
