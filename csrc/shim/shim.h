/* The pynetlink CNI shim: declarations shared by its two sources.
 *
 * cni_shim.c: the executable (VERSION answered here, every other command
 * forwarded to the daemon, or the Python plugin exec'd in its place);
 * version.c: the cniVersion a configuration names, decided exactly as
 * Python's json.loads(bytes) decides it. */
#ifndef PN_SHIM_H
#define PN_SHIM_H

#include <stddef.h>

/* shim_config_version(): what the configuration's cniVersion is.
 * >= 0: index into versions[] of the top-level "cniVersion" (its last
 *       occurrence, as a Python dict keeps it) when it is one of them;
 * SHIM_VERSION_NONE: no such version (not JSON, not an object, no key,
 *       another value): Python's json.loads would answer the same;
 * SHIM_VERSION_UNDECIDED: an input whose answer depends on the interpreter
 *       (UTF-16/32 text, nesting deeper than SHIM_MAX_DEPTH, an integer
 *       literal longer than SHIM_MAX_INT_DIGITS): ask Python. */
enum { SHIM_VERSION_NONE = -1, SHIM_VERSION_UNDECIDED = -2 };

#define SHIM_MAX_DEPTH 200              /* far below Python's recursion limit */
#define SHIM_MAX_INT_DIGITS 640         /* the lowest int_max_str_digits Python allows */

int shim_config_version(const unsigned char *buf, size_t len, const char *const *versions,
                        int n_versions);

#endif
