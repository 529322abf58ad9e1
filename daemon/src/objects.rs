//! The router: one actor task per live object. Requests to one object queue in its actor and
//! run one at a time in arrival order; different objects run in parallel. The actor owns the
//! object's instance and open database, starts the instance on first use (and again after a
//! crash or a redeploy), wraps every request in a transaction, and lets both go after
//! `idle_timeout` without requests. Running instances are bounded by `max_instances`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use warren_jail::pool::HuskPool;

use crate::broker::{ObjectDb, RequestStore};
use crate::error::ApiError;
use crate::instance::{GuestRequest, GuestResponse, Instance};
use crate::registry::Deployed;
use crate::registry::Registry;
use crate::sendable;

/// Requests that may wait for one object.
const QUEUE_DEPTH: usize = 1024;

/// One request waiting for its object, with what the router already looked up.
struct Job {
    req: GuestRequest,
    deployed: Arc<Deployed>,
    reply: oneshot::Sender<Result<GuestResponse, ApiError>>,
}

#[derive(Debug)]
struct Actor {
    tx: mpsc::Sender<Job>,
}

/// Routes requests to objects.
#[derive(Debug)]
pub struct Router {
    registry: Arc<Registry>,
    pool: Arc<HuskPool>,
    idle_timeout: Duration,
    instances: Arc<Semaphore>,
    actors: Mutex<HashMap<(String, String), Actor>>,
}

impl Router {
    /// A router over `registry`, starting instances from `pool`.
    pub fn new(
        registry: Arc<Registry>,
        pool: Arc<HuskPool>,
        idle_timeout: Duration,
        max_instances: usize,
    ) -> Arc<Self> {
        Arc::new(Router {
            registry,
            pool,
            idle_timeout,
            instances: Arc::new(Semaphore::new(max_instances)),
            actors: Mutex::new(HashMap::new()),
        })
    }

    /// Running instances now.
    pub fn active_instances(&self, max: usize) -> usize {
        max - self.instances.available_permits()
    }

    /// Send a request to `worker`'s `object` and wait for its response.
    pub async fn dispatch(
        self: &Arc<Self>,
        worker: &str,
        object: &str,
        req: GuestRequest,
    ) -> Result<GuestResponse, ApiError> {
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
                    return Err(ApiError::unavailable(format!(
                        "object {object:?} has {QUEUE_DEPTH} requests waiting; try again later"
                    )))
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
        self.actors
            .lock()
            .expect("actors lock")
            .retain(|(w, o), _| !(w == worker && object.is_none_or(|x| x == o)));
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
        actors.insert(key.clone(), Actor { tx: tx.clone() });
        let router = Arc::clone(self);
        tokio::spawn(async move {
            ObjectActor {
                router,
                worker: key.0,
                object: key.1,
                instance: None,
                db: None,
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
    instance: Option<(Instance, OwnedSemaphorePermit)>,
    db: Option<ObjectDb>,
}

impl ObjectActor {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        loop {
            let job = tokio::select! {
                j = rx.recv() => j,
                _ = tokio::time::sleep(self.router.idle_timeout) => None,
            };
            let Some(job) = job else {
                // idle (or forgotten): let the instance and the database go
                if let Some((i, _)) = self.instance.take() {
                    tracing::info!(worker = %self.worker, object = %self.object, "stopping idle instance");
                    i.stop();
                }
                self.db = None;
                rx.close();
                // serve what raced in before the close, then end
                while let Ok(job) = rx.try_recv() {
                    let r = self.handle(&job).await;
                    let _ = job.reply.send(r);
                }
                if let Some((i, _)) = self.instance.take() {
                    i.stop();
                }
                return;
            };
            let r = self.handle(&job).await;
            let _ = job.reply.send(r);
        }
    }

    async fn handle(&mut self, job: &Job) -> Result<GuestResponse, ApiError> {
        let deployed = &job.deployed;
        // a redeploy: the old version finished its last request; replace it now
        if self
            .instance
            .as_ref()
            .is_some_and(|(i, _)| i.version != deployed.version)
        {
            self.instance = None;
        }
        let registry = Arc::clone(&self.router.registry);
        let register =
            sendable(registry.object_file(&self.worker, &self.object, deployed.limits.max_objects));
        let db_path = if self.instance.is_none() {
            let permit = Arc::clone(&self.router.instances)
                .try_acquire_owned()
                .map_err(|_| {
                    ApiError::unavailable(
                        "the daemon runs its maximum number of instances; try again later",
                    )
                })?;
            // the cold path: register the object while its instance starts
            let start = Instance::start(
                Arc::clone(&self.router.pool),
                Arc::clone(deployed),
                self.worker.clone(),
                self.object.clone(),
            );
            let (path, inst) = tokio::join!(register, start);
            // an object over the worker's limit is refused (its instance is dropped: killed)
            let path = path?;
            self.instance = Some((inst?, permit));
            path
        } else {
            register.await?
        };
        let (inst, _) = self.instance.as_mut().expect("instance started above");
        let mut store = RequestStore::new(&mut self.db, &db_path, deployed.limits.storage);
        let result = sendable(inst.call(&mut store, &job.req, deployed.limits.timeout)).await;
        let commit = matches!(&result, Ok(r) if r.status < 400);
        if let Err(e) = sendable(store.finish(commit)).await {
            self.db = None;
            return Err(ApiError::internal(format!("commit failed: {e}")));
        }
        if let Err(e) = &result {
            // the instance is dead or broken: the next request starts a new one
            self.instance = None;
            tracing::warn!(worker = %self.worker, object = %self.object, code = e.code, "request failed: {}", e.message);
        }
        result
    }
}
