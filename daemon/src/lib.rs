//! `warrend`, the Warren supervisor: control API, router, instance manager, storage broker.
//!
//! Module map, in the order a request flows:
//! [`api`] (HTTP on the control socket and the optional ingress) → [`objects`] (one actor per
//! object, requests in arrival order) → [`instance`] (the object's jailed process, spoken to
//! over [`frame`]) and [`broker`] (the object's SQLite database); [`registry`] keeps workers,
//! versions and objects in the daemon's own database; [`config`], [`names`] and [`error`]
//! serve them all.

pub mod broker;
pub mod config;
pub mod error;
pub mod frame;
pub mod names;
