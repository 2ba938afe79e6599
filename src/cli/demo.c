/*
 * grpcgate demo: the demo gRPC service (src/demo) on a loopback port of its
 * own thread, and the gateway (src/server) in front of it with the embedded
 * demo descriptor set and the web page, in one process. Prints the URL and
 * three curl commands once the gateway accepts connections; SIGINT/SIGTERM
 * drain the gateway, then stop the service.
 *
 * Why it is shaped like this:
 *   - gw_server_run owns SIGINT/SIGTERM (sigwait in the thread that runs it)
 *     and blocks until stopped, so it runs on a thread of its own while this
 *     thread waits for the port to accept and prints the banner. Both
 *     signals are blocked before any thread starts, so none of them can take
 *     a signal meant for the server's sigwait.
 *   - The descriptor set lives in the binary (gw_demo_descriptor_set); the
 *     server reads descriptor files, so it is handed a memfd through
 *     /proc/self/fd/N: nothing to find on disk, nothing left behind.
 *   - With port 0 the banner needs the port before the server picks it: a
 *     bound, non-listening SO_REUSEPORT socket reserves a free port, and the
 *     server's SO_REUSEPORT listeners join it (only listening sockets receive
 *     connections). It stays open until exit so nobody else takes the port.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "demo/demo.h"
#include "loop/loop.h"
#include "server/server.h"

#define DEMO_DEFAULT_LISTEN "127.0.0.1:8080"
#define DEMO_READY_TIMEOUT_MS 30000

static void demo_usage(FILE *f)
{
    fputs("usage: grpcgate demo [--listen HOST:PORT] [--static DIR] [--config FILE]\n"
          "                     [--workers N] [--log-level LEVEL]\n"
          "\n"
          "Runs the demo gRPC service (demo.v1.UserService, demo.v1.EchoService) and\n"
          "the gateway in front of it in one process: gRPC-Web, REST/JSON and the web\n"
          "demo page at /. Prints the URL and curl commands to try.\n"
          "\n"
          "  --listen HOST:PORT   gateway address (default " DEMO_DEFAULT_LISTEN "; port 0\n"
          "                       picks a free one); prints 'listening on HOST:PORT'\n"
          "  --static DIR         web page directory (default: the built web demo\n"
          "                       next to the binary: ../web-demo or\n"
          "                       ../share/grpcgate/web-demo)\n"
          "  --config FILE        gateway JSON configuration (limits, CORS, ...)\n"
          "  --workers N          gateway worker threads (default: one per CPU)\n"
          "  --log-level LEVEL    debug, info (default), warn, error or off\n"
          "\n"
          "Ctrl-C (SIGINT) or SIGTERM stops everything.\n",
          f);
}

typedef struct demo_flags {
    const char *listen, *static_dir, *config, *log_level;
    long workers;
} demo_flags;

/* Returns 0, 1 for --help, 2 for a usage error (already reported). */
static int parse_flags(int argc, char **argv, demo_flags *f)
{
    f->listen = DEMO_DEFAULT_LISTEN;
    f->workers = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            demo_usage(stdout);
            return 1;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
#define FLAG(name) (nl == strlen(name) && strncmp(a, name, nl) == 0)
        if (!(FLAG("--listen") || FLAG("--static") || FLAG("--config") ||
              FLAG("--workers") || FLAG("--log-level"))) {
            fprintf(stderr, "grpcgate demo: unknown option '%s'\n\n", a);
            demo_usage(stderr);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "grpcgate demo: %s needs a value\n", a);
            return 2;
        }
        if (!eq)
            i++;
        if (FLAG("--listen")) {
            f->listen = val;
        } else if (FLAG("--static")) {
            f->static_dir = val;
        } else if (FLAG("--config")) {
            f->config = val;
        } else if (FLAG("--log-level")) {
            f->log_level = val;
        } else {
            char *end;
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 1024) {
                fprintf(stderr, "grpcgate demo: --workers wants 1..1024\n");
                return 2;
            }
            f->workers = n;
        }
#undef FLAG
    }
    return 0;
}

/* Splits "host:port" or "[v6]:port" into host (hostcap bytes) and port. */
static int split_host_port(const char *s, char *host, size_t hostcap, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return -1; /* an IPv6 address needs its brackets */
    }
    if (hl == 0 || hl >= hostcap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == 0 || *end || errno || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* Reserves a free port on host (see the top of the file). Returns the socket
 * and sets *port, or -1 with e set. */
static int reserve_port(const char *host, int *port, gw_error *e)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, "0", &hints, &ai);
    if (rc != 0) {
        gw_error_set(e, GW_EINVAL, "--listen: '%s' is not a numeric address (%s)", host,
                     gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        gw_error_set(e, GW_EIO, "cannot reserve a port on %s: %s", host, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    } else {
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    }
    freeaddrinfo(ai);
    return fd;
}

/* The gateway's listeners use SO_REUSEPORT, so a second process of the same
 * user could bind a taken port and silently share its traffic; for a demo,
 * whose users are two in-memory directories apart, that would only confuse.
 * The server's own probe (gw_server_check_listen) finds it; the demo words
 * the answer for its users and tells the server not to probe again. The
 * banner connects to host, so it must be a numeric address. Returns 0,
 * GW_EINVAL or GW_EIO with e set. */
static int check_port_free(const char *host, int port, gw_error *e)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0)
        return gw_error_set(e, GW_EINVAL, "--listen: '%s' is not a numeric address (%s)", host,
                            gai_strerror(rc));
    freeaddrinfo(ai);
    if (gw_server_check_listen(host, (uint16_t)port, e) == 0)
        return 0;
    bool v6 = strchr(host, ':') != NULL;
    return gw_error_set(e, GW_EIO,
                        "port %d on %s is in use (another grpcgate demo?): stop it, or "
                        "pass --listen %s%s%s:0 for a free port",
                        port, host, v6 ? "[" : "", host, v6 ? "]" : "");
}

/* The embedded descriptor set as a file the server can read. Returns the fd
 * (path in path) or -1 with e set. */
static int descriptor_memfd(char *path, size_t cap, gw_error *e)
{
    size_t len = 0;
    const uint8_t *data = gw_demo_descriptor_set(&len);
    int fd = memfd_create("grpcgate-demo.pb", MFD_CLOEXEC);
    if (fd < 0) {
        gw_error_set(e, GW_EIO, "memfd_create: %s", strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            gw_error_set(e, GW_EIO, "writing the demo descriptors: %s", strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

static bool is_dir_with_index(const char *dir)
{
    char p[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(p, sizeof p, "%s/index.html", dir) >= sizeof p)
        return false;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The built web demo next to the executable: build/src/grpcgate ->
 * build/web-demo; <prefix>/bin/grpcgate -> <prefix>/share/grpcgate/web-demo. */
static bool find_web_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = 0;
    static const char *const rel[] = {"../web-demo", "../share/grpcgate/web-demo"};
    for (size_t i = 0; i < GW_ARRAY_LEN(rel); i++) {
        char cand[PATH_MAX];
        if ((size_t)snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]) >= sizeof cand)
            continue;
        if (is_dir_with_index(cand) && realpath(cand, out) && strlen(out) < cap)
            return true;
    }
    return false;
}

/* ---- the two threads ------------------------------------------------------ */

typedef struct demo_backend {
    gw_loop *loop;
    gw_demo_service *svc;
    pthread_t thread;
    int rc;
} demo_backend;

static void *backend_main(void *arg)
{
    demo_backend *b = arg;
    b->rc = gw_loop_run(b->loop);
    return NULL;
}

typedef struct demo_gateway {
    const gw_server_config *cfg;
    pthread_t thread;
    int rc;
    gw_error e;
    atomic_bool done;
} demo_gateway;

static void *gateway_main(void *arg)
{
    demo_gateway *g = arg;
    g->rc = gw_server_run(g->cfg, &g->e);
    atomic_store(&g->done, true);
    return NULL;
}

/* True once host:port accepts a TCP connection; false if the gateway thread
 * ended first or the time ran out. */
static bool wait_until_accepting(const char *host, int port, demo_gateway *g)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, service, &hints, &ai) != 0)
        return false;
    bool ok = false;
    for (int waited = 0; waited < DEMO_READY_TIMEOUT_MS && !atomic_load(&g->done); waited += 20) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            break;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        close(fd);
        if (rc == 0) {
            ok = !atomic_load(&g->done);
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    freeaddrinfo(ai);
    return ok;
}

/* What to do next. Every command works as printed against this process. */
static void print_banner(const char *host, int port, int backend_port, const char *web_dir)
{
    char base[300];
    bool v6 = strchr(host, ':') != NULL;
    /* A wildcard listen address is reachable on loopback. */
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    else if (strcmp(host, "::") == 0)
        snprintf(base, sizeof base, "http://[::1]:%d", port);
    else
        snprintf(base, sizeof base, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);

    printf("\n"
           "grpcgate demo: the demo gRPC service runs in this process on 127.0.0.1:%d\n"
           "(h2c); the gateway in front of it speaks gRPC-Web and REST/JSON.\n"
           "\n",
           backend_port);
    if (web_dir)
        printf("  Open the web demo:  %s/\n\n", base);
    else
        printf("  (no web page: build it with ninja, or pass --static DIR)\n\n");
    printf("  Try it with curl:\n"
           "    curl -s %s/v1/users/1\n"
           "    curl -s -X POST %s/v1/users -H 'Content-Type: application/json' "
           "-d '{\"name\":\"Katherine Johnson\",\"email\":\"katherine@example.com\"}'\n"
           "    curl -sN '%s/v1/users?pageSize=5&delay=0.5s&follow=true'\n"
           "\n"
           "  Ctrl-C stops everything.\n\n",
           base, base, base);
    fflush(stdout);
}

int gw_cmd_demo(int argc, char **argv)
{
    demo_flags f = {0};
    int rc = parse_flags(argc, argv, &f);
    if (rc)
        return rc == 1 ? 0 : 2;

    int status = 1;
    int probe_fd = -1, desc_fd = -1;
    bool backend_started = false;
    demo_backend backend = {0};
    demo_gateway gateway = {0};
    gw_server_config cfg;
    gw_server_config_init(&cfg);
    gw_error e;
    gw_error_clear(&e);

    char host[256];
    int port;
    if (split_host_port(f.listen, host, sizeof host, &port) < 0) {
        fprintf(stderr, "grpcgate demo: --listen wants HOST:PORT or [V6]:PORT, got '%s'\n",
                f.listen);
        status = 2;
        goto out;
    }
    if (f.config && gw_server_config_load(&cfg, f.config, &e) != 0) {
        fprintf(stderr, "grpcgate demo: %s\n", e.msg);
        status = 2;
        goto out;
    }
    if (f.log_level) {
        static const char *const names[] = {"debug", "info", "warn", "error", "off"};
        size_t i = 0;
        while (i < GW_ARRAY_LEN(names) && strcmp(names[i], f.log_level) != 0)
            i++;
        if (i == GW_ARRAY_LEN(names)) {
            fprintf(stderr, "grpcgate demo: --log-level: debug, info, warn, error or off\n");
            status = 2;
            goto out;
        }
        cfg.log_level = (gw_log_level)i;
    }
    gw_log_set_level(cfg.log_level);
    if (f.workers > 0)
        cfg.workers = (unsigned)f.workers;

    char web_dir[PATH_MAX];
    bool have_web = false;
    if (f.static_dir) {
        if (!is_dir_with_index(f.static_dir)) {
            fprintf(stderr, "grpcgate demo: --static %s: no index.html there\n", f.static_dir);
            status = 2;
            goto out;
        }
        snprintf(web_dir, sizeof web_dir, "%s", f.static_dir);
        have_web = true;
    } else {
        have_web = find_web_dir(web_dir, sizeof web_dir);
        if (!have_web)
            GW_WARN("grpcgate demo: web page not found next to the binary "
                    "(../web-demo, ../share/grpcgate/web-demo); serving the API only");
    }

    if (port == 0) {
        probe_fd = reserve_port(host, &port, &e);
        if (probe_fd < 0) {
            fprintf(stderr, "grpcgate demo: %s\n", e.msg);
            goto out;
        }
    } else if (check_port_free(host, port, &e) != 0) {
        fprintf(stderr, "grpcgate demo: %s\n", e.msg);
        status = e.code == GW_EINVAL ? 2 : 1;
        goto out;
    }
    char listen_addr[300], backend_url[64], desc_path[64];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(listen_addr, sizeof listen_addr, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    desc_fd = descriptor_memfd(desc_path, sizeof desc_path, &e);
    if (desc_fd < 0) {
        fprintf(stderr, "grpcgate demo: %s\n", e.msg);
        goto out;
    }

    /* From here on threads exist: keep the stop signals for the server's
     * sigwait (see the top of the file). */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    backend.loop = gw_loop_new();
    if (!backend.loop) {
        fprintf(stderr, "grpcgate demo: cannot create an event loop: %s\n", strerror(errno));
        goto out;
    }
    if (gw_demo_service_new(backend.loop, "127.0.0.1", 0, &backend.svc, &e) != 0) {
        fprintf(stderr, "grpcgate demo: demo service: %s\n", e.msg);
        goto out;
    }
    int backend_port = gw_demo_service_port(backend.svc);
    if (pthread_create(&backend.thread, NULL, backend_main, &backend) != 0) {
        fprintf(stderr, "grpcgate demo: cannot start the demo service thread\n");
        goto out;
    }
    backend_started = true;
    snprintf(backend_url, sizeof backend_url, "http://127.0.0.1:%d", backend_port);

    for (size_t i = 0; i < cfg.descriptor_count; i++)
        free(cfg.descriptors[i]);
    cfg.descriptor_count = 0;
    cfg.descriptors[0] = strdup(desc_path);
    if (!cfg.descriptors[0] || gw_server_config_set_string(&cfg.listen, listen_addr) ||
        gw_server_config_set_string(&cfg.backend, backend_url)) {
        fprintf(stderr, "grpcgate demo: out of memory\n");
        goto out;
    }
    cfg.descriptor_count = 1;
    /* Checked above, or reserved (which the server's check would take for
     * someone else's listener). */
    cfg.listen_reserved = true;
    if (have_web && gw_server_config_set_string(&cfg.static_dir, web_dir)) {
        fprintf(stderr, "grpcgate demo: out of memory\n");
        goto out;
    }

    gateway.cfg = &cfg;
    atomic_init(&gateway.done, false);
    if (pthread_create(&gateway.thread, NULL, gateway_main, &gateway) != 0) {
        fprintf(stderr, "grpcgate demo: cannot start the gateway thread\n");
        goto out;
    }
    if (wait_until_accepting(host, port, &gateway))
        print_banner(host, port, backend_port, have_web ? web_dir : NULL);
    pthread_join(gateway.thread, NULL);
    if (gateway.rc != 0) {
        fprintf(stderr, "grpcgate demo: %s\n", gateway.e.msg);
        status = gateway.rc == GW_EINVAL ? 2 : 1;
        goto out;
    }
    status = 0;

out:
    if (backend_started) {
        gw_demo_service_stop(backend.svc);
        pthread_join(backend.thread, NULL);
        if (backend.rc != 0 && status == 0) {
            fprintf(stderr, "grpcgate demo: demo service loop failed\n");
            status = 1;
        }
    }
    /* Its loop thread has ended (or never ran): this thread owns it now. */
    gw_demo_service_del(backend.svc);
    if (backend.loop)
        gw_loop_del(backend.loop);
    if (desc_fd >= 0)
        close(desc_fd);
    if (probe_fd >= 0)
        close(probe_fd);
    gw_server_config_free(&cfg);
    return status;
}
