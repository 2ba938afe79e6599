/*
 * Building a router from a whole registry. Kept apart from router.c so that
 * tests which build routers from hand-made definitions do not need the
 * registry implementation at link time.
 */
#include "route/route.h"

int gw_router_add_registry(gw_router *r, const gw_registry *reg, gw_error *e)
{
    size_t ns = gw_registry_service_count(reg);
    for (size_t i = 0; i < ns; i++) {
        const gw_service_def *s = gw_registry_service_at(reg, i);
        for (size_t j = 0; j < s->method_count; j++) {
            int rc = gw_router_add_method(r, &s->methods[j], e);
            if (rc)
                return rc;
        }
    }
    return 0;
}
