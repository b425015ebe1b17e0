/* Before/after training throughput of two builds of the library, in one process (one run, the same
 * machine load for both): identical models and batch, steps alternating between the builds, each step
 * timed by the wall clock and by the process CPU clock. On a shared machine the CPU time, and minima
 * over many steps, are what to compare; the parameters of both models are compared at the end.
 *   build/bench_train_ab OLD.so NEW.so THREADS PATTERN VOCAB B T STEPS
 * (C = 128, 4 heads, d_state 16, expand 2: the pipeline's cpu_small shapes). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nanorag.h"
#include "ab_clock.h"

typedef struct {
  nr_model *(*model_new)(const int32_t *, int, const float *, int, const char *, uint32_t);
  int (*step)(nr_model *, const int32_t *, const int32_t *, const float *, int, int, float, double *);
  int (*optim)(nr_model *, const float *, int, float *);
  int (*threads)(int);
  float *(*params)(nr_model *);
  int64_t (*num_params)(const nr_model *);
} Lib;


int main(int argc, char **argv) {
  if (argc < 9) {
    fprintf(stderr, "usage: %s OLD.so NEW.so THREADS PATTERN VOCAB B T STEPS\n", argv[0]);
    return 2;
  }
  int th = atoi(argv[3]), V = atoi(argv[5]), B = atoi(argv[6]), T = atoi(argv[7]), steps = atoi(argv[8]), C = 128;
  const char *pat = argv[4];
  int32_t ic[NR_CFG_N_INT] = {V, (int)strlen(pat), C, 4, 4, 16, 4, 2, 0, 0, T, 4 * C};
  float fc[NR_FCFG_N] = {10000, 15, 1e-6f};
  Lib L[2];
  nr_model *m[2];
  for (int i = 0; i < 2; i++) {
    void *h = dlopen(argv[1 + i], RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    L[i] = (Lib){dlsym(h, "nr_model_new"), dlsym(h, "nr_step"), dlsym(h, "nr_optim_step"), dlsym(h, "nr_set_threads"),
                 dlsym(h, "nr_model_params"), dlsym(h, "nr_model_num_params")};
    L[i].threads(th);
    m[i] = L[i].model_new(ic, NR_CFG_N_INT, fc, NR_FCFG_N, pat, 1);
    if (!m[i]) { fprintf(stderr, "%s: model_new failed\n", argv[1 + i]); return 1; }
  }
  int n = B * T;
  int32_t *tok = malloc(n * sizeof *tok), *tgt = malloc(n * sizeof *tgt);
  for (int i = 0; i < n; i++) { tok[i] = (i * 7919) % V; tgt[i] = (i * 104729 + 1) % V; }
  float hp[NR_HP_N] = {0.2f, 0.004f, 0.02f, 0.003f, 0.8f, 0.95f, 1e-10f, 0, 0.95f, 0, 1, 5};
  double *wall[2], *cpu[2], out[2][2];
  float gn;
  for (int i = 0; i < 2; i++) { wall[i] = malloc(steps * sizeof(double)); cpu[i] = malloc(steps * sizeof(double)); }
  for (int s = -2; s < steps; s++) /* two warm-up steps each */
    for (int i = 0; i < 2; i++) {
      double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
      L[i].step(m[i], tok, tgt, NULL, B, T, 1.0f / n, out[i]);
      L[i].optim(m[i], hp, NR_HP_N, &gn);
      if (s >= 0) {
        wall[i][s] = clock_s(CLOCK_MONOTONIC) - w0;
        cpu[i][s] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
      }
    }
  double maxdiff = 0;
  const float *p0 = L[0].params(m[0]), *p1 = L[1].params(m[1]);
  for (int64_t j = 0; j < L[0].num_params(m[0]); j++) {
    double d = p0[j] > p1[j] ? p0[j] - p1[j] : p1[j] - p0[j];
    if (d > maxdiff) maxdiff = d;
  }
  for (int i = 0; i < 2; i++) {
    qsort(wall[i], steps, sizeof(double), by_value);
    qsort(cpu[i], steps, sizeof(double), by_value);
    printf("%s %s threads=%d V=%d %dx%d, step+optim over %d steps: wall min %.1f median %.1f ms (%.0f tok/s at the min),"
           " CPU min %.1f median %.1f ms (%.0f tok per CPU-second), loss %.6f\n",
           i ? "new" : "old", pat, th, V, B, T, steps, wall[i][0] * 1e3, wall[i][steps / 2] * 1e3, n / wall[i][0],
           cpu[i][0] * 1e3, cpu[i][steps / 2] * 1e3, n / cpu[i][0], out[i][0] / out[i][1]);
  }
  printf("max |param old - param new| after %d steps: %.3g\n", steps + 2, maxdiff);
  return 0;
}
