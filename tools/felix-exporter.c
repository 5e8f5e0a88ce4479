/*
 * felix-exporter: FEX statistics of every FEX process on the host, as
 * Prometheus metrics over HTTP (libmicrohttpd) or in a file for
 * node_exporter's textfile collector. Values are read at scrape time; the
 * scrape itself is exporter.c.
 */
#include "common.h"
#include "exporter.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <felix/felix.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "felix-exporter";

#define DEFAULT_LISTEN "127.0.0.1:9845"
#define TEXTFILE_NAME "felix-exporter.prom"
/* Bounds of the HTTP side. */
#define MAX_CONNECTIONS 32
#define MAX_PER_IP 8
#define CONNECTION_TIMEOUT_S 10
#define REQUEST_MEMORY (16 * 1024) /* a request's line and headers */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: felix-exporter [OPTIONS]\n"
            "Serve the statistics of every FEX process on this host (FEX_PROFILESTATS=1) as\n"
            "Prometheus metrics: GET /metrics, read at scrape time. Processes are found as they\n"
            "start and leave when they end; only objects this user may read are reported.\n\n"
            "  -l, --listen ADDR:PORT  where to listen (default " DEFAULT_LISTEN "; e.g.\n"
            "                          0.0.0.0:9845 or [::]:9845 to expose it; port 0 picks one)\n"
            "  -d, --dir DIR           where the statistics objects are (default /dev/shm); a\n"
            "                          directory of saved images works with --all\n"
            "  -a, --all               also objects whose process is gone (saved images, a FEX\n"
            "                          that crashed), labelled with the PID of their file name\n"
            "  -t, --threads           per-thread series too (fex_thread_*_total{tid,thread})\n"
            "      --max-threads N     per process, at most N threads: those with the most JIT +\n"
            "                          signal time (default %d; TIDs churn, so series do too)\n"
            "      --no-memory         no fex_memory_bytes (reading smaps costs milliseconds in\n"
            "                          a process with thousands of mappings)\n"
            "      --textfile DIR      write the metrics to DIR/" TEXTFILE_NAME " (atomically:\n"
            "                          a temporary file renamed over it) for node_exporter's\n"
            "                          textfile collector, every --interval; no HTTP unless\n"
            "                          --listen is given too\n"
            "  -i, --interval D        --textfile: how often (default 15s)\n"
            "      --once              --textfile: write once and exit\n"
            "  -h, --help              this help\n"
            "  -V, --version           version\n\n"
            "Metrics (labels pid, process, app_type, fex_version): fex_jit_seconds_total,\n"
            "fex_signal_seconds_total, fex_cache_read_lock_seconds_total,\n"
            "fex_cache_write_lock_seconds_total, fex_jit_blocks_total, fex_smc_total,\n"
            "fex_sigbus_total, fex_softfloat_total, fex_cache_misses_total (cumulative, exited\n"
            "threads included), fex_threads, fex_memory_bytes{region}, fex_processes. A\n"
            "scraper that accepts application/openmetrics-text gets OpenMetrics (# EOF).\n"
            "HTTP: GET and HEAD of / and /metrics only; at most %d connections (%d per\n"
            "address), %d s idle, %d KiB of request line and headers.\n\n"
            "Exit status:\n"
            "  0    stopped by SIGINT, SIGTERM or SIGHUP, or --once written\n"
            "  1    cannot listen (address in use, not an address of this host), out of\n"
            "       memory, or any other error (e.g. --help could not be written)\n"
            "  2    usage error (bad option, address, directory)\n"
            "  6    permission denied (a privileged port, a directory we may not use)\n"
            "  7    --once: the file could not be written (disk full, I/O error)\n",
            EXP_DEFAULT_MAX_THREADS, MAX_CONNECTIONS, MAX_PER_IP, CONNECTION_TIMEOUT_S, REQUEST_MEMORY / 1024);
}

/* The exporter is shared by the HTTP thread and the textfile loop. */
static exporter *ex;
static pthread_mutex_t exp_lock = PTHREAD_MUTEX_INITIALIZER;

static const char index_page[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>felix-exporter</title></head>\n"
    "<body><h1>felix-exporter</h1><p>FEX-Emu statistics for Prometheus: <a href=\"/metrics\">/metrics</a></p>"
    "</body></html>\n";

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, const void *body,
                             size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)ctx;
    static const char text[] = "text/plain; charset=utf-8";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char msg[] = "only GET and HEAD\n";
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT);
    }
    if (strcmp(url, "/") == 0)
        return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", index_page, sizeof index_page - 1,
                     MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") != 0) {
        static const char msg[] = "not found: the metrics are at /metrics\n";
        return reply(c, MHD_HTTP_NOT_FOUND, text, msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT);
    }
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    int om = accept && strstr(accept, "application/openmetrics-text") != NULL;
    pthread_mutex_lock(&exp_lock);
    const char *out;
    size_t len;
    enum MHD_Result ok;
    if (exp_scrape(ex, om, &out, &len) == 0)
        ok = reply(c, MHD_HTTP_OK,
                   om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                      : "text/plain; version=0.0.4; charset=utf-8",
                   out, len, MHD_RESPMEM_MUST_COPY);
    else {
        static const char msg[] = "out of memory\n";
        ok = reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT);
    }
    pthread_mutex_unlock(&exp_lock);
    return ok;
}

/* A listening socket for ADDR:PORT ("[v6]:PORT" for IPv6); -1 after one
 * line, with *status set. */
static int listen_on(const char *spec, char *shown, size_t shown_len, int *status)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    const char *h = spec;
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        h = spec + 1;
        hl -= 2;
    }
    uint64_t port;
    if (!colon || hl == 0 || hl >= sizeof host || tool_parse_uint(colon + 1, 0, 65535, &port) < 0) {
        tool_error(prog, "bad --listen '%s': expected ADDR:PORT, e.g. 127.0.0.1:9845 or [::1]:9845", spec);
        *status = EXIT_USAGE;
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    int e = getaddrinfo(host, ps, &hints, &ai);
    if (e != 0) {
        tool_error(prog, "bad --listen '%s': %s", spec, gai_strerror(e));
        *status = EXIT_USAGE;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        int err = errno;
        tool_error(prog, "cannot listen on %s: %s", spec, strerror(err));
        *status = err == EACCES || err == EPERM ? EXIT_PERMISSION : EXIT_FAILURE_GENERIC;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned p = (unsigned)port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
            p = ntohs(s6->sin6_port);
            snprintf(shown, shown_len, "[%s]:%u", a, p);
            return fd;
        }
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        p = ntohs(s4->sin_port);
    }
    snprintf(shown, shown_len, "%s:%u", a, p);
    return fd;
}

/* A directory we may use: 0, or an exit status after one line. */
static int check_dir(const char *opt, const char *dir, int mode)
{
    struct stat st;
    int e = 0;
    if (stat(dir, &st) != 0)
        e = errno;
    else if (!S_ISDIR(st.st_mode)) {
        tool_error(prog, "%s %s: not a directory", opt, dir);
        return EXIT_USAGE;
    } else if (access(dir, mode) != 0)
        e = errno;
    if (e) {
        tool_error(prog, "%s %s: %s", opt, dir, strerror(e));
        return e == EACCES || e == EPERM ? EXIT_PERMISSION : EXIT_USAGE;
    }
    return 0;
}

/* Write the textfile: 0, or -1 after one line. */
static int write_textfile(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, TEXTFILE_NAME) >= (int)sizeof path) {
        tool_error(prog, "--textfile %s: path too long", dir);
        return -1;
    }
    tool_atomic a;
    if (tool_atomic_open(prog, &a, path) < 0)
        return -1;
    pthread_mutex_lock(&exp_lock);
    const char *out;
    size_t len;
    int rc = exp_scrape(ex, 0, &out, &len);
    if (rc == 0 && fwrite(out, 1, len, a.f) != len)
        rc = -2;
    pthread_mutex_unlock(&exp_lock);
    if (rc == -1) {
        tool_error(prog, "out of memory rendering the metrics");
        tool_atomic_abort(&a);
        return -1;
    }
    return tool_atomic_commit(prog, &a); /* a write error shows at the flush */
}

int main(int argc, char **argv)
{
    enum { OPT_MAXT = 256, OPT_NOMEM, OPT_TEXTFILE, OPT_ONCE };
    static const struct option lo[] = {
        {"listen", 1, 0, 'l'},         {"dir", 1, 0, 'd'},          {"all", 0, 0, 'a'},
        {"threads", 0, 0, 't'},        {"max-threads", 1, 0, OPT_MAXT}, {"no-memory", 0, 0, OPT_NOMEM},
        {"textfile", 1, 0, OPT_TEXTFILE}, {"interval", 1, 0, 'i'},   {"once", 0, 0, OPT_ONCE},
        {"help", 0, 0, 'h'},           {"version", 0, 0, 'V'},      {0, 0, 0, 0}};
    const char *listen_spec = NULL, *textfile = NULL;
    exp_options o = {.dir = NULL, .max_threads = EXP_DEFAULT_MAX_THREADS, .memory = 1};
    int64_t interval = 15000000000LL;
    int once = 0, c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:d:ati:hV", lo, NULL)) != -1) {
        switch (c) {
        case 'l': listen_spec = optarg; break;
        case 'd': o.dir = optarg; break;
        case 'a': o.all = 1; break;
        case 't': o.threads = 1; break;
        case OPT_MAXT:
            if (tool_parse_uint(optarg, 1, EXP_MAX_MAX_THREADS, &v) < 0)
                return tool_bad_value(prog, c, lo, optarg, "a number of threads, 1 to 4096");
            o.max_threads = (unsigned)v;
            break;
        case OPT_NOMEM: o.memory = 0; break;
        case OPT_TEXTFILE: textfile = optarg; break;
        case 'i':
            if (tool_parse_duration(optarg, 1000000000, &interval) < 0 || interval < 100000000)
                return tool_bad_value(prog, c, lo, optarg, "at least 100ms, e.g. 15s");
            break;
        case OPT_ONCE: once = 1; break;
        case 'h': usage(stdout); return tool_stdout_done(prog);
        case 'V': printf("felix-exporter %s\n", felix_version()); return tool_stdout_done(prog);
        default: return tool_bad_option(prog, c, argv);
        }
    }
    if (optind < argc) {
        tool_error(prog, "unexpected argument '%s' (see %s --help)", argv[optind], prog);
        return EXIT_USAGE;
    }
    if (once && !textfile) {
        tool_error(prog, "--once needs --textfile DIR");
        return EXIT_USAGE;
    }
    if (once && listen_spec) {
        tool_error(prog, "--once writes the textfile and exits: it does not serve --listen");
        return EXIT_USAGE;
    }
    int st;
    if (o.dir && (st = check_dir("--dir", o.dir, R_OK | X_OK)) != 0)
        return st;
    if (textfile && (st = check_dir("--textfile", textfile, W_OK | X_OK)) != 0)
        return st;
    if (!textfile && !listen_spec)
        listen_spec = DEFAULT_LISTEN;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL); /* before any thread: they inherit it */
    signal(SIGPIPE, SIG_IGN);

    if (exp_new(&ex, &o) < 0) {
        tool_error(prog, "out of memory");
        return EXIT_FAILURE_GENERIC;
    }
    if (once) {
        st = write_textfile(textfile) == 0 ? EXIT_OK : EXIT_IO;
        exp_free(ex);
        return st;
    }
    struct MHD_Daemon *d = NULL;
    if (listen_spec) {
        char shown[INET6_ADDRSTRLEN + 16];
        int lfd = listen_on(listen_spec, shown, sizeof shown, &st);
        if (lfd < 0) {
            exp_free(ex);
            return st;
        }
        d = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD, 0, NULL, NULL, answer, NULL, MHD_OPTION_LISTEN_SOCKET,
                             lfd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MAX_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                             (size_t)REQUEST_MEMORY, MHD_OPTION_END);
        if (!d) {
            tool_error(prog, "cannot serve HTTP on %s: libmicrohttpd did not start", shown);
            close(lfd);
            exp_free(ex);
            return EXIT_FAILURE_GENERIC;
        }
        fprintf(stderr, "%s: serving http://%s/metrics\n", prog, shown);
    }
    /* Wait for a signal; with --textfile, write the file every interval. */
    int64_t next = tool_now();
    int failing = 0;
    for (;;) {
        if (textfile && tool_now() >= next) {
            int bad = write_textfile(textfile) != 0;
            if (bad && !failing)
                tool_error(prog, "will try again every interval; the last good file stays");
            failing = bad;
            next += interval;
            if (next < tool_now())
                next = tool_now() + interval;
        }
        int sig;
        if (textfile) {
            int64_t wait = next - tool_now();
            if (wait < 0)
                wait = 0;
            struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
            sig = sigtimedwait(&sigs, NULL, &ts);
        } else {
            sig = sigwaitinfo(&sigs, NULL);
        }
        if (sig > 0)
            break;
    }
    if (d)
        MHD_stop_daemon(d);
    exp_free(ex);
    return EXIT_OK;
}
