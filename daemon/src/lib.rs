//! `warrend`, the Warren supervisor: control API, router, instance manager, storage broker,
//! metering and metrics.
//!
//! Not built yet beyond this crate's place in the workspace: the daemon builds on the jail
//! (`warren-jail`), whose zygote it must start before any async runtime exists.
