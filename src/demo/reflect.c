/*
 * Server reflection over the embedded descriptor set. The index keeps, for
 * each file, the exact serialized FileDescriptorProto bytes from the set (so
 * that what clients receive is byte-for-byte what protoc wrote) and the
 * fully qualified names it defines.
 */
#include "demo/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google_protobuf_descriptor.pb-c.h"
#include "grpc_reflection_v1_reflection.pb-c.h"

typedef struct dm_file {
    const uint8_t *bytes;
    size_t len;
    Google__Protobuf__FileDescriptorProto *fd;
} dm_file;

typedef struct dm_symbol {
    char *name;
    size_t file;
} dm_symbol;

typedef struct dm_ext {
    char *extendee;   /* without the leading '.' */
    int32_t number;
    size_t file;
} dm_ext;

struct dm_reflect {
    dm_file *files;
    size_t n_files;
    dm_symbol *syms;
    size_t n_syms, cap_syms;
    dm_ext *exts;
    size_t n_exts, cap_exts;
};

#define MAX_FILES 4096
#define MAX_NESTING 64

static int add_symbol(dm_reflect *r, const char *scope, const char *name, size_t file)
{
    if (!name)
        return 0;
    if (r->n_syms == r->cap_syms) {
        size_t cap = r->cap_syms ? r->cap_syms * 2 : 256;
        dm_symbol *s = realloc(r->syms, cap * sizeof *s);
        if (!s)
            return GW_ENOMEM;
        r->syms = s;
        r->cap_syms = cap;
    }
    size_t ls = scope ? strlen(scope) : 0, ln = strlen(name);
    char *full = malloc(ls + ln + 2);
    if (!full)
        return GW_ENOMEM;
    if (ls) {
        memcpy(full, scope, ls);
        full[ls] = '.';
        memcpy(full + ls + 1, name, ln + 1);
    } else {
        memcpy(full, name, ln + 1);
    }
    r->syms[r->n_syms].name = full;
    r->syms[r->n_syms].file = file;
    r->n_syms++;
    return 0;
}

static int add_extension(dm_reflect *r, const Google__Protobuf__FieldDescriptorProto *f,
                         size_t file)
{
    if (!f->extendee)
        return 0;
    if (r->n_exts == r->cap_exts) {
        size_t cap = r->cap_exts ? r->cap_exts * 2 : 32;
        dm_ext *x = realloc(r->exts, cap * sizeof *x);
        if (!x)
            return GW_ENOMEM;
        r->exts = x;
        r->cap_exts = cap;
    }
    const char *e = f->extendee[0] == '.' ? f->extendee + 1 : f->extendee;
    char *copy = strdup(e);
    if (!copy)
        return GW_ENOMEM;
    r->exts[r->n_exts].extendee = copy;
    r->exts[r->n_exts].number = f->number;
    r->exts[r->n_exts].file = file;
    r->n_exts++;
    return 0;
}

static int index_enum(dm_reflect *r, const char *scope,
                      const Google__Protobuf__EnumDescriptorProto *en, size_t file)
{
    int rc = add_symbol(r, scope, en->name, file);
    /* Enum values live in the scope that encloses the enum (C++ rules). */
    for (size_t i = 0; rc == 0 && i < en->n_value; i++)
        rc = add_symbol(r, scope, en->value[i]->name, file);
    return rc;
}

static int index_message(dm_reflect *r, const char *scope,
                         const Google__Protobuf__DescriptorProto *m, size_t file, int depth)
{
    if (depth > MAX_NESTING || !m->name)
        return GW_EPARSE;
    int rc = add_symbol(r, scope, m->name, file);
    if (rc)
        return rc;
    const char *full = r->syms[r->n_syms - 1].name;
    for (size_t i = 0; rc == 0 && i < m->n_field; i++)
        rc = add_symbol(r, full, m->field[i]->name, file);
    for (size_t i = 0; rc == 0 && i < m->n_oneof_decl; i++)
        rc = add_symbol(r, full, m->oneof_decl[i]->name, file);
    for (size_t i = 0; rc == 0 && i < m->n_extension; i++) {
        rc = add_symbol(r, full, m->extension[i]->name, file);
        if (rc == 0)
            rc = add_extension(r, m->extension[i], file);
    }
    for (size_t i = 0; rc == 0 && i < m->n_enum_type; i++)
        rc = index_enum(r, full, m->enum_type[i], file);
    for (size_t i = 0; rc == 0 && i < m->n_nested_type; i++)
        rc = index_message(r, full, m->nested_type[i], file, depth + 1);
    return rc;
}

/* Each symbol name is its own allocation, so a scope string taken from
 * syms stays valid while syms itself is reallocated. */
static int index_file(dm_reflect *r, size_t fi)
{
    const Google__Protobuf__FileDescriptorProto *fd = r->files[fi].fd;
    const char *pkg = fd->package && fd->package[0] ? fd->package : NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < fd->n_message_type; i++)
        rc = index_message(r, pkg, fd->message_type[i], fi, 0);
    for (size_t i = 0; rc == 0 && i < fd->n_enum_type; i++)
        rc = index_enum(r, pkg, fd->enum_type[i], fi);
    for (size_t i = 0; rc == 0 && i < fd->n_extension; i++) {
        rc = add_symbol(r, pkg, fd->extension[i]->name, fi);
        if (rc == 0)
            rc = add_extension(r, fd->extension[i], fi);
    }
    for (size_t i = 0; rc == 0 && i < fd->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *sv = fd->service[i];
        rc = add_symbol(r, pkg, sv->name, fi);
        if (rc)
            break;
        size_t svc_sym = r->n_syms - 1;
        for (size_t j = 0; rc == 0 && j < sv->n_method; j++)
            rc = add_symbol(r, r->syms[svc_sym].name, sv->method[j]->name, fi);
    }
    return rc;
}

void dm_reflect_del(dm_reflect *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_files; i++)
        if (r->files[i].fd)
            google__protobuf__file_descriptor_proto__free_unpacked(r->files[i].fd, NULL);
    for (size_t i = 0; i < r->n_syms; i++)
        free(r->syms[i].name);
    for (size_t i = 0; i < r->n_exts; i++)
        free(r->exts[i].extendee);
    free(r->files);
    free(r->syms);
    free(r->exts);
    free(r);
}

int dm_reflect_new(const uint8_t *set, size_t len, dm_reflect **out, gw_error *e)
{
    int rc;
    dm_reflect *r = calloc(1, sizeof *r);
    if (!r)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    size_t cap = 0;
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, set, len);
    while (!gw_wire_eof(&rd)) {
        uint32_t field;
        gw_wire_type wt;
        const uint8_t *fp;
        size_t flen;
        size_t at = gw_wire_offset(&rd);
        if (gw_wire_read_tag(&rd, &field, &wt) || wt != GW_WIRE_LEN ||
            gw_wire_read_len(&rd, &fp, &flen)) {
            rc = gw_error_set(e, GW_EPARSE, "descriptor set: malformed field at byte %zu", at);
            goto out;
        }
        if (field != 1) /* not `file`: skip */
            continue;
        if (r->n_files == MAX_FILES) {
            rc = gw_error_set(e, GW_ELIMIT, "descriptor set: more than %d files", MAX_FILES);
            goto out;
        }
        if (r->n_files == cap) {
            cap = cap ? cap * 2 : 16;
            dm_file *f = realloc(r->files, cap * sizeof *f);
            if (!f) {
                rc = gw_error_set(e, GW_ENOMEM, "out of memory");
                goto out;
            }
            r->files = f;
        }
        dm_file *f = &r->files[r->n_files];
        f->bytes = fp;
        f->len = flen;
        f->fd = google__protobuf__file_descriptor_proto__unpack(NULL, flen, fp);
        if (!f->fd || !f->fd->name) {
            rc = gw_error_set(e, GW_EPARSE, "descriptor set: file at byte %zu does not decode", at);
            if (f->fd)
                r->n_files++;
            goto out;
        }
        r->n_files++;
    }
    for (size_t i = 0; i < r->n_files; i++) {
        rc = index_file(r, i);
        if (rc) {
            gw_error_set(e, rc, "descriptor set: indexing %s: %s", r->files[i].fd->name,
                         gw_err_str(rc));
            goto out;
        }
    }
    *out = r;
    return 0;
out:
    dm_reflect_del(r);
    return rc;
}

static long find_file(const dm_reflect *r, const char *name)
{
    for (size_t i = 0; i < r->n_files; i++)
        if (strcmp(r->files[i].fd->name, name) == 0)
            return (long)i;
    return -1;
}

static long find_symbol(const dm_reflect *r, const char *name)
{
    if (name[0] == '.')
        name++;
    for (size_t i = 0; i < r->n_syms; i++)
        if (strcmp(r->syms[i].name, name) == 0)
            return (long)r->syms[i].file;
    return -1;
}

/* Depth-first: the file itself first, then every dependency once. */
static int collect(const dm_reflect *r, size_t fi, bool *seen, size_t *order, size_t *n,
                   int depth)
{
    if (seen[fi])
        return 0;
    if (depth > MAX_NESTING)
        return GW_ELIMIT;
    seen[fi] = true;
    order[(*n)++] = fi;
    const Google__Protobuf__FileDescriptorProto *fd = r->files[fi].fd;
    for (size_t i = 0; i < fd->n_dependency; i++) {
        long d = find_file(r, fd->dependency[i]);
        if (d >= 0) {
            int rc = collect(r, (size_t)d, seen, order, n, depth + 1);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int pack_response(gw_buf *out, const Grpc__Reflection__V1__ServerReflectionResponse *resp)
{
    size_t len = grpc__reflection__v1__server_reflection_response__get_packed_size(resp);
    gw_buf_reset(out);
    int rc = gw_buf_reserve(out, len);
    if (rc)
        return rc;
    grpc__reflection__v1__server_reflection_response__pack(resp, out->data);
    out->len = len;
    out->data[len] = 0;
    return 0;
}

int dm_reflect_answer(const dm_reflect *r, const char *const *services,
                      size_t n_services, const uint8_t *req_bytes, size_t len,
                      gw_buf *out)
{
    int rc = GW_ENOMEM;
    bool *seen = NULL;
    size_t *order = NULL;
    ProtobufCBinaryData *blobs = NULL;
    Grpc__Reflection__V1__ServiceResponse *svc = NULL;
    Grpc__Reflection__V1__ServiceResponse **svcp = NULL;
    int32_t *numbers = NULL;
    char errmsg[600];

    Grpc__Reflection__V1__ServerReflectionRequest *req =
        grpc__reflection__v1__server_reflection_request__unpack(NULL, len, req_bytes);
    if (!req)
        return GW_EPARSE;

    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse fdr =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse lsr =
        GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ExtensionNumberResponse enr =
        GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse err = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    resp.valid_host = req->host;
    resp.original_request = req;

    long file = -1;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = find_file(r, req->file_by_filename);
        if (file < 0)
            snprintf(errmsg, sizeof errmsg, "file not found: %s", req->file_by_filename);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        file = find_symbol(r, req->file_containing_symbol);
        if (file < 0)
            snprintf(errmsg, sizeof errmsg, "symbol not found: %s",
                     req->file_containing_symbol);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
        const Grpc__Reflection__V1__ExtensionRequest *x = req->file_containing_extension;
        const char *type = x && x->containing_type ? x->containing_type : "";
        if (type[0] == '.')
            type++;
        for (size_t i = 0; x && i < r->n_exts; i++)
            if (r->exts[i].number == x->extension_number &&
                strcmp(r->exts[i].extendee, type) == 0) {
                file = (long)r->exts[i].file;
                break;
            }
        if (file < 0)
            snprintf(errmsg, sizeof errmsg, "extension not found: %s %d", type,
                     x ? x->extension_number : 0);
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
        const char *type = req->all_extension_numbers_of_type;
        if (type[0] == '.')
            type++;
        if (find_symbol(r, type) < 0) {
            snprintf(errmsg, sizeof errmsg, "type not found: %s", type);
            break;
        }
        numbers = calloc(r->n_exts + 1, sizeof *numbers);
        if (!numbers)
            goto out;
        for (size_t i = 0; i < r->n_exts; i++)
            if (strcmp(r->exts[i].extendee, type) == 0)
                numbers[enr.n_extension_number++] = r->exts[i].number;
        enr.base_type_name = (char *)type;
        enr.extension_number = numbers;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
        resp.all_extension_numbers_response = &enr;
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        svc = calloc(n_services + 1, sizeof *svc);
        svcp = calloc(n_services + 1, sizeof *svcp);
        if (!svc || !svcp)
            goto out;
        for (size_t i = 0; i < n_services; i++) {
            grpc__reflection__v1__service_response__init(&svc[i]);
            svc[i].name = (char *)services[i];
            svcp[i] = &svc[i];
        }
        lsr.n_service = n_services;
        lsr.service = svcp;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &lsr;
        break;
    default:
        snprintf(errmsg, sizeof errmsg, "empty or unknown reflection request");
        err.error_code = GW_CODE_INVALID_ARGUMENT;
        break;
    }

    if (file >= 0) {
        seen = calloc(r->n_files, sizeof *seen);
        order = calloc(r->n_files, sizeof *order);
        blobs = calloc(r->n_files, sizeof *blobs);
        if (!seen || !order || !blobs)
            goto out;
        size_t n = 0;
        rc = collect(r, (size_t)file, seen, order, &n, 0);
        if (rc)
            goto out;
        for (size_t i = 0; i < n; i++) {
            blobs[i].data = (uint8_t *)r->files[order[i]].bytes;
            blobs[i].len = r->files[order[i]].len;
        }
        fdr.n_file_descriptor_proto = n;
        fdr.file_descriptor_proto = blobs;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &fdr;
    } else if (resp.message_response_case ==
               GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        if (err.error_code == 0)
            err.error_code = GW_CODE_NOT_FOUND;
        err.error_message = errmsg;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &err;
    }
    rc = pack_response(out, &resp);
out:
    grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
    free(seen);
    free(order);
    free(blobs);
    free(svc);
    free(svcp);
    free(numbers);
    return rc;
}
