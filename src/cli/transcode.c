/*
 * grpcgate transcode: one message from stdin to stdout, JSON <-> protobuf,
 * through the same codec the gateway uses. Exit status: 0 done; 1 the input
 * is not a valid message of the type — whatever the codec refuses in it:
 * bad syntax, wrong shape, a value out of range or of the wrong kind, too
 * deep, or a wire message with a value JSON cannot carry; 2 usage or setup
 * error; 3 the output could not be produced or written (stdout write
 * error, out of memory).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "codec/codec.h"
#include "schema/schema.h"

#define MAX_DESCRIPTORS 64
#define MAX_STDIN (256u << 20)

static void usage(FILE *f)
{
    fputs("usage: grpcgate transcode --descriptor FILE [--descriptor FILE...] --type pkg.Message\n"
          "                          --from json|proto --to json|proto\n"
          "                          [--emit-defaults] [--proto-names] [--enums-as-ints]\n"
          "                          [--ignore-unknown] [--pretty]\n"
          "Reads one message from stdin and writes it to stdout.\n"
          "Exit status: 0 done, 1 invalid input (syntax, shape, range, depth),\n"
          "2 usage or setup error, 3 the output could not be produced or written.\n",
          f);
}

static int read_stdin(gw_buf *in)
{
    for (;;) {
        if (gw_buf_reserve(in, 65536))
            return -1;
        size_t n = fread(in->data + in->len, 1, 65536, stdin);
        in->len += n;
        in->data[in->len] = 0;
        if (n == 0)
            return ferror(stdin) ? -1 : 0;
    }
}

/* A codec error while reading the input: the input's fault unless memory
 * ran out. The codec's GW_EPARSE / GW_ERANGE / GW_ELIMIT all describe the
 * input (GW_ERANGE: well-formed, but a value outside its type's range). */
static int input_status(int rc)
{
    return rc == GW_ENOMEM ? 3 : 1;
}

/* Writes everything or says why not. */
static int write_all(const uint8_t *p, size_t n)
{
    if ((n && fwrite(p, 1, n, stdout) != n) || fflush(stdout) != 0) {
        fprintf(stderr, "grpcgate transcode: cannot write the output: %s\n",
                strerror(errno ? errno : EIO));
        return 3;
    }
    return 0;
}

int gw_cmd_transcode(int argc, char **argv)
{
    const char *paths[MAX_DESCRIPTORS];
    size_t npaths = 0;
    const char *type = NULL, *from = NULL, *to = NULL;
    gw_codec_options o;
    gw_codec_options_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_next = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--descriptor") == 0 && has_next) {
            if (npaths == MAX_DESCRIPTORS) {
                fprintf(stderr, "grpcgate transcode: too many --descriptor files\n");
                return 2;
            }
            paths[npaths++] = argv[++i];
        } else if (strcmp(a, "--type") == 0 && has_next) {
            type = argv[++i];
        } else if (strcmp(a, "--from") == 0 && has_next) {
            from = argv[++i];
        } else if (strcmp(a, "--to") == 0 && has_next) {
            to = argv[++i];
        } else if (strcmp(a, "--emit-defaults") == 0) {
            o.emit_defaults = true;
        } else if (strcmp(a, "--proto-names") == 0) {
            o.proto_names = true;
        } else if (strcmp(a, "--enums-as-ints") == 0) {
            o.enums_as_ints = true;
        } else if (strcmp(a, "--ignore-unknown") == 0) {
            o.ignore_unknown = true;
        } else if (strcmp(a, "--pretty") == 0) {
            o.indent = 2;
        } else {
            fprintf(stderr, "grpcgate transcode: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    bool from_json = from && strcmp(from, "json") == 0;
    bool to_json = to && strcmp(to, "json") == 0;
    if (!npaths || !type || !from || !to || (!from_json && strcmp(from, "proto") != 0) ||
        (!to_json && strcmp(to, "proto") != 0)) {
        fprintf(stderr, "grpcgate transcode: --descriptor, --type, --from json|proto and "
                        "--to json|proto are required\n");
        usage(stderr);
        return 2;
    }
    if (!from_json && !to_json) {
        fprintf(stderr, "grpcgate transcode: proto to proto is not supported\n");
        return 2;
    }

    int status = 2;
    gw_registry *reg = NULL;
    gw_error e;
    gw_buf in, mid, out;
    gw_buf_init(&in, MAX_STDIN);
    gw_buf_init(&mid, 0);
    gw_buf_init(&out, 0);
    if (gw_registry_load(&reg, paths, npaths, &e) != 0) {
        fprintf(stderr, "grpcgate transcode: %s\n", e.msg);
        goto out;
    }
    const gw_message_def *m = gw_registry_message(reg, type);
    if (!m) {
        fprintf(stderr, "grpcgate transcode: unknown message type '%s'\n", type);
        goto out;
    }
    if (read_stdin(&in) != 0) {
        fprintf(stderr, "grpcgate transcode: cannot read stdin (or it exceeds %u bytes)\n",
                MAX_STDIN);
        status = 1;
        goto out;
    }
    const char *text = in.data ? (const char *)in.data : "";
    int rc;
    if (from_json) {
        rc = gw_codec_json_to_proto(reg, m, text, in.len, &o, &mid, &e);
        if (rc) {
            fprintf(stderr, "grpcgate transcode: %s\n", e.msg);
            status = input_status(rc);
            goto out;
        }
        if (to_json) {
            /* Whatever the parser accepts prints back (docs/codec.md), so a
             * failure here is about producing the output, not the input. */
            rc = gw_codec_proto_to_json(reg, m, mid.data, mid.len, &o, &out, &e);
            if (rc) {
                fprintf(stderr, "grpcgate transcode: cannot print the output: %s\n", e.msg);
                status = 3;
                goto out;
            }
        }
    } else {
        rc = gw_codec_proto_to_json(reg, m, in.data, in.len, &o, &out, &e);
        if (rc) {
            fprintf(stderr, "grpcgate transcode: %s\n", e.msg);
            status = input_status(rc);
            goto out;
        }
    }
    errno = 0;
    if (to_json) {
        if (gw_buf_append_byte(&out, '\n') != 0) {
            fprintf(stderr, "grpcgate transcode: out of memory\n");
            status = 3;
            goto out;
        }
        status = write_all(out.data, out.len);
    } else {
        status = write_all(mid.data, mid.len);
    }
out:
    gw_buf_free(&in);
    gw_buf_free(&mid);
    gw_buf_free(&out);
    gw_registry_del(reg);
    return status;
}
