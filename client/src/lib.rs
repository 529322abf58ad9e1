//! `warren-client`: the Rust SDK for warrend's control socket, and the `warren` CLI built on it.
//!
//! Not built yet beyond its place in the workspace; it follows the daemon's control API.
