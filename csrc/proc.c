/* The calling process's relation to its parent (proc.c). */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>

#include "pn_internal.h"

int pn_die_with_parent(int signum)
{
    if (signum <= 0 || signum >= NSIG)
        return -EINVAL;
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)signum, 0UL, 0UL, 0UL) < 0)
        return -errno;
    return 0;
}
