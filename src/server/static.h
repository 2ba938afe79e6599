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
 * nosniff, an ETag (inode, size, mtime in ns) and Last-Modified; If-None-Match
 * and If-Modified-Since give 304. Cache-Control is "no-cache" for index.html
 * (the page refers to the rest by fixed names) and
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
 * with the file, 304, or 400 for a target that is refused (see above).
 * Borrows s and r. Returns 0 once an answer was given (or the front could
 * not take it: it then answers 500 itself), or GW_ENOTFOUND without
 * answering when there is no file to serve, so that the caller picks the
 * 404 that suits the request.
 */
int gw_static_serve(const gw_static *s, gw_front_req *r);

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

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). Returns 0 or
 * GW_EPARSE. Formats one into buf (at least 30 bytes). */
int gw_static_parse_http_date(const char *s, int64_t *out);
void gw_static_format_http_date(int64_t t, char buf[30]);

#endif
