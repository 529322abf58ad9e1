/*
 * counter.c: a Warren guest in plain C, written from docs/protocol.md alone.
 *
 * It proves the guest protocol is language-neutral: no Warren library, only
 * libc and the frames of docs/protocol.md on fd 3. Semantics are those of the
 * Rust example `counter` (examples/counter.rs):
 *
 *   POST /increment  -> 200, body = the object's new count  (e.g. "1")
 *   GET  /           -> 200, body = the current count         (e.g. "0")
 *   other methods    -> 405 with an `allow` header, short text body
 *   other paths      -> 404, short text body
 *
 * Bodies are `text/plain; charset=utf-8`, decimal, with no trailing newline.
 * The count lives in the object's SQLite database, table
 * `counter(id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)`,
 * created lazily: a statement that fails with SQL_ERROR code 1 (e.g. "no such
 * table" on an object's first request) creates the table and is retried once.
 *
 * Build by hand (the root build.rs does the same into $OUT_DIR/examples/c_counter):
 *
 *     gcc -O2 -Wall -Werror -o c_counter examples/c/counter.c
 *
 * Run it under warrend (`warren deploy c-counter ./c_counter`); started by hand
 * without fd 3 it exits with status 2 and a message.
 *
 * Exit status: 0 when the supervisor closes fd 3 between requests, 1 on a
 * protocol error (after sending an ERROR frame when possible) or when the
 * supervisor sends ERROR, 2 when fd 3 is not usable at all.
 */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GUEST_FD 3
#define AGENT "warren-c-counter/1"
#define PROTOCOL_VERSION 1
#define DEFAULT_MAX_FRAME (16u * 1024u * 1024u)

enum {
    T_HELLO_GUEST = 0x01,
    T_HELLO_SUPERVISOR = 0x02,
    T_REQUEST = 0x10,
    T_RESPONSE = 0x11,
    T_SQL = 0x20,
    T_SQL_RESULT = 0x21,
    T_SQL_ERROR = 0x22,
    T_TX = 0x23,
    T_ERROR = 0x7f,
};

enum { V_NULL = 0, V_INTEGER = 1, V_REAL = 2, V_TEXT = 3, V_BLOB = 4 };

static const char CREATE_TABLE[] =
    "CREATE TABLE IF NOT EXISTS counter ("
    "id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)";
static const char INCREMENT[] =
    "INSERT INTO counter (id, value) VALUES (0, 1) "
    "ON CONFLICT (id) DO UPDATE SET value = value + 1 RETURNING value";
static const char CURRENT[] = "SELECT value FROM counter WHERE id = 0";

static uint32_t max_frame = DEFAULT_MAX_FRAME;

/* ---------- logging and fatal errors ---------- */

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "c-counter: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---------- raw I/O ---------- */

/* Reads exactly n bytes. Returns 1 on success, 0 on end-of-file before the
 * first byte, -1 on end-of-file after some bytes or an error. */
static int read_full(void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(GUEST_FD, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

static int write_full(const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(GUEST_FD, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---------- frame building ---------- */

struct buf {
    uint8_t *data;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        logf_("out of memory");
        exit(1);
    }
    b->data = d;
    b->cap = cap;
}

static void put(struct buf *b, const void *src, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_u8(struct buf *b, uint8_t v) { put(b, &v, 1); }

static void put_u16(struct buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}

static void put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 8);
}

static void put_bytes(struct buf *b, const void *src, size_t n)
{
    put_u32(b, (uint32_t)n);
    put(b, src, n);
}

static void put_str(struct buf *b, const char *s) { put_bytes(b, s, strlen(s)); }

/* Starts a frame: 4 length bytes (patched by send_frame) and the type. */
static void frame_begin(struct buf *b, uint8_t type)
{
    b->len = 0;
    put_u32(b, 0);
    put_u8(b, type);
}

/* Patches the length and sends the frame. Returns 0, or -1 if it is larger
 * than max_frame (nothing sent) or the write failed. */
static int send_frame(struct buf *b)
{
    size_t length = b->len - 4;
    if (length > max_frame)
        return -1;
    for (int i = 0; i < 4; i++)
        b->data[i] = (uint8_t)(length >> (8 * i));
    return write_full(b->data, b->len);
}

/* Sends ERROR(message) and exits 1: the sender closes the connection after it. */
static void protocol_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void protocol_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    logf_("protocol error: %s", msg);
    struct buf b = {0};
    frame_begin(&b, T_ERROR);
    put_str(&b, msg);
    send_frame(&b);
    free(b.data);
    exit(1);
}

/* ---------- frame reading and parsing ---------- */

struct frame {
    uint8_t type;
    uint8_t *payload;
    size_t len;
};

/* Reads one frame. Returns 1, or 0 on a clean end-of-file between frames. */
static int read_frame(struct frame *f)
{
    uint8_t hdr[4];
    int r = read_full(hdr, 4);
    if (r == 0)
        return 0;
    if (r < 0) {
        logf_("fd 3: read failed or truncated frame header");
        exit(1);
    }
    uint32_t length = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
                      (uint32_t)hdr[3] << 24;
    if (length == 0)
        protocol_error("frame length 0 (must count the type byte)");
    if (length > max_frame)
        protocol_error("frame of %" PRIu32 " bytes exceeds max_frame %" PRIu32, length,
                       max_frame);
    uint8_t *data = malloc(length);
    if (!data) {
        logf_("out of memory");
        exit(1);
    }
    if (read_full(data, length) != 1) {
        logf_("fd 3: read failed or truncated frame");
        exit(1);
    }
    f->type = data[0];
    f->payload = data;
    f->len = length;
    return 1;
}

/* A cursor over a payload; any overrun sets `bad` and yields zeros. */
struct cur {
    const uint8_t *p, *end;
    int bad;
};

static const uint8_t *take(struct cur *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    const uint8_t *at = c->p;
    c->p += n;
    return at;
}

static uint8_t get_u8(struct cur *c)
{
    const uint8_t *x = take(c, 1);
    return x ? x[0] : 0;
}

static uint16_t get_u16(struct cur *c)
{
    const uint8_t *x = take(c, 2);
    return x ? (uint16_t)(x[0] | x[1] << 8) : 0;
}

static uint32_t get_u32(struct cur *c)
{
    const uint8_t *x = take(c, 4);
    if (!x)
        return 0;
    return (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
}

static uint64_t get_u64(struct cur *c)
{
    const uint8_t *x = take(c, 8);
    uint64_t v = 0;
    if (!x)
        return 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | x[i];
    return v;
}

/* Strict UTF-8 check: no overlongs, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* A `bytes` field: points into the payload. */
struct slice {
    const uint8_t *p;
    size_t n;
};

static struct slice get_bytes(struct cur *c)
{
    struct slice s = {NULL, 0};
    uint32_t n = get_u32(c);
    const uint8_t *p = take(c, n);
    if (p) {
        s.p = p;
        s.n = n;
    }
    return s;
}

static struct slice get_str(struct cur *c)
{
    struct slice s = get_bytes(c);
    if (!c->bad && !valid_utf8(s.p, s.n))
        c->bad = 1;
    return s;
}

static int slice_eq(struct slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Reads a `value`; if it is an INTEGER, stores it in *out and returns 1. */
static int get_value(struct cur *c, int64_t *out)
{
    uint8_t tag = get_u8(c);
    if (c->bad)
        return 0;
    switch (tag) {
    case V_NULL:
        return 0;
    case V_INTEGER:
        *out = (int64_t)get_u64(c);
        return !c->bad;
    case V_REAL:
        take(c, 8);
        return 0;
    case V_TEXT:
        get_str(c);
        return 0;
    case V_BLOB:
        get_bytes(c);
        return 0;
    default:
        c->bad = 1;
        return 0;
    }
}

/* ---------- SQL ---------- */

struct sql_outcome {
    int ok;            /* 1: SQL_RESULT, 0: SQL_ERROR */
    uint16_t code;     /* SQL_ERROR code */
    char message[256]; /* SQL_ERROR message, NUL-terminated (truncated) */
    int have_value;    /* SQL_RESULT: first row's first column is an INTEGER */
    int64_t value;
    uint32_t row_count;
};

/* Sends SQL(id, statement, no params) and reads its one answer. */
static void sql(uint64_t id, const char *statement, struct sql_outcome *out)
{
    struct buf b = {0};
    frame_begin(&b, T_SQL);
    put_u64(&b, id);
    put_str(&b, statement);
    put_u32(&b, 0); /* params: empty list */
    if (send_frame(&b) != 0) {
        logf_("fd 3: cannot send SQL");
        exit(1);
    }
    free(b.data);

    struct frame f;
    if (!read_frame(&f)) {
        logf_("supervisor closed fd 3 while a SQL answer was due");
        exit(0);
    }
    struct cur c = {f.payload + 1, f.payload + f.len, 0};
    memset(out, 0, sizeof *out);
    if (f.type == T_SQL_RESULT) {
        out->ok = 1;
        uint32_t ncols = get_u32(&c);
        for (uint32_t i = 0; i < ncols && !c.bad; i++)
            get_str(&c);
        out->row_count = get_u32(&c);
        if (ncols == 0 && out->row_count != 0)
            c.bad = 1;
        for (uint64_t i = 0; i < (uint64_t)out->row_count * ncols && !c.bad; i++) {
            int64_t v;
            if (get_value(&c, &v) && i == 0) {
                out->have_value = 1;
                out->value = v;
            }
        }
        get_u64(&c); /* rows_changed */
        get_u64(&c); /* last_insert_id */
    } else if (f.type == T_SQL_ERROR) {
        out->code = get_u16(&c);
        struct slice m = get_str(&c);
        if (!c.bad) {
            size_t n = m.n < sizeof out->message - 1 ? m.n : sizeof out->message - 1;
            memcpy(out->message, m.p, n);
            out->message[n] = 0;
        }
    } else if (f.type == T_ERROR) {
        struct slice m = get_str(&c);
        logf_("supervisor sent ERROR: %.*s", c.bad ? 0 : (int)m.n, (const char *)m.p);
        exit(1);
    } else {
        protocol_error("expected SQL_RESULT or SQL_ERROR, got frame type 0x%02x", f.type);
    }
    if (c.bad || c.p != c.end)
        protocol_error("malformed frame of type 0x%02x", f.type);
    free(f.payload);
}

/* Runs `statement`; on SQL_ERROR code 1 (the table may not exist yet) creates
 * the table and retries once. */
static void sql_with_table(uint64_t id, const char *statement, struct sql_outcome *out)
{
    sql(id, statement, out);
    if (out->ok || out->code != 1)
        return;
    sql(id, CREATE_TABLE, out);
    if (!out->ok)
        return;
    sql(id, statement, out);
}

/* ---------- requests ---------- */

static void respond(uint64_t id, uint16_t status, const char *allow, const char *body)
{
    struct buf b = {0};
    frame_begin(&b, T_RESPONSE);
    put_u64(&b, id);
    put_u16(&b, status);
    put_u32(&b, allow ? 2 : 1);
    put_str(&b, "content-type");
    put_str(&b, "text/plain; charset=utf-8");
    if (allow) {
        put_str(&b, "allow");
        put_str(&b, allow);
    }
    put_str(&b, body);
    if (send_frame(&b) != 0) {
        logf_("fd 3: cannot send RESPONSE");
        exit(1);
    }
    free(b.data);
}

static void handle(uint64_t id, struct slice method, struct slice path)
{
    int increment = slice_eq(path, "/increment");
    int root = slice_eq(path, "/");
    if (!increment && !root) {
        respond(id, 404, NULL, "not found");
        return;
    }
    if (increment && !slice_eq(method, "POST")) {
        respond(id, 405, "POST", "method not allowed; allowed: POST");
        return;
    }
    if (root && !slice_eq(method, "GET")) {
        respond(id, 405, "GET", "method not allowed; allowed: GET");
        return;
    }

    struct sql_outcome r;
    sql_with_table(id, increment ? INCREMENT : CURRENT, &r);
    if (!r.ok) {
        char body[320];
        snprintf(body, sizeof body, "storage error %u: %s", r.code, r.message);
        logf_("%s", body);
        respond(id, 500, NULL, body);
        return;
    }
    int64_t count = 0;
    if (r.have_value) {
        count = r.value;
    } else if (r.row_count != 0 || increment) {
        respond(id, 500, NULL, "storage error: unexpected result");
        return;
    }
    char body[32];
    snprintf(body, sizeof body, "%" PRId64, count);
    respond(id, 200, NULL, body);
}

int main(void)
{
    /* A closed fd 3 must surface as EPIPE from write(), not kill the guest. */
    signal(SIGPIPE, SIG_IGN);

    struct buf b = {0};
    frame_begin(&b, T_HELLO_GUEST);
    put_u16(&b, PROTOCOL_VERSION);
    put_str(&b, AGENT);
    if (send_frame(&b) != 0) {
        logf_("cannot write HELLO to fd 3 (%s): start this program under warrend",
              strerror(errno));
        return 2;
    }
    free(b.data);

    struct frame f;
    if (!read_frame(&f)) {
        logf_("supervisor closed fd 3 before HELLO");
        return 0;
    }
    if (f.type == T_ERROR) {
        logf_("supervisor refused HELLO");
        free(f.payload);
        return 1;
    }
    if (f.type != T_HELLO_SUPERVISOR)
        protocol_error("expected HELLO, got frame type 0x%02x", f.type);
    struct cur c = {f.payload + 1, f.payload + f.len, 0};
    uint16_t version = get_u16(&c);
    uint32_t announced = get_u32(&c);
    if (c.bad || c.p != c.end)
        protocol_error("malformed HELLO");
    if (version != PROTOCOL_VERSION)
        protocol_error("unsupported protocol version %u (this guest speaks 1)", version);
    if (announced == 0)
        protocol_error("max_frame 0");
    max_frame = announced;
    free(f.payload);

    for (;;) {
        if (!read_frame(&f))
            return 0; /* the supervisor ended us between requests */
        c = (struct cur){f.payload + 1, f.payload + f.len, 0};
        if (f.type == T_ERROR) {
            struct slice m = get_str(&c);
            logf_("supervisor sent ERROR: %.*s", c.bad ? 0 : (int)m.n, (const char *)m.p);
            free(f.payload);
            return 1;
        }
        if (f.type != T_REQUEST)
            protocol_error("expected REQUEST, got frame type 0x%02x", f.type);
        uint64_t id = get_u64(&c);
        struct slice method = get_str(&c);
        struct slice path = get_str(&c);
        get_str(&c); /* query */
        uint32_t nheaders = get_u32(&c);
        for (uint32_t i = 0; i < nheaders && !c.bad; i++) {
            get_str(&c);   /* name */
            get_bytes(&c); /* value */
        }
        get_bytes(&c); /* body */
        if (c.bad || c.p != c.end)
            protocol_error("malformed REQUEST");
        handle(id, method, path);
        free(f.payload);
    }
}
