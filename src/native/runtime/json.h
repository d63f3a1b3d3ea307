/*
 * A small strict JSON reader and writer for config.json and state.json.
 *
 * It accepts a subset of what Python's json.loads accepts, with the same
 * meaning, and refuses the rest (the caller then hands the command to the
 * Python runtime, which gives the error or handles the document): no NaN or
 * Infinity, no floats at all, no duplicate keys, no "\u0000" or lone
 * surrogates in strings, strict UTF-8, at most JSON_MAX_DEPTH levels.
 * Output is what the Python runtime writes: compact for state.json
 * (xcontainers._json.dumps), indented by two for `state`
 * (json.dumps(indent=2)); both ASCII with \u escapes, keys in the order read.
 */
#ifndef XCR_JSON_H
#define XCR_JSON_H

#include "xcr.h"

#define JSON_MAX_DEPTH 64
#define JSON_MAX_SIZE (16u << 20)

enum jtype { J_NULL, J_BOOL, J_INT, J_STR, J_ARR, J_OBJ };

struct jval {
    enum jtype t;
    bool b;            /* J_BOOL */
    char *s;           /* J_STR: the UTF-8 text; J_INT: the digits as written */
    size_t n;          /* J_STR: bytes; J_ARR, J_OBJ: members */
    struct jval **v;   /* J_ARR: items; J_OBJ: values */
    char **k;          /* J_OBJ: keys */
};

/* The document in text[0..len), or NULL with xcr_error set. */
struct jval *json_parse(const char *text, size_t len);

/* obj[key], or NULL when obj is not an object or has no such key. */
struct jval *json_get(const struct jval *obj, const char *key);
/* obj[key] unless it is absent or null (Python's `obj.get(key) is None`). */
struct jval *json_opt(const struct jval *obj, const char *key);
/* Set obj[key] (replace in place, or append). */
void json_set(struct jval *obj, const char *key, struct jval *v);

struct jval *json_new(enum jtype t);
struct jval *json_str(const char *s);
struct jval *json_int_new(long long v);

/* J_INT within [lo, hi]. */
bool json_int_in(const struct jval *v, long long lo, long long hi, long long *out);
/* J_INT within [0, 2^64-1]. */
bool json_u64(const struct jval *v, unsigned long long *out);
/* J_STR / J_ARR of J_STR. */
bool json_is_str(const struct jval *v);
bool json_is_str_array(const struct jval *v);

void json_escape(struct sbuf *b, const char *s, size_t n);
/* Strict UTF-8 (what Python's decoder takes). */
bool utf8_valid(const char *s, size_t n);
void json_dump(struct sbuf *b, const struct jval *v);
void json_dump_pretty(struct sbuf *b, const struct jval *v, int level);

#endif
