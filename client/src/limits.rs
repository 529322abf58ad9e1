//! The limits of a worker: what the `warren deploy` and `warren limits` flags and the
//! `PUT`/`PATCH /v1/workers/{worker}` query parameters take, and a local check of their syntax.
//!
//! The values are sent to the daemon as the user wrote them (`64M`, `0.5`, `5s`); the daemon
//! decides. [`DeployLimits::validate`] only rejects text that no daemon would accept, so that a
//! typo is reported before a large program is uploaded. The grammar is the one `warren-jail`
//! uses: sizes are a whole number with an optional `K`/`M`/`G`/`T` suffix (powers of 1024,
//! optional `B`/`iB`), durations a number with `ms`, `s`, `m` or `h`, CPUs a decimal number.

use std::fmt;

use crate::uri::query_value;

/// The optional limits of a deploy (`None` leaves the daemon's default), or of a change of
/// limits with [`Client::set_limits`](crate::Client::set_limits) (`None` keeps the current
/// value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployLimits {
    /// Memory per instance, e.g. `64M`.
    pub memory: Option<String>,
    /// Processes/threads per instance, e.g. `32`.
    pub pids: Option<String>,
    /// CPUs per instance, e.g. `0.5`.
    pub cpu: Option<String>,
    /// Database size per object, e.g. `100M`.
    pub storage: Option<String>,
    /// Objects the worker may have, e.g. `1000`.
    pub max_objects: Option<String>,
    /// Time one request may take, e.g. `5s`.
    pub timeout: Option<String>,
    /// CPU time one request may use, e.g. `2s`.
    pub cpu_budget: Option<String>,
    /// The largest response body, e.g. `16M`.
    pub max_response: Option<String>,
    /// Instances of the worker that may run at once, e.g. `256`.
    pub max_instances: Option<String>,
    /// Log output one instance may write, e.g. `16M`.
    pub log_bytes: Option<String>,
}

/// A limit whose text is not valid, naming the limit (its query parameter name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    /// The query parameter: `memory`, `pids`, `cpu`, `storage`, `max_objects`, `timeout`,
    /// `cpu_budget`, `max_response`, `max_instances` or `log_bytes`.
    pub param: &'static str,
    /// What is wrong, quoting the value.
    pub message: String,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} limit: {}", self.param, self.message)
    }
}

impl std::error::Error for LimitError {}

impl DeployLimits {
    /// The limits as `(query parameter, value)` pairs, in the API's order, unset ones left out.
    pub fn params(&self) -> Vec<(&'static str, &str)> {
        [
            ("memory", &self.memory),
            ("pids", &self.pids),
            ("cpu", &self.cpu),
            ("storage", &self.storage),
            ("max_objects", &self.max_objects),
            ("timeout", &self.timeout),
            ("cpu_budget", &self.cpu_budget),
            ("max_response", &self.max_response),
            ("max_instances", &self.max_instances),
            ("log_bytes", &self.log_bytes),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    /// The query string (`memory=64M&timeout=5s`, without `?`), empty when nothing is set.
    pub fn query(&self) -> String {
        self.params()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", query_value(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.params().is_empty()
    }

    /// Checks the syntax of every set limit; the first bad one is reported.
    pub fn validate(&self) -> Result<(), LimitError> {
        for (param, value) in self.params() {
            let checked = match param {
                "memory" | "storage" | "max_response" | "log_bytes" => parse_size(value).map(drop),
                "pids" | "max_objects" | "max_instances" => parse_count(value).map(drop),
                "cpu" => parse_cpus(value).map(drop),
                _ => parse_duration(value).map(drop), // timeout, cpu_budget
            };
            checked.map_err(|message| LimitError { param, message })?;
        }
        Ok(())
    }
}

// Sizes, durations and CPU counts follow the daemon's own rules exactly: one parser, shared
// with the jail (`warren_jail::units`).
pub use warren_jail::units::{parse_cpus, parse_duration, parse_size};

/// Parses a count (`pids`, `max_objects`, `max_instances`): a whole number, at least 1.
pub fn parse_count(text: &str) -> Result<u64, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number (expected e.g. 32)"))?;
    if n == 0 {
        return Err(format!("{text:?}: must be at least 1"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_and_counts() {
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert_eq!(parse_cpus("2"), Ok(2.0));
        for bad in ["", "0", "0.001", "-1", "nan", "inf", "5000", "half"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_count("32"), Ok(32));
        for bad in ["", "0", "-1", "1.5", "ten", "99999999999999999999"] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validate_names_the_bad_limit() {
        let ok = DeployLimits {
            memory: Some("64M".into()),
            pids: Some("32".into()),
            cpu: Some("0.5".into()),
            storage: Some("100M".into()),
            max_objects: Some("1000".into()),
            timeout: Some("5s".into()),
            cpu_budget: Some("2s".into()),
            max_response: Some("1M".into()),
            max_instances: Some("8".into()),
            log_bytes: Some("512K".into()),
        };
        assert_eq!(ok.validate(), Ok(()));
        assert!(!ok.is_empty());
        assert_eq!(
            ok.query(),
            "memory=64M&pids=32&cpu=0.5&storage=100M&max_objects=1000&timeout=5s\
             &cpu_budget=2s&max_response=1M&max_instances=8&log_bytes=512K"
        );
        assert_eq!(DeployLimits::default().query(), "");
        assert_eq!(DeployLimits::default().validate(), Ok(()));
        assert!(DeployLimits::default().is_empty());

        type Spoil = fn(&mut DeployLimits);
        let cases: [(&str, Spoil); 13] = [
            ("memory", |l| l.memory = Some("64Q".into())),
            ("pids", |l| l.pids = Some("many".into())),
            ("cpu", |l| l.cpu = Some("0".into())),
            ("storage", |l| l.storage = Some("0".into())),
            ("max_objects", |l| l.max_objects = Some("-3".into())),
            ("timeout", |l| l.timeout = Some("5".into())),
            ("cpu_budget", |l| l.cpu_budget = Some("0s".into())),
            ("cpu_budget", |l| l.cpu_budget = Some("10".into())),
            ("max_response", |l| l.max_response = Some("1.5M".into())),
            ("max_response", |l| l.max_response = Some("0".into())),
            ("max_instances", |l| l.max_instances = Some("0".into())),
            ("max_instances", |l| l.max_instances = Some("many".into())),
            ("log_bytes", |l| l.log_bytes = Some("16Q".into())),
        ];
        for (param, spoil) in cases {
            let mut l = ok.clone();
            spoil(&mut l);
            let err = l.validate().unwrap_err();
            assert_eq!(err.param, param);
            assert!(err
                .to_string()
                .starts_with(&format!("invalid {param} limit: ")));
        }
    }
}
