/* The shim's runtime, the part both implementations share (rt.h): the
 * environment, formatting, error texts, seconds. */
#include <errno.h>
#include <string.h>

#include "rt.h"

const char *rt_getenv(const char *name)
{
    size_t n = strlen(name);

    for (char **e = rt_environ(); e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* -- formatting --------------------------------------------------------------------------------- */

struct out {
    char *p;
    size_t cap, len;                    /* len: written so far (at most cap - 1) */
};

static void put_char(struct out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->p[o->len++] = c;
}

static void put_text(struct out *o, const char *s)
{
    while (*s)
        put_char(o, *s++);
}

/* v in `base`, at least `width` digits (0-padded). */
static void put_number(struct out *o, uint64_t v, unsigned base, int width)
{
    char digits[24];
    int n = 0;

    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (width-- > n)
        put_char(o, '0');
    while (n)
        put_char(o, digits[--n]);
}

static void put_signed(struct out *o, int64_t v)
{
    if (v < 0)
        put_char(o, '-');
    put_number(o, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 10, 0);
}

size_t rt_vsnprintf(char *out, size_t cap, const char *fmt, va_list ap)
{
    struct out o = {out, cap, 0};

    for (; *fmt; fmt++) {
        int width = 0;
        if (*fmt != '%') {
            put_char(&o, *fmt);
            continue;
        }
        fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        switch (*fmt) {
        case 's': {
            const char *text = va_arg(ap, const char *);
            put_text(&o, text ? text : "(null)");
            break;
        }
        case 'c': put_char(&o, (char)va_arg(ap, int)); break;
        case 'd': put_signed(&o, va_arg(ap, int)); break;
        case 'u': put_number(&o, va_arg(ap, unsigned), 10, width); break;
        case 'x': put_number(&o, va_arg(ap, unsigned), 16, width); break;
        case 'z':                       /* %zu */
            if (fmt[1] != 'u')
                goto end;
            fmt++;
            put_number(&o, va_arg(ap, size_t), 10, 0);
            break;
        case '%': put_char(&o, '%'); break;
        default:                        /* not ours (or the format's end): stop there */
            goto end;
        }
    }
end:
    if (cap)
        out[o.len] = 0;
    return o.len;
}

size_t rt_snprintf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    n = rt_vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* -- error texts -------------------------------------------------------------------------------- */

/* The errors the shim can meet, with glibc's texts. */
static const struct {
    int err;
    const char *text;
} texts[] = {
    {EPERM, "Operation not permitted"},
    {ENOENT, "No such file or directory"},
    {EINTR, "Interrupted system call"},
    {EIO, "Input/output error"},
    {E2BIG, "Argument list too long"},
    {ENOEXEC, "Exec format error"},
    {EBADF, "Bad file descriptor"},
    {EAGAIN, "Resource temporarily unavailable"},
    {ENOMEM, "Cannot allocate memory"},
    {EACCES, "Permission denied"},
    {EFAULT, "Bad address"},
    {ENOTDIR, "Not a directory"},
    {EISDIR, "Is a directory"},
    {EINVAL, "Invalid argument"},
    {ENFILE, "Too many open files in system"},
    {EMFILE, "Too many open files"},
    {ETXTBSY, "Text file busy"},
    {ENOSPC, "No space left on device"},
    {EPIPE, "Broken pipe"},
    {ENAMETOOLONG, "File name too long"},
    {ENOSYS, "Function not implemented"},
    {ELOOP, "Too many levels of symbolic links"},
    {EPROTO, "Protocol error"},
    {ENOTSOCK, "Socket operation on non-socket"},
    {EMSGSIZE, "Message too long"},
    {ECONNRESET, "Connection reset by peer"},
    {ENOBUFS, "No buffer space available"},
    {ETIMEDOUT, "Connection timed out"},
    {ECONNREFUSED, "Connection refused"},
    {ENXIO, "No such device or address"},
    {EBUSY, "Device or resource busy"},
    {ESPIPE, "Illegal seek"},
    {EROFS, "Read-only file system"},
    {EOVERFLOW, "Value too large for defined data type"},
    {ELIBBAD, "Accessing a corrupted shared library"},
    {EOPNOTSUPP, "Operation not supported"},
    {ENOTCONN, "Transport endpoint is not connected"},
    {EADDRNOTAVAIL, "Cannot assign requested address"},
    {ENODEV, "No such device"},
};

const char *rt_strerror(int err)
{
    static char unknown[32];            /* a one-threaded process: one text at a time */

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].err == err)
            return texts[i].text;
    rt_snprintf(unknown, sizeof(unknown), "Unknown error %d", err);
    return unknown;
}

/* -- seconds ------------------------------------------------------------------------------------ */

#define MAX_SECONDS 10000000
#define US_DIGITS 6
#define MAX_MANTISSA 100000000000000000LL    /* 1e17: digits beyond it only scale */

static int is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* mantissa * 10^exp10 seconds in whole microseconds; -1 over MAX_SECONDS; a
 * positive value under a microsecond is one. */
static int64_t scaled_us(int64_t mantissa, int exp10)
{
    int64_t us = mantissa;

    for (exp10 += 6; exp10 > 0; exp10--) {
        if (us > MAX_SECONDS * 1000000LL)
            return -1;
        us *= 10;
    }
    for (; exp10 < 0 && us; exp10++)
        us /= 10;
    if (us > MAX_SECONDS * 1000000LL)
        return -1;
    return us == 0 && mantissa ? 1 : us;
}

/* strtod's decimal forms: [space][+]digits[.digits][(e|E)[+|-]digits], or .digits. */
int64_t rt_parse_seconds(const char *text)
{
    const char *s = text;
    int64_t mantissa = 0;
    int exp10 = 0, digits = 0, e = 0, esign = 1, edigits = 0;

    while (is_space(*s))
        s++;
    if (*s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (mantissa < MAX_MANTISSA)
            mantissa = mantissa * 10 + (*s - '0');
        else
            exp10++;
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (mantissa < MAX_MANTISSA) {
                mantissa = mantissa * 10 + (*s - '0');
                exp10--;
            }
    if (!digits)
        return -1;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            esign = *s++ == '-' ? -1 : 1;
        for (; *s >= '0' && *s <= '9'; s++, edigits++)
            if (e < 10000)
                e = e * 10 + (*s - '0');
        if (!edigits)
            return -1;
    }
    if (*s)
        return -1;
    return scaled_us(mantissa, exp10 + esign * e);
}

void rt_seconds_text(char *out, size_t cap, int64_t us)
{
    char fraction[US_DIGITS + 2];
    unsigned rest = (unsigned)(us % 1000000);
    int n = US_DIGITS;

    rt_snprintf(fraction, sizeof(fraction), ".%06u", rest);
    while (n > 0 && fraction[n] == '0')
        fraction[n--] = 0;
    rt_snprintf(out, cap, "%zu%s", (size_t)(us / 1000000), rest ? fraction : "");
}
