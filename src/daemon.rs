//! A real `warrend` for integration tests: started on a private socket and state directory,
//! spoken to over plain HTTP/1.1 on its Unix socket, stopped (and restartable on the same
//! state) by the test.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    dir: tempfile::TempDir,
    extra_config: String,
}

/// A response from the daemon.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status
    pub status: u16,
    /// headers, names lowercase
    pub headers: Vec<(String, String)>,
    /// body
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

impl Daemon {
    /// Start a daemon with the default configuration plus `config` (TOML lines).
    pub fn start_with(config: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut d = Daemon {
            child: None,
            dir,
            extra_config: config.to_string(),
        };
        d.spawn();
        d
    }

    /// Start a daemon with a small pool and short idle timeout.
    pub fn start() -> Daemon {
        Self::start_with("")
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("warrend.sock")
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn spawn(&mut self) {
        let config = self.dir.path().join("warrend.toml");
        let mut defaults = String::new();
        if !self.extra_config.contains("pool_size") {
            defaults.push_str("pool_size = 2\n");
        }
        if !self.extra_config.contains("metrics_listen") {
            // parallel tests: every daemon on its own free port
            defaults.push_str("metrics_listen = \"127.0.0.1:0\"\n");
        }
        std::fs::write(&config, format!("{defaults}{}\n", self.extra_config))
            .expect("write config");
        let log = std::fs::File::create(self.dir.path().join("warrend.log")).expect("log file");
        let child = Command::new(crate::bin("warrend"))
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.state_dir())
            .env_clear()
            .env("WARREN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn warrend");
        self.child = Some(child);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("warrend exited at start ({status}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("warrend did not listen within 30s: {}", self.log());
    }

    /// The address a listener announced in the log (`"ingress"` or `"metrics"`).
    pub fn listen_addr(&self, what: &str) -> String {
        let t0 = Instant::now();
        loop {
            let log = self.log();
            if let Some(a) = log
                .lines()
                .filter(|l| l.contains(&format!("{what} listening")))
                .find_map(|l| l.split("addr=").nth(1))
                .and_then(|a| a.split_whitespace().next())
            {
                return a.to_string();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no {what} address in the log: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("warrend.log")).unwrap_or_default()
    }

    /// Stop with SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("pid fits"));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    /// Kill with SIGKILL (a crash) and wait.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same state.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// One HTTP request to the control socket.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        http(&self.socket(), method, path, &[], body)
    }

    /// Deploy `program` as `name` with query parameters `query` (`memory=64M&...`).
    pub fn deploy(&self, name: &str, program: &Path, query: &str) -> Reply {
        let bytes = std::fs::read(program).expect("read program");
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        self.request("PUT", &format!("/v1/workers/{name}{q}"), &bytes)
    }

    /// A request to an object (`path` starts with `/`).
    pub fn fetch(
        &self,
        worker: &str,
        object: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Reply {
        let object =
            percent_encoding::utf8_percent_encode(object, percent_encoding::NON_ALPHANUMERIC);
        self.request(
            method,
            &format!("/v1/workers/{worker}/objects/{object}/fetch{path}"),
            body,
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal HTTP/1.1 client over a Unix socket (one request per connection).
pub fn http(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: warren\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    // the daemon may answer (413, say) and close before reading the whole body
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = unchunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < eol + 2 + n + 2 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}

/// Path of an example program of this workspace (`target/<profile>/examples/<name>`), built
/// by `cargo build --examples` (scripts/test does).
pub fn example(name: &str) -> PathBuf {
    let bin = crate::bin("warrend");
    let p = bin
        .parent()
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        p.is_file(),
        "example {name} not found at {}: run `cargo build --workspace --bins --examples` first",
        p.display()
    );
    p
}

/// A kept-alive HTTP/1.1 connection to the daemon (for benchmarks: no connect per request).
#[derive(Debug)]
pub struct Conn {
    stream: std::io::BufReader<UnixStream>,
}

impl Conn {
    /// Connect to the control socket.
    pub fn open(socket: &Path) -> Conn {
        let s = UnixStream::connect(socket)
            .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
        Conn {
            stream: std::io::BufReader::new(s),
        }
    }

    /// One request; returns status and body.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        use std::io::BufRead;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: warren\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(body).expect("write");
        let mut line = String::new();
        self.stream.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).expect("body");
        (status, body)
    }
}
