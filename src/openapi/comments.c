/*
 * Comments from SourceCodeInfo. Descriptor sets carry them only when protoc
 * ran with --include_source_info; the registry keeps each file's serialized
 * FileDescriptorProto, so they are read here, on demand, instead of making
 * every registry hold text only this module wants.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google_protobuf_descriptor.pb-c.h"
#include "openapi/internal.h"

#define NAME_MAX_BYTES 1024

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto message_proto;

static bool append_name(char *out, size_t *n, const char *part)
{
    size_t len = strlen(part);
    if (*n + 1 + len + 1 > NAME_MAX_BYTES)
        return false;
    if (*n)
        out[(*n)++] = '.';
    memcpy(out + *n, part, len + 1);
    *n += len;
    return true;
}

/*
 * The full name of the element a location path points at exactly: a
 * service, method, message (nested too), field or enum. Paths into anything
 * else (options, values, sub-parts of a field) give false.
 */
static bool location_name(const file_proto *fd, const int32_t *p, size_t n, char *out)
{
    size_t len = 0;
    out[0] = 0;
    if (fd->package && fd->package[0] && !append_name(out, &len, fd->package))
        return false;
    if (n < 2 || p[1] < 0)
        return false;
    size_t idx = (size_t)p[1];
    switch (p[0]) {
    case 6: { /* FileDescriptorProto.service */
        if (idx >= fd->n_service || !append_name(out, &len, fd->service[idx]->name))
            return false;
        if (n == 2)
            return true;
        const Google__Protobuf__ServiceDescriptorProto *s = fd->service[idx];
        if (n != 4 || p[2] != 2 || p[3] < 0 || (size_t)p[3] >= s->n_method)
            return false;
        return append_name(out, &len, s->method[p[3]]->name);
    }
    case 5: /* FileDescriptorProto.enum_type */
        return n == 2 && idx < fd->n_enum_type &&
               append_name(out, &len, fd->enum_type[idx]->name);
    case 4: { /* FileDescriptorProto.message_type */
        if (idx >= fd->n_message_type)
            return false;
        const message_proto *m = fd->message_type[idx];
        if (!append_name(out, &len, m->name))
            return false;
        for (size_t i = 2; i < n; i += 2) {
            if (i + 1 >= n || p[i + 1] < 0)
                return false;
            size_t j = (size_t)p[i + 1];
            bool last = i + 2 == n;
            switch (p[i]) {
            case 3: /* nested_type */
                if (j >= m->n_nested_type)
                    return false;
                m = m->nested_type[j];
                if (!append_name(out, &len, m->name))
                    return false;
                break;
            case 2: /* field */
                return last && j < m->n_field && append_name(out, &len, m->field[j]->name);
            case 4: /* enum_type */
                return last && j < m->n_enum_type &&
                       append_name(out, &len, m->enum_type[j]->name);
            default:
                return false;
            }
        }
        return true;
    }
    default:
        return false;
    }
}

/* protoc keeps the space after "//" on every line; drop one, and the
 * trailing newlines. Returns a malloc'ed string or NULL. */
static char *clean_comment(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool line_start = true;
    for (size_t i = 0; i < n; i++) {
        if (line_start && s[i] == ' ') {
            line_start = false;
            continue;
        }
        line_start = s[i] == '\n';
        out[o++] = s[i];
    }
    while (o && (out[o - 1] == '\n' || out[o - 1] == ' ' || out[o - 1] == '\r' ||
                 out[o - 1] == '\t'))
        o--;
    out[o] = 0;
    return out;
}

static int file_comments(oa_gen *g, const file_proto *fd)
{
    const Google__Protobuf__SourceCodeInfo *sci = fd->source_code_info;
    char name[NAME_MAX_BYTES];
    for (size_t i = 0; i < sci->n_location; i++) {
        const Google__Protobuf__SourceCodeInfo__Location *loc = sci->location[i];
        const char *text = loc->leading_comments && loc->leading_comments[0]
                               ? loc->leading_comments
                               : loc->trailing_comments;
        if (!text || !text[0] || !location_name(fd, loc->path, loc->n_path, name))
            continue;
        if (json_object_get(g->comments, name))
            continue;
        char *c = clean_comment(text);
        if (!c)
            return GW_ENOMEM;
        if (c[0] && gw_utf8_valid((const uint8_t *)c, strlen(c)))
            oa_set(g, g->comments, name, oa_str(g, c));
        free(c);
        if (g->oom)
            return GW_ENOMEM;
    }
    return 0;
}

int oa_load_comments(oa_gen *g)
{
    for (size_t i = 0; i < gw_registry_file_count(g->r); i++) {
        const gw_file_def *f = gw_registry_file_at(g->r, i);
        if (!f->serialized || !f->serialized_len)
            continue;
        /* The registry parsed these bytes already, so a failure here is
         * protobuf-c running out of memory. */
        file_proto *fd =
            google__protobuf__file_descriptor_proto__unpack(NULL, f->serialized_len,
                                                            f->serialized);
        if (!fd)
            return GW_ENOMEM;
        int rc = fd->source_code_info ? file_comments(g, fd) : 0;
        google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

const char *oa_comment(const oa_gen *g, const char *full_name)
{
    return json_string_value(json_object_get(g->comments, full_name));
}

const char *oa_field_comment(const oa_gen *g, const gw_field_def *f)
{
    char name[NAME_MAX_BYTES];
    int n = snprintf(name, sizeof(name), "%s.%s", f->containing->full_name, f->name);
    if (n < 0 || (size_t)n >= sizeof(name))
        return NULL;
    return oa_comment(g, name);
}
