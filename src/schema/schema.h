/*
 * schema — the descriptor registry. Built from FileDescriptorSet files
 * (protoc --include_imports --descriptor_set_out) or from single serialized
 * FileDescriptorProtos (server reflection), it indexes every package,
 * service, method, message, field, oneof, enum, extension and
 * google.api.http rule.
 *
 * Once built a registry is immutable and may be shared by all threads. It
 * owns every definition it hands out; pointers stay valid until
 * gw_registry_del. Pure module: the only I/O is gw_registry_load reading the
 * files it is given.
 */
#ifndef GW_SCHEMA_H
#define GW_SCHEMA_H

#include "base/base.h"

typedef struct gw_registry gw_registry;
typedef struct gw_registry_builder gw_registry_builder;
typedef struct gw_file_def gw_file_def;
typedef struct gw_message_def gw_message_def;
typedef struct gw_field_def gw_field_def;
typedef struct gw_oneof_def gw_oneof_def;
typedef struct gw_enum_def gw_enum_def;
typedef struct gw_enum_value_def gw_enum_value_def;
typedef struct gw_service_def gw_service_def;
typedef struct gw_method_def gw_method_def;
typedef struct gw_http_rule gw_http_rule;

/* Field types: the numbers of FieldDescriptorProto.Type. */
typedef enum gw_field_type {
    GW_TYPE_DOUBLE = 1,
    GW_TYPE_FLOAT = 2,
    GW_TYPE_INT64 = 3,
    GW_TYPE_UINT64 = 4,
    GW_TYPE_INT32 = 5,
    GW_TYPE_FIXED64 = 6,
    GW_TYPE_FIXED32 = 7,
    GW_TYPE_BOOL = 8,
    GW_TYPE_STRING = 9,
    GW_TYPE_GROUP = 10,
    GW_TYPE_MESSAGE = 11,
    GW_TYPE_BYTES = 12,
    GW_TYPE_UINT32 = 13,
    GW_TYPE_ENUM = 14,
    GW_TYPE_SFIXED32 = 15,
    GW_TYPE_SFIXED64 = 16,
    GW_TYPE_SINT32 = 17,
    GW_TYPE_SINT64 = 18,
} gw_field_type;

/* Labels: the numbers of FieldDescriptorProto.Label. */
typedef enum gw_label {
    GW_LABEL_OPTIONAL = 1,
    GW_LABEL_REQUIRED = 2,
    GW_LABEL_REPEATED = 3,
} gw_label;

typedef enum gw_syntax {
    GW_SYNTAX_PROTO2 = 2,
    GW_SYNTAX_PROTO3 = 3,
} gw_syntax;

/* Messages with a special JSON form (and HttpBody, special in REST). */
typedef enum gw_wkt {
    GW_WKT_NONE = 0,
    GW_WKT_ANY,
    GW_WKT_TIMESTAMP,
    GW_WKT_DURATION,
    GW_WKT_FIELD_MASK,
    GW_WKT_STRUCT,
    GW_WKT_VALUE,
    GW_WKT_LIST_VALUE,
    GW_WKT_EMPTY,
    GW_WKT_DOUBLE_VALUE,
    GW_WKT_FLOAT_VALUE,
    GW_WKT_INT64_VALUE,
    GW_WKT_UINT64_VALUE,
    GW_WKT_INT32_VALUE,
    GW_WKT_UINT32_VALUE,
    GW_WKT_BOOL_VALUE,
    GW_WKT_STRING_VALUE,
    GW_WKT_BYTES_VALUE,
    GW_WKT_HTTP_BODY, /* google.api.HttpBody: ordinary JSON, raw in REST */
} gw_wkt;

/* True for the nine google.protobuf.*Value wrappers (DoubleValue ...
 * BytesValue), which map to JSON as their bare value or null. */
static inline bool gw_wkt_is_wrapper(gw_wkt w)
{
    switch (w) {
    case GW_WKT_DOUBLE_VALUE:
    case GW_WKT_FLOAT_VALUE:
    case GW_WKT_INT64_VALUE:
    case GW_WKT_UINT64_VALUE:
    case GW_WKT_INT32_VALUE:
    case GW_WKT_UINT32_VALUE:
    case GW_WKT_BOOL_VALUE:
    case GW_WKT_STRING_VALUE:
    case GW_WKT_BYTES_VALUE:
        return true;
    default:
        return false;
    }
}

/* The enum google.protobuf.NullValue is recognised by this flag. */

struct gw_file_def {
    const char *name;         /* "demo/v1/user.proto" */
    const char *package;      /* "demo.v1" ("" when none) */
    gw_syntax syntax;
    const char *source;       /* the descriptor set file (or "reflection") */
    const uint8_t *serialized; /* this FileDescriptorProto's bytes (reflection) */
    size_t serialized_len;
    size_t dependency_count;
    const char *const *dependencies; /* file names as imported */
};

struct gw_enum_value_def {
    const char *name;   /* "ROLE_ADMIN" */
    int32_t number;
};

struct gw_enum_def {
    const char *full_name;   /* "demo.v1.Role" (no leading dot) */
    const char *name;        /* "Role" */
    const gw_file_def *file;
    bool closed;             /* proto2 enum: unknown numbers are unknown fields */
    bool allow_alias;
    bool is_null_value;      /* google.protobuf.NullValue */
    size_t value_count;
    const gw_enum_value_def *values; /* declaration order; values[0] is the default */
    const void *index;       /* private: lookup tables */
};

struct gw_field_def {
    const char *name;        /* proto name: "created_at" */
    const char *json_name;   /* "createdAt" (json_name option honoured) */
    uint32_t number;
    gw_field_type type;
    gw_label label;
    bool packed;             /* repeated scalars written packed on output */
    bool has_presence;       /* proto2 optional/required, proto3 `optional`,
                                messages, oneof members */
    bool is_map;             /* repeated map-entry message */
    int32_t oneof_index;     /* index into the message's oneofs (real ones
                                only: proto3 `optional` gives -1), or -1 */
    const gw_message_def *message;     /* MESSAGE/GROUP: its type */
    const gw_enum_def *enumeration;    /* ENUM: its type */
    const char *default_value;         /* proto2 [default = ...] text, or NULL */
    const gw_message_def *containing;  /* the message the field belongs to; for an
                                          extension, the message it extends */
    /* Extensions only (`extend X { ... }`); ordinary fields have
     * is_extension false and NULL below. An extension's json_name is its
     * ProtoJSON key, "[full.name]"; name is the short name. */
    bool is_extension;
    const char *full_name;             /* "pkg.Scope.ext" (package, enclosing
                                          message if any, name) */
    const gw_message_def *scope;       /* the message it is declared in, NULL at
                                          file scope */
    const gw_file_def *file;           /* the file declaring it */
};

struct gw_oneof_def {
    const char *name;
    size_t field_count;
    const gw_field_def *const *fields;
};

struct gw_message_def {
    const char *full_name;   /* "demo.v1.User" */
    const char *name;        /* "User" */
    const gw_file_def *file;
    gw_syntax syntax;
    gw_wkt wkt;
    bool map_entry;          /* a synthesized map entry (key = 1, value = 2) */
    size_t field_count;
    const gw_field_def *fields;   /* sorted by number */
    size_t oneof_count;
    const gw_oneof_def *oneofs;   /* real oneofs only (no synthetic ones) */
    size_t extension_count;       /* extensions of this message declared anywhere
                                     in the registry */
    const gw_field_def *const *extensions; /* sorted by number */
    const void *index;            /* private: lookup tables */
};

/* A google.api.http rule, flattened: the primary rule and each of its
 * additional_bindings become separate entries of gw_method_def.http_rules. */
struct gw_http_rule {
    const char *verb;          /* "GET" "PUT" "POST" "DELETE" "PATCH" or the
                                  custom kind as written */
    const char *path;          /* the template as written: "/v1/users/{id}" */
    const char *body;          /* "" (no body), "*" or a field name */
    const char *response_body; /* "" or a field name */
    bool additional;           /* came from additional_bindings */
};

struct gw_method_def {
    const char *name;          /* "GetUser" */
    const char *full_name;     /* "demo.v1.UserService.GetUser" */
    const char *path;          /* "/demo.v1.UserService/GetUser" */
    const gw_service_def *service;
    const gw_message_def *input;
    const gw_message_def *output;
    bool client_streaming;
    bool server_streaming;
    /* MethodOptions.idempotency_level: 0 unknown, 1 NO_SIDE_EFFECTS, 2
     * IDEMPOTENT (Connect serves GET for NO_SIDE_EFFECTS methods only). */
    int idempotency_level;
#define GW_IDEMPOTENCY_NO_SIDE_EFFECTS 1
#define GW_IDEMPOTENCY_IDEMPOTENT 2
    size_t http_rule_count;
    const gw_http_rule *http_rules;
};

struct gw_service_def {
    const char *full_name;     /* "demo.v1.UserService" */
    const char *name;          /* "UserService" */
    const gw_file_def *file;
    size_t method_count;
    const gw_method_def *methods; /* declaration order */
};

/* ---------------------------------------------------------------------------
 * Building.
 */

/* Limits applied while loading. */
#define GW_SCHEMA_MAX_FILE_BYTES (64u * 1024u * 1024u)

/*
 * Loads the descriptor set files at paths[0..n) and builds a registry.
 * On error *out is NULL and e names the file and the symbol at fault
 * ("demo.pb: demo.v1.User.address: unknown type .demo.v1.Adress").
 * Returns 0, GW_EIO, GW_EPARSE (not a descriptor set, truncated, bad
 * descriptor, an extension number outside the extendee's extension ranges),
 * GW_ENOTFOUND (missing dependency, unresolvable type or extendee),
 * GW_EINVAL (conflicting definitions, two extensions of one message with
 * the same number), GW_ENOMEM.
 */
int gw_registry_load(gw_registry **out, const char *const *paths, size_t n,
                     gw_error *e);

/* Incremental building, for in-memory sets and reflection. */
gw_registry_builder *gw_registry_builder_new(void);
void gw_registry_builder_del(gw_registry_builder *b);
/* Adds a serialized FileDescriptorSet; `source` names it in errors.
 * The bytes are copied. A file already added with identical bytes is
 * skipped; the same name with other bytes is GW_EINVAL. After an error the
 * builder may hold the files of the set that came before the bad one:
 * del it. Returns 0, GW_EPARSE, GW_EINVAL, GW_ENOMEM. */
int gw_registry_builder_add_set(gw_registry_builder *b, const uint8_t *data,
                                size_t len, const char *source, gw_error *e);
/* Adds one serialized FileDescriptorProto (as reflection returns them). */
int gw_registry_builder_add_file(gw_registry_builder *b, const uint8_t *data,
                                 size_t len, const char *source, gw_error *e);
/* Resolves every reference and builds the registry. The builder is left
 * empty (del it either way). Returns 0, GW_ENOTFOUND, GW_EINVAL, GW_EPARSE,
 * GW_ENOMEM. */
int gw_registry_builder_build(gw_registry_builder *b, gw_registry **out, gw_error *e);

void gw_registry_del(gw_registry *r);

/* ---------------------------------------------------------------------------
 * Lookups. Names are full names without a leading dot (one is tolerated).
 * All return NULL when absent. O(1) hash lookups.
 */
const gw_message_def *gw_registry_message(const gw_registry *r, const char *full_name);
const gw_enum_def *gw_registry_enum(const gw_registry *r, const char *full_name);
const gw_service_def *gw_registry_service(const gw_registry *r, const char *full_name);
/* By gRPC path "/pkg.Service/Method" (len bytes, not NUL-terminated). */
const gw_method_def *gw_registry_method_by_path(const gw_registry *r, const char *path,
                                                size_t len);
/* By a type URL "type.googleapis.com/pkg.Msg" (anything up to the last '/'). */
const gw_message_def *gw_registry_message_by_type_url(const gw_registry *r,
                                                      const char *url, size_t len);
const gw_file_def *gw_registry_file(const gw_registry *r, const char *name);
/* The file that defines a symbol (message, enum, service, extension, method,
 * field). */
const gw_file_def *gw_registry_file_containing(const gw_registry *r, const char *symbol);

/* Iteration in load order. */
size_t gw_registry_file_count(const gw_registry *r);
const gw_file_def *gw_registry_file_at(const gw_registry *r, size_t i);
size_t gw_registry_service_count(const gw_registry *r);
const gw_service_def *gw_registry_service_at(const gw_registry *r, size_t i);

/* Extensions (proto2 `extend`, at file scope or inside a message) by full
 * name ("pkg.ext", "pkg.Msg.ext"; name[0..len), a leading dot tolerated),
 * and in load order (files in load order, file scope first, then messages in
 * declaration order). Extensions of a MessageSet (message_set_wire_format)
 * are not indexed. */
const gw_field_def *gw_registry_extension(const gw_registry *r, const char *full_name,
                                          size_t len);
size_t gw_registry_extension_count(const gw_registry *r);
const gw_field_def *gw_registry_extension_at(const gw_registry *r, size_t i);

const gw_field_def *gw_message_field_by_number(const gw_message_def *m, uint32_t number);
/* The extension of m with that number (m->extensions, binary search). */
const gw_field_def *gw_message_extension_by_number(const gw_message_def *m,
                                                   uint32_t number);
/* Where that number is or would be in m->extensions (sorted by number):
 * an index in 0..m->extension_count. */
size_t gw_message_extension_index(const gw_message_def *m, uint32_t number);
/* Accepts the JSON name or the proto name (len bytes). */
const gw_field_def *gw_message_field_by_name(const gw_message_def *m, const char *name,
                                             size_t len);
const gw_field_def *gw_message_field_by_json_name(const gw_message_def *m,
                                                  const char *name, size_t len);
const gw_field_def *gw_message_field_by_proto_name(const gw_message_def *m,
                                                   const char *name, size_t len);

const gw_enum_value_def *gw_enum_value_by_name(const gw_enum_def *e, const char *name,
                                               size_t len);
/* The first value declared with that number (aliases: the first name). */
const gw_enum_value_def *gw_enum_value_by_number(const gw_enum_def *e, int32_t number);

/* Map entries: the key (number 1) and value (number 2) fields. */
static inline const gw_field_def *gw_map_key(const gw_message_def *entry)
{
    return &entry->fields[0];
}
static inline const gw_field_def *gw_map_value(const gw_message_def *entry)
{
    return &entry->fields[1];
}

/* "int64", "string", "message", ... for messages and docs. */
const char *gw_field_type_name(gw_field_type t);

#endif
