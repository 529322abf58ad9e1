//! `warren-guest`: the library a worker program links to talk to its supervisor.
//!
//! A guest is started with fd 3 connected to the supervisor. This crate will own the
//! synchronous guest-protocol loop (requests in, responses and SQL out). It never spawns
//! threads or an async runtime: a guest is single-threaded from its object's point of view.
//!
//! Today it exposes only the fixed facts of the cell a guest runs in.

/// The file descriptor a guest's supervisor socket is always placed on.
pub const GUEST_SOCKET_FD: i32 = 3;
