/* fma.c: this machine's fp32 FMA peak, for benchmarks/run.py.
 *
 * Each thread runs CHAINS independent chains of 8-wide (AVX2) or 16-wide
 * (AVX-512) fp32 fused multiply-adds, enough to cover the FMA latency on
 * every port, for a fixed number of iterations; all threads start together.
 * Prints one JSON line: {"threads", "width", "gflops", "seconds"}, counting an
 * FMA as 2 flops.
 *
 *   cc -O3 -mavx2 -mfma -pthread fma.c -o fma          (8-wide)
 *   cc -O3 -march=native -pthread fma.c -o fma512      (16-wide if AVX-512)
 *   ./fma THREADS [ITERATIONS]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
#define WIDTH 16
#else
#define WIDTH 8
#endif
#define CHAINS 12

typedef float vec __attribute__((vector_size(WIDTH * 4)));

static long iters = 20000000;
static volatile float sink;

static void *work(void *arg) {
    (void)arg;
    vec a, b, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11;
    for (int j = 0; j < WIDTH; j++) {
        a[j] = 0.999999f;
        b[j] = 1e-7f;
        x0[j] = x1[j] = x2[j] = x3[j] = x4[j] = x5[j] = (float)j;
        x6[j] = x7[j] = x8[j] = x9[j] = x10[j] = x11[j] = (float)(j + 1);
    }
    /* Twelve independent chains in registers: more than latency (4) times
     * FMA ports (2), so the ports never wait. */
    for (long i = 0; i < iters; i++) {
        x0 = x0 * a + b;
        x1 = x1 * a + b;
        x2 = x2 * a + b;
        x3 = x3 * a + b;
        x4 = x4 * a + b;
        x5 = x5 * a + b;
        x6 = x6 * a + b;
        x7 = x7 * a + b;
        x8 = x8 * a + b;
        x9 = x9 * a + b;
        x10 = x10 * a + b;
        x11 = x11 * a + b;
    }
    vec s = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11;
    float t = 0;
    for (int j = 0; j < WIDTH; j++)
        t += s[j];
    sink = t;
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (argc > 2)
        iters = atol(argv[2]);
    if (n < 1 || n > 1024 || iters < 1) {
        fprintf(stderr, "usage: fma THREADS [ITERATIONS]\n");
        return 2;
    }
    pthread_t *t = malloc(sizeof *t * (size_t)n);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double flops = 2.0 * WIDTH * CHAINS * (double)iters * n;
    printf("{\"threads\": %d, \"width\": %d, \"gflops\": %.3f, \"seconds\": %.4f}\n", n, WIDTH, flops / sec * 1e-9, sec);
    free(t);
    return 0;
}
