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
 *   limits): a CNI error document on stdout, exit 1.  Never a hang.
 *
 * It runs on rt.h's small runtime (no C library on x86-64: see rt.h); the C
 * library's headers give types and constants only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "rt.h"
#include "shim.h"
#include "cni_shim_gen.h"

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
    data = rt_resize(b->data, b->cap, cap);
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
    unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                            (unsigned char)v};

    return buf_add(b, be, 4);
}

static void buf_free(struct buf *b)
{
    rt_release(b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Deadlines are CLOCK_MONOTONIC microseconds (rt_now_us). */
static int64_t after_seconds(int64_t seconds)
{
    return rt_now_us() + seconds * 1000000;
}

/* Milliseconds left before the deadline, for poll(); -ETIMEDOUT once past it. */
static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - rt_now_us();

    if (left <= 0)
        return -ETIMEDOUT;
    return left / 1000 >= INT_MAX ? INT_MAX : (int)(left / 1000) + 1;
}

/* Wait until fd is ready for `events`, at most until the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int ms = remaining_ms(deadline), n;
        if (ms < 0)
            return ms;
        n = sys_poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && n != -EINTR)
            return n;
    }
}

/* -- plain file descriptors ------------------------------------------------------------------ */

/* All of p to fd (partial writes, EINTR, non-blocking fds), until the deadline; -EPIPE
 * once the reader has gone (SIGPIPE is ignored). */
static int write_all(int fd, const void *p, size_t n, int64_t deadline)
{
    const unsigned char *c = p;

    while (n) {
        ssize_t w = sys_write(fd, c, n);
        if (w > 0) {
            c += w;
            n -= (size_t)w;
        } else if (w == -EAGAIN) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
        } else if (w < 0 && w != -EINTR) {
            return w == -ECONNRESET ? -EPIPE : (int)w;
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
        r = sys_read(0, in->data + in->len, in->cap - in->len < limit + 1 - in->len
                                             ? in->cap - in->len : limit + 1 - in->len);
        if (r > 0)
            in->len += (size_t)r;
        else if (r == 0 || r == -EBADF)
            return 0;
        else if (r != -EINTR && r != -EAGAIN)
            return (int)r;
        else if (r == -EAGAIN && (rc = wait_fd(0, POLLIN, after_seconds(3600))) < 0)
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
            o += rt_snprintf(out + o, cap - o, "\\%c", c);
        else if (c < 0x20)
            o += rt_snprintf(out + o, cap - o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = 0;
}

/* The CNI error document (code 11, try again later) for a failure; exit status 1. */
static int fail(const struct buf *in, const struct failure *f)
{
    char msg[2 * sizeof(f->msg)], details[2 * sizeof(f->details)], doc[sizeof(msg) + sizeof(details) + 128];
    size_t n;

    json_escape(msg, sizeof(msg), f->msg);
    json_escape(details, sizeof(details), f->details);
    n = rt_snprintf(doc, sizeof(doc), "{\"cniVersion\": \"%s\", \"code\": %d, \"msg\": \"%s\"%s%s%s}\n",
                    config_version_or_latest(in), SHIM_TRY_AGAIN, msg,
                    *details ? ", \"details\": \"" : "", details, *details ? "\"" : "");
    write_all(1, doc, n, after_seconds(10));
    return 1;
}

static int answer(const char *doc, int status)
{
    write_all(1, doc, strlen(doc), after_seconds(10));
    return status;
}

/* -- exec mode: the Python plugin in this process --------------------------------------------- */

/* This executable's path as the runtime ran it, for its "-exec" sibling. */
static int self_path(const char *argv0, char *out, size_t cap)
{
    ssize_t n;

    if (argv0 && strchr(argv0, '/')) {
        n = (ssize_t)strlen(argv0);
        if ((size_t)n >= cap)
            return -ENAMETOOLONG;
        memcpy(out, argv0, (size_t)n);
    } else if ((n = sys_readlink("/proc/self/exe", out, cap - 1)) < 0) {
        return (int)n;
    }
    out[n] = 0;
    return 0;
}

/* fd 0 := a memory file holding data (stdin for the exec'd plugin, readable from the start). */
static int stdin_from_memory(const struct buf *in)
{
    int fd = sys_memfd("pynetlink-cni-stdin"), rc;
    off_t at;

    if (fd < 0)
        return fd;
    rc = write_all(fd, in->data, in->len, after_seconds(60));
    if (rc == 0 && (at = sys_lseek(fd, 0, SEEK_SET)) < 0)
        rc = (int)at;
    if (rc == 0 && fd != 0 && (rc = sys_dup2(fd, 0)) > 0)
        rc = 0;
    if (fd != 0)
        sys_close(fd);
    return rc;
}

/* fd 0 := a pipe fed with data (a writer child when it does not fit the pipe). */
static int stdin_from_pipe(const struct buf *in)
{
    int p[2], rc = sys_pipe(p);

    if (rc < 0)
        return rc;
    if (in->len <= 65536) {
        rc = write_all(p[1], in->data, in->len, after_seconds(10));
    } else {
        pid_t pid = sys_fork();
        if (pid == 0) {
            sys_close(p[0]);
            sys_exit(write_all(p[1], in->data, in->len, after_seconds(3600)) ? 1 : 0);
        }
        if (pid < 0)
            rc = (int)pid;
    }
    sys_close(p[1]);
    if (p[0] != 0) {                    /* 0 when fd 0 was closed: already in place */
        if (rc == 0 && (rc = sys_dup2(p[0], 0)) > 0)
            rc = 0;
        sys_close(p[0]);
    }
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
        memcpy(path + strlen(path), EXEC_SUFFIX, sizeof(EXEC_SUFFIX));
        rt_snprintf(f.details, sizeof(f.details), "exec-mode plugin %s", path);
        if (in && stdin_from_memory(in) < 0)
            rc = stdin_from_pipe(in);
    }
    if (rc == 0) {
        argv[0] = path;
        sys_sigpipe(0);                 /* as the runtime started us */
        rc = sys_execv(path, argv);
        sys_sigpipe(1);
    }
    rt_snprintf(f.msg, sizeof(f.msg), "try again later: the pynetlink CNI daemon is not running and "
                "the exec-mode plugin could not be started: %s", rt_strerror(-rc));
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

/* $PYNETLINK_CNI_TIMEOUT ("D[.D]" seconds), else the default; microseconds. */
static int64_t timeout_us(void)
{
    const char *s = rt_getenv(SHIM_TIMEOUT_ENV);
    int64_t us = s ? rt_parse_seconds(s) : -1;

    return us > 0 ? us : (int64_t)SHIM_DEFAULT_TIMEOUT * 1000000;
}

/* "within T s" for the failures that waited for the timeout. */
static void within_timeout(char *out, size_t cap)
{
    char seconds[32];

    rt_seconds_text(seconds, sizeof(seconds), timeout_us());
    rt_snprintf(out, cap, "within %s s", seconds);
}

static const char *socket_path(void)
{
    const char *s = rt_getenv(SHIM_SOCKET_ENV);

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

    for (char **e = rt_environ(); *e; e++)
        if (forwarded(*e))
            env_len += strlen(*e) + 1;
    if (env_len > SHIM_MAX_ENV)
        return -E2BIG;
    rc = buf_add(req, SHIM_MAGIC, MAGIC_LEN);
    if (rc == 0)
        rc = buf_add_u32(req, (uint32_t)env_len);
    for (char **e = rt_environ(); rc == 0 && *e; e++)
        if (forwarded(*e))
            rc = buf_add(req, *e, strlen(*e) + 1);
    if (rc == 0)
        rc = buf_add_u32(req, (uint32_t)stdin_len);
    return rc;
}

/* A connected socket to the daemon, or -errno (a blocking connect bounded by the deadline). */
static int connect_daemon(const char *path, int64_t deadline)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int ms = remaining_ms(deadline), fd, rc, flags;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    size_t len = strlen(path);

    if (ms < 0)
        return ms;
    if (len >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, len + 1);
    fd = sys_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    sys_setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    do
        rc = sys_connect(fd, &sa, sizeof(sa));
    while (rc == -EINTR);
    if (rc < 0 && rc != -EISCONN) {
        sys_close(fd);
        return rc;
    }
    if ((flags = sys_fcntl(fd, F_GETFL, 0)) >= 0)
        sys_fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    return fd;
}

/* Exactly n bytes of the response into out (appended); 1 at EOF before them. */
static int recv_exactly(int fd, struct buf *out, size_t n, int64_t deadline)
{
    int rc = buf_reserve(out, n);

    while (rc == 0 && n) {
        ssize_t r = sys_recv(fd, out->data + out->len, n);
        if (r > 0) {
            out->len += (size_t)r;
            n -= (size_t)r;
        } else if (r == 0 || r == -ECONNRESET) {
            return 1;
        } else if (r == -EAGAIN) {
            rc = wait_fd(fd, POLLIN, deadline);
        } else if (r != -EINTR) {
            rc = (int)r;
        }
    }
    return rc;
}

/* A u32 length field of the response, appended to resp; its value in *v. */
static int recv_u32(int fd, struct buf *resp, uint32_t *v, int64_t deadline)
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

static int recv_section(int fd, struct response *r, size_t *at, size_t *len, int64_t deadline)
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
static int recv_response(int fd, struct response *r, int64_t deadline, struct failure *f)
{
    int rc = recv_exactly(fd, &r->raw, MAGIC_LEN, deadline);
    char within[64];

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
    within_timeout(within, sizeof(within));
    if (rc == 1)
        rt_snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon's answer "
                    "was cut short (%zu bytes)", r->raw.len);
    else if (rc == -ETIMEDOUT)
        rt_snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon did not "
                    "answer %s", within);
    else if (rc < 0)
        rt_snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon's answer "
                    "could not be read: %s", rc == -EPROTO ? "not the protocol's" : rt_strerror(-rc));
    return rc ? -1 : 0;
}

/* One request to the daemon; *r holds its answer when ANSWERED. */
static enum outcome ask_daemon(const struct buf *in, struct response *r, struct failure *f)
{
    int64_t deadline = rt_now_us() + timeout_us();
    const char *path = socket_path();
    struct buf req = {0};
    char within[64];
    int fd, rc;

    within_timeout(within, sizeof(within));
    rt_snprintf(f->details, sizeof(f->details), "socket %s", path);
    rc = request_head(&req, in->len);
    if (rc < 0) {
        rt_snprintf(f->msg, sizeof(f->msg), "try again later: the request is over the protocol's "
                    "limits: %s", rc == -E2BIG ? "the CNI_*, PYNETLINK_* and PATH variables are over "
                    SHIM_MAX_ENV_TEXT " bytes" : rt_strerror(-rc));
        buf_free(&req);
        return FAILED;
    }
    fd = connect_daemon(path, deadline);
    if (fd == -EAGAIN || fd == -EINPROGRESS || fd == -ETIMEDOUT) {
        rt_snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon accepts no "
                    "connection %s", within);
        buf_free(&req);
        return FAILED;
    }
    if (fd < 0) {
        buf_free(&req);
        return FALLBACK;
    }
    rc = write_all(fd, req.data, req.len, deadline);
    buf_free(&req);
    if (rc == 0)
        rc = write_all(fd, in->data, in->len, deadline);
    if (rc == 0)
        sys_shutdown(fd, SHUT_WR);
    /* A daemon gone mid-request (-EPIPE) may still have answered: read what it sent. */
    if (rc == -ETIMEDOUT)
        rt_snprintf(f->msg, sizeof(f->msg), "try again later: the pynetlink CNI daemon did not "
                    "take the request %s", within);
    else
        rc = recv_response(fd, r, deadline, f);
    sys_close(fd);
    return rc == 1 ? FALLBACK : rc < 0 ? FAILED : ANSWERED;
}

static int proxy(char **argv, const struct buf *in)
{
    struct response r = {.status = 0};
    struct failure f = {{0}, {0}};
    enum outcome o = ask_daemon(in, &r, &f);
    int64_t deadline = after_seconds(60);

    if (o == ANSWERED) {
        write_all(1, r.raw.data + r.out_at, r.out_len, deadline);
        write_all(2, r.raw.data + r.err_at, r.err_len, deadline);
    }
    buf_free(&r.raw);
    if (o == FALLBACK)
        return exec_plugin(argv, in);
    return o == FAILED ? fail(in, &f) : (int)r.status;
}

/* fds 0, 1 and 2 open (on /dev/null if the runtime closed one), so that no
 * socket or file of ours takes their place. */
static void keep_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (sys_fcntl(fd, F_GETFD, 0) == -EBADF) {
            int null = sys_open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (null >= 0 && null != fd) {
                sys_dup2(null, fd);
                sys_close(null);
            }
        }
}

int main(int argc, char **argv)
{
    const char *command = rt_getenv("CNI_COMMAND");
    int is_version = command && strcmp(command, "VERSION") == 0;
    struct buf in = {0};
    int rc;

    sys_sigpipe(1);
    keep_std_fds();
    if (argc > 1 || !argv[0])           /* the installer's arguments: Python's job */
        return exec_plugin(argv[0] ? argv : (char *[]){"pynetlink-cni", NULL}, NULL);
    rc = is_version && sys_isatty(0) ? 0 : read_stdin(&in, SHIM_MAX_STDIN);
    if (rc < 0) {
        struct failure f = {{0}, {0}};
        rt_snprintf(f.msg, sizeof(f.msg), "try again later: stdin could not be read: %s", rt_strerror(-rc));
        return fail(&in, &f);
    }
    if (in.len > SHIM_MAX_STDIN)
        rc = answer(shim_oversized_answer, 1);
    else
        rc = is_version ? version(argv, &in) : proxy(argv, &in);
    buf_free(&in);
    return rc;
}
