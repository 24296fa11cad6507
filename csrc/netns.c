/*
 * netns.c - network namespaces, for the calling thread only: setns(2) and
 * unshare(2) act on one thread, so a process with other threads is never
 * switched as a whole.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/nsfs.h>

#include "pn_internal.h"

/* Whether fd is a network namespace (NS_GET_NSTYPE, Linux 4.11+): 0 if it
 * is; -EINVAL if it is something else — another kind of namespace, or no
 * namespace at all (a regular file answers the ioctl with ENOTTY); else
 * the ioctl's -errno (EBADF: fd is not open). */
int pn_netns_check(int netns_fd)
{
    int type = ioctl(netns_fd, NS_GET_NSTYPE);

    if (type < 0)
        return errno == ENOTTY ? -EINVAL : -errno;
    return type == CLONE_NEWNET ? 0 : -EINVAL;
}

/* Move the calling thread (only) into the network namespace behind fd. */
int pn_setns_net(int netns_fd)
{
    return setns(netns_fd, CLONE_NEWNET) ? -errno : 0;
}

/* The thread's own namespace: home_fd if the caller has it open (>= 0),
 * else /proc/thread-self/ns/net opened here.  Returns the fd or -errno. */
static int open_home(int home_fd)
{
    int fd;

    if (home_fd >= 0)
        return home_fd;
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Come back from pn_netns_enter() to home (from open_home()), closing it
 * unless it is the caller's home_fd; 0 or -ENOTRECOVERABLE (the thread is
 * stranded elsewhere). */
int pn_netns_leave(int home, int home_fd)
{
    int err = setns(home, CLONE_NEWNET) ? -ENOTRECOVERABLE : 0;

    if (home != home_fd)
        close(home);
    return err;
}

/*
 * Enter the namespace behind netns_fd for a moment: *home is set to the
 * thread's own (see open_home()) for pn_netns_leave().  Returns 0, or
 * -errno with the thread where it was and nothing left open.
 */
int pn_netns_enter(int netns_fd, int home_fd, int *home)
{
    int err;

    *home = open_home(home_fd);
    if (*home < 0)
        return *home;
    if (setns(netns_fd, CLONE_NEWNET)) {
        err = -errno;
        if (*home != home_fd)
            close(*home);
        return err;
    }
    return 0;
}

/*
 * Make a new, empty network namespace and return an fd that holds it; the
 * namespace lives while that fd (or anything inside it) does.  The calling
 * thread unshares into it and comes straight back.  -ENOTRECOVERABLE as in
 * pn_socket_open().
 */
int pn_netns_new(void)
{
    int home = open_home(-1), fd = -1, err = 0;

    if (home < 0)
        return home;
    if (unshare(CLONE_NEWNET)) {
        close(home);
        return -errno;
    }
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        err = -errno;
    if (pn_netns_leave(home, -1))
        err = -ENOTRECOVERABLE;
    if (err && fd >= 0)
        close(fd);
    return err ? err : fd;
}
