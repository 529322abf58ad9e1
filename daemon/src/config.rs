//! The daemon's configuration: documented defaults, an optional TOML file (`--config`),
//! then command-line flags. Every value is validated at start; an error names the key.
//!
//! ```toml
//! socket = "/run/warren/warrend.sock"   # control socket (also --socket, WARREN_SOCKET)
//! state_dir = "/var/lib/warren"         # programs, object databases, the state database
//! group = "warren"                      # members may use the control socket (root always may)
//! pool_size = 8                         # warm husks kept ready
//! idle_timeout = "60s"                  # an idle instance is stopped after this
//! max_instances = 256                   # running instances in total
//! ingress = "127.0.0.1:8080"            # optional HTTP ingress (off when absent)
//! metrics_listen = "127.0.0.1:9464"     # Prometheus /metrics on TCP ("off" to disable)
//! max_request_body = "16M"
//!
//! [defaults]                            # limits of a worker deployed without flags
//! memory = "128M"
//! pids = 32
//! cpu = 1.0
//! storage = "100M"
//! max_objects = 10000
//! timeout = "10s"                       # wall clock per request
//! cpu_budget = "10s"                    # CPU time per request
//! max_response = "16M"                  # response body
//! max_instances = 256                   # running instances of one worker
//! log_bytes = "16M"                     # log output per instance
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use warren_jail::units::{parse_duration, parse_size};

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/warren/warrend.sock";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/warren";

/// Limits of one worker.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WorkerLimits {
    /// memory per instance, bytes
    pub memory: u64,
    /// tasks per instance
    pub pids: u64,
    /// CPUs per instance
    pub cpu: f64,
    /// database bytes per object
    pub storage: u64,
    /// objects per worker
    pub max_objects: u64,
    /// wall-clock time per request
    #[serde(rename = "timeout_ms", serialize_with = "ser_ms")]
    pub timeout: Duration,
    /// CPU time per request (the instance's cgroup accounting)
    #[serde(rename = "cpu_budget_ms", serialize_with = "ser_ms")]
    pub cpu_budget: Duration,
    /// largest response body, bytes
    pub max_response: u64,
    /// running instances of this worker at once
    pub max_instances: u64,
    /// log bytes one instance may write before further output is dropped
    pub log_bytes: u64,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Default for WorkerLimits {
    fn default() -> Self {
        WorkerLimits {
            memory: 128 << 20,
            pids: 32,
            cpu: 1.0,
            storage: 100 << 20,
            max_objects: 10_000,
            timeout: Duration::from_secs(10),
            cpu_budget: Duration::from_secs(10),
            max_response: 16 << 20,
            max_instances: 256,
            log_bytes: 16 << 20,
        }
    }
}

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// control socket path
    pub socket: PathBuf,
    /// state directory
    pub state_dir: PathBuf,
    /// group allowed on the control socket
    pub group: String,
    /// warm husks
    pub pool_size: usize,
    /// idle instance lifetime
    pub idle_timeout: Duration,
    /// running instances in total
    pub max_instances: usize,
    /// optional HTTP ingress address (loopback)
    pub ingress: Option<SocketAddr>,
    /// Prometheus `/metrics` on TCP (also always on the control socket); `None` = off
    pub metrics_listen: Option<SocketAddr>,
    /// largest request body
    pub max_request_body: u64,
    /// limits of workers deployed without flags
    pub defaults: WorkerLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: DEFAULT_SOCKET.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            group: "warren".into(),
            pool_size: 8,
            idle_timeout: Duration::from_secs(60),
            max_instances: 256,
            ingress: None,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            max_request_body: 16 << 20,
            defaults: WorkerLimits::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    socket: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    group: Option<String>,
    pool_size: Option<usize>,
    idle_timeout: Option<String>,
    max_instances: Option<usize>,
    ingress: Option<String>,
    metrics_listen: Option<String>,
    max_request_body: Option<String>,
    #[serde(default)]
    defaults: RawLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<String>,
    pids: Option<u64>,
    cpu: Option<f64>,
    storage: Option<String>,
    max_objects: Option<u64>,
    timeout: Option<String>,
    cpu_budget: Option<String>,
    max_response: Option<String>,
    max_instances: Option<u64>,
    log_bytes: Option<String>,
}

/// A configuration error, naming the file and key.
#[derive(Debug, thiserror::Error)]
#[error("config {path}: {message}")]
pub struct ConfigError {
    path: String,
    message: String,
}

impl Config {
    /// Defaults, overridden by `file` when given.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = file else {
            return Ok(Config::default());
        };
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        Self::from_raw(raw).map_err(err)
    }

    /// Parse TOML text (for tests).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, String> {
        let mut c = Config::default();
        let key = |k: &str, e: String| format!("{k}: {e}");
        if let Some(v) = raw.socket {
            c.socket = v;
        }
        if let Some(v) = raw.state_dir {
            c.state_dir = v;
        }
        if let Some(v) = raw.group {
            c.group = v;
        }
        if let Some(v) = raw.pool_size {
            if v > 1024 {
                return Err(key("pool_size", "at most 1024".into()));
            }
            c.pool_size = v;
        }
        if let Some(v) = raw.idle_timeout {
            c.idle_timeout = parse_duration(&v).map_err(|e| key("idle_timeout", e))?;
        }
        if let Some(v) = raw.max_instances {
            if v == 0 {
                return Err(key("max_instances", "must be at least 1".into()));
            }
            c.max_instances = v;
        }
        if let Some(v) = raw.ingress {
            let addr: SocketAddr = v.parse().map_err(|_| {
                key(
                    "ingress",
                    format!("{v:?} is not an address like 127.0.0.1:8080"),
                )
            })?;
            c.ingress = Some(addr);
        }
        if let Some(v) = raw.metrics_listen {
            c.metrics_listen = if v == "off" {
                None
            } else {
                Some(v.parse().map_err(|_| {
                    key(
                        "metrics_listen",
                        format!("{v:?} is not an address like 127.0.0.1:9464, or \"off\""),
                    )
                })?)
            };
        }
        if let Some(v) = raw.max_request_body {
            c.max_request_body = parse_size(&v).map_err(|e| key("max_request_body", e))?;
        }
        let d = &mut c.defaults;
        let r = raw.defaults;
        if let Some(v) = r.memory {
            d.memory = parse_size(&v).map_err(|e| key("defaults.memory", e))?;
        }
        if let Some(v) = r.pids {
            d.pids = v;
        }
        if let Some(v) = r.cpu {
            d.cpu = warren_jail::units::parse_cpus(&v.to_string())
                .map_err(|e| key("defaults.cpu", e))?;
        }
        if let Some(v) = r.storage {
            d.storage = parse_size(&v).map_err(|e| key("defaults.storage", e))?;
        }
        if let Some(v) = r.max_objects {
            d.max_objects = v;
        }
        if let Some(v) = r.timeout {
            d.timeout = parse_duration(&v).map_err(|e| key("defaults.timeout", e))?;
        }
        if let Some(v) = r.cpu_budget {
            d.cpu_budget = parse_duration(&v).map_err(|e| key("defaults.cpu_budget", e))?;
        }
        if let Some(v) = r.max_response {
            d.max_response = parse_size(&v).map_err(|e| key("defaults.max_response", e))?;
        }
        if let Some(v) = r.max_instances {
            if v == 0 {
                return Err(key("defaults.max_instances", "must be at least 1".into()));
            }
            d.max_instances = v;
        }
        if let Some(v) = r.log_bytes {
            d.log_bytes = parse_size(&v).map_err(|e| key("defaults.log_bytes", e))?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.socket, PathBuf::from(DEFAULT_SOCKET));
        let c = Config::from_toml(
            "pool_size = 2\nidle_timeout = \"5s\"\ningress = \"127.0.0.1:8080\"\n[defaults]\nmemory = \"64M\"\ntimeout = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(c.pool_size, 2);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.defaults.memory, 64 << 20);
        assert_eq!(c.defaults.timeout, Duration::from_secs(2));
        assert!(c.ingress.is_some());
    }

    #[test]
    fn errors_name_the_key() {
        assert!(Config::from_toml("idle_timeout = \"5\"")
            .unwrap_err()
            .contains("idle_timeout"));
        assert!(Config::from_toml("[defaults]\nmemory = \"12Q\"")
            .unwrap_err()
            .contains("defaults.memory"));
        assert!(Config::from_toml("bogus = 1")
            .unwrap_err()
            .contains("bogus"));
        assert!(Config::from_toml("ingress = \"nope\"")
            .unwrap_err()
            .contains("ingress"));
    }
}
