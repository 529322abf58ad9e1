//! `warrend`: the Warren supervisor daemon.
//!
//! `warrend [--config FILE] [--socket PATH] [--state-dir DIR]`. With no flags and no config
//! file it runs on the documented defaults (`daemon/src/config.rs`). The zygote is forked
//! first, while the process is still single-threaded; only then is the async runtime built.
//! SIGTERM or SIGINT stop accepting, let in-flight requests finish (up to 10 s), and exit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use warren_daemon::api::{self, App, Group};
use warren_daemon::config::Config;
use warren_daemon::logs::{LogHub, LogLimits};
use warren_daemon::metrics::Metrics;
use warren_daemon::objects::Router;
use warren_daemon::registry::Registry;
use warren_daemon::usage::Meter;
use warren_jail::pool::HuskPool;
use warren_jail::zygote::Zygote;
use warren_jail::{Limits, Profile};

#[derive(Parser, Debug)]
#[command(name = "warrend", version, about = "The Warren supervisor daemon")]
struct Args {
    /// TOML configuration file (default: none; built-in defaults)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// control socket path (default: WARREN_SOCKET, else /run/warren/warrend.sock)
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// state directory (default: /var/lib/warren)
    #[arg(long = "state-dir", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warrend: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(s) = args
        .socket
        .or_else(|| std::env::var_os("WARREN_SOCKET").map(PathBuf::from))
    {
        config.socket = s;
    }
    if let Some(d) = args.state_dir {
        config.state_dir = d;
    }
    if let Some(addr) = config.ingress {
        if !addr.ip().is_loopback() {
            bail!("config ingress: {addr} is not a loopback address; the ingress only listens on loopback");
        }
    }
    // Before any thread exists: the zygote must be forked from a single-threaded process.
    let zygote = Zygote::start(Profile::default(), Limits::default()).context(
        "start the zygote (warrend must run as root; `warren-jail doctor` lists what is missing)",
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("build the async runtime")?;
    runtime.block_on(serve(config, zygote))
}

async fn serve(config: Config, zygote: Zygote) -> anyhow::Result<()> {
    let registry = Arc::new(Registry::open(&config.state_dir).await?);
    let meter = Meter::open(registry.pool())
        .await
        .context("open the usage tables")?;
    let pool = Arc::new(HuskPool::new(zygote, config.pool_size));
    let metrics = Arc::new(Metrics::new());
    let logs = Arc::new(LogHub::new(LogLimits::default()));
    {
        let metrics = Arc::clone(&metrics);
        logs.on_dropped(move |worker, n| {
            metrics.log_dropped(worker, n);
            metrics.reject(warren_daemon::metrics::LimitKind::LogVolume);
        });
    }
    let router = Router::new(
        Arc::clone(&registry),
        Arc::clone(&pool),
        Arc::clone(&meter),
        Arc::clone(&metrics),
        Arc::clone(&logs),
        config.idle_timeout,
        config.max_instances,
    );
    let group = nix::unistd::Group::from_name(&config.group)
        .ok()
        .flatten()
        .map(|g| Group {
            gid: g.gid.as_raw(),
            members: g.mem,
        });
    let control = bind_control(&config.socket, group.as_ref().map(|g| g.gid))?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("bind metrics {addr} (set metrics_listen in the config to another address, or \"off\")")
        })?),
        None => None,
    };
    let ingress = match config.ingress {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind ingress {addr}"))?,
        ),
        None => None,
    };
    let app = Arc::new(App {
        registry,
        router,
        pool,
        meter: Arc::clone(&meter),
        metrics: Arc::clone(&metrics),
        logs,
        config: config.clone(),
        group,
        in_flight: std::sync::atomic::AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // the meter stops last, after in-flight requests are done and counted
    let (meter_stop, meter_stop_rx) = tokio::sync::watch::channel(false);
    let flusher = tokio::spawn(Arc::clone(&meter).run(meter_stop_rx));
    let mut tasks = vec![tokio::spawn(api::serve_control(
        control,
        Arc::clone(&app),
        stop_rx.clone(),
    ))];
    {
        // gauges sampled rather than tracked: warm husks, worker and object counts
        let app = Arc::clone(&app);
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                api::refresh_metrics(&app).await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return,
                }
            }
        }));
    }
    if let Some(l) = metrics_listener {
        tracing::info!(addr = %l.local_addr()?, "metrics listening");
        tasks.push(tokio::spawn(warren_daemon::metrics::serve(
            l,
            Arc::clone(&metrics),
            stop_rx.clone(),
        )));
    }
    if let Some(l) = ingress {
        tracing::info!(addr = %l.local_addr()?, "ingress listening");
        tasks.push(tokio::spawn(api::serve_ingress(
            l,
            Arc::clone(&app),
            stop_rx.clone(),
        )));
    }
    tracing::info!(
        socket = %config.socket.display(),
        state_dir = %config.state_dir.display(),
        pool = config.pool_size,
        "warrend ready"
    );
    notify_systemd("READY=1");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("stopping: no new connections; in-flight requests get up to 10s");
    notify_systemd("STOPPING=1");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = meter_stop.send(true);
    let _ = flusher.await;
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

/// Bind the control socket: parent directory created, a stale socket replaced (a live one is
/// an error: another warrend runs), mode 0660, group set when configured.
fn bind_control(path: &Path, gid: Option<u32>) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{} is in use: is another warrend running?", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("remove stale {}", path.display()))?;
    }
    let l =
        tokio::net::UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    if let Some(g) = gid {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(g)))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(l)
}

/// Tell systemd (Type=notify) about our state, when it asked.
fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), Path::new(&path))
    };
    if let Err(e) = sent {
        tracing::warn!("sd_notify {state}: {e}");
    }
}
