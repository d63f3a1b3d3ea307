/* A small strict JSON reader and writer (see json.h). */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const unsigned char *p, *end;
    int depth;
};

static int perr(struct parser *ps, const char *what)
{
    (void)ps;
    return xcr_fail("JSON: %s", what);
}

static void ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

struct jval *json_new(enum jtype t)
{
    struct jval *v = xmalloc(sizeof *v);
    memset(v, 0, sizeof *v);
    v->t = t;
    return v;
}

struct jval *json_str(const char *s)
{
    struct jval *v = json_new(J_STR);
    v->s = xstrdup(s);
    v->n = strlen(s);
    return v;
}

struct jval *json_int_new(long long x)
{
    struct jval *v = json_new(J_INT);
    v->s = xasprintf("%lld", x);
    return v;
}

/* One UTF-8 sequence at p (strict: no overlongs, surrogates or > U+10FFFF);
 * its length, or 0. */
static int utf8_len(const unsigned char *p, const unsigned char *end, unsigned *cp)
{
    unsigned c = p[0];
    int n;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (end - p < n)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned cp;
        int k = utf8_len(p, end, &cp);
        if (k == 0)
            return false;
        p += k;
    }
    return true;
}

static void put_utf8(struct sbuf *b, unsigned c)
{
    char o[4];
    if (c < 0x80) {
        o[0] = c;
        sb_add(b, o, 1);
    } else if (c < 0x800) {
        o[0] = 0xc0 | (c >> 6);
        o[1] = 0x80 | (c & 0x3f);
        sb_add(b, o, 2);
    } else if (c < 0x10000) {
        o[0] = 0xe0 | (c >> 12);
        o[1] = 0x80 | ((c >> 6) & 0x3f);
        o[2] = 0x80 | (c & 0x3f);
        sb_add(b, o, 3);
    } else {
        o[0] = 0xf0 | (c >> 18);
        o[1] = 0x80 | ((c >> 12) & 0x3f);
        o[2] = 0x80 | ((c >> 6) & 0x3f);
        o[3] = 0x80 | (c & 0x3f);
        sb_add(b, o, 4);
    }
}

static int hex4(struct parser *ps, unsigned *out)
{
    if (ps->end - ps->p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    ps->p += 4;
    *out = v;
    return 0;
}

static int parse_string(struct parser *ps, char **out, size_t *outlen)
{
    /* at the opening quote */
    ps->p++;
    struct sbuf b = {0};
    sb_add(&b, "", 0);
    for (;;) {
        if (ps->p >= ps->end)
            return free(b.s), perr(ps, "unterminated string");
        unsigned c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20)
            return free(b.s), perr(ps, "control character in a string");
        if (c == '\\') {
            ps->p++;
            if (ps->p >= ps->end)
                return free(b.s), perr(ps, "unterminated string");
            c = *ps->p++;
            switch (c) {
            case '"': sb_putc(&b, '"'); break;
            case '\\': sb_putc(&b, '\\'); break;
            case '/': sb_putc(&b, '/'); break;
            case 'b': sb_putc(&b, '\b'); break;
            case 'f': sb_putc(&b, '\f'); break;
            case 'n': sb_putc(&b, '\n'); break;
            case 'r': sb_putc(&b, '\r'); break;
            case 't': sb_putc(&b, '\t'); break;
            case 'u': {
                unsigned u;
                if (hex4(ps, &u) < 0)
                    return free(b.s), perr(ps, "bad \\u escape");
                if (u >= 0xd800 && u <= 0xdbff) {
                    unsigned lo;
                    if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
                        return free(b.s), perr(ps, "lone surrogate");
                    ps->p += 2;
                    if (hex4(ps, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                        return free(b.s), perr(ps, "lone surrogate");
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                } else if (u >= 0xdc00 && u <= 0xdfff) {
                    return free(b.s), perr(ps, "lone surrogate");
                }
                if (u == 0)
                    return free(b.s), perr(ps, "NUL in a string");
                put_utf8(&b, u);
                break;
            }
            default:
                return free(b.s), perr(ps, "bad escape");
            }
            continue;
        }
        unsigned cp;
        int n = utf8_len(ps->p, ps->end, &cp);
        if (n == 0)
            return free(b.s), perr(ps, "invalid UTF-8");
        sb_add(&b, (const char *)ps->p, n);
        ps->p += n;
    }
    *out = b.s;
    *outlen = b.len;
    return 0;
}

static struct jval *parse_value(struct parser *ps);

static struct jval *parse_number(struct parser *ps)
{
    const unsigned char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end)
        return perr(ps, "bad number"), NULL;
    if (*ps->p == '0') {
        ps->p++;
    } else if (*ps->p >= '1' && *ps->p <= '9') {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    } else {
        return perr(ps, "bad number"), NULL;
    }
    if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
        return perr(ps, "a float"), NULL;
    size_t n = ps->p - s;
    if (n > 40)
        return perr(ps, "a long number"), NULL;
    struct jval *v = json_new(J_INT);
    if (n == 2 && s[0] == '-' && s[1] == '0') {
        v->s = xstrdup("0");
    } else {
        v->s = xmalloc(n + 1);
        memcpy(v->s, s, n);
        v->s[n] = 0;
    }
    return v;
}

static bool lit(struct parser *ps, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0) {
        ps->p += n;
        return true;
    }
    return false;
}

static struct jval *parse_value(struct parser *ps)
{
    ws(ps);
    if (ps->p >= ps->end)
        return perr(ps, "expecting a value"), NULL;
    unsigned c = *ps->p;
    if (c == '{' || c == '[') {
        if (++ps->depth > JSON_MAX_DEPTH)
            return perr(ps, "too deep"), NULL;
        bool obj = c == '{';
        struct jval *v = json_new(obj ? J_OBJ : J_ARR);
        size_t cap = 0;
        ps->p++;
        ws(ps);
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            ps->p++;
            ps->depth--;
            return v;
        }
        for (;;) {
            char *key = NULL;
            if (obj) {
                ws(ps);
                size_t kl;
                if (ps->p >= ps->end || *ps->p != '"')
                    return perr(ps, "expecting a key"), NULL;
                if (parse_string(ps, &key, &kl) < 0)
                    return NULL;
                for (size_t i = 0; i < v->n; i++)
                    if (strcmp(v->k[i], key) == 0)
                        return perr(ps, "a duplicate key"), NULL;
                ws(ps);
                if (ps->p >= ps->end || *ps->p != ':')
                    return perr(ps, "expecting ':'"), NULL;
                ps->p++;
            }
            struct jval *item = parse_value(ps);
            if (item == NULL)
                return NULL;
            if (v->n == cap) {
                cap = cap ? cap * 2 : 8;
                v->v = xrealloc(v->v, cap * sizeof *v->v);
                if (obj)
                    v->k = xrealloc(v->k, cap * sizeof *v->k);
            }
            if (obj)
                v->k[v->n] = key;
            v->v[v->n++] = item;
            ws(ps);
            if (ps->p >= ps->end)
                return perr(ps, "unterminated"), NULL;
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == (obj ? '}' : ']')) {
                ps->p++;
                break;
            }
            return perr(ps, "expecting ',' or the end"), NULL;
        }
        ps->depth--;
        return v;
    }
    if (c == '"') {
        struct jval *v = json_new(J_STR);
        if (parse_string(ps, &v->s, &v->n) < 0)
            return NULL;
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(ps);
    if (lit(ps, "true")) {
        struct jval *v = json_new(J_BOOL);
        v->b = true;
        return v;
    }
    if (lit(ps, "false"))
        return json_new(J_BOOL);
    if (lit(ps, "null"))
        return json_new(J_NULL);
    return perr(ps, "expecting a value"), NULL;
}

struct jval *json_parse(const char *text, size_t len)
{
    if (len > JSON_MAX_SIZE)
        return xcr_fail("JSON: too large"), NULL;
    struct parser ps = {(const unsigned char *)text, (const unsigned char *)text + len, 0};
    struct jval *v = parse_value(&ps);
    if (v == NULL)
        return NULL;
    ws(&ps);
    if (ps.p != ps.end)
        return xcr_fail("JSON: extra data"), NULL;
    return v;
}

struct jval *json_get(const struct jval *obj, const char *key)
{
    if (obj == NULL || obj->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->k[i], key) == 0)
            return obj->v[i];
    return NULL;
}

struct jval *json_opt(const struct jval *obj, const char *key)
{
    struct jval *v = json_get(obj, key);
    return (v && v->t != J_NULL) ? v : NULL;
}

void json_set(struct jval *obj, const char *key, struct jval *v)
{
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->k[i], key) == 0) {
            obj->v[i] = v;
            return;
        }
    obj->v = xrealloc(obj->v, (obj->n + 1) * sizeof *obj->v);
    obj->k = xrealloc(obj->k, (obj->n + 1) * sizeof *obj->k);
    obj->k[obj->n] = xstrdup(key);
    obj->v[obj->n++] = v;
}

bool json_int_in(const struct jval *v, long long lo, long long hi, long long *out)
{
    if (v == NULL || v->t != J_INT)
        return false;
    errno = 0;
    char *end;
    long long x = strtoll(v->s, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return false;
    if (out)
        *out = x;
    return true;
}

bool json_u64(const struct jval *v, unsigned long long *out)
{
    if (v == NULL || v->t != J_INT || v->s[0] == '-')
        return false;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v->s, &end, 10);
    if (errno || *end)
        return false;
    *out = x;
    return true;
}

bool json_is_str(const struct jval *v)
{
    return v && v->t == J_STR;
}

bool json_is_str_array(const struct jval *v)
{
    if (v == NULL || v->t != J_ARR)
        return false;
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i]->t != J_STR)
            return false;
    return true;
}

/* --- writing --------------------------------------------------------------- */

void json_escape(struct sbuf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    sb_putc(b, '"');
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            const unsigned char *q = p;
            while (q < end && *q >= 0x20 && *q < 0x7f && *q != '"' && *q != '\\')
                q++;
            sb_add(b, (const char *)p, q - p);
            p = q;
            continue;
        }
        switch (c) {
        case '"': sb_puts(b, "\\\""); p++; continue;
        case '\\': sb_puts(b, "\\\\"); p++; continue;
        case '\n': sb_puts(b, "\\n"); p++; continue;
        case '\r': sb_puts(b, "\\r"); p++; continue;
        case '\t': sb_puts(b, "\\t"); p++; continue;
        case '\b': sb_puts(b, "\\b"); p++; continue;
        case '\f': sb_puts(b, "\\f"); p++; continue;
        }
        unsigned cp;
        int len = utf8_len(p, end, &cp);
        if (len == 0) { /* not produced by our parser; write the byte's code point */
            cp = c;
            len = 1;
        }
        p += len;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            sb_printf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else {
            sb_printf(b, "\\u%04x", cp);
        }
    }
    sb_putc(b, '"');
}

void json_dump(struct sbuf *b, const struct jval *v)
{
    switch (v->t) {
    case J_NULL: sb_puts(b, "null"); return;
    case J_BOOL: sb_puts(b, v->b ? "true" : "false"); return;
    case J_INT: sb_puts(b, v->s); return;
    case J_STR: json_escape(b, v->s, v->n); return;
    case J_ARR:
        sb_putc(b, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                sb_putc(b, ',');
            json_dump(b, v->v[i]);
        }
        sb_putc(b, ']');
        return;
    case J_OBJ:
        sb_putc(b, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                sb_putc(b, ',');
            json_escape(b, v->k[i], strlen(v->k[i]));
            sb_putc(b, ':');
            json_dump(b, v->v[i]);
        }
        sb_putc(b, '}');
        return;
    }
}

static void indent(struct sbuf *b, int level)
{
    sb_putc(b, '\n');
    for (int i = 0; i < 2 * level; i++)
        sb_putc(b, ' ');
}

void json_dump_pretty(struct sbuf *b, const struct jval *v, int level)
{
    if ((v->t != J_ARR && v->t != J_OBJ) || v->n == 0) {
        if (v->t == J_ARR && v->n == 0)
            sb_puts(b, "[]");
        else if (v->t == J_OBJ && v->n == 0)
            sb_puts(b, "{}");
        else
            json_dump(b, v);
        return;
    }
    bool obj = v->t == J_OBJ;
    sb_putc(b, obj ? '{' : '[');
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            sb_putc(b, ',');
        indent(b, level + 1);
        if (obj) {
            json_escape(b, v->k[i], strlen(v->k[i]));
            sb_puts(b, ": ");
        }
        json_dump_pretty(b, v->v[i], level + 1);
    }
    indent(b, level);
    sb_putc(b, obj ? '}' : ']');
}
