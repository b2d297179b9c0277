/* The machine's single-precision FMA peak, measured: GFLOP/s of independent FMA chains.
 *
 *   cc -O2 -Wall -Wextra -pthread benchmarks/fma_peak.c -o fma_peak
 *   ./fma_peak [-s SECONDS] [THREADS ...]
 *
 * Each thread runs ACC independent vector accumulators, acc = acc * a + b (a = 0.999,
 * b = 0.001: every chain converges to 1, with no overflow and no denormals), so the loop is
 * bound by the FMA units' throughput rather than one FMA's latency: ACC must be at least
 * latency x FMA pipes (4 x 2 = 8 on current x86 cores); 12 leaves a margin.  One FMA counts 2
 * flops per lane.  The accumulators are summed and printed (as a checksum), so the compiler
 * cannot drop the loop, and it may not reassociate floating point at -O2.
 *
 * On x86 it measures 256-bit AVX2/FMA and, where the CPU has it, 512-bit AVX-512F, each in a
 * function compiled for that instruction set (target attributes) and chosen at run time
 * (__builtin_cpu_supports), so one binary runs anywhere.  Elsewhere it measures 128-bit
 * GCC vectors (a * b + c, contracted into FMA where the target has it).
 *
 * THREADS: the thread counts to measure (default: 1 and the cores this process may use).
 * The threads of one measurement start together at a barrier.  Each result has two rates,
 * each the best of 7 repetitions (the peak), the instruction sets taking turns:
 *   gflops      all threads' flops over the wall time from the first one's start to the
 *               last one's end;
 *   gflops_cpu  the sum over threads of each thread's flops over its own CPU time: what the
 *               cores do while they run the loop, unaffected by other processes that take a
 *               core away for a while (a loaded machine lowers `gflops`, not this; time
 *               that a hypervisor steals from a virtual CPU may still count).  It
 *               overstates the machine when THREADS exceeds the cores.
 * Output: one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FMA_X86 /* -DFMA_X86=0 measures the generic kernel on x86 too */
#if defined(__x86_64__) || defined(__i386__)
#define FMA_X86 1
#else
#define FMA_X86 0
#endif
#endif
#if FMA_X86
#include <immintrin.h>
#endif

#define MAX_THREADS 1024

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A kernel runs `iters` iterations of ACC FMAs and returns the sum of its accumulators. */
typedef float (*kernel_fn)(long iters);

/* ACC named accumulators: an array indexed in a loop stays on the stack at -O2, and its chains
 * would then run through store-to-load forwarding instead of registers. */
#define ACC 12
#define KERNEL_BODY(V, SET1, FMA, ADD)                                                        \
    const V a = SET1(0.999f), b = SET1(0.001f);                                               \
    V c0 = SET1(0.0f), c1 = SET1(1.0f), c2 = SET1(2.0f), c3 = SET1(3.0f), c4 = SET1(4.0f),    \
      c5 = SET1(5.0f), c6 = SET1(6.0f), c7 = SET1(7.0f), c8 = SET1(8.0f), c9 = SET1(9.0f),    \
      c10 = SET1(10.0f), c11 = SET1(11.0f);                                                   \
    for (long i = 0; i < iters; i++) {                                                        \
        c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);       \
        c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);       \
        c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);   \
    }                                                                                         \
    const V s = ADD(ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7))),        \
                    ADD(ADD(c8, c9), ADD(c10, c11)));

#if FMA_X86
__attribute__((target("avx2,fma"), noinline)) static float kernel_avx2(long iters)
{
    KERNEL_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    float total = 0.0f;
    for (int k = 0; k < 8; k++)
        total += lanes[k];
    return total;
}

__attribute__((target("avx512f"), noinline)) static float kernel_avx512(long iters)
{
    KERNEL_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
    return _mm512_reduce_add_ps(s);
}
#endif

typedef float v4sf __attribute__((vector_size(16)));

static inline v4sf v4_set1(float x) { return (v4sf){x, x, x, x}; }
static inline v4sf v4_fma(v4sf x, v4sf a, v4sf b) { return x * a + b; }
static inline v4sf v4_add(v4sf x, v4sf y) { return x + y; }

__attribute__((noinline)) static float kernel_generic(long iters)
{
    KERNEL_BODY(v4sf, v4_set1, v4_fma, v4_add)
    return s[0] + s[1] + s[2] + s[3];
}

struct isa {
    const char *name;
    int bits;
    kernel_fn kernel;
};

struct job {
    kernel_fn kernel;
    long iters;
    pthread_barrier_t *barrier;
    float result;
    double start, end, cpu_seconds; /* wall clock at start and end, CPU time */
};

static double thread_cpu_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *worker(void *arg)
{
    struct job *job = arg;
    pthread_barrier_wait(job->barrier);
    job->start = now();
    double c0 = thread_cpu_time();
    job->result = job->kernel(job->iters);
    job->cpu_seconds = thread_cpu_time() - c0;
    job->end = now();
    return NULL;
}

/* Wall seconds for `threads` threads each running `iters` iterations, from the first one's
 * start to the last one's end; the sum over threads of 1 / (each one's CPU seconds) into
 * *inv_cpu; the results summed into *check. */
static double run(kernel_fn kernel, int threads, long iters, double *inv_cpu, double *check)
{
    static pthread_t tid[MAX_THREADS];
    static struct job jobs[MAX_THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct job){kernel, iters, &barrier, 0.0f, 0.0, 0.0, 0.0};
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0) {
            fprintf(stderr, "fma_peak: cannot start thread %d\n", t);
            exit(1);
        }
    }
    pthread_barrier_wait(&barrier);
    for (int t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&barrier);
    double first = jobs[0].start, last = jobs[0].end;
    *inv_cpu = 0.0;
    for (int t = 0; t < threads; t++) {
        first = jobs[t].start < first ? jobs[t].start : first;
        last = jobs[t].end > last ? jobs[t].end : last;
        *check += jobs[t].result;
        *inv_cpu += 1.0 / (jobs[t].cpu_seconds > 1e-9 ? jobs[t].cpu_seconds : 1e-9);
    }
    return last - first;
}

#define REPS 7

/* Best GFLOP/s of each instruction set by wall time and by CPU time (see the top) over REPS
 * repetitions of about `seconds` / REPS each, after a warm-up.  The instruction sets take
 * turns within each repetition, so a disturbance from outside does not fall on one alone. */
static void measure(const struct isa *isas, int n_isas, int threads, double seconds,
                    double *wall_best, double *cpu_best, double *check)
{
    long iters[8];
    double inv_cpu;
    for (int k = 0; k < n_isas; k++) {
        /* Warm-up and calibration: grow until one run takes 20 ms (also wakes the vector
         * units and lets the clock settle). */
        for (iters[k] = 1000;; iters[k] *= 2) {
            double t = run(isas[k].kernel, threads, iters[k], &inv_cpu, check);
            if (t >= 0.02) {
                iters[k] = (long)((double)iters[k] * (seconds / REPS) / t) + 1;
                break;
            }
        }
        wall_best[k] = cpu_best[k] = 0.0;
    }
    for (int rep = 0; rep < REPS; rep++) {
        for (int k = 0; k < n_isas; k++) {
            double t = run(isas[k].kernel, threads, iters[k], &inv_cpu, check);
            double flops = 2.0 * ACC * (isas[k].bits / 32) * (double)iters[k];
            if (flops * threads / t / 1e9 > wall_best[k])
                wall_best[k] = flops * threads / t / 1e9;
            if (flops * inv_cpu / 1e9 > cpu_best[k])
                cpu_best[k] = flops * inv_cpu / 1e9;
        }
    }
}

static int usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int main(int argc, char **argv)
{
    double seconds = 0.5; /* per measurement */
    int counts[64], n_counts = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (n_counts < 64 && atoi(argv[i]) > 0 && atoi(argv[i]) <= MAX_THREADS) {
            counts[n_counts++] = atoi(argv[i]);
        } else {
            fprintf(stderr, "usage: %s [-s SECONDS] [THREADS ...] (1 <= THREADS <= %d)\n", argv[0],
                    MAX_THREADS);
            return 2;
        }
    }
    if (seconds <= 0.0)
        seconds = 0.5;
    if (n_counts == 0) {
        counts[n_counts++] = 1;
        if (usable_cores() > 1)
            counts[n_counts++] = usable_cores();
    }

    struct isa isas[2];
    int n_isas = 0;
#if FMA_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        isas[n_isas++] = (struct isa){"avx2_fma", 256, kernel_avx2};
    if (__builtin_cpu_supports("avx512f"))
        isas[n_isas++] = (struct isa){"avx512f", 512, kernel_avx512};
#endif
    if (n_isas == 0)
        isas[n_isas++] = (struct isa){"generic_vector", 128, kernel_generic};

    double check = 0.0;
    printf("{\"accumulators\": %d, \"cores\": %d, \"results\": [", ACC, usable_cores());
    for (int c = 0; c < n_counts; c++) {
        double wall[8], cpu[8];
        measure(isas, n_isas, counts[c], seconds, wall, cpu, &check);
        for (int k = 0; k < n_isas; k++)
            printf("%s{\"isa\": \"%s\", \"bits\": %d, \"threads\": %d, \"gflops\": %.2f, "
                   "\"gflops_cpu\": %.2f}",
                   (c || k) ? ", " : "", isas[k].name, isas[k].bits, counts[c], wall[k], cpu[k]);
        fflush(stdout);
    }
    printf("], \"checksum\": %.6g}\n", check);
    return 0;
}
