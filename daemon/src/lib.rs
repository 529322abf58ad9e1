//! `warrend`, the Warren supervisor: control API, router, instance manager, storage broker.
//!
//! Module map, in the order a request flows:
//! [`api`] (HTTP on the control socket and the optional ingress) → [`objects`] (one actor per
//! object, requests in arrival order) → [`instance`] (the object's jailed process, spoken to
//! over [`frame`]) and [`broker`] (the object's SQLite database); [`registry`] keeps workers,
//! versions and objects in the daemon's own database; [`config`], [`names`] and [`error`]
//! serve them all.

pub mod api;
pub mod broker;
pub mod config;
pub mod error;
pub mod frame;
pub mod instance;
pub mod logs;
pub mod metrics;
pub mod names;
pub mod objects;
pub mod registry;
pub mod usage;

/// Box a future as `Send` at a concrete lifetime. Works around rustc's "Send is not general
/// enough" limitation with sqlx futures inside spawned tasks.
pub fn sendable<'a, T>(
    f: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(f)
}
