//! Privileges of the cell's processes: after the husk has built the cell it gives up every
//! capability for good (bounding set, ambient set, effective/permitted/inheritable, and
//! securebits locked so uid 0 inside the cell never regains any), sets no_new_privs and
//! marks itself non-dumpable. Nothing here can be undone by the program.

use crate::error::{JailError, Layer, Result};

const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;

fn prctl(option: libc::c_int, arg: libc::c_ulong, what: &str) -> Result<()> {
    // SAFETY: every option used here takes plain integer arguments; no memory is passed.
    let rc = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc < 0 {
        return Err(JailError::last_os(Layer::Privileges, what));
    }
    Ok(())
}

/// Set no_new_privs: execve can never grant privileges again (setuid bits, file caps).
pub(crate) fn set_no_new_privs() -> Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")
}

/// Drop every capability of the calling process, permanently.
pub(crate) fn drop_all_capabilities() -> Result<()> {
    // Bounding set: drop every capability the kernel knows (EINVAL past the last one).
    for cap in 0..64u32 {
        // SAFETY: PR_CAPBSET_DROP takes an integer capability number; no memory is passed.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error();
            if errno == Some(libc::EINVAL) && cap > 30 {
                break;
            }
            return Err(JailError::last_os(
                Layer::Privileges,
                format!("prctl(PR_CAPBSET_DROP, {cap})"),
            ));
        }
    }
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        "prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
    )?;
    prctl(
        libc::PR_SET_SECUREBITS,
        SECBIT_NOROOT
            | SECBIT_NOROOT_LOCKED
            | SECBIT_NO_SETUID_FIXUP
            | SECBIT_NO_SETUID_FIXUP_LOCKED
            | SECBIT_KEEP_CAPS_LOCKED
            | SECBIT_NO_CAP_AMBIENT_RAISE
            | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
        "prctl(PR_SET_SECUREBITS)",
    )?;
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and the two data words (the v3 ABI's 64 capability bits) are live for the
    // call and laid out as the kernel's __user_cap_header_struct / __user_cap_data_struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc < 0 {
        return Err(JailError::last_os(Layer::Privileges, "capset(all zero)"));
    }
    prctl(libc::PR_SET_DUMPABLE, 0, "prctl(PR_SET_DUMPABLE, 0)")
}
