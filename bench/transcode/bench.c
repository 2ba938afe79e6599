/*
 * bench/transcode: throughput of the codec, protobuf -> JSON and JSON ->
 * protobuf, over the messages given on the command line. Not a test: run it
 * through bench/transcode/run.sh, which also runs the libprotobuf program
 * and prints both side by side.
 *
 * usage: bench_transcode DESCRIPTOR_SET [TYPE JSON_FILE]...
 * BENCH_ONLY=to_json|to_proto runs one direction; BENCH_ONLY=jansson times
 * jansson's json_loadb on the same JSON instead (the parse alone).
 * Output, one line per message and direction:
 *   grpcgate <name> <to_json|to_proto> <bytes_in> <ns_per_msg> <MB_per_s>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "codec/codec.h"
#include "schema/schema.h"

/* CPU time of this thread: the machine is shared, and wall time would
 * count the time other processes run. libprotobuf's program does the same. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* For docs/codec.md: what parsing the same JSON into a jansson tree costs
 * (and nothing else). */
static double measure_jansson(const char *json, size_t len)
{
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        long iters = 1;
        for (;;) {
            double t0 = now();
            for (long i = 0; i < iters; i++) {
                json_t *v = json_loadb(json, len, JSON_DECODE_INT_AS_REAL, NULL);
                if (!v) {
                    fprintf(stderr, "bench: jansson cannot parse\n");
                    exit(1);
                }
                json_decref(v);
            }
            double t = now() - t0;
            if (t >= 0.2) {
                if (t / (double)iters < best)
                    best = t / (double)iters;
                break;
            }
            iters *= 2;
        }
    }
    return best * 1e9;
}

typedef struct job {
    const gw_registry *reg;
    const gw_message_def *m;
    const uint8_t *in;
    size_t len;
    bool to_json;
    gw_buf out;
} job;

static int run_once(job *j)
{
    gw_buf_reset(&j->out);
    if (j->to_json)
        return gw_codec_proto_to_json(j->reg, j->m, j->in, j->len, NULL, &j->out, NULL);
    return gw_codec_json_to_proto(j->reg, j->m, (const char *)j->in, j->len, NULL, &j->out, NULL);
}

/* Best of 5 runs of at least 0.2 s each: ns per message. */
static double measure(job *j)
{
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        long iters = 1;
        for (;;) {
            double t0 = now();
            for (long i = 0; i < iters; i++)
                if (run_once(j)) {
                    fprintf(stderr, "bench: transcoding failed\n");
                    exit(1);
                }
            double t = now() - t0;
            if (t >= 0.2) {
                if (t / (double)iters < best)
                    best = t / (double)iters;
                break;
            }
            iters *= 2;
        }
    }
    return best * 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (argc - 2) % 2) {
        fprintf(stderr, "usage: bench_transcode DESCRIPTOR_SET [TYPE JSON_FILE]...\n");
        return 2;
    }
    gw_registry *reg;
    gw_error e;
    const char *paths[] = {argv[1]};
    if (gw_registry_load(&reg, paths, 1, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        return 2;
    }
    for (int a = 2; a + 1 < argc; a += 2) {
        const gw_message_def *m = gw_registry_message(reg, argv[a]);
        uint8_t *json;
        size_t json_len;
        if (!m || gw_read_file(argv[a + 1], 1u << 30, &json, &json_len, &e)) {
            fprintf(stderr, "bench: %s: %s\n", argv[a], m ? e.msg : "unknown type");
            return 2;
        }
        gw_buf wire;
        gw_buf_init(&wire, 0);
        if (gw_codec_json_to_proto(reg, m, (const char *)json, json_len, NULL, &wire, &e)) {
            fprintf(stderr, "bench: %s: %s\n", argv[a + 1], e.msg);
            return 1;
        }
        const char *name = strrchr(argv[a + 1], '/') ? strrchr(argv[a + 1], '/') + 1 : argv[a + 1];
        job to_json = {.reg = reg, .m = m, .in = wire.data, .len = wire.len, .to_json = true};
        job to_proto = {.reg = reg, .m = m, .in = json, .len = json_len, .to_json = false};
        gw_buf_init(&to_json.out, 0);
        gw_buf_init(&to_proto.out, 0);
        /* BENCH_ONLY=to_json or to_proto runs one direction (for profiling). */
        const char *only = getenv("BENCH_ONLY");
        double ns;
        if (!only || strcmp(only, "to_json") == 0) {
            ns = measure(&to_json);
            printf("grpcgate %s to_json %zu %.0f %.1f\n", name, wire.len, ns,
                   (double)wire.len / ns * 1e3);
        }
        if (!only || strcmp(only, "to_proto") == 0) {
            ns = measure(&to_proto);
            printf("grpcgate %s to_proto %zu %.0f %.1f\n", name, json_len, ns,
                   (double)json_len / ns * 1e3);
        }
        if (only && strcmp(only, "jansson") == 0) {
            ns = measure_jansson((const char *)json, json_len);
            printf("jansson %s parse_only %zu %.0f %.1f\n", name, json_len, ns,
                   (double)json_len / ns * 1e3);
        }
        fflush(stdout);
        gw_buf_free(&to_json.out);
        gw_buf_free(&to_proto.out);
        gw_buf_free(&wire);
        free(json);
    }
    gw_registry_del(reg);
    return 0;
}
