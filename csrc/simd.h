/*
 * What the micro-kernels of gemm.c and conv.c share: the tile height, the two products, and
 * the AVX2/FMA building blocks, compiled with a target attribute so that one build runs on
 * every x86-64 CPU (the caller picks the AVX2 kernels when wg_simd_available()).
 */
#ifndef WAGEUBN_SIMD_H
#define WAGEUBN_SIMD_H

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
#endif

#endif
