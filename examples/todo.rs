//! `todo`: a complete small app as one Warren guest — a web UI, a JSON API and its data.
//!
//! Every object is one independent to-do list (one per user, say), kept in the object's
//! own SQLite database.
//!
//! | request                  | body                                | answer                         |
//! |--------------------------|-------------------------------------|--------------------------------|
//! | `GET /`                  |                                     | `200`, the HTML page            |
//! | `GET /api/items`         |                                     | `200`, `[{"id","title","done"}]` |
//! | `POST /api/items`        | `{"title": "..."}`                  | `201`, the new item             |
//! | `GET /api/items/{id}`    |                                     | `200`, the item                 |
//! | `PATCH /api/items/{id}`  | `{"done": bool}` and/or `{"title"}` | `200`, the updated item         |
//! | `DELETE /api/items/{id}` |                                     | `204`                           |
//!
//! Errors are JSON, `{"error": "..."}`: `400` for a body that is not the JSON asked for
//! (nothing is written), `404` for an unknown item or path, `405` for a wrong method.
//!
//! The page is self-contained (inline CSS and script, no external assets) and calls the
//! API with URLs relative to where it is served (`.../<object>/` → `.../<object>/api/items`),
//! so it works behind any prefix the supervisor's ingress uses.
//!
//! Build: `cargo build --release --example todo`.

use warren_guest::{params, serve, Ctx, Request, Response, Row, SqlError};

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS items (\
     id INTEGER PRIMARY KEY AUTOINCREMENT, \
     title TEXT NOT NULL, \
     done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)))"];

/// Longest title accepted, in characters.
const MAX_TITLE: usize = 500;

fn main() {
    serve(handle)
}

fn handle(ctx: &mut Ctx<'_>, req: Request) -> Response {
    let segments = req.segments();
    let method = req.method.as_str();
    let result = match segments.as_slice() {
        [] => match method {
            "GET" => Ok(Response::html(200, PAGE)),
            _ => Err(ApiError::method("GET")),
        },
        ["api", "items"] => match method {
            "GET" => list(ctx),
            "POST" => create(ctx, &req),
            _ => Err(ApiError::method("GET, POST")),
        },
        ["api", "items", id] => match parse_id(id) {
            None => Err(ApiError::not_found("no such item")),
            Some(id) => match method {
                "GET" => get(ctx, id),
                "PATCH" => update(ctx, id, &req),
                "DELETE" => delete(ctx, id),
                _ => Err(ApiError::method("GET, PATCH, DELETE")),
            },
        },
        _ => Err(ApiError::not_found("not found")),
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn parse_id(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&id| id > 0)
}

fn list(ctx: &mut Ctx<'_>) -> Result<Response, ApiError> {
    let rows = ctx.sql_with_schema(SCHEMA, "SELECT id, title, done FROM items ORDER BY id", &[])?;
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        item_json(&row, &mut out)?;
    }
    out.push(']');
    Ok(Response::json(200, out))
}

fn get(ctx: &mut Ctx<'_>, id: i64) -> Result<Response, ApiError> {
    Ok(Response::json(200, load(ctx, id)?))
}

fn create(ctx: &mut Ctx<'_>, req: &Request) -> Result<Response, ApiError> {
    let fields = json_object(req, &["title"])?;
    let title = match fields.get("title") {
        Some(json::Json::String(s)) => valid_title(s)?,
        Some(_) => return Err(ApiError::bad_request("\"title\" must be a string")),
        None => return Err(ApiError::bad_request("\"title\" is required")),
    };
    let rows = ctx.sql_with_schema(
        SCHEMA,
        "INSERT INTO items (title) VALUES (?)",
        params![&title],
    )?;
    let mut out = String::new();
    write_item(rows.last_insert_id, &title, false, &mut out);
    Ok(Response::json(201, out))
}

fn update(ctx: &mut Ctx<'_>, id: i64, req: &Request) -> Result<Response, ApiError> {
    let fields = json_object(req, &["title", "done"])?;
    let done = match fields.get("done") {
        Some(json::Json::Bool(b)) => Some(*b),
        Some(_) => return Err(ApiError::bad_request("\"done\" must be true or false")),
        None => None,
    };
    let title = match fields.get("title") {
        Some(json::Json::String(s)) => Some(valid_title(s)?),
        Some(_) => return Err(ApiError::bad_request("\"title\" must be a string")),
        None => None,
    };
    if done.is_none() && title.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: give \"done\" and/or \"title\"",
        ));
    }
    let changed = ctx
        .sql_with_schema(
            SCHEMA,
            "UPDATE items SET done = coalesce(?, done), title = coalesce(?, title) WHERE id = ?",
            params![done, title, id],
        )?
        .rows_changed;
    if changed == 0 {
        return Err(ApiError::not_found("no such item"));
    }
    Ok(Response::json(200, load(ctx, id)?))
}

fn delete(ctx: &mut Ctx<'_>, id: i64) -> Result<Response, ApiError> {
    let rows = ctx.sql_with_schema(SCHEMA, "DELETE FROM items WHERE id = ?", params![id])?;
    if rows.rows_changed == 0 {
        return Err(ApiError::not_found("no such item"));
    }
    Ok(Response::new(204))
}

/// The item `id` as JSON.
fn load(ctx: &mut Ctx<'_>, id: i64) -> Result<String, ApiError> {
    let rows = ctx.sql_with_schema(
        SCHEMA,
        "SELECT id, title, done FROM items WHERE id = ?",
        params![id],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ApiError::not_found("no such item"))?;
    let mut out = String::new();
    item_json(&row, &mut out)?;
    Ok(out)
}

fn item_json(row: &Row<'_>, out: &mut String) -> Result<(), ApiError> {
    match (row.get_i64("id"), row.get_str("title"), row.get_i64("done")) {
        (Some(id), Some(title), Some(done)) => {
            write_item(id, title, done != 0, out);
            Ok(())
        }
        _ => Err(ApiError::internal("unexpected row in the items table")),
    }
}

fn write_item(id: i64, title: &str, done: bool, out: &mut String) {
    out.push_str(&format!("{{\"id\":{id},\"title\":"));
    json::write_string(title, out);
    out.push_str(&format!(",\"done\":{done}}}"));
}

fn valid_title(s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ApiError::bad_request("\"title\" must not be empty"));
    }
    if t.chars().count() > MAX_TITLE {
        return Err(ApiError::bad_request(format!(
            "\"title\" is longer than {MAX_TITLE} characters"
        )));
    }
    Ok(t.to_owned())
}

/// The request body as a JSON object with only the `allowed` fields.
fn json_object(
    req: &Request,
    allowed: &[&str],
) -> Result<std::collections::BTreeMap<String, json::Json>, ApiError> {
    let text = req
        .body_str()
        .map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let value = json::parse(text).map_err(|e| ApiError::bad_request(format!("bad JSON: {e}")))?;
    let json::Json::Object(fields) = value else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let mut map = std::collections::BTreeMap::new();
    for (name, value) in fields {
        if !allowed.contains(&name.as_str()) {
            let mut msg = String::from("unknown field ");
            json::write_string(&name, &mut msg);
            return Err(ApiError::bad_request(msg));
        }
        if map.insert(name.clone(), value).is_some() {
            let mut msg = String::from("duplicate field ");
            json::write_string(&name, &mut msg);
            return Err(ApiError::bad_request(msg));
        }
    }
    Ok(map)
}

/// An API error, answered as `{"error": message}`. Any status of 400 or more also
/// rolls back whatever the request wrote.
#[derive(Debug)]
struct ApiError {
    status: u16,
    message: String,
    allow: Option<&'static str>,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            allow: None,
        }
    }
    fn not_found(message: &str) -> Self {
        ApiError {
            status: 404,
            message: message.into(),
            allow: None,
        }
    }
    fn method(allow: &'static str) -> Self {
        ApiError {
            status: 405,
            message: format!("method not allowed; allowed: {allow}"),
            allow: Some(allow),
        }
    }
    fn internal(message: &str) -> Self {
        ApiError {
            status: 500,
            message: message.into(),
            allow: None,
        }
    }
    fn into_response(self) -> Response {
        let mut body = String::from("{\"error\":");
        json::write_string(&self.message, &mut body);
        body.push('}');
        let r = Response::json(self.status, body);
        match self.allow {
            Some(allow) => r.header("allow", allow),
            None => r,
        }
    }
}

impl From<SqlError> for ApiError {
    fn from(e: SqlError) -> Self {
        eprintln!("todo: {e}");
        ApiError::internal(&format!("storage error: {e}"))
    }
}

/// Just enough JSON: a strict parser (RFC 8259) and string escaping.
mod json {
    /// A parsed JSON value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Json>),
        /// Members in order; duplicates are kept for the caller to judge.
        Object(Vec<(String, Json)>),
    }

    /// Nesting deeper than this is refused (no stack overflow on `[[[[...`).
    const MAX_DEPTH: usize = 64;

    /// Parses one JSON text (whitespace around it allowed, nothing else).
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            text,
            i: 0,
        };
        p.ws();
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("unexpected data after the value"));
        }
        Ok(v)
    }

    /// Appends `s` as a JSON string literal, quotes included.
    pub fn write_string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                // Also escaped: other controls, and `<`, `>`, `&`, U+2028, U+2029 so the
                // text is safe inside HTML and JavaScript too.
                c if u32::from(c) < 0x20
                    || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') =>
                {
                    out.push_str(&format!("\\u{:04x}", u32::from(c)));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    struct Parser<'a> {
        s: &'a [u8],
        text: &'a str,
        i: usize,
    }

    impl Parser<'_> {
        fn err(&self, what: &str) -> String {
            format!("{what} at byte {}", self.i)
        }

        fn ws(&mut self) {
            while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.i += 1;
            }
        }

        fn eat(&mut self, lit: &str) -> bool {
            if self.s[self.i..].starts_with(lit.as_bytes()) {
                self.i += lit.len();
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Json, String> {
            if depth > MAX_DEPTH {
                return Err(self.err("nested too deeply"));
            }
            match self.s.get(self.i) {
                None => Err(self.err("unexpected end, expected a value")),
                Some(b'{') => self.object(depth),
                Some(b'[') => self.array(depth),
                Some(b'"') => Ok(Json::String(self.string()?)),
                Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
                Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
                Some(b'n') if self.eat("null") => Ok(Json::Null),
                Some(b'-' | b'0'..=b'9') => self.number(),
                Some(_) => Err(self.err("expected a value")),
            }
        }

        fn object(&mut self, depth: usize) -> Result<Json, String> {
            self.i += 1;
            let mut members = Vec::new();
            self.ws();
            if self.eat("}") {
                return Ok(Json::Object(members));
            }
            loop {
                self.ws();
                if self.s.get(self.i) != Some(&b'"') {
                    return Err(self.err("expected a string key"));
                }
                let key = self.string()?;
                self.ws();
                if !self.eat(":") {
                    return Err(self.err("expected ':'"));
                }
                self.ws();
                let v = self.value(depth + 1)?;
                members.push((key, v));
                self.ws();
                if self.eat(",") {
                    continue;
                }
                if self.eat("}") {
                    return Ok(Json::Object(members));
                }
                return Err(self.err("expected ',' or '}'"));
            }
        }

        fn array(&mut self, depth: usize) -> Result<Json, String> {
            self.i += 1;
            let mut items = Vec::new();
            self.ws();
            if self.eat("]") {
                return Ok(Json::Array(items));
            }
            loop {
                self.ws();
                items.push(self.value(depth + 1)?);
                self.ws();
                if self.eat(",") {
                    continue;
                }
                if self.eat("]") {
                    return Ok(Json::Array(items));
                }
                return Err(self.err("expected ',' or ']'"));
            }
        }

        fn number(&mut self) -> Result<Json, String> {
            let start = self.i;
            self.eat("-");
            match self.s.get(self.i) {
                Some(b'0') => self.i += 1,
                Some(b'1'..=b'9') => self.digits(),
                _ => return Err(self.err("expected a digit")),
            }
            if self.eat(".") {
                if !matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                    return Err(self.err("expected a digit after '.'"));
                }
                self.digits();
            }
            if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if !matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                    return Err(self.err("expected a digit in the exponent"));
                }
                self.digits();
            }
            self.text[start..self.i]
                .parse()
                .map(Json::Number)
                .map_err(|_| self.err("bad number"))
        }

        fn digits(&mut self) {
            while matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let digits = self
                .text
                .get(self.i..self.i + 4)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| self.err("expected 4 hex digits after \\u"))?;
            self.i += 4;
            u32::from_str_radix(digits, 16).map_err(|_| self.err("bad \\u escape"))
        }

        fn string(&mut self) -> Result<String, String> {
            self.i += 1; // the opening quote
            let mut out = String::new();
            loop {
                let Some(&b) = self.s.get(self.i) else {
                    return Err(self.err("unterminated string"));
                };
                match b {
                    b'"' => {
                        self.i += 1;
                        return Ok(out);
                    }
                    b'\\' => {
                        self.i += 1;
                        let Some(&e) = self.s.get(self.i) else {
                            return Err(self.err("unterminated escape"));
                        };
                        self.i += 1;
                        match e {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let hi = self.hex4()?;
                                let code = if (0xd800..0xdc00).contains(&hi) {
                                    if !self.eat("\\u") {
                                        return Err(self.err("lone high surrogate"));
                                    }
                                    let lo = self.hex4()?;
                                    if !(0xdc00..0xe000).contains(&lo) {
                                        return Err(self.err("bad low surrogate"));
                                    }
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    hi
                                };
                                let c = char::from_u32(code)
                                    .ok_or_else(|| self.err("lone low surrogate"))?;
                                out.push(c);
                            }
                            _ => return Err(self.err("unknown escape")),
                        }
                    }
                    0..=0x1f => return Err(self.err("control character in string")),
                    _ => {
                        // Copy one whole UTF-8 character (the input is a &str).
                        let c = self.text[self.i..]
                            .chars()
                            .next()
                            .ok_or_else(|| self.err("bad UTF-8"))?;
                        out.push(c);
                        self.i += c.len_utf8();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json::{parse, write_string, Json};

    #[test]
    fn json_parses_strictly() {
        assert_eq!(
            parse(r#" {"title": "a\"b\\c\u00e9\ud83d\ude00", "done": true, "n": -1.5e3, "x": [null, {}]} "#)
                .unwrap(),
            Json::Object(vec![
                ("title".into(), Json::String("a\"b\\cé😀".into())),
                ("done".into(), Json::Bool(true)),
                ("n".into(), Json::Number(-1500.0)),
                ("x".into(), Json::Array(vec![Json::Null, Json::Object(vec![])])),
            ])
        );
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            "-",
            "tru",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\nb\"",
            "{} {}",
            "{'a':1}",
            "nul",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse(&"[".repeat(100_000)).is_err());
    }

    #[test]
    fn json_strings_escape_and_round_trip() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "new\nline",
            "\u{1}",
            "<b>&",
            "é😀",
        ] {
            let mut out = String::new();
            write_string(s, &mut out);
            assert_eq!(parse(&out).unwrap(), Json::String(s.into()), "{out}");
        }
        let mut out = String::new();
        write_string("</script>", &mut out);
        assert!(!out.contains('<'));
    }
}

/// The whole UI: one page, inline style and script, API URLs relative to the page.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>To-do</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #222; background: #f6f6f4; }
  main { max-width: 34rem; margin: 3rem auto; padding: 0 1rem; }
  h1 { font-weight: 600; margin-bottom: 1rem; }
  form { display: flex; gap: .5rem; margin-bottom: 1rem; }
  input[type=text] { flex: 1; padding: .55rem .7rem; font-size: 1rem; border: 1px solid #bbb; border-radius: 6px; }
  button { padding: .5rem .9rem; font-size: 1rem; border: 1px solid #888; border-radius: 6px; background: #fff; cursor: pointer; }
  ul { list-style: none; padding: 0; margin: 0; }
  li { display: flex; align-items: center; gap: .6rem; padding: .5rem .6rem; background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; margin-bottom: .4rem; }
  li span { flex: 1; overflow-wrap: anywhere; }
  li.done span { text-decoration: line-through; color: #999; }
  li button { border: none; background: none; color: #b33; font-size: 1.1rem; padding: 0 .3rem; }
  #status { min-height: 1.4rem; color: #b33; }
  footer { color: #777; font-size: .9rem; margin-top: .8rem; }
</style>
</head>
<body>
<main>
  <h1>To-do</h1>
  <form id="add">
    <input type="text" id="title" placeholder="What needs doing?" maxlength="500" autocomplete="off" required>
    <button type="submit">Add</button>
  </form>
  <div id="status" role="status"></div>
  <ul id="items"></ul>
  <footer id="count"></footer>
</main>
<script>
"use strict";
// The page is served at .../<object>/ ; the API lives next to it.
const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const list = document.getElementById("items");
const statusLine = document.getElementById("status");

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(base + "api/items" + path, init);
  if (!res.ok) {
    let message = res.status + " " + res.statusText;
    try { message = (await res.json()).error || message; } catch (_) {}
    throw new Error(message);
  }
  return res.status === 204 ? null : res.json();
}

function show(items) {
  list.replaceChildren(...items.map(item => {
    const li = document.createElement("li");
    li.className = item.done ? "done" : "";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = item.done;
    box.title = "Done";
    box.onchange = () => act(api("PATCH", "/" + item.id, { done: box.checked }));
    const text = document.createElement("span");
    text.textContent = item.title;
    const del = document.createElement("button");
    del.textContent = "\u00d7";
    del.title = "Delete";
    del.onclick = () => act(api("DELETE", "/" + item.id));
    li.append(box, text, del);
    return li;
  }));
  const left = items.filter(i => !i.done).length;
  document.getElementById("count").textContent =
    items.length ? left + " of " + items.length + " left" : "Nothing to do.";
}

async function refresh() { show(await api("GET", "")); }

async function act(promise) {
  try { await promise; statusLine.textContent = ""; }
  catch (e) { statusLine.textContent = e.message; }
  try { await refresh(); } catch (e) { statusLine.textContent = e.message; }
}

document.getElementById("add").onsubmit = event => {
  event.preventDefault();
  const input = document.getElementById("title");
  const title = input.value.trim();
  if (!title) return;
  input.value = "";
  act(api("POST", "", { title }));
};

act(Promise.resolve());
</script>
</body>
</html>
"#;
