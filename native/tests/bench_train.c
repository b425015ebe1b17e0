/* Training throughput through the C ABI alone (no Bun), for quiet-machine measurements:
 *   build/bench_train THREADS PATTERN VOCAB B T [C] [steps]
 * prints wall and CPU time per step and tokens/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nanorag.h"

static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: %s THREADS PATTERN VOCAB B T [C] [steps]\n", argv[0]); return 2; }
  int th = atoi(argv[1]), V = atoi(argv[3]), B = atoi(argv[4]), T = atoi(argv[5]);
  int C = argc > 6 ? atoi(argv[6]) : 128, steps = argc > 7 ? atoi(argv[7]) : 8;
  const char *pat = argv[2];
  nr_set_threads(th);
  int32_t ic[NR_CFG_N_INT] = {V, (int)strlen(pat), C, C / 32 > 0 ? C / 32 : 1, C / 32 > 0 ? C / 32 : 1, 16, 4, 2, 0, 0, T, 4 * C};
  float fc[NR_FCFG_N] = {10000, 15, 1e-6f};
  nr_model *m = nr_model_new(ic, NR_CFG_N_INT, fc, NR_FCFG_N, pat, 1);
  if (!m) { fprintf(stderr, "%s\n", nr_last_error()); return 1; }
  int n = B * T;
  int32_t *tok = malloc(n * 4), *tgt = malloc(n * 4);
  for (int i = 0; i < n; i++) { tok[i] = (i * 7919) % V; tgt[i] = (i * 104729 + 1) % V; }
  float hp[NR_HP_N] = {0.2f, 0.004f, 0.02f, 0.003f, 0.8f, 0.95f, 1e-10f, 0, 0.95f, 0, 1, 5};
  double out[2];
  float gn;
  for (int i = 0; i < 2; i++) { nr_step(m, tok, tgt, NULL, B, T, 1.0f / n, out); nr_optim_step(m, hp, NR_HP_N, &gn); }
  double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID), ws = 0;
  for (int i = 0; i < steps; i++) {
    double a = now(CLOCK_MONOTONIC);
    nr_step(m, tok, tgt, NULL, B, T, 1.0f / n, out);
    ws += now(CLOCK_MONOTONIC) - a;
    nr_optim_step(m, hp, NR_HP_N, &gn);
  }
  double wall = (now(CLOCK_MONOTONIC) - w0) / steps, cpu = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / steps;
  printf("%-10s th=%d V=%d C=%d B=%d T=%d params=%lld: step+optim %.1f ms (fwd+bwd %.1f ms), cpu %.1f ms -> %.0f tok/s (fwd+bwd only %.0f tok/s), loss %.3f\n",
         pat, th, V, C, B, T, (long long)nr_model_num_params(m), wall * 1e3, ws / steps * 1e3, cpu * 1e3, n / wall, n / (ws / steps), out[0] / out[1]);
  nr_model_free(m);
  return 0;
}
