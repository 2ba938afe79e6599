/*
 * codec — canonical ProtoJSON <-> protobuf wire bytes, driven by the schema
 * registry. Pure module: no I/O, no globals, thread-safe (a registry is
 * immutable and every call keeps its state on the stack or in the caller's
 * buffers).
 *
 * protobuf -> JSON walks the wire bytes and writes JSON straight into a
 * gw_buf; JSON -> protobuf runs a streaming tokenizer and writes wire bytes,
 * back-filling length prefixes. Neither builds a tree or a message struct.
 *
 * Error codes shared by every function below:
 *   GW_EPARSE  the input is malformed: not JSON, not protobuf wire format, or
 *              JSON whose shape does not fit the message (wrong JSON type,
 *              unknown or duplicate key, two members of one oneof, unknown
 *              enum name, bad base64, invalid UTF-8, trailing garbage).
 *   GW_ERANGE  the input is well formed but a value cannot be represented in
 *              the target: a number outside its field's range or not
 *              integral, a Timestamp/Duration outside the ProtoJSON range, a
 *              FieldMask path with no JSON form, an Any whose type is not in
 *              the registry.
 *   GW_EDEPTH  nesting deeper than max_depth (message levels, counted the
 *              same way in both directions: docs/codec.md; groups nested
 *              deeper than the wire reader allows).
 *   GW_ELIMIT  input larger than max_input, output larger than max_output
 *              or the gw_buf's own max.
 *   GW_EPARSE, GW_ERANGE, GW_EDEPTH and the input GW_ELIMIT are all faults
 *   of the input: callers report them as invalid input (REST 400, gRPC
 *   INVALID_ARGUMENT, transcode exit 1), never as a failure to write the
 *   output. Printing a backend's answer, they are the backend's fault
 *   (INTERNAL: gw_call_answer_err).
 *   GW_ENOMEM  out of memory.
 *   GW_EINVAL  a NULL or mismatched argument (programming error).
 * When a gw_error is given it gets the code and a message naming the place:
 * the JSON path and byte offset for JSON input ("user.tags[3]: expected a
 * string (at byte 31)"; for a bad value, the offset where it starts), the field
 * path and byte offset for wire input. On error `out` may hold a partial
 * result past its original length; callers truncate it back (out->len).
 */
#ifndef GW_CODEC_H
#define GW_CODEC_H

#include "base/base.h"
#include "schema/schema.h"

/* ---------------------------------------------------------------------------
 * Options, per call. Initialise with gw_codec_options_init, then change what
 * you need; the struct may grow (new members get neutral defaults there).
 */
#define GW_CODEC_DEFAULT_MAX_DEPTH 100

typedef struct gw_codec_options {
    bool emit_defaults;   /* proto->JSON: print fields at their default value
                             (proto3 scalars without presence, empty repeated
                             and maps); fields with presence still print only
                             when set */
    bool proto_names;     /* proto->JSON: keys are proto field names
                             ("created_at") instead of JSON names */
    bool enums_as_ints;   /* proto->JSON: enums as numbers */
    bool ignore_unknown;  /* JSON->proto: skip unknown keys and unknown enum
                             names (the field is then left unset) */
    unsigned indent;      /* proto->JSON: 0 compact, else spaces per level
                             ("key": value with one space after the colon) */
    unsigned max_depth;   /* message/JSON nesting cap, both directions
                             (default 100; 0 means the default) */
    size_t max_input;     /* 0: unlimited; bytes of wire or JSON input */
    size_t max_output;    /* 0: unlimited; bytes this call may append to out
                             (out->max applies as well) */
} gw_codec_options;

void gw_codec_options_init(gw_codec_options *o);

/* ---------------------------------------------------------------------------
 * Whole messages.
 */

/*
 * Decodes the wire bytes data[0..len) as a message of type m and appends its
 * canonical JSON to out. Repeated occurrences follow protobuf merge rules
 * (last scalar wins, messages merge, repeated fields append, packed and
 * unpacked both accepted); unknown fields are skipped; unknown proto3 enum
 * numbers print as numbers, unknown numbers of closed (proto2) enums are
 * unknown fields; proto2 groups print as objects under the field's name
 * (and gw_codec_json_to_proto writes them back as groups). Map entries
 * print sorted by key. Extensions of m found on the wire (m->extensions)
 * print under "[full.name]" keys, among the fields in number order and
 * only when present. opts may be NULL (defaults).
 * r resolves Any type URLs; it may be NULL if no Any occurs (an Any with
 * a type is then GW_ERANGE).
 * Ownership: r, m, data, opts borrowed; out is appended to.
 * Returns 0, GW_EPARSE, GW_ERANGE, GW_EDEPTH, GW_ELIMIT, GW_ENOMEM, GW_EINVAL.
 */
int gw_codec_proto_to_json(const gw_registry *r, const gw_message_def *m,
                           const uint8_t *data, size_t len,
                           const gw_codec_options *opts, gw_buf *out, gw_error *e);

/*
 * Parses json[0..len) (one JSON value, surrounding whitespace allowed) as a
 * message of type m and appends its wire encoding to out. Accepts JSON and
 * proto field names and every input form of the ProtoJSON mapping (numbers
 * as strings, integral exponents, base64 and base64url with or without
 * padding, enum names or numbers, null = unset) and the "[full.name]" keys
 * of m's extensions (looked up in r, or in m->extensions when r is NULL;
 * an extension of another message is an unknown key). Output is
 * deterministic:
 * fields in the order of the JSON input, repeated scalars packed when the
 * field is packed.
 * Ownership: r, m, json, opts borrowed; out is appended to.
 * Returns 0, GW_EPARSE, GW_ERANGE, GW_EDEPTH, GW_ELIMIT, GW_ENOMEM, GW_EINVAL.
 */
int gw_codec_json_to_proto(const gw_registry *r, const gw_message_def *m,
                           const char *json, size_t len,
                           const gw_codec_options *opts, gw_buf *out, gw_error *e);

/* ---------------------------------------------------------------------------
 * Single fields (REST: `body: "field"`, `response_body: "field"`, path and
 * query parameters).
 */

/*
 * Parses json[0..len) as the JSON value of field f (an array for a repeated
 * field, an object for a map or message) and appends the field's wire
 * encoding (tag included) to out. JSON `null` appends nothing.
 * Same ownership and returns as gw_codec_json_to_proto.
 */
int gw_codec_json_to_field(const gw_registry *r, const gw_field_def *f,
                           const char *json, size_t len,
                           const gw_codec_options *opts, gw_buf *out, gw_error *e);

/*
 * Appends to out the JSON value of field f found in the wire bytes of a
 * message of type f->containing (for `response_body`). When the field is
 * absent, appends its default JSON form ("" / 0 / false / first enum name /
 * [] / {}; `null` for an unset message field).
 * Same ownership and returns as gw_codec_proto_to_json.
 */
int gw_codec_field_to_json(const gw_registry *r, const gw_field_def *f,
                           const uint8_t *data, size_t len,
                           const gw_codec_options *opts, gw_buf *out, gw_error *e);

/*
 * Encodes ONE value of field f given in its string form, as path and query
 * parameters carry it: "42", "-1.5e3", "NaN", "true", "ROLE_ADMIN" or "2"
 * (enums), base64/base64url (bytes), any text (string), "1.5s" (Duration),
 * "true"/"false"/"1"/"0" (bool),
 * "2024-01-02T03:04:05Z" (Timestamp), "a.b,cD" (FieldMask), the inner value
 * for wrappers ("7" for Int64Value). For a Value field the text becomes a
 * string Value. Appends one wire field (tag + value) to out; for a repeated
 * field call it once per value (the elements are written unpacked, which
 * every parser accepts). Map and other message fields are not accepted
 * (GW_EINVAL with a message); REST binds `a.b.c=v` by encoding `c` then
 * wrapping with gw_codec_wrap_message for b then a.
 * Ownership: r, f, text borrowed (text need not be NUL-terminated).
 * Returns 0, GW_EPARSE, GW_ERANGE, GW_EINVAL, GW_ELIMIT, GW_ENOMEM.
 */
int gw_codec_encode_field_string(const gw_registry *r, const gw_field_def *f,
                                 const char *text, size_t len, gw_buf *out,
                                 gw_error *e);

/*
 * Appends bytes[0..len) to out as a length-delimited field field_number.
 * Because concatenated messages merge (the last scalar wins, sub-messages
 * merge, repeated fields append), REST may build a request from the body's
 * encoding followed by one wrapped piece per path/query binding.
 * Returns 0, GW_ELIMIT, GW_ENOMEM.
 */
int gw_codec_wrap_message(uint32_t field_number, const uint8_t *bytes, size_t len,
                          gw_buf *out);

/*
 * For PATCH without an update_mask: calls fn once for every field path set
 * in the JSON object json[0..len) of type m, as FieldMask paths in proto
 * names ("display_name", "address.city"). It recurses into nested ordinary
 * message objects; maps, repeated fields, well-known types and `null` values
 * are leaves. A non-zero return from fn stops the walk and is returned.
 * REST builds the FieldMask by appending each path as field 1 (string) of
 * google.protobuf.FieldMask: gw_wire_put_len_field(out, 1, path, len).
 * Returns 0, fn's value, GW_EPARSE, GW_ELIMIT, GW_ENOMEM.
 */
typedef int (*gw_codec_path_fn)(void *ctx, const char *path, size_t len);
int gw_codec_json_field_paths(const gw_registry *r, const gw_message_def *m,
                              const char *json, size_t len,
                              const gw_codec_options *opts, gw_codec_path_fn fn,
                              void *ctx, gw_error *e);

/* Appends s[0..n) as a quoted JSON string (escaping quotes, backslash, control
 * characters; UTF-8 passes through unchanged). Returns 0, GW_ELIMIT,
 * GW_ENOMEM. */
int gw_codec_json_append_string(gw_buf *out, const char *s, size_t n);

/* The wire format reader and writer (gw_wire_*) are in base/base.h. */

#endif
