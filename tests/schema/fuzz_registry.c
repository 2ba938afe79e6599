/*
 * Fuzz target for the registry loader: the input is a FileDescriptorSet.
 * Whatever loads is walked end to end (every service, method, rule,
 * message, field, enum and extension, and the lookups on them) so that a
 * registry with dangling or half-built parts shows up under ASan, not just a
 * crash in the parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "schema/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk_message(const gw_registry *r, const gw_message_def *m)
{
    size_t n = strlen(m->full_name) + strlen(m->file->name);
    for (size_t i = 0; i < m->field_count; i++) {
        const gw_field_def *f = &m->fields[i];
        n += strlen(f->name) + strlen(f->json_name) + (f->default_value ? 1 : 0);
        if (gw_message_field_by_number(m, f->number) != f)
            __builtin_trap();
        if (!gw_message_field_by_name(m, f->json_name, strlen(f->json_name)))
            __builtin_trap();
        if (gw_message_field_by_proto_name(m, f->name, strlen(f->name)) != f)
            __builtin_trap();
        if (f->message)
            n += strlen(f->message->full_name);
        if (f->enumeration) {
            const gw_enum_def *e = f->enumeration;
            for (size_t j = 0; j < e->value_count; j++)
                if (!gw_enum_value_by_number(e, e->values[j].number) ||
                    !gw_enum_value_by_name(e, e->values[j].name, strlen(e->values[j].name)))
                    __builtin_trap();
        }
        if (f->oneof_index >= 0 && (size_t)f->oneof_index >= m->oneof_count)
            __builtin_trap();
    }
    for (size_t i = 0; i < m->oneof_count; i++)
        for (size_t j = 0; j < m->oneofs[i].field_count; j++)
            n += m->oneofs[i].fields[j]->number;
    if (gw_registry_message(r, m->full_name) != m)
        __builtin_trap();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_registry_builder *b = gw_registry_builder_new();
    gw_registry *r = NULL;
    gw_error e;
    if (!b)
        return 0;
    if (gw_registry_builder_add_set(b, data, size, "fuzz", &e) == 0 &&
        gw_registry_builder_build(b, &r, &e) == 0) {
        volatile size_t n = 0;
        for (size_t i = 0; i < gw_registry_service_count(r); i++) {
            const gw_service_def *s = gw_registry_service_at(r, i);
            for (size_t j = 0; j < s->method_count; j++) {
                const gw_method_def *m = &s->methods[j];
                if (gw_registry_method_by_path(r, m->path, strlen(m->path)) != m)
                    __builtin_trap();
                n += walk_message(r, m->input) + walk_message(r, m->output);
                for (size_t k = 0; k < m->http_rule_count; k++)
                    n += strlen(m->http_rules[k].verb) + strlen(m->http_rules[k].path) +
                         strlen(m->http_rules[k].body) +
                         strlen(m->http_rules[k].response_body);
            }
        }
        for (size_t i = 0; i < gw_registry_extension_count(r); i++) {
            const gw_field_def *x = gw_registry_extension_at(r, i);
            if (!x->is_extension ||
                gw_registry_extension(r, x->full_name, strlen(x->full_name)) != x ||
                gw_message_extension_by_number(x->containing, x->number) != x ||
                gw_message_field_by_number(x->containing, x->number))
                __builtin_trap();
            n += strlen(x->json_name) + strlen(x->file->name) + walk_message(r, x->containing);
        }
        for (size_t i = 0; i < gw_registry_file_count(r); i++) {
            const gw_file_def *f = gw_registry_file_at(r, i);
            if (gw_registry_file(r, f->name) != f)
                __builtin_trap();
            n += f->serialized_len ? f->serialized[f->serialized_len - 1] : 0;
        }
        (void)n;
    }
    gw_registry_del(r);
    gw_registry_builder_del(b);
    return 0;
}
