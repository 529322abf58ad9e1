//! HTTP surfaces: the control API on the Unix socket (`docs/api.md`, `docs/openapi.yaml`) and
//! the optional ingress on a loopback TCP port, where `/<worker>/<object>/<path>` reaches an
//! object and nothing else (no admin operation is routed there).
//!
//! Every connection to the control socket is checked with `SO_PEERCRED` before it is served.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use warren_jail::pool::HuskPool;
use warren_jail::units::{parse_cpus, parse_duration, parse_size};

use crate::config::{Config, WorkerLimits};
use crate::error::ApiError;
use crate::instance::GuestRequest;
use crate::objects::Router;
use crate::registry::{Registry, MAX_PROGRAM};

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    /// workers and objects
    pub registry: Arc<Registry>,
    /// live objects
    pub router: Arc<Router>,
    /// warm husks
    pub pool: Arc<HuskPool>,
    /// usage meter
    pub meter: Arc<crate::usage::Meter>,
    /// Prometheus metrics
    pub metrics: Arc<crate::metrics::Metrics>,
    /// guest logs
    pub logs: Arc<crate::logs::LogHub>,
    /// settings
    pub config: Config,
    /// who may use the control socket besides root and the daemon's own uid
    pub group: Option<Group>,
    /// requests being handled right now (shutdown waits for them)
    pub in_flight: std::sync::atomic::AtomicUsize,
}

/// The group allowed on the control socket.
#[derive(Debug, Clone)]
pub struct Group {
    /// its gid
    pub gid: u32,
    /// its member user names
    pub members: Vec<String>,
}

type Body = BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Control,
    Ingress,
}

/// Serve the control API until `shutdown` turns true. Each connection's peer is checked with
/// `SO_PEERCRED` once, before its first request.
pub async fn serve_control(listener: UnixListener, app: Arc<App>, shutdown: watch::Receiver<bool>) {
    let accept = || async {
        let (stream, _) = listener.accept().await?;
        let allowed = stream
            .peer_cred()
            .map(|c| peer_allowed(&app, c.uid(), c.gid()))
            .unwrap_or(false);
        Ok((stream, allowed))
    };
    accept_loop(
        "control socket",
        accept,
        Arc::clone(&app),
        Surface::Control,
        shutdown,
    )
    .await
}

/// Serve the ingress until `shutdown` turns true.
pub async fn serve_ingress(listener: TcpListener, app: Arc<App>, shutdown: watch::Receiver<bool>) {
    let accept = || async {
        let (stream, _) = listener.accept().await?;
        Ok((stream, true))
    };
    accept_loop("ingress", accept, app, Surface::Ingress, shutdown).await
}

/// Accept connections (with whether each peer may be served) and serve HTTP/1.1 on each
/// until `shutdown` turns true.
async fn accept_loop<S, F, Fut>(
    what: &'static str,
    accept: F,
    app: Arc<App>,
    surface: Surface,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<(S, bool)>>,
{
    loop {
        let (stream, allowed) = tokio::select! {
            r = accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("{what} accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let app = Arc::clone(&app);
                async move {
                    if !allowed {
                        return Ok::<_, Infallible>(error_response(&ApiError::forbidden(
                            "this user may not use warrend's control socket (root, the daemon's user and the configured group may)",
                        )));
                    }
                    Ok(handle(app, req, surface).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn peer_allowed(app: &App, uid: u32, gid: u32) -> bool {
    if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
        return true;
    }
    let Some(g) = &app.group else { return false };
    if gid == g.gid {
        return true;
    }
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .is_some_and(|u| g.members.contains(&u.name))
}

async fn handle(app: Arc<App>, req: Request<Incoming>, surface: Surface) -> Response<Body> {
    use std::sync::atomic::Ordering;
    app.in_flight.fetch_add(1, Ordering::SeqCst);
    let r = handle_counted(&app, req, surface).await;
    app.in_flight.fetch_sub(1, Ordering::SeqCst);
    r
}

async fn handle_counted(
    app: &Arc<App>,
    req: Request<Incoming>,
    surface: Surface,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let result = match surface {
        Surface::Control => route_control(app, req).await,
        Surface::Ingress => route_ingress(app, req).await,
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(%method, %path, code = e.code, "{}", e.message);
            }
            error_response(&e)
        }
    }
}

fn json_params(v: &serde_json::Value) -> Result<Vec<warren_guest::Value>, ApiError> {
    use warren_guest::Value;
    let Some(list) = v.as_array() else {
        return if v.is_null() {
            Ok(Vec::new())
        } else {
            Err(ApiError::bad_request("\"params\" must be a list"))
        };
    };
    list.iter()
        .map(|p| match p {
            serde_json::Value::Null => Ok(Value::Null),
            serde_json::Value::Bool(b) => Ok(Value::Integer(i64::from(*b))),
            serde_json::Value::Number(n) => Ok(n
                .as_i64()
                .map(Value::Integer)
                .unwrap_or_else(|| Value::Real(n.as_f64().unwrap_or(0.0)))),
            serde_json::Value::String(s) => Ok(Value::Text(s.clone())),
            _ => Err(ApiError::bad_request(
                "params must be null, booleans, numbers or strings",
            )),
        })
        .collect()
}

fn json_value(v: &warren_guest::Value) -> serde_json::Value {
    use warren_guest::Value;
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => serde_json::json!(i),
        Value::Real(f) => serde_json::json!(f),
        Value::Text(t) => serde_json::json!(t),
        Value::Blob(b) => {
            serde_json::json!({ "blob_hex": b.iter().map(|x| format!("{x:02x}")).collect::<String>() })
        }
    }
}

/// Run an operator's statement on an object's database, in its own transaction, under the
/// same guards as guest SQL (no ATTACH, no settings, no extensions).
async fn admin_sql(
    app: &App,
    worker: &str,
    object: &str,
    sql: &str,
    params: &[warren_guest::Value],
) -> Result<serde_json::Value, ApiError> {
    let w = app.registry.worker(worker).await?;
    crate::names::check_object(object)?;
    let known = app
        .registry
        .objects(worker)
        .await?
        .iter()
        .any(|(o, _)| o == object);
    if !known {
        return Err(ApiError::not_found(format!(
            "worker {worker:?} has no object {object:?}"
        )));
    }
    let path = app
        .registry
        .object_file(worker, object, w.limits.max_objects)
        .await?;
    let mut db = None;
    let mut store = crate::broker::RequestStore::new(&mut db, &path, w.limits.storage);
    let result = store.run(sql, params).await;
    let ok = result.is_ok();
    let wrote = store.rows_written > 0;
    let committed = store
        .finish(ok)
        .await
        .map_err(|e| ApiError::internal(format!("commit: {e}")))?;
    if committed || wrote {
        let bytes = ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
            .map(|m| m.len())
            .sum();
        app.meter.set_storage(worker, object, bytes);
    }
    match result {
        Ok(rows) => Ok(serde_json::json!({
            "columns": rows.columns,
            "rows": rows.rows.iter().map(|r| r.iter().map(json_value).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "rows_changed": rows.rows_changed,
            "last_insert_id": rows.last_insert_id,
        })),
        Err(f) => Err(ApiError::bad_request(format!(
            "SQL error {}: {}",
            f.code, f.message
        ))),
    }
}

/// Refresh the sampled gauges and render the metrics.
pub async fn refresh_metrics(app: &App) {
    app.metrics.set_warm(app.pool.warm());
    app.metrics.set_instances(app.router.active_instances());
    if let Ok(workers) = app.registry.workers().await {
        let mut objects = 0;
        for w in &workers {
            objects += app
                .registry
                .objects(&w.name)
                .await
                .map(|o| o.len())
                .unwrap_or(0);
        }
        app.metrics.set_counts(workers.len(), objects);
    }
}

async fn metrics_response(app: &App) -> Response<Body> {
    refresh_metrics(app).await;
    let mut r = Response::new(full(app.metrics.render()));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE_TEXT),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = Response::new(full(e.body()));
    *r.status_mut() = e.status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(e.code) {
        r.headers_mut()
            .insert(HeaderName::from_static("x-warren-error"), v);
    }
    r
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(serde_json::to_vec(v).unwrap_or_default()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn decode_segment(s: &str, what: &str) -> Result<String, ApiError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            ApiError::bad_name(format!("{what} is not valid UTF-8 after percent-decoding"))
        })
}

async fn body(req: Request<Incoming>, max: u64) -> Result<Vec<u8>, ApiError> {
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => Ok(b.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(format!(
            "the request body is larger than {max} bytes"
        ))),
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

async fn route_control(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    if path == "/metrics" && req.method() == Method::GET {
        return Ok(metrics_response(app).await);
    }
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Err(ApiError::not_found(format!(
            "no such endpoint {path} (the API lives under /v1/)"
        )));
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let method = req.method().clone();
    match (segs.as_slice(), &method) {
        (["health"], &Method::GET) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "warm_husks": app.pool.warm(),
                "instances": app.router.active_instances(),
            }),
        )),
        (["doctor"], &Method::GET) => {
            let layers: Vec<_> = warren_jail::doctor::check_with(
                &warren_jail::Profile::default(),
                app.pool.zygote().cgroups(),
            )
            .into_iter()
            .map(|r| serde_json::json!({"layer": r.layer.to_string(), "ok": r.ok, "detail": r.detail}))
            .collect();
            let pool_error = app.pool.last_error();
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "layers": layers,
                    "warm_husks": app.pool.warm(),
                    "pool_size": app.config.pool_size,
                    "pool_error": pool_error,
                    "instances": app.router.active_instances(),
                    "state_dir": app.config.state_dir.display().to_string(),
                }),
            ))
        }
        (["workers", w, "objects", o, "sql"], &Method::POST) => {
            let worker = decode_segment(w, "worker name")?;
            let object = decode_segment(o, "object name")?;
            let body = body(req, 1 << 20).await?;
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(format!(
                    "body must be JSON {{\"sql\": \"...\", \"params\": [...]}}: {e}"
                ))
            })?;
            let sql = v["sql"]
                .as_str()
                .ok_or_else(|| ApiError::bad_request("body needs a string field \"sql\""))?;
            let params = json_params(&v["params"])?;
            let rows = admin_sql(app, &worker, &object, sql, &params).await?;
            Ok(json(StatusCode::OK, &rows))
        }
        (["usage"], &Method::GET) => {
            let mut worker = None;
            let mut since = 0u64;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            for pair in req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
                match k {
                    "worker" => {
                        crate::names::check_worker(&v)?;
                        worker = Some(v);
                    }
                    "since" => {
                        since = crate::usage::parse_since(&v, now)
                            .map_err(|e| ApiError::bad_request(format!("since: {e}")))?
                    }
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "unknown parameter {other:?} (known: worker, since)"
                        )))
                    }
                }
            }
            // a deleted worker's past usage stays queryable: no existence check
            let report = app.meter.report(worker.as_deref(), since).await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"since": since - since % 3600, "workers": report}),
            ))
        }
        (["workers"], &Method::GET) => {
            let workers = app.registry.workers().await?;
            let counts = app.registry.object_counts().await?;
            let list: Vec<serde_json::Value> = workers
                .iter()
                .map(|w| {
                    let mut v = serde_json::to_value(w).unwrap_or_default();
                    v["objects"] = counts.get(&w.name).copied().unwrap_or(0).into();
                    v["active_instances"] = app.router.worker_instances(&w.name).into();
                    v
                })
                .collect();
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "workers": list }),
            ))
        }
        (["workers", w], m) if m == Method::PUT || m == Method::POST => {
            let name = decode_segment(w, "worker name")?;
            crate::names::check_worker(&name)?;
            let limits = parse_limits(req.uri().query().unwrap_or(""), app.config.defaults)?;
            let program = body(req, MAX_PROGRAM).await?;
            if program.is_empty() {
                return Err(ApiError::bad_request(
                    "the request body must be the program (an ELF executable)",
                ));
            }
            let w = app.registry.deploy(&name, &program, limits).await?;
            tracing::info!(worker = %w.name, version = w.version, sha256 = %w.sha256, "deployed");
            Ok(json(
                StatusCode::CREATED,
                &serde_json::to_value(&w).unwrap_or_default(),
            ))
        }
        (["workers", w], &Method::PATCH) => {
            let name = decode_segment(w, "worker name")?;
            let current = app.registry.current(&name).await?.limits;
            let query = req.uri().query().unwrap_or("");
            if query.is_empty() {
                return Err(ApiError::bad_request(
                    "give the limits to change as query parameters, e.g. ?memory=64M&timeout=5s",
                ));
            }
            let limits = parse_limits(query, current)?;
            let w = app.registry.set_limits(&name, limits).await?;
            tracing::info!(worker = %name, "limits changed");
            Ok(json(
                StatusCode::OK,
                &serde_json::to_value(&w).unwrap_or_default(),
            ))
        }
        (["workers", w], &Method::GET) => {
            let name = decode_segment(w, "worker name")?;
            let info = app.registry.worker(&name).await?;
            let versions = app.registry.versions(&name).await?;
            let mut v = serde_json::to_value(&info).unwrap_or_default();
            v["versions"] = serde_json::to_value(versions).unwrap_or_default();
            v["objects"] = app
                .registry
                .object_counts()
                .await?
                .get(&name)
                .copied()
                .unwrap_or(0)
                .into();
            v["active_instances"] = app.router.worker_instances(&name).into();
            Ok(json(StatusCode::OK, &v))
        }
        (["workers", w], &Method::DELETE) => {
            let name = decode_segment(w, "worker name")?;
            app.registry.worker(&name).await?;
            app.router.forget(&name, None);
            app.logs.forget(&name);
            let objects = app.registry.delete_worker(&name).await?;
            tracing::info!(worker = %name, objects, "deleted worker");
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"deleted": name, "objects": objects}),
            ))
        }
        (["workers", w, "logs"], &Method::GET) => {
            let name = decode_segment(w, "worker name")?;
            app.registry.worker(&name).await?;
            let request = crate::logs::LogRequest::from_query(req.uri().query().unwrap_or(""))?;
            let mut r = Response::new(app.logs.body(&name, &request).boxed());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            Ok(r)
        }
        (["workers", w, "objects"], &Method::GET) => {
            let name = decode_segment(w, "worker name")?;
            let objects = app.registry.objects(&name).await?;
            let list: Vec<_> = objects
                .into_iter()
                .map(|(o, bytes)| {
                    let active = app.router.is_active(&name, &o);
                    serde_json::json!({"name": o, "bytes": bytes, "active": active})
                })
                .collect();
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "objects": list }),
            ))
        }
        (["workers", w, "objects", o], &Method::DELETE) => {
            let name = decode_segment(w, "worker name")?;
            let object = decode_segment(o, "object name")?;
            app.registry.worker(&name).await?;
            app.router.forget(&name, Some(&object));
            app.registry.delete_object(&name, &object).await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"deleted": object}),
            ))
        }
        (["workers", w, "objects", o, "fetch", tail @ ..], _) => {
            let worker = decode_segment(w, "worker name")?;
            let object = decode_segment(o, "object name")?;
            let guest_path = format!("/{}", tail.join("/"));
            fetch(app, req, &worker, &object, guest_path).await
        }
        (
            ["workers"]
            | ["health"]
            | ["workers", _]
            | ["workers", _, "objects"]
            | ["workers", _, "objects", _],
            _,
        ) => Err(ApiError::method_not_allowed(format!(
            "{method} is not allowed on {path}"
        ))),
        _ => Err(ApiError::not_found(format!(
            "no such endpoint {method} {path}"
        ))),
    }
}

async fn route_ingress(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let (Some(w), Some(o)) = (parts.next(), parts.next()) else {
        return Err(ApiError::not_found(
            "ingress paths are /<worker>/<object>/<path>",
        ));
    };
    if w.is_empty() || o.is_empty() {
        return Err(ApiError::not_found(
            "ingress paths are /<worker>/<object>/<path>",
        ));
    }
    let worker = decode_segment(w, "worker name")?;
    let object = decode_segment(o, "object name")?;
    let guest_path = format!("/{}", parts.next().unwrap_or(""));
    fetch(app, req, &worker, &object, guest_path).await
}

async fn fetch(
    app: &Arc<App>,
    req: Request<Incoming>,
    worker: &str,
    object: &str,
    path: String,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    let body = match body(req, app.config.max_request_body).await {
        Ok(b) => b,
        Err(e) => {
            if e.code == "too_large" {
                app.metrics.reject(crate::metrics::LimitKind::RequestBody);
                app.metrics
                    .request(worker, crate::metrics::Outcome::Rejected, Duration::ZERO);
            }
            return Err(e);
        }
    };
    let resp = app
        .router
        .dispatch(
            worker,
            object,
            GuestRequest {
                id: 0,
                method,
                path,
                query,
                headers,
                body,
            },
        )
        .await?;
    let mut r = Response::new(full(resp.body));
    *r.status_mut() = StatusCode::from_u16(resp.status)
        .map_err(|_| ApiError::guest_protocol(format!("invalid status {}", resp.status)))?;
    for (k, v) in resp.headers {
        match (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(&v),
        ) {
            (Ok(k), Ok(v)) if !SUPERVISOR_HEADERS.contains(&k.as_str()) => {
                r.headers_mut().append(k, v);
            }
            _ => tracing::debug!(%worker, %object, "dropping invalid response header {k:?}"),
        }
    }
    Ok(r)
}

/// Response headers a guest may not set: framing is the supervisor's, and `x-warren-error`
/// marks the daemon's own errors.
const SUPERVISOR_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "proxy-connection",
    "x-warren-error",
];

fn parse_limits(query: &str, defaults: WorkerLimits) -> Result<WorkerLimits, ApiError> {
    let mut l = defaults;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
        let bad = |e: String| ApiError::bad_request(format!("{k}: {e}"));
        match k {
            "memory" => l.memory = parse_size(&v).map_err(bad)?,
            "storage" => l.storage = parse_size(&v).map_err(bad)?,
            "cpu" => l.cpu = parse_cpus(&v).map_err(bad)?,
            "timeout" => l.timeout = parse_duration(&v).map_err(bad)?,
            "pids" => {
                l.pids = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| bad(format!("{v:?} is not a process count (1 to 1000000)")))?
            }
            "max_objects" => {
                l.max_objects = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad(format!("{v:?} is not a positive object count")))?
            }
            "max_instances" => {
                l.max_instances = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad(format!("{v:?} is not a positive instance count")))?
            }
            "cpu_budget" => l.cpu_budget = parse_duration(&v).map_err(bad)?,
            "max_response" => l.max_response = parse_size(&v).map_err(bad)?,
            "log_bytes" => l.log_bytes = parse_size(&v).map_err(bad)?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?} (known: memory, pids, cpu, storage, max_objects, timeout, cpu_budget, max_response, max_instances, log_bytes)"
                )))
            }
        }
    }
    if l.memory < (4 << 20) {
        return Err(ApiError::bad_request("memory: at least 4M"));
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_from_query() {
        let d = WorkerLimits::default();
        let l = parse_limits(
            "memory=64M&pids=8&cpu=0.5&storage=1M&max_objects=3&timeout=2s",
            d,
        )
        .unwrap();
        assert_eq!(l.memory, 64 << 20);
        assert_eq!(l.pids, 8);
        assert_eq!(l.cpu, 0.5);
        assert_eq!(l.storage, 1 << 20);
        assert_eq!(l.max_objects, 3);
        assert_eq!(l.timeout, Duration::from_secs(2));
        assert!(parse_limits("memory=12Q", d)
            .unwrap_err()
            .message
            .contains("memory"));
        assert!(parse_limits("bogus=1", d)
            .unwrap_err()
            .message
            .contains("bogus"));
        assert!(parse_limits("pids=0", d).is_err());
        assert!(parse_limits("memory=1M", d).is_err());
        assert_eq!(parse_limits("", d).unwrap(), d);
    }
}
