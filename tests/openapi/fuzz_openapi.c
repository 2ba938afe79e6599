/*
 * Fuzz target for OpenAPI generation from a descriptor set with comments
 * (SourceCodeInfo: leading/trailing comments cleaned into descriptions and
 * summaries). The input is a FileDescriptorSet; whatever the registry loads
 * is turned into a document (bounded at 1 MiB), which must be valid JSON
 * when generation succeeds. Corpus: tests/fuzz/openapi (descriptor sets
 * built with --include_source_info).
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openapi/openapi.h"
#include "schema/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_registry_builder *b = gw_registry_builder_new();
    gw_registry *r = NULL;
    gw_error e;
    if (!b)
        return 0;
    if (gw_registry_builder_add_set(b, data, size, "fuzz", &e) == 0 &&
        gw_registry_builder_build(b, &r, &e) == 0) {
        for (int variant = 0; variant < 2; variant++) {
            gw_openapi_options o;
            gw_openapi_options_init(&o);
            o.proto_names = variant;
            o.compact = variant;
            gw_buf out;
            gw_buf_init(&out, 1 << 20);
            if (gw_openapi_generate(r, &o, &out, &e) == 0) {
                json_error_t je;
                json_t *doc = json_loadb((const char *)out.data, out.len, 0, &je);
                if (!doc)
                    __builtin_trap();
                json_decref(doc);
            }
            gw_buf_free(&out);
        }
    }
    gw_registry_del(r);
    gw_registry_builder_del(b);
    return 0;
}
