//! One object's instance: its worker's program running in a cell from the husk pool, spoken to
//! over the guest socket (fd 3). Starting one takes a warm husk; the program's stdout and
//! stderr are logged line by line with the worker and object; a dedicated thread waits for the
//! cell so that a crash, a kill or a seccomp violation is known at once.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::sync::oneshot;
use warren_jail::pool::HuskPool;
use warren_jail::{KillHandle, KillReason, Limits, Outcome, StartRequest};

use crate::broker::RequestStore;
use crate::config::WorkerLimits;
use crate::error::ApiError;
use crate::frame::{self, Frame, MAX_FRAME, VERSION};
use crate::logs::{CaptureHandle, InstanceLogLimits, LogHub, Stream};
use crate::metrics::KillKind;
use crate::registry::Deployed;
use std::sync::atomic::{AtomicU64, Ordering};

/// How often a running request's CPU use is checked against its budget.
const CPU_CHECK: Duration = Duration::from_millis(20);

/// Longest a guest may take to say hello.
pub const HELLO_TIME: Duration = Duration::from_secs(10);

/// A request for a guest (`id` is the daemon-wide request id, also in the logs).
pub type GuestRequest = warren_guest::Request;

/// A guest's answer.
pub type GuestResponse = warren_guest::Response;

/// A running instance.
#[derive(Debug)]
pub struct Instance {
    /// the worker version it runs
    pub version: i64,
    /// the cgroup limits it runs under
    pub limits: Limits,
    /// how it ended, once it has
    pub ended: Option<KillKind>,
    cgroup: Option<warren_jail::cgroup::CellCgroup>,
    cpu: Option<warren_jail::cgroup::CpuMeter>,
    pids_hits_seen: u64,
    sock: UnixStream,
    kill: KillHandle,
    exited: oneshot::Receiver<Outcome>,
    /// the latest request (0: none yet), for tagging log lines
    current: Arc<AtomicU64>,
    capture: CaptureHandle,
    worker: String,
    object: String,
}

impl Instance {
    /// Start `deployed` for `object` in a husk from `pool` and complete the handshake.
    pub async fn start(
        pool: Arc<HuskPool>,
        logs: Arc<LogHub>,
        deployed: Arc<Deployed>,
        worker: String,
        object: String,
    ) -> Result<Instance, ApiError> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| ApiError::unavailable(format!("socketpair: {e}")))?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let program = Arc::clone(&deployed.program);
        let limits = Limits {
            memory: deployed.limits.memory,
            pids: deployed.limits.pids,
            cpu: deployed.limits.cpu,
        };
        let name = worker.clone();
        let started = tokio::task::spawn_blocking(move || {
            let husk = pool.take()?;
            let null = std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|source| warren_jail::JailError::Io {
                    context: "open /dev/null".into(),
                    source,
                })?;
            husk.start(StartRequest {
                program: &program,
                argv: vec![OsStr::new(&name)],
                env: vec![],
                stdin: null.as_fd(),
                stdout: out_w.as_fd(),
                stderr: err_w.as_fd(),
                fd3: Some(theirs.as_fd()),
                limits: Some(limits),
            })
        })
        .await
        .map_err(|e| ApiError::internal(format!("start task: {e}")))?
        .map_err(|e| ApiError::unavailable(format!("cannot start an instance: {e}")))?;
        let mut cell = started;
        let kill = cell
            .kill_handle()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let cgroup = cell.cgroup().cloned();
        let cpu = cgroup.as_ref().and_then(|c| c.cpu_meter());
        let (tx, exited) = oneshot::channel();
        std::thread::Builder::new()
            .name("cell-wait".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let outcome = cell.wait(None);
                if let Ok(o) = outcome {
                    let _ = tx.send(o);
                }
            })
            .map_err(|e| ApiError::unavailable(format!("spawn cell waiter: {e}")))?;
        let current = Arc::new(AtomicU64::new(0));
        let log_limits = InstanceLogLimits {
            lines_per_sec: logs.limits().lines_per_sec,
            bytes_per_instance: deployed.limits.log_bytes,
        };
        let capture = logs.capture_with(
            out_r,
            &worker,
            &object,
            Stream::Stdout,
            Arc::clone(&current),
            log_limits,
        );
        capture.also_capture(err_r, Stream::Stderr);
        ours.set_nonblocking(true)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let sock = UnixStream::from_std(ours).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut inst = Instance {
            version: deployed.version,
            limits,
            ended: None,
            cgroup,
            cpu,
            pids_hits_seen: 0,
            sock,
            kill,
            exited,
            current,
            capture,
            worker,
            object,
        };
        inst.handshake().await?;
        Ok(inst)
    }

    async fn handshake(&mut self) -> Result<(), ApiError> {
        let first = tokio::select! {
            f = frame::read(&mut self.sock, MAX_FRAME) => f,
            o = &mut self.exited => return Err(self.end(ended(o.ok(), "before saying hello"))),
            _ = tokio::time::sleep(HELLO_TIME) => {
                let why = format!("the guest did not say hello within {}s", HELLO_TIME.as_secs());
                return Err(self.kill_for(KillKind::Timeout, ApiError::guest_timeout(why)));
            }
        };
        match first {
            Ok(Frame::GuestHello {
                version: VERSION, ..
            }) => {
                let hello = Frame::SupervisorHello {
                    version: VERSION,
                    max_frame: MAX_FRAME,
                };
                frame::write(&mut self.sock, &hello)
                    .await
                    .map_err(|e| ApiError::guest_crashed(format!("guest socket: {e}")))
            }
            Ok(Frame::GuestHello { version, .. }) => {
                let why = format!(
                    "unsupported protocol version {version}; this supervisor speaks {VERSION}"
                );
                self.fail_protocol(&why).await
            }
            Ok(other) => {
                let why = format!("expected HELLO first, got {}", frame::name(&other));
                self.fail_protocol(&why).await
            }
            Err(frame::FrameError::Eof) => Err(self
                .crashed(
                    "before saying hello",
                    "the guest closed its socket before saying hello".into(),
                )
                .await),
            Err(e) => self.fail_protocol(&e.to_string()).await,
        }
    }

    async fn fail_protocol<T>(&mut self, why: &str) -> Result<T, ApiError> {
        tracing::warn!(worker = %self.worker, object = %self.object, "guest protocol error: {why}; ending the instance");
        let error = Frame::Error {
            message: why.to_string(),
        };
        let _ = frame::write(&mut self.sock, &error).await;
        self.kill.kill();
        self.ended = Some(KillKind::Protocol);
        Err(ApiError::guest_protocol(format!(
            "the guest broke the protocol: {why}"
        )))
    }

    /// Send one request and serve the guest's SQL until it responds. The caller owns the
    /// transaction; on any error the instance is dead and must be dropped.
    pub async fn call(
        &mut self,
        db: &mut RequestStore<'_>,
        req: &GuestRequest,
        limits: &WorkerLimits,
    ) -> Result<GuestResponse, ApiError> {
        let id = req.id;
        self.current.store(id, Ordering::Relaxed);
        // The id stays set after the answer: the guest's last lines may still be in the pipe
        // when the answer arrives, and belong to this request. Lines printed between requests
        // carry the previous request's id.
        let result = self.exchange(db, req, limits).await;
        if self.ended.is_some() {
            // let the last lines of a dead instance reach the log first
            let _ = tokio::time::timeout(Duration::from_millis(200), self.capture.closed()).await;
        }
        result
    }

    async fn exchange(
        &mut self,
        db: &mut RequestStore<'_>,
        req: &GuestRequest,
        limits: &WorkerLimits,
    ) -> Result<GuestResponse, ApiError> {
        let id = req.id;
        let timeout = limits.timeout;
        let cpu_start = self.cpu_usec();
        let cpu_budget = u64::try_from(limits.cpu_budget.as_micros()).unwrap_or(u64::MAX);
        let mut cpu_check =
            tokio::time::interval_at(tokio::time::Instant::now() + CPU_CHECK, CPU_CHECK);
        let deadline = tokio::time::Instant::now() + timeout;
        let request = Frame::Request(req.clone());
        if let Err(e) = frame::write(&mut self.sock, &request).await {
            return Err(self
                .crashed("while handling the request", format!("guest socket: {e}"))
                .await);
        }
        loop {
            let next = tokio::select! {
                f = frame::read(&mut self.sock, MAX_FRAME) => f,
                o = &mut self.exited => return Err(self.end(ended(o.ok(), "while handling the request"))),
                _ = cpu_check.tick() => {
                    let used = self.cpu_usec().saturating_sub(cpu_start);
                    if used > cpu_budget {
                        let why = format!(
                            "the request used more than its CPU budget of {}ms; the instance was killed",
                            limits.cpu_budget.as_millis()
                        );
                        return Err(self.kill_for(KillKind::Cpu, ApiError::guest_killed(why)));
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let why = format!(
                        "the request took longer than {}ms; the instance was killed",
                        timeout.as_millis()
                    );
                    return Err(self.kill_for(KillKind::Timeout, ApiError::guest_timeout(why)));
                }
            };
            let answer = match next {
                Ok(Frame::Sql {
                    id: sid,
                    statement,
                    params,
                }) if sid == id => match crate::sendable(db.run(&statement, &params)).await {
                    Ok(rows) => Frame::SqlResult(rows),
                    Err(f) => Frame::SqlError {
                        code: f.code,
                        message: f.message,
                    },
                },
                Ok(Frame::Tx { id: tid, op }) if tid == id => {
                    match crate::sendable(db.tx(op.to_u8())).await {
                        Ok(()) => Frame::SqlResult(warren_guest::Rows::default()),
                        Err(f) => Frame::SqlError {
                            code: f.code,
                            message: f.message,
                        },
                    }
                }
                Ok(Frame::Response { id: rid, response }) if rid == id => {
                    let status = response.status;
                    if !(200..=599).contains(&status) {
                        let why = format!("response status {status} is outside 200-599 (1xx is not a final answer)");
                        return self.fail_protocol(&why).await;
                    }
                    if u64::try_from(response.body.len()).unwrap_or(u64::MAX) > limits.max_response
                    {
                        return Err(ApiError::response_too_large(format!(
                            "the guest's response of {} bytes is larger than the worker's limit of {} bytes",
                            response.body.len(),
                            limits.max_response
                        )));
                    }
                    return Ok(response);
                }
                Ok(Frame::Error { message }) => {
                    return Err(self.kill_for(
                        KillKind::Crash,
                        ApiError::guest_crashed(format!("the guest gave up: {message}")),
                    ));
                }
                Ok(other) => {
                    let why = format!("unexpected {} during request {id}", frame::name(&other));
                    return self.fail_protocol(&why).await;
                }
                Err(frame::FrameError::Eof) => {
                    return Err(self
                        .crashed(
                            "while handling the request",
                            "the guest closed its socket".into(),
                        )
                        .await);
                }
                Err(e) => return self.fail_protocol(&e.to_string()).await,
            };
            if let Err(e) = frame::write(&mut self.sock, &answer).await {
                return Err(self
                    .crashed("while handling the request", format!("guest socket: {e}"))
                    .await);
            }
        }
    }

    /// The guest went away: wait briefly for the cell's outcome to say why.
    async fn crashed(&mut self, when: &str, fallback: String) -> ApiError {
        // give the cell a moment to report how the program ended, then make sure it did
        let outcome = tokio::time::timeout(Duration::from_secs(2), &mut self.exited).await;
        self.kill.kill();
        match outcome {
            Ok(Ok(o)) => self.end(ended(Some(o), when)),
            _ => self.end((KillKind::Crash, ApiError::guest_crashed(fallback))),
        }
    }

    /// Kill the instance for `kind` and return `e`.
    fn kill_for(&mut self, kind: KillKind, e: ApiError) -> ApiError {
        self.kill.kill();
        self.end((kind, e))
    }

    fn end(&mut self, (kind, e): (KillKind, ApiError)) -> ApiError {
        self.ended = Some(kind);
        e
    }

    /// CPU time the instance has used so far, microseconds (0 without the cgroup layer).
    pub fn cpu_usec(&self) -> u64 {
        self.cpu.as_ref().map(|m| m.usec()).unwrap_or(0)
    }

    /// Forks the pids limit refused since the last call (reads the cgroup's counters).
    pub fn take_pids_hits(&mut self) -> u64 {
        let hits = self
            .cgroup
            .as_ref()
            .map(|c| c.stats().pids_limit_hits)
            .unwrap_or(0);
        let new = hits.saturating_sub(self.pids_hits_seen);
        self.pids_hits_seen = hits;
        new
    }

    /// Apply new cgroup limits to the running instance (a limit change without a redeploy).
    pub fn update_limits(&mut self, limits: Limits) -> Result<(), ApiError> {
        if limits == self.limits {
            return Ok(());
        }
        if let Some(c) = &self.cgroup {
            c.set_limits(&limits)
                .map_err(|e| ApiError::internal(format!("update the instance's cgroup: {e}")))?;
        }
        self.limits = limits;
        Ok(())
    }

    /// Kill the instance.
    pub fn stop(&self) {
        self.kill.kill();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill.kill();
    }
}

/// The error for an instance that ended, from its outcome.
fn ended(o: Option<Outcome>, when: &str) -> (KillKind, ApiError) {
    let Some(o) = o else {
        return (
            KillKind::Crash,
            ApiError::guest_crashed(format!("the instance ended {when}")),
        );
    };
    match &o.reason {
        Some(KillReason::Seccomp(name)) => (
            KillKind::Seccomp,
            ApiError::guest_killed(format!(
                "the instance was killed {when}: seccomp violation: {name}"
            )),
        ),
        Some(KillReason::MemoryLimit) => (
            KillKind::Oom,
            ApiError::guest_killed(format!(
                "the instance was killed {when}: memory limit reached"
            )),
        ),
        _ => (
            KillKind::Crash,
            ApiError::guest_crashed(format!(
                "the instance ended {when} ({})",
                o.describe()
                    .unwrap_or_else(|| format!("exit code {}", o.exit_code()))
            )),
        ),
    }
}

/// A log pipe: the read end non-blocking (for the runtime), the write end blocking, so a guest
/// that prints fast waits instead of failing with EAGAIN.
fn pipe() -> Result<(OwnedFd, OwnedFd), ApiError> {
    use std::os::fd::AsRawFd;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ApiError::unavailable(format!("pipe: {e}")))?;
    nix::fcntl::fcntl(
        r.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| ApiError::unavailable(format!("pipe: {e}")))?;
    Ok((r, w))
}
