/* The shim's runtime over the C library (rt.h): for every architecture
 * rt_nolibc.c does not cover, or when PYNETLINK_SHIM_RUNTIME=libc at build
 * time.  Each call is the library's, its -1/errno turned into -errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

extern char **environ;

static long result(long r)
{
    return r < 0 ? -errno : r;
}

ssize_t sys_read(int fd, void *buf, size_t n) { return result(read(fd, buf, n)); }
ssize_t sys_write(int fd, const void *buf, size_t n) { return result(write(fd, buf, n)); }
ssize_t sys_recv(int fd, void *buf, size_t n) { return result(recv(fd, buf, n, 0)); }
int sys_close(int fd) { return (int)result(close(fd)); }
int sys_open(const char *path, int flags) { return (int)result(open(path, flags)); }
int sys_dup2(int fd, int to) { return (int)result(dup2(fd, to)); }
int sys_pipe(int fds[2]) { return (int)result(pipe(fds)); }
int sys_fcntl(int fd, int cmd, long arg) { return (int)result(fcntl(fd, cmd, arg)); }
off_t sys_lseek(int fd, off_t offset, int whence) { return result(lseek(fd, offset, whence)); }
int sys_memfd(const char *name) { return (int)result(syscall(SYS_memfd_create, name, 0)); }
ssize_t sys_readlink(const char *path, char *out, size_t cap) { return result(readlink(path, out, cap)); }
int sys_socket(int domain, int type, int protocol) { return (int)result(socket(domain, type, protocol)); }
int sys_connect(int fd, const void *addr, unsigned len) { return (int)result(connect(fd, addr, len)); }
int sys_shutdown(int fd, int how) { return (int)result(shutdown(fd, how)); }
int sys_poll(struct pollfd *fds, unsigned n, int timeout_ms) { return (int)result(poll(fds, n, timeout_ms)); }
pid_t sys_fork(void) { return (pid_t)result(fork()); }
int sys_execv(const char *path, char *const argv[]) { return (int)result(execv(path, argv)); }
int sys_isatty(int fd) { return isatty(fd); }
void sys_exit(int status) { _exit(status); }
char **rt_environ(void) { return environ; }

int sys_setsockopt(int fd, int level, int name, const void *value, unsigned len)
{
    return (int)result(setsockopt(fd, level, name, value, len));
}

int sys_sigpipe(int ignore)
{
    return signal(SIGPIPE, ignore ? SIG_IGN : SIG_DFL) == SIG_ERR ? -errno : 0;
}

int64_t rt_now_us(void)
{
    struct timespec ts = {0, 0};

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void *rt_resize(void *p, size_t old, size_t size)
{
    (void)old;
    return realloc(p, size ? size : 1);     /* realloc(p, 0) would free p */
}

void rt_release(void *p, size_t size)
{
    (void)size;
    free(p);
}
