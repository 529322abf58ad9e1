//! Request targets of the control API, with names and paths percent-encoded correctly.
//!
//! * A worker or object name is one path segment: everything but the RFC 3986 unreserved
//!   characters (`A-Z a-z 0-9 - . _ ~`) is encoded, so `chat/room 1` becomes `chat%2Froom%201`
//!   (and the names `.` and `..` become `%2E` and `%2E%2E`, so no one can read them as dot
//!   segments).
//! * A fetch path keeps its `/` separators, its valid `%XX` escapes and the characters RFC 3986
//!   allows in a path; everything else (space, `#`, `?` after the query split, non-ASCII, stray
//!   `%`, control bytes, ...) is encoded. Its query (after the first `?`) is passed through,
//!   encoding only the bytes that cannot appear in a query.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Error, Result};

/// Bytes encoded in a path segment or a query value: all but the unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes `name` as one path segment.
pub fn segment(name: &str) -> String {
    if name == "." || name == ".." {
        return name.replace('.', "%2E");
    }
    utf8_percent_encode(name, COMPONENT).to_string()
}

/// Encodes a query parameter value (or name).
pub fn query_value(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// Checks that a worker name is non-empty (the daemon checks the rest, answering `bad_name`).
fn worker_segment(worker: &str) -> Result<String> {
    if worker.is_empty() {
        return Err(Error::InvalidArgument("the worker name is empty".into()));
    }
    Ok(segment(worker))
}

/// Checks that an object name is non-empty (the daemon checks the rest, answering `bad_name`).
fn object_segment(object: &str) -> Result<String> {
    if object.is_empty() {
        return Err(Error::InvalidArgument("the object name is empty".into()));
    }
    Ok(segment(object))
}

/// `/v1/health`.
pub fn health() -> String {
    "/v1/health".into()
}

/// `/v1/workers`.
pub fn workers() -> String {
    "/v1/workers".into()
}

/// `/v1/workers/{worker}`.
pub fn worker(worker: &str) -> Result<String> {
    Ok(format!("/v1/workers/{}", worker_segment(worker)?))
}

/// `/v1/workers/{worker}/objects`.
pub fn objects(worker: &str) -> Result<String> {
    Ok(format!("/v1/workers/{}/objects", worker_segment(worker)?))
}

/// `/v1/workers/{worker}/objects/{object}`.
pub fn object(worker: &str, object: &str) -> Result<String> {
    Ok(format!(
        "/v1/workers/{}/objects/{}",
        worker_segment(worker)?,
        object_segment(object)?
    ))
}

/// `/v1/workers/{worker}?memory=..&...`: the target of a change of limits (`PATCH`), with the
/// set limits as the query.
pub fn worker_limits(worker: &str, limits: &crate::DeployLimits) -> Result<String> {
    let mut out = self::worker(worker)?;
    let query = limits.query();
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    Ok(out)
}

/// `/v1/workers/{worker}/objects/{object}/sql`.
pub fn sql(worker: &str, object: &str) -> Result<String> {
    Ok(format!("{}/sql", self::object(worker, object)?))
}

/// `/v1/usage[?worker=W&since=S]`.
pub fn usage(worker: Option<&str>, since: Option<&str>) -> Result<String> {
    let mut params = Vec::new();
    if let Some(worker) = worker {
        worker_segment(worker)?;
        params.push(format!("worker={}", query_value(worker)));
    }
    if let Some(since) = since {
        if since.trim().is_empty() {
            return Err(Error::InvalidArgument("the since time is empty".into()));
        }
        params.push(format!("since={}", query_value(since)));
    }
    let mut out = "/v1/usage".to_string();
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    Ok(out)
}

/// `/v1/doctor`.
pub fn doctor() -> String {
    "/v1/doctor".into()
}

/// `/metrics` (Prometheus text).
pub fn metrics() -> String {
    "/metrics".into()
}

/// `/v1/workers/{worker}/logs[?object=O&tail=N&follow=1]`.
pub fn logs(worker: &str, query: &crate::LogQuery) -> Result<String> {
    let mut out = format!("/v1/workers/{}/logs", worker_segment(worker)?);
    let mut params = Vec::new();
    if let Some(object) = &query.object {
        object_segment(object)?;
        params.push(format!("object={}", query_value(object)));
    }
    if let Some(tail) = query.tail {
        if tail > crate::MAX_LOG_TAIL {
            return Err(Error::InvalidArgument(format!(
                "a tail of {tail} lines is too many; warrend keeps at most {} per request",
                crate::MAX_LOG_TAIL
            )));
        }
        params.push(format!("tail={tail}"));
    }
    if query.follow {
        params.push("follow=1".into());
    }
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    Ok(out)
}

/// `/v1/workers/{worker}/objects/{object}/fetch{path}`, where `path` is the request target the
/// guest sees (see the module docs for how it is encoded). An empty `path` means `/`.
pub fn fetch(worker: &str, object: &str, path: &str) -> Result<String> {
    let mut out = format!(
        "/v1/workers/{}/objects/{}/fetch",
        worker_segment(worker)?,
        object_segment(object)?
    );
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    if !path.starts_with('/') {
        out.push('/');
    }
    encode_into(path, &mut out, is_path_byte);
    if let Some(query) = query {
        out.push('?');
        encode_into(query, &mut out, is_query_byte);
    }
    Ok(out)
}

/// RFC 3986 `pchar` (less `%`, handled separately) plus `/`.
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)
}

/// RFC 3986 query characters (less `%`): `pchar`, `/` and `?`.
fn is_query_byte(b: u8) -> bool {
    is_path_byte(b) || b == b'?'
}

/// Appends `text` to `out`, keeping bytes for which `keep` holds and valid `%XX` escapes, and
/// percent-encoding every other byte.
fn encode_into(text: &str, out: &mut String, keep: fn(u8) -> bool) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            out.push_str(&text[i..i + 3]);
            i += 3;
            continue;
        }
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_encode_everything_reserved() {
        assert_eq!(segment("alice"), "alice");
        assert_eq!(segment("chat/room 1"), "chat%2Froom%201");
        assert_eq!(segment("a%b?c#d"), "a%25b%3Fc%23d");
        assert_eq!(segment("x-y_z.w~v"), "x-y_z.w~v");
        assert_eq!(segment("é"), "%C3%A9");
        assert_eq!(segment("日本"), "%E6%97%A5%E6%9C%AC");
        assert_eq!(segment("a+b=c&d;e:f@g"), "a%2Bb%3Dc%26d%3Be%3Af%40g");
        assert_eq!(segment("tab\there\n"), "tab%09here%0A");
        assert_eq!(segment("."), "%2E");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("..."), "...");
        assert_eq!(segment("a..b"), "a..b");
        assert_eq!(segment("\u{7f}"), "%7F");
    }

    #[test]
    fn api_paths() {
        assert_eq!(health(), "/v1/health");
        assert_eq!(workers(), "/v1/workers");
        assert_eq!(worker("counter").unwrap(), "/v1/workers/counter");
        assert_eq!(objects("counter").unwrap(), "/v1/workers/counter/objects");
        assert_eq!(
            object("counter", "chat/room 1").unwrap(),
            "/v1/workers/counter/objects/chat%2Froom%201"
        );
        // Even a (daemon-invalid) worker name cannot escape its segment.
        assert_eq!(worker("../x").unwrap(), "/v1/workers/..%2Fx");
        assert!(matches!(worker(""), Err(Error::InvalidArgument(_))));
        assert!(matches!(object("w", ""), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            fetch("", "o", "/"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn fetch_paths() {
        let base = "/v1/workers/app/objects/u%2F1/fetch";
        let f = |path: &str| fetch("app", "u/1", path).unwrap();
        assert_eq!(f("/"), format!("{base}/"));
        assert_eq!(f(""), format!("{base}/"));
        assert_eq!(f("items"), format!("{base}/items"));
        assert_eq!(f("/increment"), format!("{base}/increment"));
        assert_eq!(f("/a/b/c/"), format!("{base}/a/b/c/"));
        assert_eq!(f("/a b/c"), format!("{base}/a%20b/c"));
        assert_eq!(f("/files/caf\u{e9}"), format!("{base}/files/caf%C3%A9"));
        assert_eq!(f("/x#frag"), format!("{base}/x%23frag"));
        assert_eq!(f("/100%"), format!("{base}/100%25"));
        assert_eq!(
            f("/a%2Fb"),
            format!("{base}/a%2Fb"),
            "valid escapes are kept"
        );
        assert_eq!(f("/a%zzb"), format!("{base}/a%25zzb"));
        assert_eq!(
            f("/q\"<>`{}|\\^"),
            format!("{base}/q%22%3C%3E%60%7B%7D%7C%5C%5E")
        );
        assert_eq!(f("/a:b@c!$&'()*+,;="), format!("{base}/a:b@c!$&'()*+,;="));
        assert_eq!(
            f("/../etc"),
            format!("{base}/../etc"),
            "dot segments go to the guest"
        );
    }

    #[test]
    fn fetch_queries_pass_through() {
        let base = "/v1/workers/app/objects/o/fetch";
        let f = |path: &str| fetch("app", "o", path).unwrap();
        assert_eq!(f("/s?q=a&b=c"), format!("{base}/s?q=a&b=c"));
        assert_eq!(f("/s?q=a%20b+c"), format!("{base}/s?q=a%20b+c"));
        assert_eq!(f("/s?next=/x?y=1"), format!("{base}/s?next=/x?y=1"));
        assert_eq!(f("/s?q=a b#c"), format!("{base}/s?q=a%20b%23c"));
        assert_eq!(f("/s?q=\u{e9}"), format!("{base}/s?q=%C3%A9"));
        assert_eq!(f("/s?"), format!("{base}/s?"));
        assert_eq!(f("?x=1"), format!("{base}/?x=1"));
        // Every result is a URI hyper accepts.
        for p in ["/a b?c d", "/\u{1}\u{7f}?\u{0}", "/%", "/%%?%%"] {
            let target = f(p);
            assert!(target.parse::<hyper::Uri>().is_ok(), "{target}");
        }
    }

    #[test]
    fn log_paths() {
        use crate::LogQuery;
        assert_eq!(
            logs("app", &LogQuery::default()).unwrap(),
            "/v1/workers/app/logs"
        );
        let q = LogQuery {
            object: Some("chat/room 1".into()),
            tail: Some(5),
            follow: true,
        };
        assert_eq!(
            logs("app", &q).unwrap(),
            "/v1/workers/app/logs?object=chat%2Froom%201&tail=5&follow=1"
        );
        let q = LogQuery {
            tail: Some(0),
            ..LogQuery::default()
        };
        assert_eq!(logs("app", &q).unwrap(), "/v1/workers/app/logs?tail=0");
        for bad in [
            LogQuery {
                object: Some(String::new()),
                ..LogQuery::default()
            },
            LogQuery {
                tail: Some(10_001),
                ..LogQuery::default()
            },
        ] {
            assert!(matches!(logs("app", &bad), Err(Error::InvalidArgument(_))));
        }
        assert!(matches!(
            logs("", &LogQuery::default()),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn new_endpoints() {
        use crate::DeployLimits;
        assert_eq!(doctor(), "/v1/doctor");
        assert_eq!(metrics(), "/metrics");
        assert_eq!(usage(None, None).unwrap(), "/v1/usage");
        assert_eq!(
            usage(Some("counter"), Some("24h")).unwrap(),
            "/v1/usage?worker=counter&since=24h"
        );
        assert_eq!(
            usage(None, Some("2026-12-04T00:00:00Z")).unwrap(),
            "/v1/usage?since=2026-12-04T00%3A00%3A00Z"
        );
        assert!(matches!(
            usage(Some(""), None),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            usage(None, Some(" ")),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(
            sql("app", "chat/room 1").unwrap(),
            "/v1/workers/app/objects/chat%2Froom%201/sql"
        );
        assert!(matches!(sql("app", ""), Err(Error::InvalidArgument(_))));
        let limits = DeployLimits {
            memory: Some("64M".into()),
            cpu_budget: Some("1.5s".into()),
            ..DeployLimits::default()
        };
        assert_eq!(
            worker_limits("app", &limits).unwrap(),
            "/v1/workers/app?memory=64M&cpu_budget=1.5s"
        );
        assert_eq!(
            worker_limits("app", &DeployLimits::default()).unwrap(),
            "/v1/workers/app"
        );
    }

    #[test]
    fn query_values() {
        assert_eq!(query_value("64M"), "64M");
        assert_eq!(query_value("0.5"), "0.5");
        assert_eq!(query_value("5 s&x=1"), "5%20s%26x%3D1");
    }
}
