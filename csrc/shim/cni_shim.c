/* pynetlink-cni, the executable a CNI runtime runs: a small C shim in front
 * of pynetlink's CNI plugin, so that no Python starts per call.
 *
 * - VERSION: answered here (the answers are generated at build time from
 *   pynetlink.cni.spec: cni_shim_gen.h), no socket, no Python.
 * - ADD, DEL, CHECK, STATUS, GC (and anything else): the CNI_*, PYNETLINK_*
 *   and PATH variables and stdin go to the resident daemon over its Unix
 *   socket ($PYNETLINK_CNI_SOCKET, else SHIM_DEFAULT_SOCKET); its stdout,
 *   stderr and exit status come back unchanged (protocol: pynetlink/cni/wire.py).
 * - No daemon (connect() fails), or the daemon died before the first byte of
 *   its answer: the Python plugin is exec'd in this process ("<argv[0]>-exec",
 *   written by the installer) with the same environment and stdin bytes.
 * - Everything else that fails (no answer within $PYNETLINK_CNI_TIMEOUT
 *   seconds, a truncated or malformed answer, a request over the protocol's
 *   limits): a CNI error document on stdout, exit 1.  Never a hang. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "cni_shim_gen.h"

extern char **environ;

#define MAGIC_LEN (sizeof(SHIM_MAGIC) - 1)
#define EXEC_SUFFIX "-exec"

struct buf {
    unsigned char *data;
    size_t len, cap;
};

/* How a request to the daemon ended. */
enum outcome { ANSWERED, FALLBACK, FAILED };

struct failure {
    char msg[256];
    char details[PATH_MAX + 128];
};

/* -- buffers and deadlines ------------------------------------------------------------------ */

static int buf_reserve(struct buf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 4096;
    unsigned char *data;

    if (b->len + more <= b->cap)
        return 0;
    while (cap < b->len + more)
        cap *= 2;
    data = realloc(b->data, cap);
    if (!data)
        return -ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_add(struct buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);

    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int buf_add_u32(struct buf *b, uint32_t v)
{
    unsigned char be[4] = {v >> 24, v >> 16, v >> 8, v};

    return buf_add(b, be, 4);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds left before the deadline, for poll(); -ETIMEDOUT once past it. */
static int remaining_ms(double deadline)
{
    double left = deadline - now();

    if (left <= 0)
        return -ETIMEDOUT;
    return left > INT_MAX / 1000 ? INT_MAX : (int)(left * 1000) + 1;
}

/* Wait until fd is ready for `events`, at most until the deadline. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int ms = remaining_ms(deadline), n;
        if (ms < 0)
            return ms;
        n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* -- plain file descriptors ------------------------------------------------------------------ */

/* All of p to fd (partial writes, EINTR, non-blocking fds), until the deadline; -EPIPE
 * once the reader has gone (SIGPIPE is ignored). */
static int write_all(int fd, const void *p, size_t n, double deadline)
{
    const unsigned char *c = p;

    while (n) {
        ssize_t w = write(fd, c, n);
        if (w > 0) {
            c += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
        } else if (w < 0 && errno != EINTR) {
            return errno == ECONNRESET ? -EPIPE : -errno;
        }
    }
    return 0;
}

/* stdin, whole, up to limit + 1 bytes (one more says "too long"); a closed fd 0 reads as empty. */
static int read_stdin(struct buf *in, size_t limit)
{
    for (;;) {
        ssize_t r;
        int rc = buf_reserve(in, 65536);
        if (rc < 0)
            return rc;
        r = read(0, in->data + in->len, in->cap - in->len < limit + 1 - in->len
                                         ? in->cap - in->len : limit + 1 - in->len);
        if (r > 0)
            in->len += (size_t)r;
        else if (r == 0 || (r < 0 && errno == EBADF))
            return 0;
        else if (errno != EINTR && errno != EAGAIN)
            return -errno;
        else if (errno == EAGAIN && (rc = wait_fd(0, POLLIN, now() + 3600)) < 0)
            return rc;
        if (in->len > limit)
            return 0;
    }
}

/* -- answers written here --------------------------------------------------------------------- */

static const char *config_version_or_latest(const struct buf *in)
{
    int i = in ? shim_config_version(in->data, in->len, shim_versions, SHIM_N_VERSIONS) : -1;

    return i >= 0 ? shim_versions[i] : SHIM_LATEST;
}

/* s as the inside of a JSON string (", \ and control characters escaped). */
static void json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;

    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
        else if (c < 0x20)
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = 0;
}

/* The CNI error document (code 11, try again later) for a failure; exit status 1. */
static int fail(const struct buf *in, const struct failure *f)
{
    char msg[2 * sizeof(f->msg)], details[2 * sizeof(f->details)], doc[sizeof(msg) + sizeof(details) + 128];
    int n;

    json_escape(msg, sizeof(msg), f->msg);
    json_escape(details, sizeof(details), f->details);
    n = snprintf(doc, sizeof(doc), "{\"cniVersion\": \"%s\", \"code\": %d, \"msg\": \"%s\"%s%s%s}\n",
                 config_version_or_latest(in), SHIM_TRY_AGAIN, msg,
                 *details ? ", \"details\": \"" : "", details, *details ? "\"" : "");
    write_all(1, doc, (size_t)n < sizeof(doc) ? (size_t)n : sizeof(doc) - 1, now() + 10);
    return 1;
}

static int answer(const char *doc, int status)
{
    write_all(1, doc, strlen(doc), now() + 10);
    return status;
}

/* -- exec mode: the Python plugin in this process --------------------------------------------- */

/* This executable's path as the runtime ran it, for its "-exec" sibling. */
static int self_path(const char *argv0, char *out, size_t cap)
{
    ssize_t n;

    if (argv0 && strchr(argv0, '/')) {
        if (strlen(argv0) >= cap)
            return -ENAMETOOLONG;
        strcpy(out, argv0);
        return 0;
    }
    n = readlink("/proc/self/exe", out, cap - 1);
    if (n < 0)
        return -errno;
    out[n] = 0;
    return 0;
}

/* fd 0 := a memory file holding data (stdin for the exec'd plugin, readable from the start). */
static int stdin_from_memory(const struct buf *in)
{
    int fd = (int)syscall(SYS_memfd_create, "pynetlink-cni-stdin", 0), rc;

    if (fd < 0)
        return -errno;
    rc = write_all(fd, in->data, in->len, now() + 60);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
        rc = -errno;
    if (rc == 0 && fd != 0 && dup2(fd, 0) < 0)
        rc = -errno;
    if (fd != 0)
        close(fd);
    return rc;
}

/* fd 0 := a pipe fed with data (a writer child when it does not fit the pipe). */
static int stdin_from_pipe(const struct buf *in)
{
    int p[2], rc = 0;

    if (pipe(p) < 0)
        return -errno;
    if (in->len <= 65536) {
        rc = write_all(p[1], in->data, in->len, now() + 10);
    } else {
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            _exit(write_all(p[1], in->data, in->len, now() + 3600) ? 1 : 0);
        }
        if (pid < 0)
            rc = -errno;
    }
    close(p[1]);
    if (rc == 0 && dup2(p[0], 0) < 0)
        rc = -errno;
    close(p[0]);
    return rc;
}

/* exec "<self>-exec" with argv's arguments, this environment and (in != NULL) in as stdin.
 * Returns only on failure, with the error document written. */
static int exec_plugin(char **argv, const struct buf *in)
{
    char path[PATH_MAX];
    struct failure f = {{0}, {0}};
    int rc = self_path(argv[0], path, sizeof(path) - strlen(EXEC_SUFFIX));

    if (rc == 0) {
        strcat(path, EXEC_SUFFIX);
        snprintf(f.details, sizeof(f.details), "exec-mode plugin %s", path);
        if (in && stdin_from_memory(in) < 0)
            rc = stdin_from_pipe(in);
    }
    if (rc == 0) {
        argv[0] = path;
        signal(SIGPIPE, SIG_DFL);       /* as the runtime started us */
        execv(path, argv);
        signal(SIGPIPE, SIG_IGN);
        rc = -errno;
    }
    snprintf(f.msg, sizeof(f.msg), "try again later: the pynetlink CNI daemon is not running and "
             "the exec-mode plugin could not be started: %s", strerror(-rc));
    return fail(in, &f);
}

/* -- VERSION ----------------------------------------------------------------------------------- */

static int version(char **argv, const struct buf *in)
{
    int i = shim_config_version(in->data, in->len, shim_versions, SHIM_N_VERSIONS);

    if (i == SHIM_VERSION_UNDECIDED)
        return exec_plugin(argv, in);
    return answer(i >= 0 ? shim_version_answers[i] : shim_latest_answer, 0);
}

/* -- the daemon -------------------------------------------------------------------------------- */

static double timeout_seconds(void)
{
    const char *s = getenv(SHIM_TIMEOUT_ENV);
    char *end;
    double t;

    if (!s || !*s)
        return SHIM_DEFAULT_TIMEOUT;
    t = strtod(s, &end);
    return *end || !isfinite(t) || t <= 0 || t > 1e7 ? SHIM_DEFAULT_TIMEOUT : t;
}

static const char *socket_path(void)
{
    const char *s = getenv(SHIM_SOCKET_ENV);

    return s && *s ? s : SHIM_DEFAULT_SOCKET;
}

static int forwarded(const char *entry)
{
    return strchr(entry, '=') && (strncmp(entry, "CNI_", 4) == 0 ||
                                  strncmp(entry, "PYNETLINK_", 10) == 0 ||
                                  strncmp(entry, "PATH=", 5) == 0);
}

/* The request's bytes up to stdin's (magic, env_len, the environment, stdin_len). */
static int request_head(struct buf *req, size_t stdin_len)
{
    size_t env_len = 0;
    int rc;

    for (char **e = environ; *e; e++)
        if (forwarded(*e))
            env_len += strlen(*e) + 1;
    if (env_len > SHIM_MAX_ENV)
        return -E2BIG;
    rc = buf_add(req, SHIM_MAGIC, MAGIC_LEN);
    if (rc == 0)
        rc = buf_add_u32(req, (uint32_t)env_len);
    for (char **e = environ; rc == 0 && *e; e++)
        if (forwarded(*e))
            rc = buf_add(req, *e, strlen(*e) + 1);
    if (rc == 0)
        rc = buf_add_u32(req, (uint32_t)stdin_len);
    return rc;
}

/* A connected socket to the daemon, or -errno (a blocking connect bounded by the deadline). */
static int connect_daemon(const char *path, double deadline)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int ms = remaining_ms(deadline), fd, rc;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    if (ms < 0)
        return ms;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EISCONN) {
        rc = -errno;
        close(fd);
        return rc;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Exactly n bytes of the response into out (appended); 1 at EOF before them. */
static int recv_exactly(int fd, struct buf *out, size_t n, double deadline)
{
    int rc = buf_reserve(out, n);

    while (rc == 0 && n) {
        ssize_t r = recv(fd, out->data + out->len, n, 0);
        if (r > 0) {
            out->len += (size_t)r;
            n -= (size_t)r;
        } else if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            return 1;
        } else if (errno == EAGAIN) {
            rc = wait_fd(fd, POLLIN, deadline);
        } else if (errno != EINTR) {
            rc = -errno;
        }
    }
    return rc;
}

/* A u32 length field of the response, appended to resp; its value in *v. */
static int recv_u32(int fd, struct buf *resp, uint32_t *v, double deadline)
{
    int rc = recv_exactly(fd, resp, 4, deadline);

    if (rc == 0)
        *v = get_u32(resp->data + resp->len - 4);
    return rc;
}

struct response {
    struct buf raw;
    uint32_t status;
    size_t out_at, out_len, err_at, err_len;
};

static int recv_section(int fd, struct response *r, size_t *at, size_t *len, double deadline)
{
    uint32_t n;
    int rc = recv_u32(fd, &r->raw, &n, deadline);

    if (rc)
        return rc;
    if (n > SHIM_MAX_OUTPUT)
        return -EMSGSIZE;
    *at = r->raw.len;
    *len = n;
    return recv_exactly(fd, &r->raw, n, deadline);
}

/* The whole response; 1 if the connection ended before its first byte. */
static int recv_response(int fd, struct response *r, double deadline, struct failure *f)
{
    int rc = recv_exactly(fd, &r->raw, MAGIC_LEN, deadline);

    if (rc == 1 && r->raw.len == 0)
        return 1;
    if (rc == 0 && memcmp(r->raw.data, SHIM_MAGIC, MAGIC_LEN) != 0)
        rc = -EPROTO;
    if (rc == 0 && (rc = recv_u32(fd, &r->raw, &r->status, deadline)) == 0 && r->status > 255)
        rc = -EPROTO;
    if (rc == 0)
        rc = recv_section(fd, r, &r->out_at, &r->out_len, deadline);
    if (rc == 0)
        rc = recv_section(fd, r, &r->err_at, &r->err_len, deadline);
    if (rc == 1)
        snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon's answer "
                 "was cut short (%zu bytes)", r->raw.len);
    else if (rc == -ETIMEDOUT)
        snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon did not "
                 "answer within %g s", timeout_seconds());
    else if (rc < 0)
        snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon's answer "
                 "could not be read: %s", rc == -EPROTO ? "not the protocol's" : strerror(-rc));
    return rc ? -1 : 0;
}

/* One request to the daemon; *r holds its answer when ANSWERED. */
static enum outcome ask_daemon(const struct buf *in, struct response *r, struct failure *f)
{
    double deadline = now() + timeout_seconds();
    const char *path = socket_path();
    struct buf req = {0};
    int fd, rc;

    snprintf(f->details, sizeof(f->details), "socket %s", path);
    rc = request_head(&req, in->len);
    if (rc < 0) {
        snprintf(f->msg, sizeof(f->msg), "try again later: the request is over the protocol's "
                 "limits: %s", rc == -E2BIG ? "the CNI_*, PYNETLINK_* and PATH variables are over "
                 SHIM_MAX_ENV_TEXT " bytes" : strerror(-rc));
        free(req.data);
        return FAILED;
    }
    fd = connect_daemon(path, deadline);
    if (fd == -EAGAIN || fd == -EINPROGRESS || fd == -ETIMEDOUT) {
        snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon accepts no "
                 "connection within %g s", timeout_seconds());
        free(req.data);
        return FAILED;
    }
    if (fd < 0) {
        free(req.data);
        return FALLBACK;
    }
    rc = write_all(fd, req.data, req.len, deadline);
    free(req.data);
    if (rc == 0)
        rc = write_all(fd, in->data, in->len, deadline);
    if (rc == 0)
        shutdown(fd, SHUT_WR);
    /* A daemon gone mid-request (-EPIPE) may still have answered: read what it sent. */
    if (rc == -ETIMEDOUT)
        snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon did not "
                 "take the request within %g s", timeout_seconds());
    else
        rc = recv_response(fd, r, deadline, f);
    close(fd);
    return rc == 1 ? FALLBACK : rc < 0 ? FAILED : ANSWERED;
}

static int proxy(char **argv, const struct buf *in)
{
    struct response r = {.status = 0};
    struct failure f = {{0}, {0}};
    enum outcome o = ask_daemon(in, &r, &f);
    double deadline = now() + 60;

    if (o == ANSWERED) {
        write_all(1, r.raw.data + r.out_at, r.out_len, deadline);
        write_all(2, r.raw.data + r.err_at, r.err_len, deadline);
    }
    free(r.raw.data);
    if (o == FALLBACK)
        return exec_plugin(argv, in);
    return o == FAILED ? fail(in, &f) : (int)r.status;
}

/* fds 0, 1 and 2 open (on /dev/null if the runtime closed one), so that no
 * socket or file of ours takes their place. */
static void keep_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (null >= 0 && null != fd) {
                dup2(null, fd);
                close(null);
            }
        }
}

int main(int argc, char **argv)
{
    const char *command = getenv("CNI_COMMAND");
    int is_version = command && strcmp(command, "VERSION") == 0;
    struct buf in = {0};
    int rc;

    signal(SIGPIPE, SIG_IGN);
    keep_std_fds();
    if (argc > 1 || !argv[0])           /* the installer's arguments: Python's job */
        return exec_plugin(argv[0] ? argv : (char *[]){"pynetlink-cni", NULL}, NULL);
    rc = is_version && isatty(0) ? 0 : read_stdin(&in, SHIM_MAX_STDIN);
    if (rc < 0) {
        struct failure f = {{0}, {0}};
        snprintf(f.msg, sizeof(f.msg), "try again later: stdin could not be read: %s", strerror(-rc));
        return fail(&in, &f);
    }
    if (in.len > SHIM_MAX_STDIN)
        rc = answer(shim_oversized_answer, 1);
    else
        rc = is_version ? version(argv, &in) : proxy(argv, &in);
    free(in.data);
    return rc;
}
