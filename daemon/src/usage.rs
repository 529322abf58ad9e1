//! Usage metering for billing, per worker and per object: requests, CPU time (from the cell's
//! own cgroup accounting), wall time, SQL rows read and written, bytes in and out, instance
//! starts and kills by reason, and storage bytes.
//!
//! Counters accumulate in memory and are added to the daemon's database (`usage` table, one
//! row per worker, object and hour) once a second, at shutdown, and before every usage query.
//! A flush moves the pending counts out of memory before writing them and puts them back if the
//! write fails, so nothing is counted twice; a daemon killed with SIGKILL loses at most the last
//! second of counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::{Row, SqlitePool};

use crate::error::ApiError;

/// What is counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// requests answered (by the guest or with an error)
    pub requests: u64,
    /// CPU time of the instance during requests, microseconds
    pub cpu_us: u64,
    /// wall time of requests, microseconds
    pub wall_us: u64,
    /// rows returned by the guest's SQL
    pub rows_read: u64,
    /// rows inserted, updated or deleted by the guest's SQL (committed or not)
    pub rows_written: u64,
    /// request body bytes
    pub bytes_in: u64,
    /// response body bytes
    pub bytes_out: u64,
    /// instances started
    pub instance_starts: u64,
    /// instances killed: memory limit
    pub kills_oom: u64,
    /// instances killed: request timeout
    pub kills_timeout: u64,
    /// instances killed: CPU budget
    pub kills_cpu: u64,
    /// instances killed: seccomp violation
    pub kills_seccomp: u64,
    /// instances that crashed or broke the protocol
    pub kills_crash: u64,
}

const COLUMNS: [&str; 13] = [
    "requests",
    "cpu_us",
    "wall_us",
    "rows_read",
    "rows_written",
    "bytes_in",
    "bytes_out",
    "instance_starts",
    "kills_oom",
    "kills_timeout",
    "kills_cpu",
    "kills_seccomp",
    "kills_crash",
];

impl Counters {
    fn values(&self) -> [u64; 13] {
        [
            self.requests,
            self.cpu_us,
            self.wall_us,
            self.rows_read,
            self.rows_written,
            self.bytes_in,
            self.bytes_out,
            self.instance_starts,
            self.kills_oom,
            self.kills_timeout,
            self.kills_cpu,
            self.kills_seccomp,
            self.kills_crash,
        ]
    }

    fn from_values(v: &[u64]) -> Counters {
        let g = |i: usize| v.get(i).copied().unwrap_or(0);
        Counters {
            requests: g(0),
            cpu_us: g(1),
            wall_us: g(2),
            rows_read: g(3),
            rows_written: g(4),
            bytes_in: g(5),
            bytes_out: g(6),
            instance_starts: g(7),
            kills_oom: g(8),
            kills_timeout: g(9),
            kills_cpu: g(10),
            kills_seccomp: g(11),
            kills_crash: g(12),
        }
    }

    fn add(&mut self, o: &Counters) {
        let mut v = self.values();
        for (a, b) in v.iter_mut().zip(o.values()) {
            *a = a.saturating_add(b);
        }
        *self = Counters::from_values(&v);
    }
}

type Key = (String, String, i64);

/// The meter.
#[derive(Debug)]
pub struct Meter {
    db: SqlitePool,
    pending: Mutex<HashMap<Key, Counters>>,
    storage: Mutex<HashMap<(String, String), u64>>,
}

/// Usage of one object.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectUsage {
    /// object name
    pub object: String,
    /// counters
    #[serde(flatten)]
    pub counters: Counters,
    /// database size, bytes (latest)
    pub storage_bytes: u64,
}

/// Usage of one worker, with its objects.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerUsage {
    /// worker name
    pub worker: String,
    /// totals over its objects
    #[serde(flatten)]
    pub counters: Counters,
    /// total database size, bytes
    pub storage_bytes: u64,
    /// per object
    pub objects: Vec<ObjectUsage>,
}

fn now_hour() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            / 3600,
    )
    .unwrap_or(0)
}

impl Meter {
    /// A meter writing to the daemon's database `db` (creates its tables).
    pub async fn open(db: SqlitePool) -> Result<Arc<Meter>, sqlx::Error> {
        let cols: Vec<String> = COLUMNS
            .iter()
            .map(|c| format!("{c} INTEGER NOT NULL DEFAULT 0"))
            .collect();
        sqlx::raw_sql(&format!(
            "CREATE TABLE IF NOT EXISTS usage (worker TEXT NOT NULL, object TEXT NOT NULL, hour INTEGER NOT NULL, {},
               PRIMARY KEY (worker, object, hour));
             CREATE TABLE IF NOT EXISTS storage (worker TEXT NOT NULL, object TEXT NOT NULL, bytes INTEGER NOT NULL,
               PRIMARY KEY (worker, object));",
            cols.join(", ")
        ))
        .execute(&db)
        .await?;
        Ok(Arc::new(Meter {
            db,
            pending: Mutex::new(HashMap::new()),
            storage: Mutex::new(HashMap::new()),
        }))
    }

    /// Count something for an object.
    pub fn add(&self, worker: &str, object: &str, c: &Counters) {
        let mut p = self.pending.lock().expect("meter lock");
        p.entry((worker.to_string(), object.to_string(), now_hour()))
            .or_default()
            .add(c);
    }

    /// Record an object's current database size.
    pub fn set_storage(&self, worker: &str, object: &str, bytes: u64) {
        self.storage
            .lock()
            .expect("meter lock")
            .insert((worker.to_string(), object.to_string()), bytes);
    }

    /// Write pending counts to the database.
    pub async fn flush(&self) -> Result<(), sqlx::Error> {
        let batch: HashMap<Key, Counters> =
            std::mem::take(&mut *self.pending.lock().expect("meter lock"));
        let storage: HashMap<(String, String), u64> =
            std::mem::take(&mut *self.storage.lock().expect("meter lock"));
        if batch.is_empty() && storage.is_empty() {
            return Ok(());
        }
        let result = self.write(&batch, &storage).await;
        if result.is_err() {
            // put them back: counted once, later
            let mut p = self.pending.lock().expect("meter lock");
            for (k, c) in batch {
                p.entry(k).or_default().add(&c);
            }
            let mut s = self.storage.lock().expect("meter lock");
            for (k, b) in storage {
                s.entry(k).or_insert(b);
            }
        }
        result
    }

    async fn write(
        &self,
        batch: &HashMap<Key, Counters>,
        storage: &HashMap<(String, String), u64>,
    ) -> Result<(), sqlx::Error> {
        let updates: Vec<String> = COLUMNS
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect();
        let sql = format!(
            "INSERT INTO usage (worker, object, hour, {}) VALUES (?, ?, ?, {}) ON CONFLICT (worker, object, hour) DO UPDATE SET {}",
            COLUMNS.join(", "),
            vec!["?"; COLUMNS.len()].join(", "),
            updates.join(", ")
        );
        let mut tx = self.db.begin().await?;
        for ((w, o, h), c) in batch {
            let mut q = sqlx::query(&sql).bind(w.clone()).bind(o.clone()).bind(*h);
            for v in c.values() {
                q = q.bind(i64::try_from(v).unwrap_or(i64::MAX));
            }
            q.execute(&mut *tx).await?;
        }
        for ((w, o), b) in storage {
            sqlx::query("INSERT INTO storage (worker, object, bytes) VALUES (?, ?, ?) ON CONFLICT (worker, object) DO UPDATE SET bytes = excluded.bytes")
                .bind(w.clone())
                .bind(o.clone())
                .bind(i64::try_from(*b).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Flush once a second until `shutdown`, then a last time.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.flush().await {
                tracing::warn!("usage flush: {e}");
            }
        }
        if let Err(e) = self.flush().await {
            tracing::error!("final usage flush: {e}");
        }
    }

    /// Usage since `since_unix` (rounded down to the hour), for one worker or all.
    pub async fn report(
        &self,
        worker: Option<&str>,
        since_unix: u64,
    ) -> Result<Vec<WorkerUsage>, ApiError> {
        self.flush().await?;
        let since_hour = i64::try_from(since_unix / 3600).unwrap_or(0);
        let sums: Vec<String> = COLUMNS.iter().map(|c| format!("SUM({c})")).collect();
        let rows = sqlx::query(&format!(
            "SELECT worker, object, {} FROM usage WHERE hour >= ? AND (? IS NULL OR worker = ?) GROUP BY worker, object ORDER BY worker, object",
            sums.join(", ")
        ))
        .bind(since_hour)
        .bind(worker.map(str::to_owned))
        .bind(worker.map(str::to_owned))
        .fetch_all(&self.db)
        .await?;
        let storage: HashMap<(String, String), u64> =
            sqlx::query("SELECT worker, object, bytes FROM storage")
                .fetch_all(&self.db)
                .await?
                .iter()
                .map(|r| {
                    (
                        (r.get::<String, _>(0), r.get::<String, _>(1)),
                        u64::try_from(r.get::<i64, _>(2)).unwrap_or(0),
                    )
                })
                .collect();
        let mut out: Vec<WorkerUsage> = Vec::new();
        for r in rows {
            let w: String = r.get(0);
            let o: String = r.get(1);
            let vals: Vec<u64> = (0..COLUMNS.len())
                .map(|i| u64::try_from(r.get::<i64, _>(i + 2)).unwrap_or(0))
                .collect();
            let counters = Counters::from_values(&vals);
            let bytes = storage.get(&(w.clone(), o.clone())).copied().unwrap_or(0);
            if out.last().map(|x| x.worker != w).unwrap_or(true) {
                out.push(WorkerUsage {
                    worker: w.clone(),
                    counters: Counters::default(),
                    storage_bytes: 0,
                    objects: Vec::new(),
                });
            }
            let wu = out.last_mut().expect("pushed above");
            wu.counters.add(&counters);
            wu.storage_bytes += bytes;
            wu.objects.push(ObjectUsage {
                object: o,
                counters,
                storage_bytes: bytes,
            });
        }
        Ok(out)
    }
}

/// Parse `since`: a duration back from now (`24h`, `30m`), unix seconds, or RFC 3339 UTC
/// (`2026-12-04T00:00:00Z`). Returns unix seconds.
pub fn parse_since(s: &str, now_unix: u64) -> Result<u64, String> {
    if let Ok(d) = warren_jail::units::parse_duration(s) {
        return Ok(now_unix.saturating_sub(d.as_secs()));
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!(
            "{s:?} is not a duration (24h), unix seconds, or a UTC time like 2026-12-04T00:00:00Z"
        )
    })
}

fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 || y < 1970
    {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm), for years >= 1970
    let (y, mo) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        assert_eq!(parse_since("1h", 10_000), Ok(6_400));
        assert_eq!(parse_since("1700000000", 0), Ok(1_700_000_000));
        assert_eq!(parse_since("1970-01-02T00:00:00Z", 0), Ok(86_400));
        assert_eq!(parse_since("2026-12-04T16:00:00Z", 0), Ok(1_796_400_000));
        assert!(parse_since("yesterday", 0).is_err());
        assert!(parse_since("2026-13-04T16:00:00Z", 0).is_err());
    }

    #[tokio::test]
    async fn counts_survive_flushes_exactly_once() {
        let t = tempfile::tempdir().unwrap();
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(t.path().join("u.db"))
            .create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(opts)
            .await
            .unwrap();
        let m = Meter::open(pool.clone()).await.unwrap();
        let one = Counters {
            requests: 1,
            cpu_us: 10,
            ..Counters::default()
        };
        for _ in 0..3 {
            m.add("w", "a", &one);
        }
        m.flush().await.unwrap();
        m.flush().await.unwrap();
        m.add("w", "b", &one);
        m.set_storage("w", "a", 4096);
        let r = m.report(Some("w"), 0).await.unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].counters.requests, 4);
        assert_eq!(r[0].counters.cpu_us, 40);
        assert_eq!(r[0].storage_bytes, 4096);
        assert_eq!(r[0].objects.len(), 2);
        // a second meter on the same database (a restarted daemon) sees the same totals
        let m2 = Meter::open(pool).await.unwrap();
        assert_eq!(m2.report(None, 0).await.unwrap()[0].counters.requests, 4);
        assert!(m2.report(Some("other"), 0).await.unwrap().is_empty());
    }
}
