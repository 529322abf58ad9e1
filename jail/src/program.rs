//! A program to run in a cell: an ELF executable copied into a sealed memfd, so the cell
//! never sees a host path and nobody can change the bytes after they were checked.
//!
//! Only 64-bit little-endian x86-64 executables (static or dynamic) are accepted; anything
//! else gets a clear error naming the file. The ELF's interpreter (`PT_INTERP`) is kept so the
//! cell can grant execute rights on exactly that loader and nothing else.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{JailError, Result};

/// Largest program accepted (bytes).
pub const MAX_PROGRAM_SIZE: u64 = 512 << 20;

/// A checked, sealed program ready to be executed in a cell.
#[derive(Debug)]
pub struct Program {
    memfd: OwnedFd,
    interp: Option<PathBuf>,
    name: String,
}

impl Program {
    /// Read `path` from the host, check it is an ELF this machine can run, and seal it.
    pub fn from_path(path: &Path) -> Result<Self> {
        let bad = |reason: String| JailError::BadProgram {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(|e| bad(e.to_string()))?;
        let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        if meta.len() > MAX_PROGRAM_SIZE {
            return Err(bad(format!(
                "{} bytes is larger than the {} byte limit",
                meta.len(),
                MAX_PROGRAM_SIZE
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|e| bad(e.to_string()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "program".into());
        Self::from_bytes(&name, &bytes).map_err(|e| match e {
            JailError::BadProgram { reason, .. } => bad(reason),
            other => other,
        })
    }

    /// Check `bytes` as an ELF executable and seal them in a memfd.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Self> {
        let interp = check_elf(bytes).map_err(|reason| JailError::BadProgram {
            path: PathBuf::from(name),
            reason,
        })?;
        let memfd = sealed_memfd(name, bytes)?;
        Ok(Program {
            memfd,
            interp,
            name: name.to_string(),
        })
    }

    /// The sealed memfd holding the program.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.memfd.as_fd()
    }

    /// The ELF interpreter (dynamic loader) path, or `None` for a static program.
    pub fn interp(&self) -> Option<&Path> {
        self.interp.as_deref()
    }

    /// The program's name (file name it was read from).
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn sealed_memfd(name: &str, bytes: &[u8]) -> Result<OwnedFd> {
    let cname = CString::new(format!("warren:{}", name.replace('\0', "")))
        .unwrap_or_else(|_| CString::from(c"warren:program"));
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call; memfd_create
    // returns a fresh descriptor or -1.
    let fd = unsafe {
        libc::memfd_create(
            cname.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | libc::MFD_EXEC,
        )
    };
    if fd < 0 {
        return Err(JailError::io(
            "memfd_create for program",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: memfd_create just returned this descriptor and nothing else owns it.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes)
        .and_then(|_| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .map_err(|e| JailError::io("write program into memfd", e))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    nix::fcntl::fcntl(
        file.as_raw_fd(),
        nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::from_bits_truncate(seals)),
    )
    .map_err(|e| JailError::io("seal program memfd", e.into()))?;
    Ok(OwnedFd::from(file))
}

/// Validate an x86-64 ELF executable; return its `PT_INTERP` if it has one.
fn check_elf(b: &[u8]) -> std::result::Result<Option<PathBuf>, String> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" {
        return Err("not an ELF executable (no ELF magic)".into());
    }
    if b[4] != 2 {
        return Err("not a 64-bit ELF".into());
    }
    if b[5] != 1 {
        return Err("not a little-endian ELF".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u64_at = |o: usize| -> std::result::Result<u64, String> {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
            .ok_or_else(|| "truncated ELF".to_string())
    };
    let e_type = u16_at(16);
    if e_type != 2 && e_type != 3 {
        return Err(format!("ELF type {e_type} is not an executable"));
    }
    let machine = u16_at(18);
    if machine != 62 {
        return Err(format!("ELF machine {machine} is not x86-64"));
    }
    let phoff = usize::try_from(u64_at(32)?).map_err(|_| "bad program header offset")?;
    let phentsize = usize::from(u16_at(54));
    let phnum = usize::from(u16_at(56));
    if phentsize < 56 {
        return Err("bad program header size".into());
    }
    for i in 0..phnum {
        let ph = phoff
            .checked_add(i * phentsize)
            .ok_or("bad program header offset")?;
        let p_type = b
            .get(ph..ph + 4)
            .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
            .ok_or("truncated program headers")?;
        if p_type == 3 {
            let off = usize::try_from(u64_at(ph + 8)?).map_err(|_| "bad PT_INTERP")?;
            let size = usize::try_from(u64_at(ph + 32)?).map_err(|_| "bad PT_INTERP")?;
            let raw = b
                .get(off..off.saturating_add(size))
                .ok_or("truncated PT_INTERP")?;
            let s = raw.split(|&c| c == 0).next().unwrap_or_default();
            let path = std::str::from_utf8(s).map_err(|_| "PT_INTERP is not UTF-8")?;
            if !path.starts_with('/') {
                return Err(format!("interpreter {path:?} is not an absolute path"));
            }
            return Ok(Some(PathBuf::from(path)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf() {
        let e = Program::from_bytes("x.sh", b"#!/bin/sh\necho hi\n").unwrap_err();
        assert!(e.to_string().contains("not an ELF"), "{e}");
        assert!(check_elf(&[0u8; 10]).is_err());
        let mut elf32 = vec![0u8; 64];
        elf32[..4].copy_from_slice(b"\x7fELF");
        elf32[4] = 1;
        assert!(check_elf(&elf32).unwrap_err().contains("64-bit"));
    }

    #[test]
    fn reads_the_interpreter_of_a_dynamic_binary() {
        // The test binary itself is a dynamically linked x86-64 executable.
        let exe = std::env::current_exe().unwrap();
        let p = Program::from_path(&exe).unwrap();
        let interp = p.interp().expect("dynamic").to_string_lossy().into_owned();
        assert!(interp.contains("ld-linux"), "{interp}");
    }

    #[test]
    fn program_memfd_is_sealed() {
        let exe = std::env::current_exe().unwrap();
        let p = Program::from_path(&exe).unwrap();
        let seals =
            nix::fcntl::fcntl(p.memfd.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).unwrap();
        assert_ne!(seals & libc::F_SEAL_WRITE, 0);
        let mut f = File::from(p.memfd.try_clone().unwrap());
        assert!(f.write_all(b"x").is_err());
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = Program::from_path(Path::new("/nonexistent/prog")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/prog"), "{e}");
    }
}
