/* Decode cost per token in C, without JS, for two builds of the library in one process (the same
 * machine load for both; pass one build twice to time it alone): the answer benchmark's three models
 * (d_model 256, vocabulary 4096, untrained weights), a prefill of PROMPT tokens, then DECODE greedy
 * tokens, one nr_state_forward + nr_sample each; repetitions alternate between the builds; medians.
 * The split per layer kind is by difference: lm_head is timed alone as the one-row product it is, and
 * the rest of a model's token is divided by its layer count. The greedy tokens and every decode
 * logit of the two builds are compared bit for bit.
 *   build/bench_decode_ab OLD.so NEW.so [THREADS] [PROMPT] [REPS] [VOCAB] */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nanorag.h"
#include "ab_clock.h"

enum { C = 256, DECODE = 64, MAXREPS = 15 };
static int V = 4096; /* vocabulary; bench/decode.bench.ts's tokenizer gives 2482 */

typedef struct {
  nr_model *(*model_new)(const int32_t *, int, const float *, int, const char *, uint32_t);
  void (*model_free)(nr_model *);
  nr_state *(*state_new)(nr_model *, int, int);
  void (*state_free)(nr_state *);
  void (*state_reset)(nr_state *);
  int (*forward)(nr_model *, nr_state *, const int32_t *, int, float *, int);
  int (*sample)(const float *, int, int, float, int, float, uint64_t *, int32_t *);
  void (*sgemm)(int, int, int, int, int, const float *, int, const float *, int, float *, int, int);
  int (*threads)(int);
} Lib;

static double median(double *x, int n) {
  qsort(x, n, sizeof *x, by_value);
  return x[n / 2];
}

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (!p) { fprintf(stderr, "missing %s: %s\n", name, dlerror()); exit(2); }
  return p;
}
static Lib load(const char *path) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "%s\n", dlerror()); exit(2); }
  Lib l = {sym(h, "nr_model_new"), sym(h, "nr_model_free"), sym(h, "nr_state_new"), sym(h, "nr_state_free"),
           sym(h, "nr_state_reset"), sym(h, "nr_state_forward"), sym(h, "nr_sample"), sym(h, "nr_sgemm"),
           sym(h, "nr_set_threads")};
  return l;
}

static nr_model *make(const Lib *l, const char *pattern) {
  int32_t ic[NR_CFG_N_INT] = {0};
  ic[NR_CFG_VOCAB] = V; ic[NR_CFG_N_LAYER] = (int)strlen(pattern); ic[NR_CFG_N_EMBD] = C; ic[NR_CFG_N_HEAD] = 4;
  ic[NR_CFG_N_KV_HEAD] = 4; ic[NR_CFG_D_STATE] = 16; ic[NR_CFG_D_CONV] = 4; ic[NR_CFG_EXPAND] = 2;
  ic[NR_CFG_SEQ_LEN] = 4096; ic[NR_CFG_MLP_HIDDEN] = 4 * C;
  float fc[NR_FCFG_N] = {10000.0f, 15.0f, 1e-6f};
  nr_model *m = l->model_new(ic, NR_CFG_N_INT, fc, NR_FCFG_N, pattern, 1);
  if (!m) { fprintf(stderr, "model_new failed\n"); exit(2); }
  return m;
}

/* prefill, then DECODE greedy tokens; the decode logits go to logits[DECODE][V], times per token to *w, *c */
static void decode(const Lib *l, nr_model *m, nr_state *s, const int32_t *prompt, int np, int32_t *toks, float *logits,
                   double *w, double *c) {
  uint64_t rng = 1;
  float *out = malloc(V * sizeof(float));
  l->state_reset(s);
  l->forward(m, s, prompt, np, out, 0);
  int32_t t;
  l->sample(out, 1, V, 0.0f, 0, 1.0f, &rng, &t);
  double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  for (int n = 0; n < DECODE; n++) {
    toks[n] = t;
    if (l->forward(m, s, &t, 1, logits + (size_t)n * V, 0)) { fprintf(stderr, "forward failed\n"); exit(2); }
    l->sample(logits + (size_t)n * V, 1, V, 0.0f, 0, 1.0f, &rng, &t);
  }
  *w = (clock_s(CLOCK_MONOTONIC) - w0) * 1e3 / DECODE;
  *c = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3 / DECODE;
  free(out);
}

/* CPU ms of one lm_head product (1 x V x C) */
static double head_ms(const Lib *l) {
  float *x = calloc(C, 4), *W = calloc((size_t)V * C, 4), *out = calloc(V, 4);
  for (int i = 0; i < V * C; i++) W[i] = (i % 13) * 0.01f;
  for (int i = 0; i < C; i++) x[i] = (i % 5) * 0.1f;
  int n = 1000;
  l->sgemm(0, 1, 1, V, C, x, C, W, C, out, V, 0);
  double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  for (int r = 0; r < n; r++) l->sgemm(0, 1, 1, V, C, x, C, W, C, out, V, 0);
  double ms = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3 / n;
  free(x); free(W); free(out);
  return ms;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OLD.so NEW.so [THREADS] [PROMPT] [REPS] [VOCAB]\n", argv[0]);
    return 2;
  }
  int th = argc > 3 ? atoi(argv[3]) : 1, np = argc > 4 ? atoi(argv[4]) : 746, reps = argc > 5 ? atoi(argv[5]) : 5;
  if (reps < 1 || reps > MAXREPS) reps = 5;
  if (argc > 6) V = atoi(argv[6]);
  if (V < 2) V = 4096;
  Lib lib[2] = {load(argv[1]), load(argv[2])};
  for (int i = 0; i < 2; i++) lib[i].threads(th);
  double head[2] = {head_ms(&lib[0]), head_ms(&lib[1])};
  printf("decode, %d threads, vocabulary %d, prompt %d tokens, %d tokens decoded, median of %d\n", th, V, np, DECODE, reps);
  printf("lm_head (1 x %d x %d) CPU ms: old %.3f, new %.3f\n", V, C, head[0], head[1]);
  printf("| model | old CPU ms/tok | new CPU ms/tok | old wall | new wall | new tok/CPU-s | speed-up (CPU) | per layer old / new (CPU ms, head out) | same tokens and logits |\n");
  printf("|---|---|---|---|---|---|---|---|---|\n");
  int32_t *prompt = malloc(np * sizeof(int32_t));
  for (int i = 0; i < np; i++) prompt[i] = (i * 7919) % V;
  const char *pats[] = {"TTTT", "MMMMMMM", "TMMTMM"};
  int differ = 0;
  for (int p = 0; p < 3; p++) {
    nr_model *m[2];
    nr_state *s[2];
    int32_t toks[2][DECODE];
    float *lg[2];
    double w[2][MAXREPS + 1], c[2][MAXREPS + 1];
    for (int i = 0; i < 2; i++) {
      m[i] = make(&lib[i], pats[p]);
      s[i] = lib[i].state_new(m[i], 1, 4096);
      lg[i] = malloc((size_t)DECODE * V * sizeof(float));
    }
    for (int r = 0; r <= reps; r++) /* round 0 warms up */
      for (int i = 0; i < 2; i++) decode(&lib[i], m[i], s[i], prompt, np, toks[i], lg[i], &w[i][r], &c[i][r]);
    int same = !memcmp(toks[0], toks[1], sizeof toks[0]) && !memcmp(lg[0], lg[1], (size_t)DECODE * V * sizeof(float));
    differ += !same;
    double mw[2], mc[2];
    for (int i = 0; i < 2; i++) { mw[i] = median(w[i] + 1, reps); mc[i] = median(c[i] + 1, reps); }
    int L = (int)strlen(pats[p]);
    printf("| %s | %.2f | %.2f | %.2f | %.2f | %.0f | %.2fx | %.3f / %.3f | %s |\n", pats[p], mc[0], mc[1], mw[0], mw[1],
           1e3 / mc[1], mc[0] / mc[1], (mc[0] - head[0]) / L, (mc[1] - head[1]) / L, same ? "yes" : "NO");
    for (int i = 0; i < 2; i++) { lib[i].state_free(s[i]); lib[i].model_free(m[i]); free(lg[i]); }
  }
  free(prompt);
  return differ ? 1 : 0;
}
