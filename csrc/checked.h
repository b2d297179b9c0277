/*
 * Checked size arithmetic: every size, offset, window span and buffer length in csrc/ is
 * computed with these.  Each returns 0 and stores the result, or returns 1 (overflow) and
 * leaves *out unspecified.  Operands of the int64 forms may be negative; the size_t forms
 * are for byte counts handed to malloc.
 */
#ifndef WAGEUBN_CHECKED_H
#define WAGEUBN_CHECKED_H

#include <stddef.h>
#include <stdint.h>

static inline int wg_mul_i64(int64_t a, int64_t b, int64_t *out)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_mul_overflow(a, b, out);
#else
    if (a > 0 ? (b > 0 ? a > INT64_MAX / b : b < INT64_MIN / a)
              : (b > 0 ? a < INT64_MIN / b : (a != 0 && b < INT64_MAX / a)))
        return 1;
    *out = a * b;
    return 0;
#endif
}

static inline int wg_add_i64(int64_t a, int64_t b, int64_t *out)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_add_overflow(a, b, out);
#else
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
        return 1;
    *out = a + b;
    return 0;
#endif
}

static inline int wg_sub_i64(int64_t a, int64_t b, int64_t *out)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_sub_overflow(a, b, out);
#else
    if ((b < 0 && a > INT64_MAX + b) || (b > 0 && a < INT64_MIN + b))
        return 1;
    *out = a - b;
    return 0;
#endif
}

static inline int wg_mul_size(size_t a, size_t b, size_t *out)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_mul_overflow(a, b, out);
#else
    if (b != 0 && a > SIZE_MAX / b)
        return 1;
    *out = a * b;
    return 0;
#endif
}

static inline int wg_add_size(size_t a, size_t b, size_t *out)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_add_overflow(a, b, out);
#else
    if (a > SIZE_MAX - b)
        return 1;
    *out = a + b;
    return 0;
#endif
}

/* Product of n non-negative int64 factors; 1 on overflow (or a negative factor). */
static inline int wg_prod_i64(const int64_t *f, int n, int64_t *out)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        if (f[i] < 0 || wg_mul_i64(p, f[i], &p))
            return 1;
    *out = p;
    return 0;
}

/* Bytes of `count` elements of `elem` bytes, checked: 1 on overflow or a negative count. */
static inline int wg_bytes(int64_t count, size_t elem, size_t *out)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX)
        return 1;
    return wg_mul_size((size_t)count, elem, out);
}

/* Span of a dilated window, (k - 1) * dil + 1, for k >= 1 and dil >= 1; 1 on overflow (or
 * k, dil < 1). */
static inline int wg_span_i64(int64_t k, int64_t dil, int64_t *out)
{
    int64_t t;
    return k < 1 || dil < 1 || wg_mul_i64(k - 1, dil, &t) || wg_add_i64(t, 1, out);
}

/* Product of n non-negative factors saturated at INT64_MAX: for costs that are only compared
 * with a threshold. */
static inline int64_t wg_prod_sat(const int64_t *f, int n)
{
    int64_t p;
    return wg_prod_i64(f, n, &p) ? INT64_MAX : p;
}

/* Bytes of `count` elements of `elem` bytes plus `extra` (a malloc size), checked. */
static inline int wg_bytes_plus(int64_t count, size_t elem, size_t extra, size_t *out)
{
    return wg_bytes(count, elem, out) || wg_add_size(*out, extra, out);
}

#endif
