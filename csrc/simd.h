/*
 * What the micro-kernels of gemm.c and conv.c share: the tile height, the two products, and
 * the AVX2/FMA building blocks, compiled with a target attribute so that one build runs on
 * every x86-64 CPU (the caller picks the AVX2 kernels when wg_simd_available()).
 */
#ifndef WAGEUBN_SIMD_H
#define WAGEUBN_SIMD_H

#include "wageubn.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WG_X86 1
#define WG_AVX2 __attribute__((target("avx2,fma")))
#endif

/* Rows of a micro-tile: with two vectors per row, 6 rows use 12 accumulator registers. */
#define MR 6

#define MUL(x, y) ((x) * (y))
#define NEG_ABS_DIFF(x, y) ((x) > (y) ? (y) - (x) : (x) - (y))

#ifdef WG_X86
#define FMA_PS(c, a, b) ((c) = _mm256_fmadd_ps((a), (b), (c)))
#define FMA_PD(c, a, b) ((c) = _mm256_fmadd_pd((a), (b), (c)))
/* c -= |a - b|: clear the sign bit of the difference. */
#define L1_PS(c, a, b) ((c) = _mm256_sub_ps((c), _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps((a), (b)))))
#define L1_PD(c, a, b) ((c) = _mm256_sub_pd((c), _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_sub_pd((a), (b)))))

/* DEFINE(name, T, VEC, W, LOAD, SET1, ZERO, STORE, STEP) for the four kernels PREFIX_{f32,f64}_{dot,l1}. */
#define WG_DEFINE_AVX2_KERNELS(DEFINE, PREFIX)                                                                 \
    DEFINE(PREFIX##_f32_dot, float, __m256, 8, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,         \
           _mm256_storeu_ps, FMA_PS)                                                                       \
    DEFINE(PREFIX##_f32_l1, float, __m256, 8, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,          \
           _mm256_storeu_ps, L1_PS)                                                                        \
    DEFINE(PREFIX##_f64_dot, double, __m256d, 4, _mm256_loadu_pd, _mm256_set1_pd, _mm256_setzero_pd,       \
           _mm256_storeu_pd, FMA_PD)                                                                       \
    DEFINE(PREFIX##_f64_l1, double, __m256d, 4, _mm256_loadu_pd, _mm256_set1_pd, _mm256_setzero_pd,        \
           _mm256_storeu_pd, L1_PD)

/* wg_quantize on four doubles: the same products, round-half-even (vroundpd) and selects. */
WG_AVX2 static inline __m256d wg_quantize_pd(__m256d v, const wg_format *f)
{
    if (f->kind == WG_FMT_NONE)
        return v;
    __m256d q = _mm256_round_pd(_mm256_mul_pd(v, _mm256_set1_pd(f->scale)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (f->kind == WG_FMT_CLAMPED) { /* min(b, q) is q > b ? b : q, NaN stays, as in wg_quantize */
        q = _mm256_min_pd(_mm256_set1_pd(f->bound), q);
        q = _mm256_max_pd(_mm256_set1_pd(-f->bound), q);
    }
    return _mm256_mul_pd(q, _mm256_set1_pd(f->step));
}
#endif

#endif
