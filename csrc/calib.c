/* Calibration statistics: moments, histograms and the entropy (KL) threshold search. */
#include <stdlib.h>

#include "wageubn.h"

void wg_moments_of(wg_moments *m, const float *x, size_t n)
{
    double count = 0, sum = 0, lo = INFINITY, hi = -INFINITY;
    int64_t nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        if (!isfinite(v)) {
            nonfinite++;
            continue;
        }
        count += 1;
        sum += v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    /* A second pass for the squared deviations: no cancellation when |mean| >> std. */
    const double mean = count > 0 ? sum / count : 0.0;
    double m2 = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        if (isfinite(v))
            m2 += (v - mean) * (v - mean);
    }
    m->count = count, m->mean = mean, m->m2 = m2, m->min = lo, m->max = hi;
    m->nonfinite = nonfinite;
}

void wg_histogram(double *counts, int64_t bins, const float *x, size_t n, double lo, double hi,
                  int skip_zeros)
{
    const double width = hi - lo, scale = width > 0 ? (double)bins / width : 0.0;
    for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        if (!(v >= lo && v <= hi) || (skip_zeros && v == 0)) /* also drops NaN */
            continue;
        /* A range narrower than its bins makes scale infinite: divide instead. */
        const double t = width <= 0 ? 0.0 : isfinite(scale) ? (v - lo) * scale : (v - lo) / width * (double)bins;
        counts[t < (double)bins ? (int64_t)t : bins - 1] += 1;
    }
}

/* The candidate of a cut at i: hist[0, i) merged into `groups` groups of floor(i / groups)
 * bins, each group's mass spread evenly over its non-empty bins.
 * tqt's form (compat): the last group takes the rest of the bins but its mass is divided by the
 * nominal width less its empty bins (with tqt's +eps on every bin no bin is empty). */
static void merged_candidate(double *cand, const double *hist, int64_t i, int64_t groups, int compat)
{
    const int64_t width = i / groups;
    for (int64_t g = 0; g < groups; g++) {
        const int64_t a = g * width, b = g == groups - 1 ? i : a + width;
        double mass = 0;
        int64_t empty = 0;
        for (int64_t j = a; j < b; j++) {
            mass += hist[j];
            empty += hist[j] == 0;
        }
        const int64_t keep = (compat ? width : b - a) - empty;
        for (int64_t j = a; j < b; j++)
            cand[j] = (keep <= 0 || hist[j] == 0) ? 0.0 : mass / (double)keep;
    }
}

/* Normalise p (length n), giving every empty bin a mass of eps before renormalising, so the
 * logs stay finite and no probability turns negative. */
static void smooth(double *p, int64_t n, double total)
{
    const double eps = 1e-4;
    int64_t zeros = 0;
    for (int64_t j = 0; j < n; j++)
        zeros += p[j] == 0;
    const double norm = 1.0 + eps * (double)zeros;
    for (int64_t j = 0; j < n; j++)
        p[j] = (p[j] == 0 ? eps : p[j] / total) / norm;
}

int wg_entropy_search(double *divergence, const double *hist, int64_t bins, int64_t cali,
                      int symmetric, int compat)
{
    double *ref = malloc((size_t)bins * sizeof(double));
    double *cand = malloc((size_t)bins * sizeof(double));
    if (!ref || !cand) {
        free(ref);
        free(cand);
        return -1;
    }
    double outliers = 0; /* sum of hist[i, bins) for the current cut i */
    for (int64_t j = cali; j < bins; j++)
        outliers += hist[j];
    int64_t best = cali;
    for (int64_t i = cali; i < bins; i++) {
        /* ref: the first i bins, with everything beyond folded into the last one. */
        double rs = 0, cs = 0;
        for (int64_t j = 0; j < i; j++) {
            ref[j] = hist[j];
            rs += hist[j];
        }
        ref[i - 1] += outliers;
        rs += outliers;
        outliers -= hist[i];
        merged_candidate(cand, hist, i, cali, compat);
        for (int64_t j = 0; j < i; j++)
            cs += cand[j];
        double d = 0;
        if (rs > 0 && cs > 0) {
            if (compat) {
                for (int64_t j = 0; j < i; j++)
                    ref[j] /= rs, cand[j] /= cs;
            } else {
                smooth(ref, i, rs);
                smooth(cand, i, cs);
            }
            for (int64_t j = 0; j < i; j++) {
                const double p = ref[j], q = cand[j];
                if (p == q)
                    continue;
                d += symmetric ? (p - q) * log(p / q) : (p > 0 ? p * log(p / q) : 0.0);
            }
        } else {
            d = INFINITY;
        }
        divergence[i] = d;
        if (d < divergence[best])
            best = i;
    }
    for (int64_t j = 0; j < cali && j < bins; j++)
        divergence[j] = NAN;
    free(ref);
    free(cand);
    return (int)best;
}
