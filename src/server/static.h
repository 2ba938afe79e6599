/*
 * static — the files of one directory served over GET and HEAD
 * (`grpcgate serve --static DIR`, the web page of `grpcgate demo`). The
 * server asks it last, after gRPC-Web and REST routes (docs/static.md).
 *
 * Only regular files under DIR are reachable. The request target is
 * percent-decoded exactly once here (never the decoded path libmicrohttpd
 * offers), and a target that could name something else after decoding is
 * refused outright rather than normalised: "." or ".." segments, an encoded
 * '/' or '\', any '\', NUL, empty segments. The file is then opened one
 * path component at a time with openat(O_NOFOLLOW) from a descriptor of DIR
 * taken at start, so no symlink is ever followed (not even one that stays
 * inside DIR) and a rename of a parent directory cannot lead outside.
 * Names starting with '.' are not served. A path ending in '/' means its
 * index.html; any other directory is not served.
 *
 * Answers carry a Content-Type from the extension, X-Content-Type-Options:
 * nosniff, Accept-Ranges: bytes, an ETag (inode, size, mtime in ns) and
 * Last-Modified; If-None-Match and If-Modified-Since give 304. One byte range
 * (Range: bytes=a-b, a-, -n; If-Range honoured) gives 206 or 416; anything
 * else in Range is ignored (200, the whole file). Cache-Control is
 * "no-cache" for index.html (it names the other files), GW_STATIC_IMMUTABLE
 * for a file whose name carries a content hash (gw_static_is_hashed_name:
 * a new build gives it a new name, so it can be cached for good) and
 * "max-age=GW_STATIC_MAX_AGE_S" otherwise.
 *
 * Threading: a gw_static is immutable after gw_static_new; every worker may
 * call gw_static_serve on it at once.
 */
#ifndef GW_STATIC_H
#define GW_STATIC_H

#include "base/base.h"
#include "front/front.h"

#define GW_STATIC_PATH_MAX 1024   /* decoded path bytes */
#define GW_STATIC_SEGMENTS_MAX 32 /* path components */
#define GW_STATIC_MAX_AGE_S 60
#define GW_STATIC_IMMUTABLE "public, max-age=31536000, immutable"

typedef struct gw_static gw_static;

/*
 * Opens dir (it must be a directory; symlinks in dir itself are followed
 * once, here). Borrows dir. Returns 0 with *out set, GW_EIO (message in e)
 * or GW_ENOMEM.
 */
int gw_static_new(const char *dir, gw_static **out, gw_error *e);
void gw_static_del(gw_static *s);

/*
 * Answers r (a GET or HEAD; anything else gets 405) from the directory: 200
 * with the file, 206 with one range of it, 304, 416 for a range past its
 * end, or 400 for a target that is refused (see above). HEAD gets the
 * headers GET would (206 and its Content-Range included), without a body.
 * Borrows s and r. Returns 0 once an answer was given (or the front could
 * not take it: it then answers 500 itself), or GW_ENOTFOUND without
 * answering when there is no file to serve, so that the caller picks the
 * 404 that suits the request.
 */
int gw_static_serve(const gw_static *s, gw_front_req *r);

/* True when gw_static_serve would serve a file for target (the raw request
 * target; the query is ignored): for a plain OPTIONS. Borrows both. */
bool gw_static_exists(const gw_static *s, const char *target);

/*
 * The pure steps, exposed for the unit tests.
 *
 * gw_static_clean_path: decodes the raw target (up to '?' or len bytes) into
 * out (cap bytes, NUL-terminated), appending "index.html" to a trailing '/'.
 * Returns 0, GW_EPARSE (malformed %-escape, not absolute), GW_EINVAL (a
 * refused form: dot segment, encoded '/' or '\', any '\', NUL, control
 * byte, empty segment) or GW_ELIMIT (over GW_STATIC_PATH_MAX /
 * _SEGMENTS_MAX), with the reason in e.
 *
 * gw_static_content_type: the Content-Type for a file name (by extension,
 * case-insensitive; "application/octet-stream" when unknown). Never NULL.
 */
int gw_static_clean_path(const char *target, size_t len, char *out, size_t cap, gw_error *e);
const char *gw_static_content_type(const char *name);

/*
 * Conditional GET (RFC 9110 13.1.2, 13.1.3): true when the request's
 * validators say the client's copy is current. If-None-Match (a list, "*",
 * weak comparison) decides when present; otherwise If-Modified-Since (an
 * IMF-fixdate; anything unparsable is ignored) against mtime in seconds.
 * Either header may be NULL.
 */
bool gw_static_not_modified(const char *if_none_match, const char *if_modified_since,
                            const char *etag, int64_t mtime_s);

/*
 * What a Range header asks of a file of `size` bytes (RFC 9110 14.1, 14.2).
 * Only one range of the "bytes" unit (case-insensitive) is served:
 * "a-b" (b past the end means the end), "a-", "-n" (the last n bytes, the
 * whole file when n >= size). Numbers too large for 64 bits count as
 * infinitely large, which is what they mean. Leading/trailing blanks and
 * empty list elements are allowed; blanks inside a range are not.
 *
 * GW_STATIC_RANGE_WHOLE: no header, a malformed one (missing "bytes=", a
 * non-digit, b < a), another unit, or several ranges: send the whole file
 * (200), which the RFC allows. Also "-n" (n > 0) on an empty file, which
 * has no bytes Content-Range could name.
 * GW_STATIC_RANGE_PART: 206 with [*first, *first + *len), len > 0.
 * GW_STATIC_RANGE_UNSATISFIABLE: 416 (a >= size, "-0", any "a-" form on an
 * empty file).
 * value may be NULL; first and len are set only for PART.
 */
typedef enum gw_static_range {
    GW_STATIC_RANGE_WHOLE,
    GW_STATIC_RANGE_PART,
    GW_STATIC_RANGE_UNSATISFIABLE,
} gw_static_range;

gw_static_range gw_static_parse_range(const char *value, uint64_t size, uint64_t *first,
                                      uint64_t *len);

/*
 * If-Range (RFC 9110 13.1.5): true when the range may be served. NULL (no
 * header) is true. An entity tag must equal etag by strong comparison (a
 * weak tag never does); an IMF-fixdate must equal mtime_s and be a strong
 * validator, i.e. the file is at least a second older than now_s (else it
 * could have changed twice within that second). Anything else is false:
 * the whole file is sent.
 */
bool gw_static_if_range(const char *if_range, const char *etag, int64_t mtime_s,
                        int64_t now_s);

/*
 * Whether a file name carries a build's content hash, so that it is served
 * with GW_STATIC_IMMUTABLE: its last path component contains "-", then
 * exactly 8 characters of [A-Z0-9] with at least one letter, then "."
 * ("app-7KQ2MZ4D.js", "chunk-ABCDEFGH.min.css"). esbuild's
 * "[name]-[hash]" names are of this form; 8 digits ("log-20241121.txt") are
 * a date, not a hash.
 */
bool gw_static_is_hashed_name(const char *name);

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). Returns 0 or
 * GW_EPARSE. Formats one into buf (at least 30 bytes). */
int gw_static_parse_http_date(const char *s, int64_t *out);
void gw_static_format_http_date(int64_t t, char buf[30]);

#endif
