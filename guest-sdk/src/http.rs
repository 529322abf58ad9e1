//! Requests a guest receives and the responses it sends.

use std::borrow::Cow;

/// One HTTP request for this object, as the supervisor forwards it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The request's id, chosen by the supervisor; the library answers with it.
    pub id: u64,
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// The path after the object's name, starting with `/` (`/` if none). Not
    /// percent-decoded.
    pub path: String,
    /// The raw query string without `?`, possibly empty. Not decoded; see
    /// [`Request::query_param`].
    pub query: String,
    /// Headers in order, names lowercase; values are raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first header named `name`, if its value is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.header(name)?).ok()
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// When the body is not valid UTF-8.
    pub fn body_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.body)
    }

    /// The query parameters in order, percent-decoded (`+` is a space); invalid escapes
    /// are kept as they are and invalid UTF-8 is replaced by U+FFFD.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(k).into_owned(), form_decode(v).into_owned())
            })
            .collect()
    }

    /// The first query parameter named `name`, decoded as [`Request::query_pairs`] does.
    /// `?flag` gives `Some("")`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(k) == name).then(|| form_decode(v).into_owned())
            })
    }

    /// The non-empty segments of the path: `/api/items/3` gives `["api", "items", "3"]`,
    /// `/` gives `[]`. Segments are not percent-decoded.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `%XX` escapes and `+` for space.
fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The guest's answer to a request.
///
/// A status below 400 commits the request's writes; 400 or more rolls them back.
/// Header names are sent lowercase. The supervisor frames the body itself: do not set
/// `content-length` or `transfer-encoding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status, 200-599 (a final response; 1xx are not answers).
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status` and no headers.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.into())
    }

    /// An `application/json` response; `body` must already be JSON.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("content-type", "application/json")
            .body(body.into())
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("content-type", "text/html; charset=utf-8")
            .body(body.into())
    }

    /// `404 Not Found` with a short text body.
    pub fn not_found() -> Self {
        Response::text(404, "not found")
    }

    /// `405 Method Not Allowed` with an `allow` header listing `allowed` (e.g. `"GET, POST"`).
    pub fn method_not_allowed(allowed: &str) -> Self {
        Response::text(405, format!("method not allowed; allowed: {allowed}"))
            .header("allow", allowed)
    }

    /// Adds a header (keeping any others of the same name, as `set-cookie` needs).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a header, replacing every other header of the same name.
    #[must_use]
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// Replaces the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Checks what the protocol and HTTP require of a response and lowercases header
    /// names: status 200-599, header names HTTP tokens, values without CR, LF or NUL.
    pub(crate) fn normalize(&mut self) -> Result<(), String> {
        if !(200..=599).contains(&self.status) {
            return Err(format!("status {} is not in 200-599", self.status));
        }
        for (name, value) in &mut self.headers {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(format!("header name {name:?} is not an HTTP token"));
            }
            name.make_ascii_lowercase();
            if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!("header {name:?} has CR, LF or NUL in its value"));
            }
        }
        Ok(())
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> Request {
        Request {
            query: query.into(),
            path: "/api//items/3/".into(),
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            body: b"hi".to_vec(),
            ..Request::default()
        }
    }

    #[test]
    fn query_decoding() {
        let r = req("a=1&b=x+y%20z&c&&d=%zz%4&e=%C3%A9&a=2&k%3D=v%26");
        assert_eq!(r.query_param("a").as_deref(), Some("1"));
        assert_eq!(r.query_param("b").as_deref(), Some("x y z"));
        assert_eq!(r.query_param("c").as_deref(), Some(""));
        assert_eq!(r.query_param("d").as_deref(), Some("%zz%4"));
        assert_eq!(r.query_param("e").as_deref(), Some("é"));
        assert_eq!(r.query_param("k=").as_deref(), Some("v&"));
        assert_eq!(r.query_param("zz"), None);
        assert_eq!(r.query_pairs().len(), 7);
        assert_eq!(req("x=%ff").query_param("x").as_deref(), Some("\u{fffd}"));
        assert_eq!(req("").query_pairs(), vec![]);
    }

    #[test]
    fn request_helpers() {
        let r = req("");
        assert_eq!(r.header("Content-Type"), Some(&b"text/plain"[..]));
        assert_eq!(r.header_str("content-type"), Some("text/plain"));
        assert_eq!(r.header("x"), None);
        assert_eq!(r.body_str(), Ok("hi"));
        assert_eq!(r.segments(), ["api", "items", "3"]);
    }

    #[test]
    fn response_builders_and_checks() {
        let r = Response::json(201, "{}").set_header("Content-Type", "application/x");
        assert_eq!(
            r.headers,
            vec![("Content-Type".into(), b"application/x".to_vec())]
        );
        let mut ok = Response::text(200, "x").header("X-Thing", "1");
        ok.normalize().unwrap();
        assert_eq!(ok.headers[1].0, "x-thing");
        for bad in [
            Response::new(99),
            Response::new(600),
            Response::new(200).header("", "x"),
            Response::new(200).header("a b", "x"),
            Response::new(200).header("a:", "x"),
            Response::new(200).header("a", "x\r\nb: y"),
        ] {
            assert!(bad.clone().normalize().is_err(), "{bad:?}");
        }
        let m = Response::method_not_allowed("GET");
        assert_eq!(m.status, 405);
        assert!(m.headers.contains(&("allow".into(), b"GET".to_vec())));
    }
}
