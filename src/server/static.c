/*
 * Static files. See static.h for the rules and docs/static.md for why they
 * are these.
 */
#include "server/static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

struct gw_static {
    int dir_fd;
};

int gw_static_new(const char *dir, gw_static **out, gw_error *e)
{
    *out = NULL;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return gw_error_set(e, GW_EIO, "static directory %s: %s", dir, strerror(errno));
    gw_static *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    }
    s->dir_fd = fd;
    *out = s;
    return 0;
}

void gw_static_del(gw_static *s)
{
    if (!s)
        return;
    close(s->dir_fd);
    free(s);
}

/* ---- paths ------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gw_static_clean_path(const char *target, size_t len, char *out, size_t cap, gw_error *e)
{
    static const char index_name[] = "index.html";
    size_t n = 0, segments = 0, seg_start = 0;
    const char *q = memchr(target, '?', len);
    if (q)
        len = (size_t)(q - target);
    if (len == 0 || target[0] != '/')
        return gw_error_set(e, GW_EPARSE, "the path must start with '/'");
    if (cap == 0)
        return gw_error_set(e, GW_ELIMIT, "path too long");
    /* Raw '/' separate segments; a decoded byte is only ever data, so an
     * encoded '/' or '\' (which some layer might treat as a separator) and
     * dot segments (which some layer might resolve) are refused, not
     * interpreted. */
    for (size_t i = 0; i <= len; i++) {
        bool end = i == len || target[i] == '/';
        if (end) {
            if (i > 0) {
                const char *seg = out + seg_start;
                size_t sl = n - seg_start;
                if (sl == 0 && i < len)
                    return gw_error_set(e, GW_EINVAL, "empty path segment at byte %zu", i);
                if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
                    return gw_error_set(e, GW_EINVAL, "'.' or '..' segment before byte %zu", i);
            }
            if (i == len)
                break;
            if (++segments > GW_STATIC_SEGMENTS_MAX)
                return gw_error_set(e, GW_ELIMIT, "more than %d path segments",
                                    GW_STATIC_SEGMENTS_MAX);
            if (n + 1 >= cap || n + 1 > GW_STATIC_PATH_MAX)
                return gw_error_set(e, GW_ELIMIT, "path longer than %d bytes",
                                    GW_STATIC_PATH_MAX);
            out[n++] = '/';
            seg_start = n;
            continue;
        }
        unsigned char c = (unsigned char)target[i];
        size_t at = i;
        if (c == '%') {
            int hi = i + 2 < len ? hexval(target[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(target[i + 2]) : -1;
            if (lo < 0)
                return gw_error_set(e, GW_EPARSE, "malformed %%-escape at byte %zu", i);
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
            if (c == '/' || c == '\\')
                return gw_error_set(e, GW_EINVAL, "encoded '%c' at byte %zu", c, at);
        }
        if (c == '\\')
            return gw_error_set(e, GW_EINVAL, "'\\' at byte %zu", at);
        if (c < 0x20 || c == 0x7f)
            return gw_error_set(e, GW_EINVAL, "control byte 0x%02x at byte %zu", c, at);
        if (n + 1 >= cap || n + 1 > GW_STATIC_PATH_MAX)
            return gw_error_set(e, GW_ELIMIT, "path longer than %d bytes", GW_STATIC_PATH_MAX);
        out[n++] = (char)c;
    }
    if (out[n - 1] == '/') {
        if (n + sizeof index_name > cap || n + sizeof index_name - 1 > GW_STATIC_PATH_MAX)
            return gw_error_set(e, GW_ELIMIT, "path longer than %d bytes", GW_STATIC_PATH_MAX);
        memcpy(out + n, index_name, sizeof index_name);
        return 0;
    }
    out[n] = 0;
    return 0;
}

typedef struct ext_type {
    const char *ext;
    const char *type;
} ext_type;

/* The text types say their charset: the browser must not guess it. */
static const ext_type ext_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"wasm", "application/wasm"},
    {"woff2", "font/woff2"},
};

const char *gw_static_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        for (size_t i = 0; i < GW_ARRAY_LEN(ext_types); i++)
            if (strcasecmp(dot + 1, ext_types[i].ext) == 0)
                return ext_types[i].type;
    return "application/octet-stream";
}

/* ---- dates and validators --------------------------------------------------------- */

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void gw_static_format_http_date(int64_t t, char buf[30])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        memset(&tm, 0, sizeof tm);
        tm.tm_mday = 1;
        tm.tm_year = 70;
        tm.tm_wday = 4;
    }
    /* By hand rather than strftime: the names must not follow the locale. */
    snprintf(buf, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[tm.tm_wday % 7],
             tm.tm_mday, month_names[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

int gw_static_parse_http_date(const char *s, int64_t *out)
{
    char wd[4], mon[4];
    int day, year, hh, mm, ss, used = 0;
    if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wd, &day, mon, &year,
               &hh, &mm, &ss, &used) != 7 || used == 0 || s[used] != 0)
        return GW_EPARSE;
    int m = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, month_names[i]) == 0)
            m = i;
    if (m < 0 || day < 1 || day > 31 || year < 1970 || hh > 23 || mm > 59 || ss > 60)
        return GW_EPARSE;
    struct tm tm = {.tm_year = year - 1900, .tm_mon = m, .tm_mday = day,
                    .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
    time_t t = timegm(&tm);
    /* Up to 9999-12-31T23:59:59: what the four-digit year can write back. */
    if (t == (time_t)-1 || (int64_t)t >= 253402300800)
        return GW_EPARSE;
    *out = (int64_t)t;
    return 0;
}

/* An entity tag without its weakness prefix, for the weak comparison that
 * If-None-Match uses. */
static void opaque_tag(const char *p, size_t n, const char **tag, size_t *tag_len)
{
    if (n >= 2 && p[0] == 'W' && p[1] == '/') {
        p += 2;
        n -= 2;
    }
    *tag = p;
    *tag_len = n;
}

static bool etag_listed(const char *list, const char *etag)
{
    const char *mine;
    size_t mine_len;
    opaque_tag(etag, strlen(etag), &mine, &mine_len);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return true;
        const char *start = p;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return false; /* malformed list: no match, send the file */
        const char *close = strchr(p + 1, '"');
        if (!close)
            return false;
        p = close + 1;
        const char *theirs;
        size_t theirs_len;
        opaque_tag(start, (size_t)(p - start), &theirs, &theirs_len);
        if (theirs_len == mine_len && memcmp(theirs, mine, mine_len) == 0)
            return true;
    }
    return false;
}

bool gw_static_not_modified(const char *if_none_match, const char *if_modified_since,
                            const char *etag, int64_t mtime_s)
{
    if (if_none_match)
        return etag_listed(if_none_match, etag);
    int64_t since;
    if (if_modified_since && gw_static_parse_http_date(if_modified_since, &since) == 0)
        return mtime_s <= since;
    return false;
}

/* ---- ranges and caching ------------------------------------------------------------ */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads the digits at *p, saturating at UINT64_MAX: a position or length
 * beyond 64 bits is past the end of any file, which is what it means.
 * False when there is no digit. */
static bool read_number(const char **p, uint64_t *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

gw_static_range gw_static_parse_range(const char *value, uint64_t size, uint64_t *first,
                                      uint64_t *len)
{
    if (!value)
        return GW_STATIC_RANGE_WHOLE;
    const char *p = value;
    while (is_ows(*p))
        p++;
    if (strncasecmp(p, "bytes=", 6) != 0)
        return GW_STATIC_RANGE_WHOLE;
    p += 6;
    bool have = false, suffix = false;
    uint64_t a = 0, b = UINT64_MAX;
    /* A list (RFC 9110 5.6.1): blanks around elements and empty elements are
     * allowed; a second range makes the whole header one we do not serve. */
    for (;;) {
        while (is_ows(*p))
            p++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (!*p)
            break;
        if (have)
            return GW_STATIC_RANGE_WHOLE;
        if (*p == '-') {
            p++;
            suffix = true;
            if (!read_number(&p, &a))
                return GW_STATIC_RANGE_WHOLE;
        } else {
            if (!read_number(&p, &a) || *p != '-')
                return GW_STATIC_RANGE_WHOLE;
            p++;
            if (*p >= '0' && *p <= '9') {
                read_number(&p, &b);
                if (b < a)
                    return GW_STATIC_RANGE_WHOLE; /* invalid, not unsatisfiable */
            }
        }
        have = true;
        while (is_ows(*p))
            p++;
        if (*p && *p != ',')
            return GW_STATIC_RANGE_WHOLE;
    }
    if (!have)
        return GW_STATIC_RANGE_WHOLE;
    if (suffix) {
        if (a == 0)
            return GW_STATIC_RANGE_UNSATISFIABLE;
        /* Satisfiable by the RFC, but "bytes a-b/0" cannot be written: the
         * empty file itself is the answer. */
        if (size == 0)
            return GW_STATIC_RANGE_WHOLE;
        *len = a < size ? a : size;
        *first = size - *len;
        return GW_STATIC_RANGE_PART;
    }
    if (a >= size)
        return GW_STATIC_RANGE_UNSATISFIABLE;
    uint64_t last = b < size - 1 ? b : size - 1;
    *first = a;
    *len = last - a + 1;
    return GW_STATIC_RANGE_PART;
}

bool gw_static_if_range(const char *if_range, const char *etag, int64_t mtime_s,
                        int64_t now_s)
{
    if (!if_range)
        return true;
    const char *p = if_range;
    while (is_ows(*p))
        p++;
    size_t n = strlen(p);
    while (n > 0 && is_ows(p[n - 1]))
        n--;
    if (n > 0 && p[0] == '"')
        return n == strlen(etag) && memcmp(p, etag, n) == 0;
    char date[40];
    if (n == 0 || n >= sizeof date)
        return false; /* also a weak tag, W/"...": never a match for ranges */
    memcpy(date, p, n);
    date[n] = 0;
    int64_t t;
    if (gw_static_parse_http_date(date, &t) != 0)
        return false;
    return t == mtime_s && now_s > mtime_s;
}

bool gw_static_is_hashed_name(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    for (const char *p = strchr(base, '-'); p; p = strchr(p + 1, '-')) {
        bool letter = false;
        size_t i;
        /* Stops at the NUL at the latest, so p[9] is read only when
         * p[1..8] are all characters of the name. */
        for (i = 1; i <= 8; i++) {
            if (p[i] >= 'A' && p[i] <= 'Z')
                letter = true;
            else if (p[i] < '0' || p[i] > '9')
                break;
        }
        if (i == 9 && letter && p[9] == '.')
            return true;
    }
    return false;
}

/* ---- serving ----------------------------------------------------------------------- */

/* Opens path (clean, absolute) below dir_fd one component at a time,
 * following no symlink and skipping no check. Returns the fd, or -1 when
 * there is nothing servable (errno says why, for the debug log). */
static int open_below(int dir_fd, char *path, struct stat *st)
{
    int cur = dir_fd;
    char *seg = path + 1;
    for (;;) {
        char *slash = strchr(seg, '/');
        if (slash)
            *slash = 0;
        int fd = -1;
        if (seg[0] == '.') {
            errno = EPERM; /* hidden names are not served */
        } else if (slash) {
            fd = openat(cur, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else {
            /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
            fd = openat(cur, seg, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        }
        if (slash)
            *slash = '/';
        if (cur != dir_fd)
            close(cur);
        if (fd < 0)
            return -1;
        if (!slash) {
            if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
                close(fd);
                errno = EISDIR;
                return -1;
            }
            /* sendfile and read need a blocking descriptor. */
            int fl = fcntl(fd, F_GETFL);
            if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
                close(fd);
                return -1;
            }
            return fd;
        }
        cur = fd;
        seg = slash + 1;
    }
}

static void answer_text(gw_front_req *r, int status, const char *text)
{
    gw_front_header h[3];
    size_t n = 0;
    h[n++] = (gw_front_header){"Content-Type", "text/plain; charset=utf-8"};
    h[n++] = (gw_front_header){"X-Content-Type-Options", "nosniff"};
    if (status == 405)
        h[n++] = (gw_front_header){"Allow", "GET, HEAD"};
    gw_front_req_respond(r, status, h, n, text, strlen(text));
}

bool gw_static_exists(const gw_static *s, const char *target)
{
    char path[GW_STATIC_PATH_MAX + 1];
    if (gw_static_clean_path(target, strlen(target), path, sizeof path, NULL) != 0)
        return false;
    struct stat st;
    int fd = open_below(s->dir_fd, path, &st);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

int gw_static_serve(const gw_static *s, gw_front_req *r)
{
    const char *method = gw_front_req_method(r);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        answer_text(r, 405, "static files answer GET and HEAD only\n");
        return 0;
    }
    const char *target = gw_front_req_target(r);
    char path[GW_STATIC_PATH_MAX + 1];
    gw_error e;
    gw_error_clear(&e);
    int rc = gw_static_clean_path(target, strlen(target), path, sizeof path, &e);
    if (rc) {
        char msg[GW_ERROR_MSG_MAX + 32];
        snprintf(msg, sizeof msg, "bad path: %s\n", e.msg);
        answer_text(r, 400, msg);
        return 0;
    }
    struct stat st;
    int fd = open_below(s->dir_fd, path, &st);
    if (fd < 0) {
        GW_DEBUG("static: %s: not served (%s)", path, strerror(errno));
        return GW_ENOTFOUND;
    }

    char etag[80], last_modified[30];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx\"", (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    gw_static_format_http_date((int64_t)st.st_mtim.tv_sec, last_modified);
    const char *base = strrchr(path, '/') + 1;
    const char *cache_control = strcmp(base, "index.html") == 0 ? "no-cache"
                                : gw_static_is_hashed_name(base)
                                    ? GW_STATIC_IMMUTABLE
                                    : "max-age=" STRINGIFY(GW_STATIC_MAX_AGE_S);
    uint64_t size = (uint64_t)st.st_size;
    char content_range[64];
    gw_front_header h[8];
    size_t n = 0;
    h[n++] = (gw_front_header){"Accept-Ranges", "bytes"};
    h[n++] = (gw_front_header){"X-Content-Type-Options", "nosniff"};

    /* RFC 9110 13.2.2: the validators first (304), Range last. */
    const char *range_value = gw_front_req_header(r, "Range");
    uint64_t first = 0, len = size;
    gw_static_range range = GW_STATIC_RANGE_WHOLE;
    bool not_modified = gw_static_not_modified(gw_front_req_header(r, "If-None-Match"),
                                               gw_front_req_header(r, "If-Modified-Since"),
                                               etag, (int64_t)st.st_mtim.tv_sec);
    if (!not_modified && range_value &&
        gw_static_if_range(gw_front_req_header(r, "If-Range"), etag,
                           (int64_t)st.st_mtim.tv_sec, (int64_t)time(NULL)))
        range = gw_static_parse_range(range_value, size, &first, &len);
    if (range == GW_STATIC_RANGE_UNSATISFIABLE) {
        /* No validators or freshness: a cache must not keep this answer
         * for the file. */
        static const char text[] = "range not satisfiable\n";
        close(fd);
        snprintf(content_range, sizeof content_range, "bytes */%llu", (unsigned long long)size);
        h[n++] = (gw_front_header){"Content-Range", content_range};
        h[n++] = (gw_front_header){"Content-Type", "text/plain; charset=utf-8"};
        gw_front_req_respond(r, 416, h, n, text, sizeof text - 1);
        return 0;
    }
    h[n++] = (gw_front_header){"ETag", etag};
    h[n++] = (gw_front_header){"Last-Modified", last_modified};
    h[n++] = (gw_front_header){"Cache-Control", cache_control};
    if (not_modified) {
        close(fd);
        gw_front_req_respond(r, 304, h, n, "", 0);
        return 0;
    }
    h[n++] = (gw_front_header){"Content-Type", gw_static_content_type(base)};
    if (range == GW_STATIC_RANGE_PART) {
        snprintf(content_range, sizeof content_range, "bytes %llu-%llu/%llu",
                 (unsigned long long)first, (unsigned long long)(first + len - 1),
                 (unsigned long long)size);
        h[n++] = (gw_front_header){"Content-Range", content_range};
        gw_front_req_respond_fd(r, 206, h, n, fd, first, len);
        return 0;
    }
    gw_front_req_respond_fd(r, 200, h, n, fd, 0, size);
    return 0;
}
