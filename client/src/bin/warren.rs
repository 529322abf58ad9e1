//! `warren`: the command-line client of warrend's control socket.
//!
//! ```text
//! warren [--socket PATH] deploy NAME FILE [--memory SIZE] [--pids N] [--cpu CPUS] [--storage SIZE]
//!                                         [--max-objects N] [--timeout DURATION]
//!                                         [--cpu-budget DURATION] [--max-response SIZE]
//!                                         [--max-instances N] [--log-bytes SIZE]
//! warren [--socket PATH] fetch NAME OBJECT [PATH] [-X METHOD] [-d DATA|@FILE] [-H 'K: V']...
//! warren [--socket PATH] ls [--json]
//! warren [--socket PATH] rm NAME [OBJECT]
//! warren [--socket PATH] objects NAME [--json]
//! warren [--socket PATH] logs NAME [-f|--follow] [--object OBJECT] [--tail N] [--json]
//! warren [--socket PATH] limits NAME [--memory SIZE] ... [--log-bytes SIZE] [--json]
//! warren [--socket PATH] usage [NAME] [--since SINCE] [--json]
//! warren [--socket PATH] sql NAME OBJECT 'SELECT ...' [--param V]... [--json]
//! warren [--socket PATH] doctor [--json]
//! ```
//!
//! Every error is one line on stderr starting `warren: `, and exit code 1; usage errors exit 2.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::{Args, Parser, Subcommand};
use warren_client::{
    error::io_message, Client, DeployLimits, Doctor, Error, FetchRequest, LogEntry, LogQuery,
    ObjectInfo, ObjectList, SqlResult, SqlValue, UsageCounters, UsageReport, Worker, WorkerList,
    MAX_FETCH_BODY, MAX_LOG_TAIL, MAX_PROGRAM,
};

/// Command-line client of warrend, the Warren supervisor.
#[derive(Debug, Parser)]
#[command(name = "warren", version, max_term_width = 100)]
struct Cli {
    /// warrend's control socket [env: WARREN_SOCKET] [default: /run/warren/warrend.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Deploy FILE (an x86-64 ELF executable) as the next version of worker NAME.
    Deploy {
        /// Worker name: 1-63 of a-z 0-9 - _, starting with a letter or digit.
        name: String,
        /// The program to deploy.
        file: PathBuf,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Send a request to object OBJECT of worker NAME and print the response body.
    ///
    /// Exits 0 when the status is below 400, 1 otherwise.
    Fetch {
        /// Worker name.
        name: String,
        /// Object name (any text; created on its first request).
        object: String,
        /// Path and query the object sees.
        #[arg(default_value = "/")]
        path: String,
        /// Request method [default: GET, or POST with -d].
        #[arg(short = 'X', long = "request", value_name = "METHOD")]
        method: Option<String>,
        /// Request body: the text DATA, the contents of FILE with @FILE, or stdin with @-.
        #[arg(
            short = 'd',
            long = "data",
            value_name = "DATA|@FILE",
            allow_hyphen_values = true
        )]
        data: Option<OsString>,
        /// Request header, e.g. -H 'Content-Type: application/json' (repeatable).
        #[arg(short = 'H', long = "header", value_name = "K: V")]
        headers: Vec<String>,
    },
    /// List the workers.
    Ls {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete worker NAME with all its objects' data, or only its object OBJECT.
    Rm {
        /// Worker name.
        name: String,
        /// Object name.
        object: Option<String>,
    },
    /// List the objects of worker NAME.
    Objects {
        /// Worker name.
        name: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the last log lines of worker NAME's instances, and with -f new ones as they come.
    ///
    /// Each line reads `TIME OBJECT [REQUEST] STREAM: LINE`; STREAM is stdout, stderr, or
    /// system for what warrend says about the log (lines dropped by the rate or volume limit).
    Logs {
        /// Worker name.
        name: String,
        /// Keep printing new lines until interrupted.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only the lines of this object.
        #[arg(long, value_name = "OBJECT")]
        object: Option<String>,
        /// How many of the last lines to print first [default: 100; at most 10000].
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Print the API's JSON lines (one object per line) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the limits of worker NAME, or change the ones given as flags.
    ///
    /// Changed limits apply to the worker's running instances from their next request; no new
    /// version is made.
    Limits {
        /// Worker name.
        name: String,
        #[command(flatten)]
        limits: LimitFlags,
        /// Print the API's JSON (the worker) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print usage for billing: requests, CPU and wall time, SQL rows, bytes, instance starts,
    /// kills and storage, per worker (and per object with NAME).
    Usage {
        /// Only this worker, with a row for each of its objects.
        name: Option<String>,
        /// Count from then on: a duration back from now (24h), Unix seconds, or a UTC time like
        /// 2026-12-04T00:00:00Z; rounded down to the hour [default: everything].
        #[arg(long, value_name = "SINCE")]
        since: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run one SQL statement on the database of object OBJECT of worker NAME, in its own
    /// transaction, and print the result.
    Sql {
        /// Worker name.
        name: String,
        /// Object name (an existing object).
        object: String,
        /// The statement, e.g. 'SELECT * FROM items WHERE id = ?'.
        sql: String,
        /// A value for the next `?`: an integer or a decimal number is sent as a number, `null`
        /// as NULL, anything else as text (repeatable).
        #[arg(long = "param", value_name = "V", allow_hyphen_values = true)]
        params: Vec<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check warrend's isolation layers and husk pool; exits 1 unless all is well.
    Doctor {
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The limit flags of `deploy` and `limits`, as the user wrote them.
#[derive(Debug, Clone, Default, Args)]
struct LimitFlags {
    /// Memory per instance, e.g. 64M.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Processes/threads per instance, e.g. 32.
    #[arg(long, value_name = "N")]
    pids: Option<String>,
    /// CPUs per instance, e.g. 0.5.
    #[arg(long, value_name = "CPUS")]
    cpu: Option<String>,
    /// Database size per object, e.g. 100M.
    #[arg(long, value_name = "SIZE")]
    storage: Option<String>,
    /// Objects the worker may have, e.g. 1000.
    #[arg(long, value_name = "N")]
    max_objects: Option<String>,
    /// Time one request may take, e.g. 5s or 500ms.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// CPU time one request may use, e.g. 2s.
    #[arg(long, value_name = "DURATION")]
    cpu_budget: Option<String>,
    /// The largest response body, e.g. 16M.
    #[arg(long, value_name = "SIZE")]
    max_response: Option<String>,
    /// Instances of the worker that may run at once, e.g. 256.
    #[arg(long, value_name = "N")]
    max_instances: Option<String>,
    /// Log output one instance may write over its life, e.g. 16M.
    #[arg(long, value_name = "SIZE")]
    log_bytes: Option<String>,
}

impl From<LimitFlags> for DeployLimits {
    fn from(f: LimitFlags) -> Self {
        DeployLimits {
            memory: f.memory,
            pids: f.pids,
            cpu: f.cpu,
            storage: f.storage,
            max_objects: f.max_objects,
            timeout: f.timeout,
            cpu_budget: f.cpu_budget,
            max_response: f.max_response,
            max_instances: f.max_instances,
            log_bytes: f.log_bytes,
        }
    }
}

/// A wrong command line that clap cannot see (a bad flag value): exit code 2.
#[derive(Debug)]
struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`.
fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli
        .socket
        .clone()
        .filter(|s| !s.as_os_str().is_empty())
        .unwrap_or_else(warren_client::socket_from_env);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("warren: cannot start the async runtime: {}", io_message(&e));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Client::new(socket), cli.command)) {
        Ok(code) => code,
        Err(err) => {
            let exit = if err.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            eprintln!("warren: {}", one_line(&describe(&err)));
            ExitCode::from(exit)
        }
    }
}

/// The message of an error chain: a client [`Error`] is described on its own terms (connect
/// errors with the CLI's hint); contexts are joined with `: `.
fn describe(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        if let Some(Error::Connect { socket, source }) = cause.downcast_ref::<Error>() {
            // Which command it was does not matter: the socket is the problem.
            return connect_message(socket, source);
        }
        parts.push(cause.to_string());
        if cause.downcast_ref::<Error>().is_some() {
            break; // its Display already includes its sources
        }
    }
    parts.join(": ")
}

/// `cannot connect to SOCKET: REASON (HINT)`, with hints for the CLI's flags.
fn connect_message(socket: &Path, source: &io::Error) -> String {
    let hint = match source.kind() {
        io::ErrorKind::PermissionDenied => {
            "warrend serves root, its own user and its group (default `warren`); run as one of them"
        }
        _ => "is warrend running? set --socket or WARREN_SOCKET",
    };
    format!(
        "cannot connect to {}: {} ({hint})",
        socket.display(),
        io_message(source)
    )
}

/// Squeezes a message onto one line.
fn one_line(message: &str) -> String {
    message
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn run(client: Client, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Deploy { name, file, limits } => {
            let limits = DeployLimits::from(limits);
            check_limits(&limits)?;
            let program = read_program(&file)?;
            let worker = client
                .deploy(&name, program, &limits)
                .await
                .map_err(|e| api_error(e, &format!("cannot deploy {name}"), None))?;
            println!("{}", deployed_line(&worker));
        }
        Command::Fetch {
            name,
            object,
            path,
            method,
            data,
            headers,
        } => {
            let request = build_fetch(method, data.as_deref(), &headers, path)?;
            return fetch(&client, &name, &object, request).await;
        }
        Command::Ls { json } => {
            let body = client
                .get_raw(&warren_client::uri::workers())
                .await
                .map_err(|e| api_error(e, "cannot list the workers", None))?;
            let list: WorkerList = parse_answer(&body)?;
            if json {
                print_json(&body)?;
            } else {
                print_out(&workers_table(&list.workers))?;
            }
        }
        Command::Objects { name, json } => {
            let path = warren_client::uri::objects(&name).map_err(|e| usage(e.to_string()))?;
            let body = client.get_raw(&path).await.map_err(|e| {
                api_error(
                    e,
                    &format!("cannot list the objects of {name}"),
                    Some("run `warren ls` to see the workers"),
                )
            })?;
            let list: ObjectList = parse_answer(&body)?;
            if json {
                print_json(&body)?;
            } else {
                print_out(&objects_table(&list.objects))?;
            }
        }
        Command::Rm { name, object: None } => {
            let deleted = client.delete_worker(&name).await.map_err(|e| {
                api_error(
                    e,
                    &format!("cannot delete worker {name}"),
                    Some("run `warren ls` to see the workers"),
                )
            })?;
            let s = if deleted.objects == 1 { "" } else { "s" };
            println!(
                "deleted worker {} and its {} object{s}",
                deleted.deleted, deleted.objects
            );
        }
        Command::Rm {
            name,
            object: Some(object),
        } => {
            let hint = format!("run `warren objects {name}` to see its objects");
            let deleted = client.delete_object(&name, &object).await.map_err(|e| {
                api_error(
                    e,
                    &format!("cannot delete object {object:?} of {name}"),
                    Some(&hint),
                )
            })?;
            println!("deleted object {:?} of {name}", deleted.deleted);
        }
        Command::Logs {
            name,
            follow,
            object,
            tail,
            json,
        } => {
            if tail.is_some_and(|n| n > MAX_LOG_TAIL) {
                return Err(usage(format!(
                    "invalid --tail {}: at most {MAX_LOG_TAIL} lines",
                    tail.unwrap_or_default()
                )));
            }
            if object.as_deref() == Some("") {
                return Err(usage("invalid --object: the object name is empty"));
            }
            let query = LogQuery {
                object,
                tail,
                follow,
            };
            logs(&client, &name, query, json).await?;
        }
        Command::Limits { name, limits, json } => {
            limits_command(&client, &name, limits.into(), json).await?;
        }
        Command::Usage { name, since, json } => {
            if let Some(since) = &since {
                check_since(since)?;
            }
            let path = warren_client::uri::usage(name.as_deref(), since.as_deref())
                .map_err(|e| usage(e.to_string()))?;
            let body = client.get_raw(&path).await.map_err(|e| {
                api_error(
                    e,
                    "cannot read the usage",
                    Some("run `warren ls` to see the workers"),
                )
            })?;
            let report: UsageReport = parse_answer(&body)?;
            if json {
                print_json(&body)?;
            } else {
                print_out(&usage_table(&report, name.is_some()))?;
            }
        }
        Command::Sql {
            name,
            object,
            sql,
            params,
            json,
        } => {
            if object.is_empty() {
                return Err(usage("the object name is empty"));
            }
            if sql.trim().is_empty() {
                return Err(usage("the SQL statement is empty"));
            }
            let params: Vec<SqlValue> = params.iter().map(|p| parse_param(p)).collect();
            let body = client
                .sql_raw(&name, &object, &sql, &params)
                .await
                .map_err(|e| sql_error(e, &name, &object))?;
            let result: SqlResult = parse_answer(&body)?;
            if json {
                print_json(&body)?;
            } else {
                print_out(&sql_table(&result))?;
            }
        }
        Command::Doctor { json } => {
            let body = client
                .get_raw(&warren_client::uri::doctor())
                .await
                .map_err(|e| api_error(e, "cannot ask warrend for its doctor report", None))?;
            let report: Doctor = parse_answer(&body)?;
            if json {
                print_json(&body)?;
            } else {
                print_out(&doctor_text(&report))?;
            }
            if let Some(problem) = doctor_problem(&report) {
                return Err(anyhow!("{problem}"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `warren limits`: prints the worker's limits, after changing the given ones if any.
async fn limits_command(
    client: &Client,
    name: &str,
    limits: DeployLimits,
    json: bool,
) -> anyhow::Result<()> {
    check_limits(&limits)?;
    let hint = Some("run `warren ls` to see the workers");
    let body = if limits.is_empty() {
        let path = warren_client::uri::worker(name).map_err(|e| usage(e.to_string()))?;
        client
            .get_raw(&path)
            .await
            .map_err(|e| api_error(e, &format!("cannot read the limits of {name}"), hint))?
    } else {
        client
            .set_limits_raw(name, &limits)
            .await
            .map_err(|e| api_error(e, &format!("cannot change the limits of {name}"), hint))?
    };
    let worker: Worker = parse_answer(&body)?;
    if json {
        print_json(&body)
    } else {
        print_out(&limits_table(&worker))
    }
}

/// The error of `warren sql`: a SQL error as the daemon words it, anything else in context.
fn sql_error(err: Error, name: &str, object: &str) -> anyhow::Error {
    match &err {
        Error::Api { code, message, .. }
            if code == "bad_request" && message.starts_with("SQL error") =>
        {
            anyhow!("{message}")
        }
        _ => api_error(
            err,
            &format!("cannot run SQL on object {object:?} of {name}"),
            Some(&format!("run `warren objects {name}` to see its objects")),
        ),
    }
}

/// A `--param`: an integer, a (finite) decimal number, `null`, or else text.
fn parse_param(text: &str) -> SqlValue {
    if text == "null" {
        SqlValue::Null
    } else if let Ok(i) = text.parse::<i64>() {
        SqlValue::Integer(i)
    } else if let Some(f) = text.parse::<f64>().ok().filter(|f| f.is_finite()) {
        SqlValue::Real(f)
    } else {
        SqlValue::Text(text.to_string())
    }
}

/// Checks `--since` locally: a duration (`24h`), Unix seconds, or `YYYY-MM-DDTHH:MM:SSZ`.
fn check_since(since: &str) -> anyhow::Result<()> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let rfc3339 = since.len() == 20
        && since.is_char_boundary(19)
        && since.ends_with('Z')
        && since[..19].char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        });
    if digits(since) || rfc3339 || warren_client::limits::parse_duration(since).is_ok() {
        Ok(())
    } else {
        Err(usage(format!(
            "invalid --since {since:?}: expected a duration back from now (24h), Unix seconds, or a UTC time like 2026-12-04T00:00:00Z"
        )))
    }
}

/// Prints a worker's log lines as they arrive, until the daemon ends the stream (at once
/// without `-f`) or stdout is closed.
async fn logs(client: &Client, name: &str, query: LogQuery, json: bool) -> anyhow::Result<()> {
    let mut reader = client.logs(name, query).await.map_err(|e| {
        api_error(
            e,
            &format!("cannot read the logs of {name}"),
            Some("run `warren ls` to see the workers"),
        )
    })?;
    let broke = |e: Error| anyhow!("the log stream of {name} broke: {e}");
    loop {
        let text = if json {
            let Some(line) = reader.next_line().await.map_err(broke)? else {
                break;
            };
            // Only what the API promises goes out, verbatim.
            serde_json::from_slice::<LogEntry>(&line).map_err(|e| {
                broke(Error::Protocol(format!(
                    "a log line is not the expected JSON ({e})"
                )))
            })?;
            let mut out = line.to_vec();
            out.push(b'\n');
            out
        } else {
            let Some(entry) = reader.next().await.map_err(broke)? else {
                break;
            };
            let mut out = log_line(&entry);
            out.push('\n');
            out.into_bytes()
        };
        if !write_line(&text)? {
            break; // stdout closed (`| head`): nothing more to do
        }
    }
    Ok(())
}

/// Writes one line to stdout and flushes it; `false` when stdout is a closed pipe.
fn write_line(bytes: &[u8]) -> anyhow::Result<bool> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// `2026-12-04T16:00:00.123Z alice [7] stdout: hello` (the request id only when there is
/// one). The guest's text is untrusted: control characters (but tab) are escaped, so a line
/// cannot move the cursor or retitle the terminal.
fn log_line(e: &LogEntry) -> String {
    let mut out = rfc3339_millis(e.ts_ms);
    out.push(' ');
    out.push_str(&escape_controls(if e.object.is_empty() {
        "-"
    } else {
        &e.object
    }));
    if let Some(id) = e.request_id {
        out.push_str(&format!(" [{id}]"));
    }
    out.push(' ');
    out.push_str(&escape_controls(&e.stream));
    out.push_str(": ");
    out.push_str(&escape_controls(&e.line));
    out
}

/// `text` with control characters other than tab written as `\u{..}` escapes.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds: `2026-12-04T16:00:00.123Z`.
fn rfc3339_millis(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Checks the deploy limits' syntax, naming the flag of a bad one.
fn check_limits(limits: &DeployLimits) -> anyhow::Result<()> {
    limits.validate().map_err(|e| {
        usage(format!(
            "invalid --{} {}",
            e.param.replace('_', "-"),
            e.message
        ))
    })
}

/// Reads the program to deploy, refusing what the daemon would refuse anyway.
fn read_program(file: &Path) -> anyhow::Result<Vec<u8>> {
    let program = std::fs::read(file).map_err(|e| {
        anyhow!(
            "cannot read the program {}: {} (check the FILE argument)",
            file.display(),
            io_message(&e)
        )
    })?;
    if program.len() > MAX_PROGRAM {
        return Err(anyhow!(
            "{} is {} bytes; warrend accepts programs of at most 256 MiB",
            file.display(),
            program.len()
        ));
    }
    if !program.starts_with(b"\x7fELF") {
        return Err(anyhow!(
            "{} is not an ELF executable (deploy a compiled x86-64 Linux program)",
            file.display()
        ));
    }
    Ok(program)
}

/// `deployed counter version 2 (793K, sha256 9f2c...): memory=64M pids=32 ...` (the limits
/// an older daemon does not report left out).
fn deployed_line(w: &Worker) -> String {
    let l = &w.limits;
    let mut line = format!(
        "deployed {} version {} ({}, sha256 {}): memory={} pids={} cpu={} storage={} max_objects={} timeout={}",
        w.name,
        w.version,
        human_bytes(w.size),
        short_sha(&w.sha256),
        human_bytes(l.memory),
        l.pids,
        l.cpu,
        human_bytes(l.storage),
        l.max_objects,
        human_millis(l.timeout_ms)
    );
    for (name, value) in limit_rows(w).into_iter().skip(6) {
        if value != "-" {
            line.push_str(&format!(" {name}={value}"));
        }
    }
    line
}

/// A worker's limits as `(query parameter, human value)`, in the API's order; `-` for a
/// limit the daemon did not report.
fn limit_rows(w: &Worker) -> [(&'static str, String); 10] {
    let l = &w.limits;
    let or_dash = |n: u64, f: fn(u64) -> String| if n == 0 { "-".into() } else { f(n) };
    [
        ("memory", human_bytes(l.memory)),
        ("pids", l.pids.to_string()),
        ("cpu", l.cpu.to_string()),
        ("storage", human_bytes(l.storage)),
        ("max_objects", l.max_objects.to_string()),
        ("timeout", human_millis(l.timeout_ms)),
        ("cpu_budget", or_dash(l.cpu_budget_ms, human_millis)),
        ("max_response", or_dash(l.max_response, human_bytes)),
        ("max_instances", or_dash(l.max_instances, |n| n.to_string())),
        ("log_bytes", or_dash(l.log_bytes, human_bytes)),
    ]
}

/// The `limits` table: one row per limit.
fn limits_table(w: &Worker) -> String {
    let mut rows = vec![vec!["LIMIT".to_string(), "VALUE".to_string()]];
    for (name, value) in limit_rows(w) {
        rows.push(vec![name.to_string(), value]);
    }
    table(&rows)
}

/// The `usage` table: a row per worker, and with `objects` an indented row per object.
fn usage_table(report: &UsageReport, objects: bool) -> String {
    let mut rows = vec![[
        "WORKER",
        "REQUESTS",
        "CPU",
        "WALL",
        "ROWS R/W",
        "BYTES IN/OUT",
        "STARTS",
        "KILLS",
        "STORAGE",
    ]
    .map(String::from)
    .to_vec()];
    for w in &report.workers {
        rows.push(usage_row(printable(&w.worker), &w.counters));
        if objects {
            for o in &w.objects {
                rows.push(usage_row(
                    format!("  {}", printable(&o.object)),
                    &o.counters,
                ));
            }
        }
    }
    table(&rows)
}

fn usage_row(name: String, c: &UsageCounters) -> Vec<String> {
    vec![
        name,
        c.requests.to_string(),
        human_micros(c.cpu_us),
        human_micros(c.wall_us),
        format!("{}/{}", c.rows_read, c.rows_written),
        format!("{}/{}", human_bytes(c.bytes_in), human_bytes(c.bytes_out)),
        c.instance_starts.to_string(),
        kills_cell(c),
        human_bytes(c.storage_bytes),
    ]
}

/// `0`, or `3 (oom 1, timeout 2)`.
fn kills_cell(c: &UsageCounters) -> String {
    let total = c.kills();
    if total == 0 {
        return "0".into();
    }
    let reasons: Vec<String> = c
        .kill_reasons()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    format!("{total} ({})", reasons.join(", "))
}

/// The `sql` output: the rows as a table and `(N rows)`, or `(N rows changed)` for a
/// statement without columns.
fn sql_table(result: &SqlResult) -> String {
    let plural = |one: bool| if one { "" } else { "s" };
    if result.columns.is_empty() {
        let n = result.rows_changed;
        return format!("({n} row{} changed)\n", plural(n == 1));
    }
    let mut rows = vec![result
        .columns
        .iter()
        .map(|c| sql_text(c))
        .collect::<Vec<_>>()];
    for row in &result.rows {
        rows.push(row.iter().map(sql_cell).collect());
    }
    let n = result.rows.len();
    format!("{}({n} row{})\n", table(&rows), plural(n == 1))
}

/// One value of a SQL result as a table cell: `NULL`, `42`, `2.5`, text, `x'00ff'`.
fn sql_cell(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => "NULL".into(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(f) => format!("{f:?}"),
        SqlValue::Text(t) => sql_text(t),
        SqlValue::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("x'{hex}'")
        }
    }
}

/// Text fit for one table cell: newlines, tabs and other control characters escaped.
fn sql_text(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The `doctor` text: the layers like `warren-jail doctor`, then the pool, instances and
/// version.
fn doctor_text(d: &Doctor) -> String {
    let mut out = String::new();
    for l in &d.layers {
        let line = format!(
            "{:<11} {:<8} {}",
            escape_controls(&l.layer),
            if l.ok { "ok" } else { "MISSING" },
            escape_controls(&l.detail)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("pool: {} warm of {}", d.warm_husks, d.pool_size));
    if let Some(e) = &d.pool_error {
        out.push_str(&format!(" (error: {})", one_line(&escape_controls(e))));
    }
    out.push_str(&format!(
        "\ninstances: {}\nversion: {}\n",
        d.instances,
        escape_controls(&d.version)
    ));
    if !d.state_dir.is_empty() {
        out.push_str(&format!("state dir: {}\n", escape_controls(&d.state_dir)));
    }
    out
}

/// What is wrong according to the doctor report, or `None` when all is well.
fn doctor_problem(d: &Doctor) -> Option<String> {
    let missing: Vec<String> = d
        .layers
        .iter()
        .filter(|l| !l.ok)
        .map(|l| escape_controls(&l.layer))
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "isolation layer{} missing: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ));
    }
    if let Some(e) = &d.pool_error {
        problems.push(format!("the husk pool failed: {}", escape_controls(e)));
    }
    if d.layers.is_empty() {
        problems.push("warrend reported no isolation layers".into());
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!("warrend is not healthy: {}", problems.join("; ")))
    }
}

/// The fetch request of the command line.
fn build_fetch(
    method: Option<String>,
    data: Option<&OsStr>,
    headers: &[String],
    path: String,
) -> anyhow::Result<FetchRequest> {
    let body = match data {
        Some(data) => Some(read_data(data)?),
        None => None,
    };
    let method = match method {
        Some(m) => {
            if m.is_empty() || !m.bytes().all(is_token_byte) {
                return Err(usage(format!(
                    "invalid -X {m:?}: not an HTTP method (e.g. GET, POST, PUT, DELETE)"
                )));
            }
            m
        }
        None if body.is_some() => "POST".into(),
        None => "GET".into(),
    };
    let mut request = FetchRequest::new(method, path);
    for header in headers {
        let (name, value) = parse_header(header)?;
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    Ok(request)
}

/// The body of `-d`: the text itself, `@FILE` the file's bytes, `@-` stdin.
fn read_data(data: &OsStr) -> anyhow::Result<Vec<u8>> {
    let bytes = data.as_bytes();
    let Some(file) = bytes.strip_prefix(b"@") else {
        return Ok(bytes.to_vec());
    };
    let body = if file == b"-" {
        let mut body = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut body)
            .map_err(|e| anyhow!("cannot read the -d body from stdin: {}", io_message(&e)))?;
        body
    } else if file.is_empty() {
        return Err(usage("invalid -d @: name a file after @ (or @- for stdin)"));
    } else {
        let path = PathBuf::from(OsString::from_vec(file.to_vec()));
        std::fs::read(&path).map_err(|e| {
            anyhow!(
                "cannot read the -d body from {}: {} (check the path after @)",
                path.display(),
                io_message(&e)
            )
        })?
    };
    if body.len() > MAX_FETCH_BODY {
        return Err(anyhow!(
            "the -d body is {} bytes; warrend accepts request bodies of at most 16 MiB",
            body.len()
        ));
    }
    Ok(body)
}

/// `-H 'Name: value'` → `(Name, value)`.
fn parse_header(header: &str) -> anyhow::Result<(String, String)> {
    let Some((name, value)) = header.split_once(':') else {
        return Err(usage(format!(
            "invalid -H {header:?}: expected 'Name: value'"
        )));
    };
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(usage(format!(
            "invalid -H {header:?}: {name:?} is not a header name"
        )));
    }
    let value = value.trim();
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(usage(format!(
            "invalid -H {header:?}: the value has control characters"
        )));
    }
    Ok((name.to_string(), value.to_string()))
}

/// RFC 9110 `tchar`: what a method or header name is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Runs a fetch: the body goes to stdout, a status >= 400 to stderr with exit code 1.
async fn fetch(
    client: &Client,
    name: &str,
    object: &str,
    request: FetchRequest,
) -> anyhow::Result<ExitCode> {
    let response = client
        .fetch(name, object, request)
        .await
        .map_err(|e| match e {
            Error::InvalidArgument(m) => usage(m),
            e => anyhow::Error::new(e).context(format!("cannot fetch from {name}/{object}")),
        })?;
    let status = response.status;
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    match response.daemon_error() {
        Some(err @ Error::Api { .. }) => {
            let hint = hint_for(&err, Some("run `warren ls` to see the workers"));
            eprintln!("warren: HTTP {status}{reason}: {err}{hint}");
            return Ok(ExitCode::FAILURE);
        }
        Some(_) => {
            // The daemon flagged an error but its body is not readable: show it as it is.
            write_out(&response.body)?;
            eprintln!(
                "warren: HTTP {status}{reason} from warrend (x-warren-error: {})",
                response.warren_error_code().unwrap_or_default()
            );
            return Ok(ExitCode::FAILURE);
        }
        None => write_out(&response.body)?,
    }
    if status >= 400 {
        eprintln!("warren: HTTP {status}{reason} (answered by worker {name})");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Wraps a client error in `context`, adding what to do next for daemon errors.
fn api_error(err: Error, context: &str, not_found_hint: Option<&str>) -> anyhow::Error {
    match err {
        Error::InvalidArgument(m) => usage(m),
        Error::Connect { .. } => anyhow::Error::new(err),
        err => {
            let hint = hint_for(&err, not_found_hint);
            anyhow!("{context}: {err}{hint}")
        }
    }
}

/// `; <what to do next>` for a daemon error code, or nothing.
fn hint_for(err: &Error, not_found_hint: Option<&str>) -> String {
    let hint = match err.code() {
        Some("not_found") => not_found_hint,
        Some("forbidden") => {
            Some("run as root, as warrend's user or as a member of its group (default `warren`)")
        }
        Some(
            "guest_crashed" | "guest_timeout" | "guest_protocol" | "guest_killed"
            | "response_too_large",
        ) => Some("the worker program failed; check its logs and limits"),
        Some("unavailable") => Some("warrend is out of capacity; retry later"),
        Some("internal") => Some("this is a warrend bug; see its logs"),
        _ => None,
    };
    hint.map(|h| format!("; {h}")).unwrap_or_default()
}

/// Parses a list answer, to print it only when it is what the API promises.
fn parse_answer<T: serde::de::DeserializeOwned>(body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        anyhow!("unexpected answer from warrend: not the expected JSON ({e}); is the client older than the daemon?")
    })
}

/// Prints the API's JSON verbatim, with a final newline.
fn print_json(body: &[u8]) -> anyhow::Result<()> {
    let mut out = body.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    write_out(&out)
}

fn print_out(text: &str) -> anyhow::Result<()> {
    write_out(text.as_bytes())
}

/// Writes raw bytes to stdout. A closed pipe (`| head`) is not an error.
fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// The `ls` table.
fn workers_table(workers: &[Worker]) -> String {
    let mut rows = vec![[
        "NAME", "VERSION", "OBJECTS", "ACTIVE", "SIZE", "MEMORY", "CPU", "TIMEOUT", "CREATED",
    ]
    .map(String::from)
    .to_vec()];
    for w in workers {
        let count = |n: Option<u64>| n.map_or_else(|| "-".into(), |n| n.to_string());
        rows.push(vec![
            w.name.clone(),
            w.version.to_string(),
            count(w.objects),
            count(w.active_instances),
            human_bytes(w.size),
            human_bytes(w.limits.memory),
            w.limits.cpu.to_string(),
            human_millis(w.limits.timeout_ms),
            w.created_at.clone(),
        ]);
    }
    table(&rows)
}

/// The `objects` table.
fn objects_table(objects: &[ObjectInfo]) -> String {
    let mut rows = vec![vec!["NAME".into(), "SIZE".into(), "ACTIVE".into()]];
    for o in objects {
        rows.push(vec![
            printable(&o.name),
            human_bytes(o.bytes),
            if o.active { "yes" } else { "no" }.into(),
        ]);
    }
    table(&rows)
}

/// An object name fit for a table cell: control characters escaped, like `{:?}` does.
fn printable(name: &str) -> String {
    if name.chars().any(|c| c.is_control()) {
        format!("{name:?}")
    } else {
        name.to_string()
    }
}

/// Left-aligned columns, two spaces apart, no trailing blanks.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `64M`, `1.5G`, `812344` → `793.3K`, `0B`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];
    for (shift, unit) in UNITS {
        let size = 1u64 << shift;
        if bytes >= size {
            let whole = bytes / size;
            let tenths = (bytes % size) * 10 / size;
            return if tenths == 0 {
                format!("{whole}{unit}")
            } else {
                format!("{whole}.{tenths}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

/// `5000` → `5s`, `1500` → `1.5s`, `250` → `250ms`.
fn human_millis(ms: u64) -> String {
    if ms < 1000 || !ms.is_multiple_of(100) {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    }
}

/// Microseconds for people: `0ms`, `0.3ms`, `20.3ms`, `512ms`, `1.5s`, `42s`, `3600s`.
fn human_micros(us: u64) -> String {
    let tenths = |whole: u64, tenth: u64, unit: &str| {
        if tenth == 0 {
            format!("{whole}{unit}")
        } else {
            format!("{whole}.{tenth}{unit}")
        }
    };
    if us < 100_000 {
        tenths(us / 1000, us % 1000 / 100, "ms")
    } else if us < 1_000_000 {
        format!("{}ms", us / 1000)
    } else if us < 100_000_000 {
        tenths(us / 1_000_000, us % 1_000_000 / 100_000, "s")
    } else {
        format!("{}s", us / 1_000_000)
    }
}

/// The first 12 hex digits of a SHA-256.
fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("warren").chain(args.iter().copied()))
    }

    #[test]
    fn parses_the_documented_command_lines() {
        let cli = parse(&[
            "--socket",
            "/tmp/s",
            "deploy",
            "counter",
            "prog",
            "--memory",
            "64M",
            "--pids",
            "32",
            "--cpu",
            "0.5",
            "--storage",
            "100M",
            "--max-objects",
            "1000",
            "--timeout",
            "5s",
            "--cpu-budget",
            "2s",
            "--max-response",
            "1M",
            "--max-instances",
            "8",
            "--log-bytes",
            "64K",
        ])
        .unwrap();
        assert_eq!(cli.socket.as_deref(), Some(Path::new("/tmp/s")));
        let Command::Deploy { limits, .. } = cli.command else {
            panic!("not deploy")
        };
        let limits = DeployLimits::from(limits);
        assert_eq!(limits.max_objects.as_deref(), Some("1000"));
        assert_eq!(limits.timeout.as_deref(), Some("5s"));
        assert_eq!(
            limits.query(),
            "memory=64M&pids=32&cpu=0.5&storage=100M&max_objects=1000&timeout=5s\
             &cpu_budget=2s&max_response=1M&max_instances=8&log_bytes=64K"
        );

        let cli = parse(&[
            "fetch", "app", "alice", "/x", "-X", "PUT", "-d", "-5", "-H", "A: b", "-H", "C: d",
        ])
        .unwrap();
        let Command::Fetch {
            path,
            method,
            data,
            headers,
            ..
        } = cli.command
        else {
            panic!("not fetch")
        };
        assert_eq!(path, "/x");
        assert_eq!(method.as_deref(), Some("PUT"));
        assert_eq!(data.as_deref(), Some(OsStr::new("-5")));
        assert_eq!(headers, ["A: b", "C: d"]);

        let cli = parse(&["fetch", "app", "alice"]).unwrap();
        assert!(matches!(cli.command, Command::Fetch { ref path, .. } if path == "/"));
        assert!(matches!(
            parse(&["ls", "--json"]).unwrap().command,
            Command::Ls { json: true }
        ));
        assert!(matches!(
            parse(&["rm", "app", "bob"]).unwrap().command,
            Command::Rm {
                object: Some(_),
                ..
            }
        ));
        assert!(matches!(
            parse(&["objects", "app", "--socket", "/s"]).unwrap(),
            Cli {
                socket: Some(_),
                command: Command::Objects { json: false, .. }
            }
        ));
        let cli = parse(&[
            "logs", "app", "-f", "--object", "bob", "--tail", "5", "--json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Logs { follow: true, ref object, tail: Some(5), json: true, .. }
                if object.as_deref() == Some("bob")
        ));
        assert!(matches!(
            parse(&["logs", "app"]).unwrap().command,
            Command::Logs {
                follow: false,
                object: None,
                tail: None,
                json: false,
                ..
            }
        ));
        assert!(parse(&["logs", "app", "--tail", "many"]).is_err());

        let cli = parse(&["limits", "app", "--cpu-budget", "1s", "--json"]).unwrap();
        let Command::Limits { name, limits, json } = cli.command else {
            panic!("not limits")
        };
        assert_eq!((name.as_str(), json), ("app", true));
        assert_eq!(DeployLimits::from(limits).query(), "cpu_budget=1s");
        assert!(matches!(
            parse(&["limits", "app"]).unwrap().command,
            Command::Limits { json: false, ref limits, .. }
                if DeployLimits::from(limits.clone()).is_empty()
        ));
        assert!(parse(&["limits"]).is_err());

        assert!(matches!(
            parse(&["usage"]).unwrap().command,
            Command::Usage {
                name: None,
                since: None,
                json: false
            }
        ));
        assert!(matches!(
            parse(&["usage", "app", "--since", "24h", "--json"]).unwrap().command,
            Command::Usage { name: Some(ref n), since: Some(ref s), json: true }
                if n == "app" && s == "24h"
        ));

        let cli = parse(&[
            "sql",
            "app",
            "alice",
            "SELECT ?, ?",
            "--param",
            "-5",
            "--param",
            "x",
            "--json",
        ])
        .unwrap();
        let Command::Sql {
            name,
            object,
            sql,
            params,
            json,
        } = cli.command
        else {
            panic!("not sql")
        };
        assert_eq!(
            (name.as_str(), object.as_str(), sql.as_str(), json),
            ("app", "alice", "SELECT ?, ?", true)
        );
        assert_eq!(params, ["-5", "x"]);
        assert!(parse(&["sql", "app", "alice"]).is_err());
        assert!(matches!(
            parse(&["doctor", "--json"]).unwrap().command,
            Command::Doctor { json: true }
        ));
        assert!(parse(&["deploy", "x"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
    }

    #[test]
    fn limit_flags_are_checked_locally() {
        let bad = |limits: DeployLimits| {
            let err = check_limits(&limits).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some());
            err.to_string()
        };
        let msg = bad(DeployLimits {
            memory: Some("64Q".into()),
            ..DeployLimits::default()
        });
        assert!(msg.starts_with("invalid --memory \"64Q\""), "{msg}");
        let msg = bad(DeployLimits {
            max_objects: Some("lots".into()),
            ..DeployLimits::default()
        });
        assert!(msg.starts_with("invalid --max-objects \"lots\""), "{msg}");
        let msg = bad(DeployLimits {
            timeout: Some("5".into()),
            ..DeployLimits::default()
        });
        assert!(msg.contains("--timeout") && msg.contains("unit"), "{msg}");
        let msg = bad(DeployLimits {
            cpu_budget: Some("soon".into()),
            ..DeployLimits::default()
        });
        assert!(msg.starts_with("invalid --cpu-budget \"soon\""), "{msg}");
        let msg = bad(DeployLimits {
            max_response: Some("1.5M".into()),
            ..DeployLimits::default()
        });
        assert!(msg.starts_with("invalid --max-response \"1.5M\""), "{msg}");
        let msg = bad(DeployLimits {
            max_instances: Some("0".into()),
            ..DeployLimits::default()
        });
        assert!(msg.starts_with("invalid --max-instances \"0\""), "{msg}");
        let msg = bad(DeployLimits {
            log_bytes: Some("lots".into()),
            ..DeployLimits::default()
        });
        assert!(msg.starts_with("invalid --log-bytes \"lots\""), "{msg}");
        assert!(check_limits(&DeployLimits {
            memory: Some("64M".into()),
            cpu: Some("0.5".into()),
            timeout: Some("500ms".into()),
            ..DeployLimits::default()
        })
        .is_ok());
    }

    #[test]
    fn data_argument() {
        assert_eq!(read_data(OsStr::new("a=1&b=2")).unwrap(), b"a=1&b=2");
        assert_eq!(read_data(OsStr::new("")).unwrap(), b"");
        // Non-UTF-8 bytes on the command line are sent as they are.
        let raw = OsString::from_vec(vec![0xff, 0x00, b'x']);
        assert_eq!(read_data(&raw).unwrap(), [0xff, 0x00, b'x']);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("body.bin");
        let content: Vec<u8> = (0..=255u8).chain([b'\n', b'\r', 0]).collect();
        std::fs::write(&file, &content).unwrap();
        let arg = OsString::from(format!("@{}", file.display()));
        assert_eq!(
            read_data(&arg).unwrap(),
            content,
            "binary-safe, newlines kept"
        );

        let missing = OsString::from(format!("@{}", dir.path().join("nope").display()));
        let msg = read_data(&missing).unwrap_err().to_string();
        assert!(msg.starts_with("cannot read the -d body from "), "{msg}");
        assert!(msg.contains("No such file or directory"), "{msg}");
        assert!(!msg.contains("os error"), "{msg}");

        let err = read_data(OsStr::new("@")).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
    }

    #[test]
    fn fetch_requests() {
        let r = build_fetch(None, None, &[], "/".into()).unwrap();
        assert_eq!((r.method.as_str(), r.body.len()), ("GET", 0));
        let r = build_fetch(None, Some(OsStr::new("x")), &[], "/p".into()).unwrap();
        assert_eq!(r.method, "POST", "-d implies POST");
        assert_eq!(&r.body[..], b"x");
        let r = build_fetch(Some("PUT".into()), Some(OsStr::new("")), &[], "/".into()).unwrap();
        assert_eq!(r.method, "PUT");
        let r = build_fetch(
            Some("DELETE".into()),
            None,
            &["Content-Type: application/json".into(), "X-Empty:".into()],
            "/".into(),
        )
        .unwrap();
        assert_eq!(
            r.headers,
            [
                ("Content-Type".to_string(), "application/json".to_string()),
                ("X-Empty".to_string(), String::new())
            ]
        );
        for bad_method in ["", "GE T", "GET\n", "PÖST"] {
            let err = build_fetch(Some(bad_method.into()), None, &[], "/".into()).unwrap_err();
            assert!(err.to_string().starts_with("invalid -X"), "{err}");
        }
    }

    #[test]
    fn header_arguments() {
        assert_eq!(
            parse_header("Accept:  text/plain ").unwrap(),
            ("Accept".into(), "text/plain".into())
        );
        assert_eq!(
            parse_header("X-Time: 12:30").unwrap(),
            ("X-Time".into(), "12:30".into())
        );
        for bad in ["NoColon", ": v", "Bad Name: v", "X: a\nb"] {
            let err = parse_header(bad).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{bad}");
            assert!(err.to_string().starts_with("invalid -H"), "{err}");
        }
    }

    #[test]
    fn tables_are_aligned() {
        let objects = [
            ObjectInfo {
                name: "alice".into(),
                bytes: 24576,
                active: true,
            },
            ObjectInfo {
                name: "chat/room 1".into(),
                bytes: 100,
                active: false,
            },
        ];
        assert_eq!(
            objects_table(&objects),
            "NAME         SIZE  ACTIVE\n\
             alice        24K   yes\n\
             chat/room 1  100B  no\n"
        );
        assert_eq!(objects_table(&[]), "NAME  SIZE  ACTIVE\n");
        let w: Worker = serde_json::from_str(
            r#"{"name": "counter", "version": 2, "sha256": "9f2c0011223344556677", "size": 812344,
                "limits": {"memory": 67108864, "pids": 32, "cpu": 0.5, "storage": 104857600,
                           "max_objects": 1000, "timeout_ms": 5000},
                "created_at": "2026-12-04T16:00:00Z", "objects": 3, "active_instances": 1}"#,
        )
        .unwrap();
        let table = workers_table(std::slice::from_ref(&w));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with(
                "NAME     VERSION  OBJECTS  ACTIVE  SIZE    MEMORY  CPU  TIMEOUT  CREATED"
            ),
            "{table}"
        );
        assert!(
            lines[1].starts_with(
                "counter  2        3        1       793.3K  64M     0.5  5s       2026"
            ),
            "{table}"
        );
        assert_eq!(
            deployed_line(&w),
            "deployed counter version 2 (793.3K, sha256 9f2c00112233): memory=64M pids=32 cpu=0.5 storage=100M max_objects=1000 timeout=5s"
        );
    }

    #[test]
    fn log_lines() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_796_400_000_123),
            "2026-12-04T16:00:00.123Z"
        );
        assert_eq!(
            rfc3339_millis(4_102_444_799_999),
            "2099-12-31T23:59:59.999Z"
        );
        let mut e = LogEntry {
            ts_ms: 1_796_400_000_123,
            worker: "counter".into(),
            object: "chat/room 1".into(),
            request_id: Some(7),
            stream: "stdout".into(),
            line: "hello\tworld".into(),
        };
        assert_eq!(
            log_line(&e),
            "2026-12-04T16:00:00.123Z chat/room 1 [7] stdout: hello\tworld"
        );
        e.request_id = None;
        e.stream = "stderr".into();
        e.line = "\u{1b}]0;pwned\u{7}red".into();
        assert_eq!(
            log_line(&e),
            "2026-12-04T16:00:00.123Z chat/room 1 stderr: \\u{1b}]0;pwned\\u{7}red"
        );
        e.object = String::new();
        e.stream = "system".into();
        assert!(log_line(&e).starts_with("2026-12-04T16:00:00.123Z - system: "));
    }

    #[test]
    fn sql_params() {
        assert_eq!(parse_param("42"), SqlValue::Integer(42));
        assert_eq!(parse_param("-7"), SqlValue::Integer(-7));
        assert_eq!(parse_param("2.5"), SqlValue::Real(2.5));
        assert_eq!(parse_param("1e3"), SqlValue::Real(1000.0));
        assert_eq!(parse_param("null"), SqlValue::Null);
        assert_eq!(parse_param("NULL"), SqlValue::Text("NULL".into()));
        for text in ["", "abc", "nan", "inf", "-infinity", "12ab", "1,5", " 3"] {
            assert_eq!(parse_param(text), SqlValue::Text(text.into()), "{text:?}");
        }
        // Too large for an i64: sent as a (float) number, as asked.
        assert_eq!(
            parse_param("99999999999999999999"),
            SqlValue::Real(99_999_999_999_999_999_999.0)
        );
    }

    #[test]
    fn since_values() {
        for ok in [
            "24h",
            "30m",
            "1.5h",
            "0",
            "1796396400",
            "2026-12-04T00:00:00Z",
        ] {
            assert!(check_since(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "yesterday",
            "-1h",
            "2026-12-04",
            "2026-12-04T00:00:00",
            "2026-12-04 00:00:00Z",
            "2026-12-04T00:00:00+01:00",
            "2026-12-04T00:00:0éZ",
        ] {
            let Err(err) = check_since(bad) else {
                panic!("{bad:?} passed")
            };
            assert!(err.downcast_ref::<UsageError>().is_some(), "{bad}");
            assert!(err.to_string().starts_with("invalid --since"), "{err}");
        }
    }

    #[test]
    fn sql_output() {
        let result: SqlResult = serde_json::from_str(
            r#"{"columns": ["id", "title", "score", "data", "note"],
                "rows": [[1, "milk", 2.5, {"blob_hex": "00ff"}, null],
                         [12, "two\nlines\tand tab", 3.0, {"blob_hex": ""}, "x"]],
                "rows_changed": 0, "last_insert_id": 0}"#,
        )
        .unwrap();
        assert_eq!(
            sql_table(&result),
            "id  title                score  data     note\n\
             1   milk                 2.5    x'00ff'  NULL\n\
             12  two\\nlines\\tand tab  3.0    x''      x\n\
             (2 rows)\n"
        );
        let one: SqlResult = serde_json::from_str(r#"{"columns": ["n"], "rows": [[7]]}"#).unwrap();
        assert_eq!(sql_table(&one), "n\n7\n(1 row)\n");
        let none: SqlResult = serde_json::from_str(r#"{"columns": ["n"], "rows": []}"#).unwrap();
        assert_eq!(sql_table(&none), "n\n(0 rows)\n");
        let changed: SqlResult = serde_json::from_str(
            r#"{"columns": [], "rows": [], "rows_changed": 3, "last_insert_id": 9}"#,
        )
        .unwrap();
        assert_eq!(sql_table(&changed), "(3 rows changed)\n");
        let changed_one: SqlResult = serde_json::from_str(
            r#"{"columns": [], "rows": [], "rows_changed": 1, "last_insert_id": 9}"#,
        )
        .unwrap();
        assert_eq!(sql_table(&changed_one), "(1 row changed)\n");
    }

    const USAGE: &str = r#"{"since": 1796396400, "workers": [
        {"worker": "counter", "requests": 10, "cpu_us": 20311, "wall_us": 1500000,
         "rows_read": 4, "rows_written": 9, "bytes_in": 0, "bytes_out": 2048,
         "instance_starts": 2, "kills_oom": 1, "kills_timeout": 2, "kills_cpu": 0,
         "kills_seccomp": 0, "kills_crash": 0, "storage_bytes": 20480,
         "objects": [
            {"object": "alice", "requests": 7, "cpu_us": 300, "wall_us": 51000, "rows_read": 4,
             "rows_written": 9, "bytes_in": 0, "bytes_out": 12, "instance_starts": 1,
             "kills_oom": 0, "kills_timeout": 0, "kills_cpu": 0, "kills_seccomp": 0,
             "kills_crash": 0, "storage_bytes": 12288},
            {"object": "bob", "requests": 3, "cpu_us": 20011, "wall_us": 1449000,
             "rows_read": 0, "rows_written": 0, "bytes_in": 0, "bytes_out": 2036,
             "instance_starts": 1, "kills_oom": 1, "kills_timeout": 2, "kills_cpu": 0,
             "kills_seccomp": 0, "kills_crash": 0, "storage_bytes": 8192}]}]}"#;

    #[test]
    fn usage_tables() {
        let report: UsageReport = serde_json::from_str(USAGE).unwrap();
        assert_eq!(
            usage_table(&report, false),
            "WORKER   REQUESTS  CPU     WALL  ROWS R/W  BYTES IN/OUT  STARTS  KILLS                 STORAGE\n\
             counter  10        20.3ms  1.5s  4/9       0B/2K         2       3 (oom 1, timeout 2)  20K\n"
        );
        let with_objects = usage_table(&report, true);
        let lines: Vec<&str> = with_objects.lines().collect();
        assert_eq!(lines.len(), 4, "{with_objects}");
        assert!(
            lines[2].starts_with("  alice  7         0.3ms   51ms"),
            "{with_objects}"
        );
        assert!(
            lines[3].starts_with("  bob    3         20ms    1.4s"),
            "{with_objects}"
        );
        assert!(lines[3].contains("3 (oom 1, timeout 2)"), "{with_objects}");
        assert!(lines[2].contains("  0  "), "{with_objects}");
        let empty: UsageReport = serde_json::from_str(r#"{"since": 0, "workers": []}"#).unwrap();
        assert_eq!(
            usage_table(&empty, true),
            "WORKER  REQUESTS  CPU  WALL  ROWS R/W  BYTES IN/OUT  STARTS  KILLS  STORAGE\n"
        );
    }

    #[test]
    fn doctor_output() {
        let mut d: Doctor = serde_json::from_str(
            r#"{"version": "0.1.0", "warm_husks": 3, "pool_size": 4, "pool_error": null,
                "instances": 2, "state_dir": "/var/lib/warren",
                "layers": [{"layer": "namespaces", "ok": true, "detail": "user, pid, mount"},
                           {"layer": "seccomp", "ok": true, "detail": ""}]}"#,
        )
        .unwrap();
        assert_eq!(
            doctor_text(&d),
            "namespaces  ok       user, pid, mount\n\
             seccomp     ok\n\
             pool: 3 warm of 4\n\
             instances: 2\n\
             version: 0.1.0\n\
             state dir: /var/lib/warren\n"
        );
        assert_eq!(doctor_problem(&d), None);
        d.layers[1].ok = false;
        d.layers[1].detail = "no seccomp\nat all".into();
        d.pool_error = Some("fork: out of memory".into());
        let text = doctor_text(&d);
        assert!(
            text.contains("seccomp     MISSING  no seccomp\\u{a}at all\n"),
            "{text}"
        );
        assert!(
            text.contains("pool: 3 warm of 4 (error: fork: out of memory)\n"),
            "{text}"
        );
        assert_eq!(
            doctor_problem(&d).unwrap(),
            "warrend is not healthy: isolation layer missing: seccomp; the husk pool failed: fork: out of memory"
        );
        d.layers.clear();
        d.pool_error = None;
        assert!(doctor_problem(&d).unwrap().contains("no isolation layers"));
    }

    #[test]
    fn limits_output() {
        let mut w: Worker = serde_json::from_str(
            r#"{"name": "counter", "version": 2, "sha256": "9f2c", "size": 10,
                "limits": {"memory": 67108864, "pids": 32, "cpu": 0.5, "storage": 104857600,
                           "max_objects": 1000, "timeout_ms": 5000, "cpu_budget_ms": 1500,
                           "max_response": 16777216, "max_instances": 256, "log_bytes": 524288},
                "created_at": "2026-12-04T16:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            limits_table(&w),
            "LIMIT          VALUE\n\
             memory         64M\n\
             pids           32\n\
             cpu            0.5\n\
             storage        100M\n\
             max_objects    1000\n\
             timeout        5s\n\
             cpu_budget     1.5s\n\
             max_response   16M\n\
             max_instances  256\n\
             log_bytes      512K\n"
        );
        assert!(deployed_line(&w).ends_with(
            "timeout=5s cpu_budget=1.5s max_response=16M max_instances=256 log_bytes=512K"
        ));
        // An older daemon: the new limits are unknown.
        w.limits.cpu_budget_ms = 0;
        w.limits.log_bytes = 0;
        assert!(limits_table(&w).contains("cpu_budget     -\n"));
        assert!(deployed_line(&w).ends_with("timeout=5s max_response=16M max_instances=256"));
    }

    #[test]
    fn human_units() {
        assert_eq!(human_micros(0), "0ms");
        assert_eq!(human_micros(300), "0.3ms");
        assert_eq!(human_micros(1000), "1ms");
        assert_eq!(human_micros(20_311), "20.3ms");
        assert_eq!(human_micros(99_999), "99.9ms");
        assert_eq!(human_micros(512_000), "512ms");
        assert_eq!(human_micros(1_000_000), "1s");
        assert_eq!(human_micros(1_500_000), "1.5s");
        assert_eq!(human_micros(99_990_000), "99.9s");
        assert_eq!(human_micros(3_600_000_000), "3600s");
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1K");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(64 << 20), "64M");
        assert_eq!(human_bytes(u64::MAX), "16777215.9T");
        assert_eq!(human_millis(5000), "5s");
        assert_eq!(human_millis(1500), "1.5s");
        assert_eq!(human_millis(250), "250ms");
        assert_eq!(human_millis(1234), "1234ms");
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\nb\r\n  c"), "a b c");
        let err = anyhow::Error::new(Error::Connect {
            socket: "/run/warren/warrend.sock".into(),
            source: io::Error::from_raw_os_error(2),
        })
        .context("cannot list the workers");
        assert_eq!(
            describe(&err),
            "cannot connect to /run/warren/warrend.sock: No such file or directory (is warrend running? set --socket or WARREN_SOCKET)"
        );
        let api = api_error(
            Error::from_response(
                404,
                br#"{"error": {"kind": "client", "code": "not_found", "message": "worker \"shop\" does not exist"}}"#,
            ),
            "cannot delete worker shop",
            Some("run `warren ls` to see the workers"),
        );
        assert_eq!(
            describe(&api),
            "cannot delete worker shop: worker \"shop\" does not exist (not_found); run `warren ls` to see the workers"
        );
    }
}
