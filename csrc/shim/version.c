/* The cniVersion a CNI configuration names, decided as pynetlink's Python
 * plugin decides it: json.loads(raw).get("cniVersion") (spec.asked_version).
 *
 * json.loads(bytes) picks the encoding from the first bytes (a UTF-8 BOM is
 * skipped; UTF-16/32 are left to Python here), decodes the whole input as
 * UTF-8 with surrogatepass (encoded surrogates accepted), then parses one
 * JSON value surrounded by " \t\n\r" only: strings without raw control
 * characters and with the escapes \" \\ \/ \b \f \n \r \t \uXXXX; numbers
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?; true, false, null, NaN,
 * Infinity, -Infinity; objects whose duplicate keys keep their last value.
 * Any failure means "no version". */
#include <string.h>

#include "shim.h"

enum { SCAN_OK = 0, SCAN_INVALID = -1, SCAN_UNDECIDED = -2 };

struct scan {
    const unsigned char *p, *end;
    int depth;
    const char *const *versions;
    int n_versions;
    int version;                        /* the last top-level cniVersion's index, or NONE */
};

/* A decoded JSON string, kept only as far as an ASCII comparison needs. */
struct text {
    char buf[32];
    size_t len;
    int other;                          /* a non-ASCII character, or too long to be compared */
};

static void text_add(struct text *t, unsigned cp)
{
    if (cp >= 0x80 || t->len >= sizeof(t->buf))
        t->other = 1;
    else
        t->buf[t->len++] = (char)cp;
}

static int text_is(const struct text *t, const char *ascii)
{
    return !t->other && t->len == strlen(ascii) && memcmp(t->buf, ascii, t->len) == 0;
}

/* -- encoding ------------------------------------------------------------------------------ */

/* Python's json.detect_encoding(): 0 for UTF-8 (*skip: a BOM's length), -1 for another. */
static int utf8_input(const unsigned char *b, size_t len, size_t *skip)
{
    *skip = 0;
    if (len >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff)))
        return -1;
    if ((len >= 4 || len == 2) && (b[0] == 0 || b[1] == 0))
        return -1;
    if (len >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf)
        *skip = 3;
    return 0;
}

static int continuation(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* The length of the UTF-8 sequence at b (surrogates allowed), 0 if invalid. */
static size_t utf8_sequence(const unsigned char *b, size_t left)
{
    unsigned char c = b[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, lo = c == 0xe0 ? 0xa0 : 0x80;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (left < n || b[1] < lo || b[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (!continuation(b[i]))
            return 0;
    return n;
}

static int utf8_valid(const unsigned char *b, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_sequence(b + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

/* -- tokens -------------------------------------------------------------------------------- */

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int literal(struct scan *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return SCAN_INVALID;
    s->p += n;
    return SCAN_OK;
}

static int is_digit(const struct scan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static size_t digits(struct scan *s)
{
    const unsigned char *start = s->p;

    while (is_digit(s))
        s->p++;
    return (size_t)(s->p - start);
}

static int number(struct scan *s)
{
    size_t int_digits;
    int is_float = 0;

    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (!is_digit(s))
        return SCAN_INVALID;
    int_digits = *s->p == '0' ? (s->p++, 1u) : digits(s);
    if (s->end - s->p >= 2 && s->p[0] == '.' && s->p[1] >= '0' && s->p[1] <= '9') {
        s->p++;
        digits(s);
        is_float = 1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        const unsigned char *e = s->p++;
        if (s->p < s->end && (*s->p == '-' || *s->p == '+'))
            s->p++;
        if (digits(s))
            is_float = 1;
        else
            s->p = e;               /* not an exponent: what follows is an error */
    }
    return !is_float && int_digits > SHIM_MAX_INT_DIGITS ? SCAN_UNDECIDED : SCAN_OK;
}

static int hex4(const unsigned char *p, unsigned *value)
{
    *value = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        *value = *value << 4 | d;
    }
    return 0;
}

static int escape(struct scan *s, struct text *t)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit;
    unsigned cp;

    if (s->p >= s->end)
        return SCAN_INVALID;
    if (*s->p == 'u') {
        if (s->end - s->p < 5 || hex4(s->p + 1, &cp) < 0)
            return SCAN_INVALID;
        s->p += 5;
        text_add(t, cp);            /* a surrogate pair's halves are both non-ASCII */
        return SCAN_OK;
    }
    hit = *s->p ? strchr(from, *s->p) : NULL;
    if (!hit)
        return SCAN_INVALID;
    text_add(t, (unsigned char)to[hit - from]);
    s->p++;
    return SCAN_OK;
}

/* A string at s->p (its opening quote), decoded into t. */
static int string(struct scan *s, struct text *t)
{
    memset(t, 0, sizeof(*t));
    s->p++;
    while (s->p < s->end) {
        unsigned char c = *s->p++;
        if (c == '"')
            return SCAN_OK;
        if (c < 0x20)
            return SCAN_INVALID;
        if (c == '\\') {
            if (escape(s, t) != SCAN_OK)
                return SCAN_INVALID;
        } else {
            text_add(t, c);         /* any byte >= 0x80 makes it non-ASCII: enough */
        }
    }
    return SCAN_INVALID;
}

/* -- values -------------------------------------------------------------------------------- */

static int value(struct scan *s);

static int expect(struct scan *s, unsigned char c)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != c)
        return SCAN_INVALID;
    s->p++;
    return SCAN_OK;
}

/* The value of a top-level "cniVersion" key: which supported version, if any. */
static int version_value(struct scan *s)
{
    struct text t;
    int rc;

    s->version = SHIM_VERSION_NONE;
    if (*s->p != '"')
        return value(s);
    rc = string(s, &t);
    for (int i = 0; rc == SCAN_OK && i < s->n_versions; i++)
        if (text_is(&t, s->versions[i]))
            s->version = i;
    return rc;
}

static int member(struct scan *s)
{
    struct text key;
    int rc;

    if (expect(s, '"') != SCAN_OK)
        return SCAN_INVALID;
    s->p--;
    if ((rc = string(s, &key)) != SCAN_OK || (rc = expect(s, ':')) != SCAN_OK)
        return rc;
    skip_ws(s);
    if (s->p >= s->end)
        return SCAN_INVALID;
    if (s->depth == 1 && text_is(&key, "cniVersion"))
        return version_value(s);
    return value(s);
}

/* An object or an array at s->p; member() or value() for each item. */
static int container(struct scan *s, unsigned char close, int (*item)(struct scan *))
{
    int rc;

    if (++s->depth > SHIM_MAX_DEPTH)
        return SCAN_UNDECIDED;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return SCAN_OK;
    }
    for (;;) {
        skip_ws(s);
        if ((rc = item(s)) != SCAN_OK)
            return rc;
        skip_ws(s);
        if (s->p < s->end && *s->p == close)
            break;
        if (expect(s, ',') != SCAN_OK)
            return SCAN_INVALID;
    }
    s->p++;
    s->depth--;
    return SCAN_OK;
}

static int value(struct scan *s)
{
    struct text ignored;

    if (s->p >= s->end)
        return SCAN_INVALID;
    switch (*s->p) {
    case '{': return container(s, '}', member);
    case '[': return container(s, ']', value);
    case '"': return string(s, &ignored);
    case 't': return literal(s, "true");
    case 'f': return literal(s, "false");
    case 'n': return literal(s, "null");
    case 'N': return literal(s, "NaN");
    case 'I': return literal(s, "Infinity");
    case '-':
        if (s->end - s->p > 1 && s->p[1] == 'I')
            return literal(s, "-Infinity");
        return number(s);
    default: return number(s);
    }
}

int shim_config_version(const unsigned char *buf, size_t len, const char *const *versions,
                        int n_versions)
{
    struct scan s = {.versions = versions, .n_versions = n_versions, .version = SHIM_VERSION_NONE};
    size_t skip;
    int rc;

    if (utf8_input(buf, len, &skip) < 0)
        return SHIM_VERSION_UNDECIDED;
    if (!utf8_valid(buf + skip, len - skip))
        return SHIM_VERSION_NONE;
    s.p = buf + skip;
    s.end = buf + len;
    skip_ws(&s);
    rc = value(&s);
    if (rc != SCAN_OK)
        return rc == SCAN_UNDECIDED ? SHIM_VERSION_UNDECIDED : SHIM_VERSION_NONE;
    skip_ws(&s);
    return s.p == s.end ? s.version : SHIM_VERSION_NONE;
}
