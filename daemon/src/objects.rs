//! The router: one actor task per live object. Requests to one object queue in its actor and
//! run one at a time in arrival order; different objects run in parallel. The actor owns the
//! object's instance and open database, starts the instance on first use (and again after a
//! crash or a redeploy), wraps every request in a transaction, meters it, and lets both go
//! after `idle_timeout` without requests.
//!
//! Running instances are bounded in total (`max_instances` in the config) and per worker (the
//! worker's `max_instances` limit). When a new instance would exceed either bound, idle
//! instances (no request in flight) are stopped first, least recently used first; if none can
//! be stopped the request waits up to [`CAPACITY_WAIT`] for one to end, then gets `503`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify};
use warren_jail::pool::HuskPool;
use warren_jail::Limits;

use crate::broker::{ObjectDb, RequestStore};
use crate::error::ApiError;
use crate::instance::{GuestRequest, GuestResponse, Instance};
use crate::metrics::{KillKind, LimitKind, Metrics, Outcome};
use crate::registry::{Deployed, Registry};
use crate::sendable;
use crate::usage::{Counters, Meter};

/// Requests that may wait for one object.
const QUEUE_DEPTH: usize = 1024;
/// How long a request waits for instance capacity before `503`.
pub const CAPACITY_WAIT: Duration = Duration::from_secs(2);

/// One request waiting for its object, with what the router already looked up.
struct Job {
    req: GuestRequest,
    deployed: Arc<Deployed>,
    reply: oneshot::Sender<Result<GuestResponse, ApiError>>,
}

/// What the router knows of an actor without asking it.
#[derive(Debug)]
struct ActorState {
    /// it holds a running instance and no request is in flight
    idle_instance: AtomicBool,
    /// when it last finished a request (ms since the router started)
    last_used: AtomicU64,
    /// ask it to stop its instance (if idle)
    stop: Notify,
}

#[derive(Debug)]
struct Actor {
    tx: mpsc::Sender<Job>,
    state: Arc<ActorState>,
}

/// Running instances, in total and per worker.
#[derive(Debug, Default)]
struct Capacity {
    total: usize,
    by_worker: HashMap<String, usize>,
}

/// A place for one running instance; released when dropped.
#[derive(Debug)]
struct Slot {
    router: Arc<Router>,
    worker: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.router.capacity.lock().expect("capacity lock");
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_worker.get_mut(&self.worker) {
            *n = n.saturating_sub(1);
        }
        self.router.metrics.set_instances(c.total);
        drop(c);
        self.router.released.notify_waiters();
    }
}

/// Routes requests to objects.
#[derive(Debug)]
pub struct Router {
    registry: Arc<Registry>,
    pool: Arc<HuskPool>,
    meter: Arc<Meter>,
    metrics: Arc<Metrics>,
    logs: Arc<crate::logs::LogHub>,
    next_request: AtomicU64,
    idle_timeout: Duration,
    max_instances: usize,
    capacity: Mutex<Capacity>,
    released: Notify,
    actors: Mutex<HashMap<(String, String), Actor>>,
    epoch: Instant,
    storage: Mutex<StorageSizes>,
}

/// Database sizes per object and their totals per worker (for the storage gauge).
#[derive(Debug, Default)]
struct StorageSizes {
    objects: HashMap<(String, String), u64>,
    by_worker: HashMap<String, u64>,
}

impl Router {
    /// A router over `registry`, starting instances from `pool`, metering into `meter`.
    pub fn new(
        registry: Arc<Registry>,
        pool: Arc<HuskPool>,
        meter: Arc<Meter>,
        metrics: Arc<Metrics>,
        logs: Arc<crate::logs::LogHub>,
        idle_timeout: Duration,
        max_instances: usize,
    ) -> Arc<Self> {
        Arc::new(Router {
            registry,
            pool,
            meter,
            metrics,
            logs,
            next_request: AtomicU64::new(1),
            idle_timeout,
            max_instances,
            capacity: Mutex::new(Capacity::default()),
            released: Notify::new(),
            actors: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            storage: Mutex::new(StorageSizes::default()),
        })
    }

    /// Running instances now.
    pub fn active_instances(&self) -> usize {
        self.capacity.lock().expect("capacity lock").total
    }

    /// Running instances of one worker now.
    pub fn worker_instances(&self, worker: &str) -> usize {
        self.capacity
            .lock()
            .expect("capacity lock")
            .by_worker
            .get(worker)
            .copied()
            .unwrap_or(0)
    }

    /// Send a request to `worker`'s `object` and wait for its response.
    pub async fn dispatch(
        self: &Arc<Self>,
        worker: &str,
        object: &str,
        mut req: GuestRequest,
    ) -> Result<GuestResponse, ApiError> {
        req.id = self.next_request.fetch_add(1, Ordering::Relaxed);
        crate::names::check_worker(worker)?;
        crate::names::check_object(object)?;
        // the worker must exist before an actor (or an object) is made for it
        let deployed = self.registry.current(worker).await?;
        let (reply, rx) = oneshot::channel();
        let mut job = Job {
            req,
            deployed,
            reply,
        };
        for _ in 0..2 {
            let tx = self.actor(worker, object);
            match tx.try_send(job) {
                Ok(()) => {
                    return rx
                        .await
                        .unwrap_or_else(|_| Err(ApiError::internal("the object's actor stopped")))
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics.reject(LimitKind::QueueFull);
                    self.metrics
                        .request(worker, Outcome::Rejected, Duration::ZERO);
                    return Err(ApiError::unavailable(format!(
                        "object {object:?} has {QUEUE_DEPTH} requests waiting; try again later"
                    )));
                }
                Err(mpsc::error::TrySendError::Closed(j)) => {
                    // the actor ended (idle) just now: forget it and make a new one
                    self.actors
                        .lock()
                        .expect("actors lock")
                        .remove(&(worker.to_string(), object.to_string()));
                    job = j;
                }
            }
        }
        Err(ApiError::internal("could not reach the object's actor"))
    }

    /// Remember an object's database size for the per-worker storage gauge.
    fn note_storage(&self, worker: &str, object: &str, bytes: u64) {
        let mut s = self.storage.lock().expect("storage lock");
        let old = s
            .objects
            .insert((worker.to_string(), object.to_string()), bytes)
            .unwrap_or(0);
        let total = s.by_worker.entry(worker.to_string()).or_insert(0);
        *total = total.saturating_sub(old).saturating_add(bytes);
        self.metrics.set_storage(worker, *total);
    }

    /// Whether an object has a live actor (a running instance or an open database).
    pub fn is_active(&self, worker: &str, object: &str) -> bool {
        self.actors
            .lock()
            .expect("actors lock")
            .get(&(worker.to_string(), object.to_string()))
            .is_some_and(|a| !a.tx.is_closed())
    }

    /// Stop and forget the actors of a worker (or of one object).
    pub fn forget(&self, worker: &str, object: Option<&str>) {
        {
            let mut s = self.storage.lock().expect("storage lock");
            let mut freed = 0u64;
            s.objects.retain(|(w, o), b| {
                let gone = w == worker && object.is_none_or(|x| x == o);
                if gone {
                    freed += *b;
                }
                !gone
            });
            if object.is_none() {
                s.by_worker.remove(worker);
            } else if let Some(t) = s.by_worker.get_mut(worker) {
                *t = t.saturating_sub(freed);
                self.metrics.set_storage(worker, *t);
            }
        }
        if object.is_none() {
            self.metrics.forget_worker(worker);
        }
        self.actors
            .lock()
            .expect("actors lock")
            .retain(|(w, o), a| {
                let gone = w == worker && object.is_none_or(|x| x == o);
                if gone {
                    a.state.stop.notify_one();
                }
                !gone
            });
    }

    /// A place for a new instance of `worker`, stopping idle instances (least recently used
    /// first) and waiting up to [`CAPACITY_WAIT`] when full.
    async fn slot(self: &Arc<Self>, worker: &str, worker_max: u64) -> Result<Slot, ApiError> {
        let worker_max = usize::try_from(worker_max).unwrap_or(usize::MAX);
        let deadline = tokio::time::Instant::now() + CAPACITY_WAIT;
        loop {
            let released = self.released.notified();
            let full = {
                let mut c = self.capacity.lock().expect("capacity lock");
                let mine = c.by_worker.get(worker).copied().unwrap_or(0);
                if c.total < self.max_instances && mine < worker_max {
                    c.total += 1;
                    *c.by_worker.entry(worker.to_string()).or_insert(0) += 1;
                    self.metrics.set_instances(c.total);
                    None
                } else if mine >= worker_max {
                    Some(true)
                } else {
                    Some(false)
                }
            };
            let Some(worker_full) = full else {
                return Ok(Slot {
                    router: Arc::clone(self),
                    worker: worker.to_string(),
                });
            };
            self.evict_idle(worker_full.then_some(worker));
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                self.metrics.reject(LimitKind::MaxInstances);
                return Err(ApiError::unavailable(if worker_full {
                    format!("worker {worker:?} runs its limit of {worker_max} instances, all busy; try again later")
                } else {
                    format!(
                        "the daemon runs its limit of {} instances, all busy; try again later",
                        self.max_instances
                    )
                }));
            }
        }
    }

    /// Ask the least recently used idle instance (of `worker`, if given) to stop.
    fn evict_idle(&self, worker: Option<&str>) {
        let actors = self.actors.lock().expect("actors lock");
        let victim = actors
            .iter()
            .filter(|((w, _), a)| {
                worker.is_none_or(|x| x == w) && a.state.idle_instance.load(Ordering::SeqCst)
            })
            .min_by_key(|(_, a)| a.state.last_used.load(Ordering::SeqCst));
        if let Some((key, a)) = victim {
            tracing::info!(worker = %key.0, object = %key.1, "stopping an idle instance to make room");
            a.state.stop.notify_one();
        }
    }

    fn actor(self: &Arc<Self>, worker: &str, object: &str) -> mpsc::Sender<Job> {
        let key = (worker.to_string(), object.to_string());
        let mut actors = self.actors.lock().expect("actors lock");
        if let Some(a) = actors.get(&key) {
            if !a.tx.is_closed() {
                return a.tx.clone();
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let state = Arc::new(ActorState {
            idle_instance: AtomicBool::new(false),
            last_used: AtomicU64::new(0),
            stop: Notify::new(),
        });
        actors.insert(
            key.clone(),
            Actor {
                tx: tx.clone(),
                state: Arc::clone(&state),
            },
        );
        let router = Arc::clone(self);
        tokio::spawn(async move {
            ObjectActor {
                router,
                worker: key.0,
                object: key.1,
                instance: None,
                db: None,
                state,
                spawn_time: None,
                db_path: None,
            }
            .run(rx)
            .await
        });
        tx
    }
}

struct ObjectActor {
    router: Arc<Router>,
    worker: String,
    object: String,
    instance: Option<(Instance, Slot)>,
    db: Option<ObjectDb>,
    state: Arc<ActorState>,
    /// how long the last instance start took (for the spawn histogram)
    spawn_time: Option<Duration>,
    /// the object's database, once registered
    db_path: Option<std::path::PathBuf>,
}

impl ObjectActor {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        loop {
            let job = tokio::select! {
                j = rx.recv() => j,
                _ = tokio::time::sleep(self.router.idle_timeout) => None,
                _ = self.state.stop.notified() => {
                    // evicted (or forgotten): stop the instance, keep serving
                    if self.instance.is_some() {
                        self.router.metrics.kill(KillKind::Idle);
                    }
                    self.stop_instance();
                    continue;
                }
            };
            let Some(job) = job else {
                // idle (or forgotten): let the instance and the database go
                if self.instance.is_some() {
                    tracing::info!(worker = %self.worker, object = %self.object, "stopping idle instance");
                    self.router.metrics.kill(KillKind::Idle);
                }
                self.stop_instance();
                self.db = None;
                rx.close();
                // serve what raced in before the close, then end
                while let Ok(job) = rx.try_recv() {
                    let r = self.handle(&job).await;
                    let _ = job.reply.send(r);
                }
                self.stop_instance();
                return;
            };
            self.state.idle_instance.store(false, Ordering::SeqCst);
            let r = self.handle(&job).await;
            let _ = job.reply.send(r);
            self.state.last_used.store(
                u64::try_from(self.router.epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
                Ordering::SeqCst,
            );
            self.state
                .idle_instance
                .store(self.instance.is_some(), Ordering::SeqCst);
        }
    }

    fn stop_instance(&mut self) {
        self.state.idle_instance.store(false, Ordering::SeqCst);
        if let Some((mut i, _slot)) = self.instance.take() {
            self.count_pids_hits(&mut i);
            i.stop();
        }
    }

    /// Forks the pids limit refused in an instance, for the metrics (read when it ends).
    fn count_pids_hits(&self, i: &mut Instance) {
        let n = i.take_pids_hits();
        if n > 0 {
            self.router.metrics.reject_n(LimitKind::Pids, n);
        }
    }

    async fn handle(&mut self, job: &Job) -> Result<GuestResponse, ApiError> {
        let deployed = &job.deployed;
        let limits = &deployed.limits;
        let mut usage = Counters {
            requests: 1,
            bytes_in: u64::try_from(job.req.body.len()).unwrap_or(u64::MAX),
            ..Counters::default()
        };
        let started = Instant::now();
        let result = self.serve(job, &mut usage).await;
        usage.wall_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Ok(r) = &result {
            usage.bytes_out = u64::try_from(r.body.len()).unwrap_or(u64::MAX);
        }
        let metrics = &self.router.metrics;
        if let Some((inst, _)) = &self.instance {
            if let Some(kill) = inst.ended {
                match kill {
                    KillKind::Oom => usage.kills_oom += 1,
                    KillKind::Timeout => usage.kills_timeout += 1,
                    KillKind::Cpu => usage.kills_cpu += 1,
                    KillKind::Seccomp => usage.kills_seccomp += 1,
                    _ => usage.kills_crash += 1,
                }
                metrics.kill(kill);
                let limit = match kill {
                    KillKind::Oom => Some(LimitKind::Memory),
                    KillKind::Timeout => Some(LimitKind::Timeout),
                    KillKind::Cpu => Some(LimitKind::CpuBudget),
                    _ => None,
                };
                if let Some(l) = limit {
                    metrics.reject(l);
                }
            }
        }
        let outcome = match &result {
            Ok(r) => Outcome::from_status(r.status),
            Err(e) => match e.code {
                "guest_crashed" => Outcome::GuestCrashed,
                "guest_killed" => Outcome::GuestKilled,
                "guest_timeout" => Outcome::GuestTimeout,
                "guest_protocol" => Outcome::GuestProtocol,
                "response_too_large" => {
                    metrics.reject(LimitKind::ResponseBody);
                    Outcome::Rejected
                }
                "too_many_objects" => {
                    metrics.reject(LimitKind::MaxObjects);
                    Outcome::Rejected
                }
                "unavailable" => Outcome::Rejected,
                _ => Outcome::Error,
            },
        };
        metrics.request(&self.worker, outcome, started.elapsed());
        tracing::debug!(
            request_id = job.req.id,
            worker = %self.worker,
            object = %self.object,
            outcome = outcome.as_str(),
            status = result.as_ref().map(|r| r.status).unwrap_or(0),
            micros = usage.wall_us,
            "request"
        );
        if let Err(e) = &result {
            // a broken instance is dropped: the next request starts a new one
            if self
                .instance
                .as_ref()
                .is_some_and(|(i, _)| i.ended.is_some())
            {
                self.instance = None;
            }
            tracing::warn!(worker = %self.worker, object = %self.object, request_id = job.req.id, code = e.code, "request failed: {}", e.message);
        }
        let _ = limits;
        if usage.instance_starts > 0 {
            if let Some(t) = self.spawn_time.take() {
                metrics.spawn(t);
            }
        }
        self.router.meter.add(&self.worker, &self.object, &usage);
        result
    }

    async fn serve(&mut self, job: &Job, usage: &mut Counters) -> Result<GuestResponse, ApiError> {
        let deployed = &job.deployed;
        let limits = Limits {
            memory: deployed.limits.memory,
            pids: deployed.limits.pids,
            cpu: deployed.limits.cpu,
        };
        // a redeploy: the old version finished its last request; replace it now
        if self
            .instance
            .as_ref()
            .is_some_and(|(i, _)| i.version != deployed.version)
        {
            self.router.metrics.kill(KillKind::Redeploy);
            self.stop_instance();
        }
        // the object is registered once per actor; after that its path is known here
        let registry = Arc::clone(&self.router.registry);
        let known = self.db_path.clone();
        let register = sendable(async {
            match known {
                Some(p) => Ok(p),
                None => {
                    registry
                        .object_file(&self.worker, &self.object, deployed.limits.max_objects)
                        .await
                }
            }
        });
        let db_path = if self.instance.is_none() {
            let slot = self
                .router
                .slot(&self.worker, deployed.limits.max_instances)
                .await?;
            // the cold path: register the object while its instance starts
            let t0 = Instant::now();
            let start = Instance::start(
                Arc::clone(&self.router.pool),
                Arc::clone(&self.router.logs),
                Arc::clone(deployed),
                self.worker.clone(),
                self.object.clone(),
            );
            let (path, inst) = tokio::join!(register, start);
            // an object over the worker's limit is refused (its instance is dropped: killed)
            let path = path?;
            self.instance = Some((inst?, slot));
            self.spawn_time = Some(t0.elapsed());
            usage.instance_starts += 1;
            path
        } else {
            register.await?
        };
        self.db_path = Some(db_path.clone());
        let (inst, _) = self.instance.as_mut().expect("instance started above");
        // limits changed without a redeploy apply to the running instance
        inst.update_limits(limits)?;
        let cpu_before = inst.cpu_usec();
        let mut store = RequestStore::new(&mut self.db, &db_path, deployed.limits.storage);
        store.observe(&self.worker, &self.router.metrics);
        let result = sendable(inst.call(&mut store, &job.req, &deployed.limits)).await;
        usage.cpu_us = inst.cpu_usec().saturating_sub(cpu_before);
        usage.rows_read = store.rows_read;
        usage.rows_written = store.rows_written;
        let commit = matches!(&result, Ok(r) if r.status < 400);
        let wrote = store.rows_written > 0;
        match sendable(store.finish(commit)).await {
            Ok(committed) => {
                if committed && wrote {
                    let bytes = db_size(&db_path);
                    self.router
                        .meter
                        .set_storage(&self.worker, &self.object, bytes);
                    self.router.note_storage(&self.worker, &self.object, bytes);
                }
            }
            Err(e) => {
                self.db = None;
                return Err(ApiError::internal(format!("commit failed: {e}")));
            }
        }
        result
    }
}

/// Bytes of an object's database and its WAL.
fn db_size(path: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}
