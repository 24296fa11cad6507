/* The shim's runtime without a C library (x86-64 Linux): rt.h's system
 * calls as raw `syscall` instructions, its own _start, memory from mmap,
 * and the memory and string functions the compiler and the shim call.
 *
 * Built with -nostdlib -static -fno-stack-protector (no TLS holds a
 * canary) and -fno-tree-loop-distribute-patterns (memset must not become a
 * call to itself).  The process is single-threaded and installs no signal
 * handler; SIGPIPE is only ever ignored or set back to its default, which
 * needs no sa_restorer. */
#if !defined(__x86_64__) || !defined(__linux__)
#error "rt_nolibc.c is for x86-64 Linux: build the shim with rt_libc.c"
#endif

#include <asm/unistd.h>
#include <fcntl.h>
#include <linux/mman.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#include "rt.h"

int main(int argc, char **argv);

static char **environment;

/* -- entry ----------------------------------------------------------------------------------------- */

/* The kernel starts us with argc, argv[], NULL, envp[], NULL on the stack
 * and %rsp 16-byte aligned; the call pushes the return address the ABI
 * expects below an aligned stack. */
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call rt_start\n"
        "    hlt\n");

__attribute__((used, noreturn)) void rt_start(long *stack)
{
    int argc = (int)stack[0];
    char **argv = (char **)(stack + 1);

    environment = argv + argc + 1;
    sys_exit(main(argc, argv));
}

char **rt_environ(void)
{
    return environment;
}

/* -- system calls -------------------------------------------------------------------------------- */

static long syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;

    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#define SC(nr, a, b, c, d, e, f) syscall6(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

ssize_t sys_read(int fd, void *buf, size_t n) { return SC(__NR_read, fd, buf, n, 0, 0, 0); }
ssize_t sys_write(int fd, const void *buf, size_t n) { return SC(__NR_write, fd, buf, n, 0, 0, 0); }
ssize_t sys_recv(int fd, void *buf, size_t n) { return SC(__NR_recvfrom, fd, buf, n, 0, 0, 0); }
int sys_close(int fd) { return (int)SC(__NR_close, fd, 0, 0, 0, 0, 0); }
int sys_open(const char *path, int flags) { return (int)SC(__NR_openat, AT_FDCWD, path, flags, 0, 0, 0); }
/* dup2(): dup3 refuses fd == to, dup2 returns it (if fd is open). */
int sys_dup2(int fd, int to)
{
    if (fd == to) {
        long r = SC(__NR_fcntl, fd, F_GETFD, 0, 0, 0, 0);
        return r < 0 ? (int)r : to;
    }
    return (int)SC(__NR_dup3, fd, to, 0, 0, 0, 0);
}
int sys_pipe(int fds[2]) { return (int)SC(__NR_pipe2, fds, 0, 0, 0, 0, 0); }
int sys_fcntl(int fd, int cmd, long arg) { return (int)SC(__NR_fcntl, fd, cmd, arg, 0, 0, 0); }
off_t sys_lseek(int fd, off_t offset, int whence) { return SC(__NR_lseek, fd, offset, whence, 0, 0, 0); }
int sys_memfd(const char *name) { return (int)SC(__NR_memfd_create, name, 0, 0, 0, 0, 0); }
int sys_socket(int domain, int type, int protocol) { return (int)SC(__NR_socket, domain, type, protocol, 0, 0, 0); }
int sys_connect(int fd, const void *addr, unsigned len) { return (int)SC(__NR_connect, fd, addr, len, 0, 0, 0); }
int sys_shutdown(int fd, int how) { return (int)SC(__NR_shutdown, fd, how, 0, 0, 0, 0); }

ssize_t sys_readlink(const char *path, char *out, size_t cap)
{
    return SC(__NR_readlinkat, AT_FDCWD, path, out, cap, 0, 0);
}

int sys_setsockopt(int fd, int level, int name, const void *value, unsigned len)
{
    return (int)SC(__NR_setsockopt, fd, level, name, value, len, 0);
}

int sys_poll(struct pollfd *fds, unsigned n, int timeout_ms)
{
    struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000};

    return (int)SC(__NR_ppoll, fds, n, timeout_ms < 0 ? NULL : &ts, 0, 0, 0);
}

/* fork(): a clone sharing nothing, SIGCHLD to the parent at its end. */
pid_t sys_fork(void)
{
    return (pid_t)SC(__NR_clone, SIGCHLD, 0, 0, 0, 0, 0);
}

int sys_execv(const char *path, char *const argv[])
{
    return (int)SC(__NR_execve, path, argv, environment, 0, 0, 0);
}

/* The kernel's struct sigaction (not the C library's). */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

int sys_sigpipe(int ignore)
{
    struct kernel_sigaction act = {.handler = ignore ? SIG_IGN : SIG_DFL};

    return (int)SC(__NR_rt_sigaction, SIGPIPE, &act, NULL, sizeof(act.mask), 0, 0);
}

int sys_isatty(int fd)
{
    unsigned char termios[64];          /* the kernel's struct termios: 36 bytes */

    return SC(__NR_ioctl, fd, TCGETS, termios, 0, 0, 0) == 0;
}

void sys_exit(int status)
{
    for (;;)
        SC(__NR_exit_group, status, 0, 0, 0, 0, 0);
}

int64_t rt_now_us(void)
{
    struct timespec ts = {0, 0};

    SC(__NR_clock_gettime, CLOCK_MONOTONIC, &ts, 0, 0, 0, 0);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* -- memory: anonymous mappings ------------------------------------------------------------------- */

void *rt_resize(void *p, size_t old, size_t size)
{
    long r;

    if (!p)
        r = SC(__NR_mmap, NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    else
        r = SC(__NR_mremap, p, old, size, MREMAP_MAYMOVE, 0, 0);
    return r < 0 && r > -4096 ? NULL : (void *)r;
}

void rt_release(void *p, size_t size)
{
    if (p)
        SC(__NR_munmap, p, size, 0, 0, 0, 0);
}

/* -- what the compiler and the shim call ---------------------------------------------------------- */

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if (d < s)
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    else
        while (n--)
            d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;

    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t strlen(const char *s)
{
    const char *e = s;

    while (*e)
        e++;
    return (size_t)(e - s);
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return NULL;
    }
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++)
        if (*a != *b || !*a)
            return (unsigned char)*a - (unsigned char)*b;
    return 0;
}

int strcmp(const char *a, const char *b)
{
    for (; *a == *b && *a; a++, b++)
        ;
    return (unsigned char)*a - (unsigned char)*b;
}
