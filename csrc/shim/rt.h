/* The shim's runtime: the few system calls, memory and text functions the
 * shim uses, in two implementations with one interface.
 *
 * - rt_nolibc.c (x86-64): no C library at all.  Its own _start, raw system
 *   calls, memory from mmap.  A statically linked glibc spends some 0.5 ms
 *   of every start-up detecting the CPU (dozens of CPUID instructions, each
 *   a trap to the hypervisor on a virtual machine) before main() runs:
 *   twenty times the shim's own work, paid by every CNI call.
 * - rt_libc.c (any other architecture, or PYNETLINK_SHIM_RUNTIME=libc at
 *   build time): the same functions over the C library.
 *
 * rt.c holds what both share (formatting, error texts, the environment).
 * System calls return their result (>= 0) or -errno, as the kernel does;
 * nothing sets errno.  The C library's headers are used for types and
 * constants only: the nolibc build links no library, so any call into one
 * fails the link. */
#ifndef PN_SHIM_RT_H
#define PN_SHIM_RT_H

#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* -- system calls (rt_nolibc.c / rt_libc.c): >= 0, or -errno -------------------------------- */

ssize_t sys_read(int fd, void *buf, size_t n);
ssize_t sys_write(int fd, const void *buf, size_t n);
ssize_t sys_recv(int fd, void *buf, size_t n);     /* flags 0 */
int sys_close(int fd);
int sys_open(const char *path, int flags);
int sys_dup2(int fd, int to);
int sys_pipe(int fds[2]);
int sys_fcntl(int fd, int cmd, long arg);
off_t sys_lseek(int fd, off_t offset, int whence);
int sys_memfd(const char *name);
ssize_t sys_readlink(const char *path, char *out, size_t cap);    /* not terminated */
int sys_socket(int domain, int type, int protocol);
int sys_connect(int fd, const void *addr, unsigned len);
int sys_setsockopt(int fd, int level, int name, const void *value, unsigned len);
int sys_shutdown(int fd, int how);
int sys_poll(struct pollfd *fds, unsigned n, int timeout_ms);
pid_t sys_fork(void);
int sys_execv(const char *path, char *const argv[]);      /* with rt_environ() */
int sys_sigpipe(int ignore);            /* SIGPIPE ignored (1) or to its default (0) */
int sys_isatty(int fd);                 /* 1 for a terminal, 0 otherwise */
__attribute__((noreturn)) void sys_exit(int status);
int64_t rt_now_us(void);                /* CLOCK_MONOTONIC, microseconds */

/* -- memory (rt_nolibc.c / rt_libc.c) --------------------------------------------------------- */

/* A block of `size` bytes holding the first min(old, size) bytes of p (NULL:
 * a new block, old 0); NULL if there is no memory (p is then kept). */
void *rt_resize(void *p, size_t old, size_t size);
void rt_release(void *p, size_t size);

/* The process's environment, NULL-terminated. */
char **rt_environ(void);

/* -- rt.c -------------------------------------------------------------------------------------- */

const char *rt_getenv(const char *name);

/* snprintf for the conversions the shim uses: %s %c %d %u %zu %x, a width
 * (0-padded) for %u and %x (%04x), and %%.  Always terminated (cap > 0);
 * returns the length written. */
size_t rt_snprintf(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t rt_vsnprintf(char *out, size_t cap, const char *fmt, va_list ap);

/* The C library's text for an errno value the shim can meet ("Unknown error N" else). */
const char *rt_strerror(int err);

/* Seconds written as strtod reads a decimal number ("0.5", " +2", "1e-1", ".25")
 * in whole microseconds (a positive value is at least 1); -1 for anything else,
 * or over 1e7 s. */
int64_t rt_parse_seconds(const char *text);

/* Microseconds as seconds: "300", "0.5", "0.000001". */
void rt_seconds_text(char *out, size_t cap, int64_t us);

#endif
