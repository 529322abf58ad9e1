//! Workers, their versions and their objects, kept in the daemon's own SQLite database
//! (`<state_dir>/warren.db`, through sqlx). Programs are stored content-addressed under
//! `<state_dir>/programs/<sha256>`; object databases under
//! `<state_dir>/objects/<worker>/<sha256 of the object name>.db`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use warren_jail::Program;

use crate::config::WorkerLimits;
use crate::error::ApiError;
use crate::names;

/// Largest program accepted.
pub const MAX_PROGRAM: u64 = 256 << 20;

/// A worker as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerInfo {
    /// name
    pub name: String,
    /// current version
    pub version: i64,
    /// content address of the current program
    pub sha256: String,
    /// program size, bytes
    pub size: i64,
    /// limits
    pub limits: WorkerLimits,
    /// when the current version was deployed
    pub created_at: String,
}

/// One version of a worker.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// version number
    pub version: i64,
    /// content address
    pub sha256: String,
    /// size, bytes
    pub size: i64,
    /// deploy time
    pub created_at: String,
}

/// What an instance needs to run a worker's current version.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// version number
    pub version: i64,
    /// limits
    pub limits: WorkerLimits,
    /// the sealed program
    pub program: Arc<Program>,
}

/// The registry. The hot path (a request to a known object of a deployed worker) is served
/// from memory: the current version of each worker and the set of known objects are cached,
/// and the cache is updated by deploys and deletions (which go through here).
#[derive(Debug)]
pub struct Registry {
    db: SqlitePool,
    state_dir: PathBuf,
    programs: Mutex<HashMap<String, Arc<Program>>>,
    current: Mutex<HashMap<String, Arc<Deployed>>>,
    known_objects: Mutex<HashSet<(String, String)>>,
}

impl Registry {
    /// Open (creating) the state directory and database.
    pub async fn open(state_dir: &Path) -> anyhow::Result<Self> {
        for d in ["programs", "objects"] {
            std::fs::create_dir_all(state_dir.join(d))
                .map_err(|e| anyhow::anyhow!("create {}: {e}", state_dir.join(d).display()))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(state_dir.join("warren.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let db = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| anyhow::anyhow!("open {}: {e}", state_dir.join("warren.db").display()))?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS workers (
                name TEXT PRIMARY KEY, version INTEGER NOT NULL,
                memory INTEGER NOT NULL, pids INTEGER NOT NULL, cpu REAL NOT NULL,
                storage INTEGER NOT NULL, max_objects INTEGER NOT NULL, timeout_ms INTEGER NOT NULL,
                cpu_budget_ms INTEGER NOT NULL DEFAULT 10000, max_response INTEGER NOT NULL DEFAULT 16777216,
                max_instances INTEGER NOT NULL DEFAULT 256, log_bytes INTEGER NOT NULL DEFAULT 16777216);
             CREATE TABLE IF NOT EXISTS versions (
                worker TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL,
                size INTEGER NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (worker, version));
             CREATE TABLE IF NOT EXISTS objects (
                worker TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL,
                created_at TEXT NOT NULL, PRIMARY KEY (worker, name));",
        )
        .execute(&db)
        .await?;
        Ok(Registry {
            db,
            state_dir: state_dir.to_path_buf(),
            programs: Mutex::new(HashMap::new()),
            current: Mutex::new(HashMap::new()),
            known_objects: Mutex::new(HashSet::new()),
        })
    }

    /// The daemon's own database (for the usage meter).
    pub fn pool(&self) -> SqlitePool {
        self.db.clone()
    }

    /// Store a new version of `name`.
    pub async fn deploy(
        &self,
        name: &str,
        bytes: &[u8],
        limits: WorkerLimits,
    ) -> Result<WorkerInfo, ApiError> {
        names::check_worker(name)?;
        let program =
            Program::from_bytes(name, bytes).map_err(|e| ApiError::not_elf(e.to_string()))?;
        let sha = names::sha256_hex(bytes);
        let path = self.state_dir.join("programs").join(&sha);
        if !path.exists() {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, bytes)
                .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| {
                    ApiError::internal(format!("store program {}: {e}", path.display()))
                })?;
        }
        self.programs
            .lock()
            .expect("program cache lock")
            .insert(sha.clone(), Arc::new(program));
        let mut tx = self.db.begin().await?;
        let version: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE worker = ?")
                .bind(name.to_owned())
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        sqlx::query("INSERT INTO versions (worker, version, sha256, size, created_at) VALUES (?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))")
            .bind(name.to_owned())
            .bind(version)
            .bind(sha.to_owned())
            .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        let q = sqlx::query(UPSERT_WORKER)
            .bind(name.to_owned())
            .bind(version);
        bind_limits(q, &limits).execute(&mut *tx).await?;
        tx.commit().await?;
        self.current
            .lock()
            .expect("registry cache lock")
            .remove(name);
        self.worker(name).await
    }

    /// Change a worker's limits without redeploying its program. Running instances pick the
    /// new limits up at their next request.
    pub async fn set_limits(
        &self,
        name: &str,
        limits: WorkerLimits,
    ) -> Result<WorkerInfo, ApiError> {
        self.worker(name).await?;
        let q = sqlx::query(
            "UPDATE workers SET memory = ?, pids = ?, cpu = ?, storage = ?, max_objects = ?, timeout_ms = ?,
                     cpu_budget_ms = ?, max_response = ?, max_instances = ?, log_bytes = ? WHERE name = ?",
        );
        bind_limits(q, &limits)
            .bind(name.to_owned())
            .execute(&self.db)
            .await?;
        self.current
            .lock()
            .expect("registry cache lock")
            .remove(name);
        self.worker(name).await
    }

    /// All workers, by name.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, ApiError> {
        let rows = sqlx::query(WORKER_SELECT_ALL).fetch_all(&self.db).await?;
        Ok(rows.iter().map(worker_from_row).collect())
    }

    /// One worker.
    pub async fn worker(&self, name: &str) -> Result<WorkerInfo, ApiError> {
        names::check_worker(name)?;
        let row = sqlx::query(WORKER_SELECT_ONE)
            .bind(name.to_owned())
            .fetch_optional(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("worker {name:?} does not exist")))?;
        Ok(worker_from_row(&row))
    }

    /// Every version of a worker.
    pub async fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, ApiError> {
        let rows = sqlx::query("SELECT version, sha256, size, created_at FROM versions WHERE worker = ? ORDER BY version")
            .bind(name.to_owned())
            .fetch_all(&self.db)
            .await?;
        Ok(rows
            .iter()
            .map(|r| VersionInfo {
                version: r.get(0),
                sha256: r.get(1),
                size: r.get(2),
                created_at: r.get(3),
            })
            .collect())
    }

    /// The current version of a worker, ready to run (from memory after the first call).
    pub async fn current(&self, name: &str) -> Result<Arc<Deployed>, ApiError> {
        if let Some(d) = self.current.lock().expect("registry cache lock").get(name) {
            return Ok(Arc::clone(d));
        }
        let w = self.worker(name).await?;
        let cached = self
            .programs
            .lock()
            .expect("program cache lock")
            .get(&w.sha256)
            .cloned();
        let program = match cached {
            Some(p) => p,
            None => {
                let path = self.state_dir.join("programs").join(&w.sha256);
                let p = Arc::new(
                    Program::from_path(&path).map_err(|e| ApiError::internal(e.to_string()))?,
                );
                self.programs
                    .lock()
                    .expect("program cache lock")
                    .insert(w.sha256.clone(), Arc::clone(&p));
                p
            }
        };
        let d = Arc::new(Deployed {
            version: w.version,
            limits: w.limits,
            program,
        });
        let mut cache = self.current.lock().expect("registry cache lock");
        // a deploy that raced with this read wins: keep the newer version
        let entry = cache
            .entry(name.to_string())
            .or_insert_with(|| Arc::clone(&d));
        if entry.version < d.version {
            *entry = Arc::clone(&d);
        }
        Ok(Arc::clone(entry))
    }

    /// The database file of `object`, registering the object if it is new (refused past the
    /// worker's `max_objects`).
    pub async fn object_file(
        &self,
        worker: &str,
        object: &str,
        max_objects: u64,
    ) -> Result<PathBuf, ApiError> {
        names::check_object(object)?;
        let stem = names::object_file_stem(object);
        let dir = self.state_dir.join("objects").join(worker);
        let path = dir.join(format!("{stem}.db"));
        let key = (worker.to_string(), object.to_string());
        if self
            .known_objects
            .lock()
            .expect("registry cache lock")
            .contains(&key)
        {
            return Ok(path);
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("create {}: {e}", dir.display())))?;
        // one statement, so concurrent first requests cannot overshoot max_objects
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO objects (worker, name, file, created_at)
             SELECT ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE (SELECT COUNT(*) FROM objects WHERE worker = ?) < ?",
        )
        .bind(worker.to_owned())
        .bind(object.to_owned())
        .bind(format!("{stem}.db"))
        .bind(worker.to_owned())
        .bind(to_i64(max_objects))
        .execute(&self.db)
        .await?
        .rows_affected();
        if inserted == 0 {
            let exists = sqlx::query("SELECT 1 FROM objects WHERE worker = ? AND name = ?")
                .bind(worker.to_owned())
                .bind(object.to_owned())
                .fetch_optional(&self.db)
                .await?
                .is_some();
            if !exists {
                return Err(ApiError::too_many_objects(format!(
                    "worker {worker:?} already has its limit of {max_objects} objects"
                )));
            }
        }
        self.known_objects
            .lock()
            .expect("registry cache lock")
            .insert(key);
        Ok(path)
    }

    /// How many objects each worker has.
    pub async fn object_counts(&self) -> Result<HashMap<String, u64>, ApiError> {
        let rows = sqlx::query("SELECT worker, COUNT(*) FROM objects GROUP BY worker")
            .fetch_all(&self.db)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>(0),
                    u64::try_from(r.get::<i64, _>(1)).unwrap_or(0),
                )
            })
            .collect())
    }

    /// Objects of a worker with their database sizes.
    pub async fn objects(&self, worker: &str) -> Result<Vec<(String, u64)>, ApiError> {
        self.worker(worker).await?;
        let rows = sqlx::query("SELECT name, file FROM objects WHERE worker = ? ORDER BY name")
            .bind(worker.to_owned())
            .fetch_all(&self.db)
            .await?;
        let dir = self.state_dir.join("objects").join(worker);
        Ok(rows
            .iter()
            .map(|r| {
                let file: String = r.get(1);
                let base = dir.join(&file);
                let size = ["", "-wal"]
                    .iter()
                    .filter_map(|s| std::fs::metadata(format!("{}{s}", base.display())).ok())
                    .map(|m| m.len())
                    .sum();
                (r.get(0), size)
            })
            .collect())
    }

    /// Forget an object and delete its database files.
    pub async fn delete_object(&self, worker: &str, object: &str) -> Result<(), ApiError> {
        names::check_object(object)?;
        let gone = sqlx::query("DELETE FROM objects WHERE worker = ? AND name = ?")
            .bind(worker.to_owned())
            .bind(object.to_owned())
            .execute(&self.db)
            .await?
            .rows_affected();
        self.known_objects
            .lock()
            .expect("registry cache lock")
            .remove(&(worker.to_string(), object.to_string()));
        if gone == 0 {
            return Err(ApiError::not_found(format!(
                "worker {worker:?} has no object {object:?}"
            )));
        }
        let base = self
            .state_dir
            .join("objects")
            .join(worker)
            .join(format!("{}.db", names::object_file_stem(object)));
        remove_db_files(&base);
        Ok(())
    }

    /// Delete a worker, its versions and all its objects. Returns how many objects it had.
    pub async fn delete_worker(&self, worker: &str) -> Result<u64, ApiError> {
        self.worker(worker).await?;
        let mut tx = self.db.begin().await?;
        let objects = sqlx::query("DELETE FROM objects WHERE worker = ?")
            .bind(worker.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM versions WHERE worker = ?")
            .bind(worker.to_owned())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM workers WHERE name = ?")
            .bind(worker.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.current
            .lock()
            .expect("registry cache lock")
            .remove(worker);
        self.known_objects
            .lock()
            .expect("registry cache lock")
            .retain(|(w, _)| w != worker);
        let dir = self.state_dir.join("objects").join(worker);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| ApiError::internal(format!("remove {}: {e}", dir.display())))?;
        }
        Ok(objects)
    }
}

fn remove_db_files(base: &Path) {
    for s in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{s}", base.display()));
    }
}

/// Bind a worker's limits in the column order `memory, pids, cpu, storage, max_objects,
/// timeout_ms, cpu_budget_ms, max_response, max_instances, log_bytes`.
fn bind_limits<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    l: &WorkerLimits,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    q.bind(to_i64(l.memory))
        .bind(to_i64(l.pids))
        .bind(l.cpu)
        .bind(to_i64(l.storage))
        .bind(to_i64(l.max_objects))
        .bind(ms(l.timeout))
        .bind(ms(l.cpu_budget))
        .bind(to_i64(l.max_response))
        .bind(to_i64(l.max_instances))
        .bind(to_i64(l.log_bytes))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const UPSERT_WORKER: &str = "INSERT INTO workers (name, version, memory, pids, cpu, storage, max_objects, timeout_ms, cpu_budget_ms, max_response, max_instances, log_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(name) DO UPDATE SET version = excluded.version, memory = excluded.memory, pids = excluded.pids,
     cpu = excluded.cpu, storage = excluded.storage, max_objects = excluded.max_objects, timeout_ms = excluded.timeout_ms,
     cpu_budget_ms = excluded.cpu_budget_ms, max_response = excluded.max_response,
     max_instances = excluded.max_instances, log_bytes = excluded.log_bytes";

const WORKER_SELECT_ALL: &str = "SELECT w.name, w.version, v.sha256, v.size, v.created_at, w.memory, w.pids, w.cpu, w.storage, w.max_objects, w.timeout_ms, w.cpu_budget_ms, w.max_response, w.max_instances, w.log_bytes
     FROM workers w JOIN versions v ON v.worker = w.name AND v.version = w.version ORDER BY w.name";
const WORKER_SELECT_ONE: &str = "SELECT w.name, w.version, v.sha256, v.size, v.created_at, w.memory, w.pids, w.cpu, w.storage, w.max_objects, w.timeout_ms, w.cpu_budget_ms, w.max_response, w.max_instances, w.log_bytes
     FROM workers w JOIN versions v ON v.worker = w.name AND v.version = w.version WHERE w.name = ?";

fn worker_from_row(r: &sqlx::sqlite::SqliteRow) -> WorkerInfo {
    let u = |i: usize| u64::try_from(r.get::<i64, _>(i)).unwrap_or(0);
    WorkerInfo {
        name: r.get(0),
        version: r.get(1),
        sha256: r.get(2),
        size: r.get(3),
        created_at: r.get(4),
        limits: WorkerLimits {
            memory: u(5),
            pids: u(6),
            cpu: r.get(7),
            storage: u(8),
            max_objects: u(9),
            timeout: Duration::from_millis(u(10)),
            cpu_budget: Duration::from_millis(u(11)),
            max_response: u(12),
            max_instances: u(13),
            log_bytes: u(14),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deploy_versions_objects_and_delete() {
        let t = tempfile::tempdir().unwrap();
        let r = Registry::open(t.path()).await.unwrap();
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = r
            .deploy("shop", b"#!/bin/sh\n", WorkerLimits::default())
            .await
            .unwrap_err();
        assert_eq!(e.code, "not_elf");
        assert_eq!(
            r.deploy("Bad/Name", &elf, WorkerLimits::default())
                .await
                .unwrap_err()
                .code,
            "bad_name"
        );
        let w = r
            .deploy("shop", &elf, WorkerLimits::default())
            .await
            .unwrap();
        assert_eq!(w.version, 1);
        let w = r
            .deploy(
                "shop",
                &elf,
                WorkerLimits {
                    max_objects: 1,
                    ..WorkerLimits::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(w.version, 2);
        assert_eq!(r.versions("shop").await.unwrap().len(), 2);
        assert!(t.path().join("programs").join(&w.sha256).exists());
        let f = r.object_file("shop", "../../etc/passwd", 1).await.unwrap();
        assert!(f.starts_with(t.path().join("objects/shop")));
        assert_eq!(
            r.object_file("shop", "second", 1).await.unwrap_err().code,
            "too_many_objects"
        );
        // an existing object still works at the limit
        r.object_file("shop", "../../etc/passwd", 1).await.unwrap();
        assert_eq!(r.objects("shop").await.unwrap().len(), 1);
        r.delete_object("shop", "../../etc/passwd").await.unwrap();
        assert_eq!(
            r.delete_object("shop", "nope").await.unwrap_err().code,
            "not_found"
        );
        assert_eq!(r.delete_worker("shop").await.unwrap(), 0);
        assert_eq!(r.worker("shop").await.unwrap_err().code, "not_found");
    }
}
