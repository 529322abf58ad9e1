//! The control channel between a supervisor and a husk's init: one `SOCK_SEQPACKET`
//! socketpair per husk, one message per packet, descriptors passed with `SCM_RIGHTS`.
//!
//! Messages are tiny and fixed: a tag byte, then fields. Strings are NUL-terminated, so a
//! string with an interior NUL is rejected before sending. The init trusts only its supervisor
//! end; the supervisor treats anything unexpected from a husk as that husk's failure.

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::error::{JailError, Result};

/// Largest control message (argv + env of a start request).
pub const MAX_MESSAGE: usize = 64 << 10;
const MAX_FDS: usize = 8;

/// Supervisor → husk.
#[derive(Debug, PartialEq)]
pub(crate) enum ToHusk {
    /// identity maps and cgroup are in place: build the cell
    Go,
    /// start the program (descriptors: program, stdin, stdout, stderr, then optional extra)
    Start(StartSpec),
}

/// What to start, besides the descriptors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StartSpec {
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub interp: Option<PathBuf>,
}

/// Husk → supervisor.
#[derive(Debug, PartialEq)]
pub(crate) enum FromHusk {
    /// the cell is built; waiting for a program (the seccomp listener attached, if any)
    Ready,
    /// building the cell or starting the program failed
    Failed(String),
    /// the program is running
    Started,
    /// the program ended; raw wait status
    Exited(i32),
}

fn put_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(s);
    buf.push(0);
}

impl ToHusk {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut b = Vec::new();
        match self {
            ToHusk::Go => b.push(b'G'),
            ToHusk::Start(s) => {
                b.push(b'S');
                let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
                b.extend_from_slice(&count(s.argv.len()));
                b.extend_from_slice(&count(s.envp.len()));
                for a in s.argv.iter().chain(&s.envp) {
                    put_str(&mut b, a.as_bytes());
                }
                let interp = s
                    .interp
                    .as_ref()
                    .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                    .unwrap_or_default();
                if interp.contains(&0) {
                    return Err(JailError::Invalid {
                        what: "interpreter path".into(),
                        reason: "contains NUL".into(),
                    });
                }
                put_str(&mut b, &interp);
            }
        }
        if b.len() > MAX_MESSAGE {
            return Err(JailError::Invalid {
                what: "program arguments and environment".into(),
                reason: format!("{} bytes exceed the {MAX_MESSAGE} byte limit", b.len()),
            });
        }
        Ok(b)
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        match b.first()? {
            b'G' if b.len() == 1 => Some(ToHusk::Go),
            b'S' => {
                let argc = u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as usize;
                let envc = u32::from_le_bytes(b.get(5..9)?.try_into().ok()?) as usize;
                let mut parts = b.get(9..)?.split(|&c| c == 0);
                let mut take = |n: usize| -> Option<Vec<CString>> {
                    (0..n)
                        .map(|_| parts.next().and_then(|p| CString::new(p).ok()))
                        .collect()
                };
                let argv = take(argc)?;
                let envp = take(envc)?;
                let interp = parts.next()?;
                let interp = (!interp.is_empty())
                    .then(|| PathBuf::from(String::from_utf8_lossy(interp).into_owned()));
                Some(ToHusk::Start(StartSpec { argv, envp, interp }))
            }
            _ => None,
        }
    }
}

impl FromHusk {
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            FromHusk::Ready => vec![b'R'],
            FromHusk::Failed(m) => {
                let mut b = vec![b'F'];
                b.extend_from_slice(&m.as_bytes()[..m.len().min(4000)]);
                b
            }
            FromHusk::Started => vec![b'P'],
            FromHusk::Exited(s) => {
                let mut b = vec![b'X'];
                b.extend_from_slice(&s.to_le_bytes());
                b
            }
        }
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        match (b.first()?, b.len()) {
            (b'R', 1) => Some(FromHusk::Ready),
            (b'F', _) => Some(FromHusk::Failed(
                String::from_utf8_lossy(&b[1..]).into_owned(),
            )),
            (b'P', 1) => Some(FromHusk::Started),
            (b'X', 5) => Some(FromHusk::Exited(i32::from_le_bytes(
                b[1..5].try_into().ok()?,
            ))),
            _ => None,
        }
    }
}

/// Send one packet with optional descriptors. Never raises SIGPIPE.
pub(crate) fn send(sock: BorrowedFd<'_>, msg: &[u8], fds: &[RawFd]) -> nix::Result<()> {
    let iov = [IoSlice::new(msg)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Receive one packet. `Ok(None)` means the peer is gone (EOF). Received descriptors are
/// close-on-exec.
pub(crate) fn recv(sock: BorrowedFd<'_>) -> nix::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let mut cspace = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let r = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cspace),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(r) => r,
        };
        let mut fds = Vec::new();
        for c in r.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel just installed these descriptors in our table for us;
                // nothing else refers to them.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let truncated =
            r.flags.contains(MsgFlags::MSG_TRUNC) || r.flags.contains(MsgFlags::MSG_CTRUNC);
        let n = r.bytes;
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        if truncated {
            return Err(nix::errno::Errno::EMSGSIZE);
        }
        buf.truncate(n);
        return Ok(Some((buf, fds)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_round_trips() {
        let spec = StartSpec {
            argv: vec![CString::new("prog").unwrap(), CString::new("a b").unwrap()],
            envp: vec![CString::new("K=V").unwrap()],
            interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
        };
        let msg = ToHusk::Start(spec.clone());
        assert_eq!(ToHusk::decode(&msg.encode().unwrap()), Some(msg));
        let none = ToHusk::Start(StartSpec {
            interp: None,
            argv: vec![],
            envp: vec![],
        });
        assert_eq!(ToHusk::decode(&none.encode().unwrap()), Some(none));
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(ToHusk::decode(b""), None);
        assert_eq!(ToHusk::decode(b"S\x05\0\0\0\0\0\0\0a\0"), None);
        assert_eq!(ToHusk::decode(b"Gx"), None);
        assert_eq!(FromHusk::decode(b"X12"), None);
        assert_eq!(FromHusk::decode(b"Q"), None);
        assert_eq!(
            FromHusk::decode(&FromHusk::Exited(9).encode()),
            Some(FromHusk::Exited(9))
        );
    }

    #[test]
    fn oversized_start_is_refused() {
        let spec = StartSpec {
            argv: vec![CString::new(vec![b'a'; MAX_MESSAGE]).unwrap()],
            envp: vec![],
            interp: None,
        };
        assert!(ToHusk::Start(spec).encode().is_err());
    }

    #[test]
    fn descriptors_travel_and_eof_is_none() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        use std::os::fd::AsFd;
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        send(a.as_fd(), b"L", &[f.as_raw_fd()]).unwrap();
        let (m, fds) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!(m, b"L");
        assert_eq!(fds.len(), 1);
        drop(a);
        assert!(recv(b.as_fd()).unwrap().is_none());
    }
}
