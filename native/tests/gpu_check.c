/* The one-shot GPU check (issue #8): loads the CPU and CUDA engines with dlopen (no Bun needed) and
 * prints one compact table. Phases (any subset, in this order; default: all but host):
 *   host    what the CUDA library says without a GPU: device count and why (the cuBLAS search)
 *   parity  per small config (T, M, hybrid, wide-head MT), in fp32-GEMM mode (NANORAG_CUDA_FP32), the same
 *           with activation recomputation, in bf16 (tensor-core attention) and in bf16 with the flash
 *           attention (NANORAG_CUDA_ATTN=flash): loss, every gradient tensor, eval log-probs, logits, embeddings, parameters after one
 *           AdamW+Muon step, decode == full forward on the GPU, greedy and seeded sampling
 *   train   200 steps of a small hybrid on a learnable stream: the loss must fall
 *   speed   training tokens/s and MFU at d12 and d20, T=2048, all-T / all-M / hybrid (40% T)
 *   memory  device bytes for the seed's three d20 configs at 4K / 8K / 6K, recomputation on and off,
 *           measured on the speed phase's d20 models (a d20 host model takes seconds to initialise)
 *   scan    selective-scan forward+backward time vs sequence length (CUDA test hook)
 *   nccl    a one-rank communicator (one GPU here): NCCL found with dlopen, id, init, and the gradient
 *           all-reduce (AVERAGE over one rank must leave the gradients as they were)
 *   plan    (no GPU needed) the device bytes the allocator will request for the memory configs
 * Usage: gpu_check CPU_LIB CUDA_LIB [phase...]. Exit status 1 when a check fails. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nanorag.h"

typedef struct {
  void *h;
  const char *(*version)(void), *(*last_error)(void), *(*engine_info)(void);
  int (*device_count)(char *, int);
  nr_model *(*model_new)(const int32_t *, int, const float *, int, const char *, uint32_t);
  void (*model_free)(nr_model *);
  int64_t (*num_params)(const nr_model *), (*act_bytes)(const nr_model *);
  float *(*params)(nr_model *), *(*grads)(nr_model *);
  int (*download)(nr_model *), (*upload)(nr_model *), (*set_recompute)(nr_model *, int);
  int (*num_tensors)(const nr_model *);
  const char *(*tensor_name)(const nr_model *, int);
  int64_t (*tensor_offset)(const nr_model *, int), (*tensor_numel)(const nr_model *, int);
  int (*step)(nr_model *, const int32_t *, const int32_t *, const float *, int, int, float, double *);
  int (*eval)(nr_model *, const int32_t *, const int32_t *, const float *, int, int, double *, float *);
  int (*logits)(nr_model *, const int32_t *, int, int, float *);
  int (*embed)(nr_model *, const int32_t *, const float *, int, int, float *);
  int (*optim_step)(nr_model *, const float *, int, float *);
  nr_state *(*state_new)(nr_model *, int, int);
  void (*state_free)(nr_state *);
  int (*state_forward)(nr_model *, nr_state *, const int32_t *, int, float *, int);
  int (*sample)(const float *, int, int, float, int, float, uint64_t *, int32_t *);
  /* CUDA-only test hooks */
  int (*bench_scan)(int, int, int, int, int, float *);
  int (*plan_bytes)(const int32_t *, int, const float *, int, const char *, int, int, int64_t *);
  int (*mem_used)(int64_t *);
  void (*release_arena)(nr_model *);
  void (*profile)(int);
  int (*profile_read)(double *);
  int (*comm_unique_id)(uint8_t *), (*comm_init)(const uint8_t *, int, int), (*comm_allreduce)(nr_model *);
  void (*comm_free)(void);
} Lib;

static int load(Lib *L, const char *path) {
  memset(L, 0, sizeof *L);
  if (!(L->h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
    fprintf(stderr, "gpu_check: cannot load %s: %s\n", path, dlerror());
    return -1;
  }
#define SYM(f, name)                                                               \
  if (!(*(void **)&L->f = dlsym(L->h, name))) {                                    \
    fprintf(stderr, "gpu_check: %s lacks %s\n", path, name);                       \
    return -1;                                                                     \
  }
  SYM(version, "nr_version") SYM(last_error, "nr_last_error") SYM(engine_info, "nr_engine_info")
  SYM(device_count, "nr_device_count") SYM(model_new, "nr_model_new") SYM(model_free, "nr_model_free")
  SYM(num_params, "nr_model_num_params") SYM(act_bytes, "nr_model_act_bytes") SYM(params, "nr_model_params")
  SYM(grads, "nr_model_grads") SYM(download, "nr_model_download") SYM(upload, "nr_model_upload")
  SYM(set_recompute, "nr_set_recompute") SYM(num_tensors, "nr_model_num_tensors")
  SYM(tensor_name, "nr_model_tensor_name") SYM(tensor_offset, "nr_model_tensor_offset")
  SYM(tensor_numel, "nr_model_tensor_numel") SYM(step, "nr_step") SYM(eval, "nr_eval") SYM(logits, "nr_logits")
  SYM(embed, "nr_embed") SYM(optim_step, "nr_optim_step") SYM(state_new, "nr_state_new")
  SYM(state_free, "nr_state_free") SYM(state_forward, "nr_state_forward") SYM(sample, "nr_sample")
#undef SYM
  *(void **)&L->bench_scan = dlsym(L->h, "nrcuda_bench_scan");
  *(void **)&L->plan_bytes = dlsym(L->h, "nrcuda_plan_bytes");
  *(void **)&L->mem_used = dlsym(L->h, "nrcuda_mem_used");
  *(void **)&L->release_arena = dlsym(L->h, "nrcuda_release_arena");
  *(void **)&L->profile = dlsym(L->h, "nrcuda_profile");
  *(void **)&L->profile_read = dlsym(L->h, "nrcuda_profile_read");
  *(void **)&L->comm_unique_id = dlsym(L->h, "nr_comm_unique_id");
  *(void **)&L->comm_init = dlsym(L->h, "nr_comm_init");
  *(void **)&L->comm_allreduce = dlsym(L->h, "nr_comm_allreduce_grads");
  *(void **)&L->comm_free = dlsym(L->h, "nr_comm_free");
  return 0;
}

/* ---- the table ---- */
static int g_fail;
static void row(const char *phase, const char *what, double v, double limit, int higher_ok) {
  int ok = isfinite(v) && (higher_ok ? v >= limit : v <= limit);
  if (!ok) g_fail = 1;
  printf("| %-7s | %-44s | %11.3g | %s %-9.3g | %s |\n", phase, what, v, higher_ok ? ">=" : "<=", limit,
         ok ? "ok  " : "FAIL");
  fflush(stdout);
}
static void info(const char *phase, const char *what, const char *text) {
  printf("| %-7s | %-44s | %s\n", phase, what, text);
  fflush(stdout);
}
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* ||a - b|| / ||b|| */
static double rel_l2(const float *a, const float *b, size_t n) {
  double d = 0, r = 0;
  for (size_t i = 0; i < n; i++) {
    d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    r += (double)b[i] * b[i];
  }
  return r > 0 ? sqrt(d / r) : sqrt(d);
}

static uint64_t g_rng = 12345;
static double unif(void) {
  uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return ((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
  const char *name, *pattern;
  int V, C, H, Hkv, N, K, E, mlp, seq;
} Cfg;

static nr_model *make(Lib *L, const Cfg *c, uint32_t seed) {
  int32_t ic[NR_CFG_N_INT] = {c->V, (int32_t)strlen(c->pattern), c->C, c->H, c->Hkv, c->N, c->K, c->E, 0, c->mlp,
                              c->seq, 4 * c->C};
  float fc[NR_FCFG_N] = {10000.0f, 15.0f, 1e-6f};
  nr_model *m = L->model_new(ic, NR_CFG_N_INT, fc, NR_FCFG_N, c->pattern, seed);
  if (!m) fprintf(stderr, "gpu_check: %s: %s\n", c->name, L->last_error());
  return m;
}

static void hyper(float *hp, float lr_scale) {
  float v[NR_HP_N] = {0.2f, 0.004f, 0.02f, 0.003f, 0.8f, 0.95f, 1e-10f, 0.0f, 0.95f, 0.0f, 1.0f, 5.0f};
  for (int i = 0; i < NR_HP_N; i++) hp[i] = v[i];
  for (int i = 0; i <= NR_HP_LR_VECTOR; i++) hp[i] *= lr_scale;
}

/* ---- parity ---- */
typedef struct {
  double loss, grad, lp, logits, embed, update, decode, greedy;
} Tol;

static void parity_one(Lib *cpu, Lib *gpu, const Cfg *c, const char *mode, const Tol *tol, int recompute) {
  char what[96];
  nr_model *a = make(cpu, c, 7), *g = make(gpu, c, 7);
  if (g) gpu->set_recompute(g, recompute);
  if (!a || !g) {
    snprintf(what, sizeof what, "%s %s: model", c->name, mode);
    row("parity", what, NAN, 0, 0);
    return;
  }
  size_t n = (size_t)cpu->num_params(a);
  float *pa = cpu->params(a), *pg = gpu->params(g);
  /* zero-initialised tensors (projections, lm_head) get small weights, or most gradients would be 0 */
  for (int t = 0; t < cpu->num_tensors(a); t++) {
    float *p = pa + cpu->tensor_offset(a, t);
    size_t k = (size_t)cpu->tensor_numel(a, t), nz = 0;
    for (size_t i = 0; i < k; i++) nz += p[i] != 0.0f;
    if (!nz)
      for (size_t i = 0; i < k; i++) p[i] = (float)((unif() - 0.5) * 0.2);
  }
  memcpy(pg, pa, n * sizeof(float));
  gpu->upload(g);
  int B = 2, T = 80, BT = B * T, V = c->V;
  int32_t *tok = malloc(BT * 4), *tgt = malloc(BT * 4);
  float *w = malloc(BT * 4);
  for (int i = 0; i < BT; i++) {
    tok[i] = (int32_t)(unif() * V);
    tgt[i] = i % 17 == 5 ? -1 : (int32_t)(unif() * V);
    w[i] = i % 13 == 3 ? 0.0f : i % 11 == 2 ? -0.5f : (float)(0.5 + unif());
  }
  double oa[2], og[2];
  int ra = cpu->step(a, tok, tgt, w, B, T, 1.0f / BT, oa), rg = gpu->step(g, tok, tgt, w, B, T, 1.0f / BT, og);
  if (ra || rg) fprintf(stderr, "gpu_check: step: %s\n", rg ? gpu->last_error() : cpu->last_error());
  gpu->download(g);
  snprintf(what, sizeof what, "%s %s: loss rel err", c->name, mode);
  row("parity", what, rg ? NAN : fabs(og[0] - oa[0]) / fabs(oa[0]), tol->loss, 0);
  double worst = 0;
  const char *wn = "";
  for (int t = 0; t < cpu->num_tensors(a); t++) {
    size_t o = cpu->tensor_offset(a, t), k = cpu->tensor_numel(a, t);
    double e = rel_l2(gpu->grads(g) + o, cpu->grads(a) + o, k);
    if (!(e <= worst)) { worst = e; wn = cpu->tensor_name(a, t); }
  }
  snprintf(what, sizeof what, "%s %s: worst grad rel L2 (%.20s)", c->name, mode, strchr(wn, '.') ? strchr(wn, '.') + 1 : wn);
  row("parity", what, worst, tol->grad, 0);
  if (!(worst <= tol->grad)) /* every tensor, to localise the kernel in one run */
    for (int t = 0; t < cpu->num_tensors(a); t++) {
      size_t o = cpu->tensor_offset(a, t), k = cpu->tensor_numel(a, t);
      printf("|         |   %-42s | %11.3g |\n", cpu->tensor_name(a, t), rel_l2(gpu->grads(g) + o, cpu->grads(a) + o, k));
    }
  /* eval log-probs, logits, embeddings */
  float *la = malloc((size_t)BT * V * 4), *lg = malloc((size_t)BT * V * 4), *ta = malloc(BT * 4), *tg = malloc(BT * 4);
  cpu->eval(a, tok, tgt, w, B, T, oa, ta);
  rg = gpu->eval(g, tok, tgt, w, B, T, og, tg);
  snprintf(what, sizeof what, "%s %s: eval log-probs rel L2", c->name, mode);
  row("parity", what, rg ? NAN : rel_l2(tg, ta, BT), tol->lp, 0);
  cpu->logits(a, tok, B, T, la);
  rg = gpu->logits(g, tok, B, T, lg);
  snprintf(what, sizeof what, "%s %s: logits rel L2", c->name, mode);
  row("parity", what, rg ? NAN : rel_l2(lg, la, (size_t)BT * V), tol->logits, 0);
  float *ea = malloc((size_t)B * c->C * 4), *eg = malloc((size_t)B * c->C * 4);
  float *mask = malloc(BT * 4); /* pooling mask: two positions in three */
  for (int i = 0; i < BT; i++) mask[i] = i % 3 ? 1.0f : 0.0f;
  cpu->embed(a, tok, mask, B, T, ea);
  rg = gpu->embed(g, tok, mask, B, T, eg);
  free(mask);
  snprintf(what, sizeof what, "%s %s: embeddings rel L2", c->name, mode);
  row("parity", what, rg ? NAN : rel_l2(eg, ea, (size_t)B * c->C), tol->embed, 0);
  /* greedy decisions and seeded draws */
  int32_t *sa = malloc(BT * 4), *sg = malloc(BT * 4);
  uint64_t r1 = 99, r2 = 99;
  cpu->sample(la, BT, V, 0.0f, 0, 1.0f, &r1, sa);
  gpu->sample(lg, BT, V, 0.0f, 0, 1.0f, &r2, sg);
  int agree = 0;
  for (int i = 0; i < BT; i++) agree += sa[i] == sg[i];
  snprintf(what, sizeof what, "%s %s: greedy tokens agreeing", c->name, mode);
  row("parity", what, (double)agree / BT, tol->greedy, 1);
  /* one optimizer step: compare the parameter updates */
  float *p0 = malloc(n * 4), hp[NR_HP_N], na = 0, ng = 0;
  memcpy(p0, pa, n * 4);
  cpu->step(a, tok, tgt, w, B, T, 1.0f / BT, oa);
  gpu->step(g, tok, tgt, w, B, T, 1.0f / BT, og);
  hyper(hp, 1.0f);
  hp[NR_HP_EPS] = 1e-3f; /* AdamW's first step is lr * sign(g) where |g| << eps: rounding would flip signs of ~0 entries */
  cpu->optim_step(a, hp, NR_HP_N, &na);
  rg = gpu->optim_step(g, hp, NR_HP_N, &ng);
  gpu->download(g);
  worst = 0;
  for (int t = 0; t < cpu->num_tensors(a); t++) {
    size_t o = cpu->tensor_offset(a, t), k = cpu->tensor_numel(a, t);
    float *da = malloc(k * 4), *dg = malloc(k * 4);
    for (size_t i = 0; i < k; i++) {
      da[i] = pa[o + i] - p0[o + i];
      dg[i] = pg[o + i] - p0[o + i];
    }
    double e = rel_l2(dg, da, k);
    if (!(e <= worst)) { worst = e; wn = cpu->tensor_name(a, t); }
    free(da);
    free(dg);
  }
  snprintf(what, sizeof what, "%s %s: AdamW+Muon update rel L2 (%.14s)", c->name, mode, strchr(wn, '.') ? strchr(wn, '.') + 1 : wn);
  row("parity", what, rg ? NAN : worst, tol->update, 0);
  snprintf(what, sizeof what, "%s %s: grad norm rel err", c->name, mode);
  row("parity", what, fabs(ng - na) / na, tol->loss * 5, 0);
  /* decode == full forward on the GPU: prefill 7, then 9 single tokens */
  int P = 7, S = 16;
  int32_t *seq = malloc(B * S * 4), *step = malloc(B * 4);
  for (int i = 0; i < B * S; i++) seq[i] = tok[i];
  float *full = malloc((size_t)B * S * V * 4), *lo = malloc((size_t)B * V * 4);
  gpu->logits(g, seq, B, S, full);
  nr_state *st = gpu->state_new(g, B, S);
  int32_t *pre = malloc(B * P * 4);
  for (int b = 0; b < B; b++) memcpy(pre + b * P, seq + b * S, P * 4);
  rg = !st || gpu->state_forward(g, st, pre, P, lo, 0);
  double dworst = 0;
  for (int t = P; t <= S && !rg; t++) {
    for (int b = 0; b < B; b++) {
      double e = rel_l2(lo + (size_t)b * V, full + ((size_t)b * S + t - 1) * V, V);
      dworst = e > dworst ? e : dworst;
    }
    if (t == S) break;
    for (int b = 0; b < B; b++) step[b] = seq[b * S + t];
    rg = gpu->state_forward(g, st, step, 1, lo, 0);
  }
  snprintf(what, sizeof what, "%s %s: decode vs forward rel L2", c->name, mode);
  row("parity", what, rg ? NAN : dworst, tol->decode, 0);
  gpu->state_free(st);
  cpu->model_free(a);
  gpu->model_free(g);
  free(tok); free(tgt); free(w); free(la); free(lg); free(ta); free(tg); free(ea); free(eg); free(sa); free(sg);
  free(p0); free(seq); free(step); free(full); free(lo); free(pre);
}

static const Cfg small_cfgs[] = {
    {"T", "TT", 97, 128, 2, 1, 16, 4, 2, 0, 128},         /* 2 query heads on 1 KV head, head_dim 64 */
    {"M", "MM", 97, 64, 4, 4, 16, 4, 2, 0, 128},          /* d_inner 128, d_state 16 */
    {"TMT", "TMT", 101, 48, 3, 1, 8, 3, 2, 1, 128},       /* MQA, d_inner 96 (partial warps), d_state 8, conv 3, Mamba MLP */
    {"MT-wide", "MT", 140000, 256, 2, 2, 16, 4, 2, 0, 128}, /* head_dim 128; 160 rows = two lm_head chunks */
};

static void phase_parity(Lib *cpu, Lib *gpu) {
  const Tol f32 = {1e-4, 3e-3, 1e-4, 1e-4, 1e-4, 3e-3, 1e-4, 0.99};
  const Tol b16 = {2e-2, 6e-2, 2e-2, 3e-2, 3e-2, 1.5e-1, 3e-2, 0.8};
  /* fp32 GEMMs (flash attention), the same with activation recomputation, bf16 (tensor-core attention
   * in training), bf16 with the flash attention */
  const char *names[] = {"fp32", "fp32-recompute", "bf16", "bf16-flash"};
  for (int mode = 0; mode < 4; mode++) {
    setenv("NANORAG_CUDA_FP32", mode < 2 ? "1" : "0", 1);
    setenv("NANORAG_CUDA_ATTN", mode == 3 ? "flash" : "auto", 1);
    for (size_t i = 0; i < sizeof small_cfgs / sizeof *small_cfgs; i++)
      parity_one(cpu, gpu, &small_cfgs[i], names[mode], mode < 2 ? &f32 : &b16, mode == 1);
  }
  setenv("NANORAG_CUDA_FP32", "0", 1);
  setenv("NANORAG_CUDA_ATTN", "auto", 1);
}

/* ---- 200 training steps ---- */
static void phase_train(Lib *gpu) {
  Cfg c = {"train", "TMTM", 256, 128, 2, 2, 16, 4, 2, 0, 256};
  nr_model *m = make(gpu, &c, 3);
  if (!m) { row("train", "small hybrid: model", NAN, 0, 0); return; }
  int B = 8, T = 128, BT = B * T, steps = 200;
  int32_t *tok = malloc((BT + 1) * 4);
  float hp[NR_HP_N];
  hyper(hp, 0.5f);
  double first = 0, last = 0, t0 = now();
  for (int s = 0; s < steps; s++) {
    /* a stream with a learnable rule: next = 7 prev + 3 (mod V) nine times in ten */
    tok[0] = (int32_t)(unif() * c.V);
    for (int i = 1; i <= BT; i++) tok[i] = unif() < 0.9 ? (7 * tok[i - 1] + 3) % c.V : (int32_t)(unif() * c.V);
    double o[2];
    if (gpu->step(m, tok, tok + 1, NULL, B, T, 1.0f / BT, o) || gpu->optim_step(m, hp, NR_HP_N, NULL)) {
      fprintf(stderr, "gpu_check: train: %s\n", gpu->last_error());
      row("train", "small hybrid: step", NAN, 0, 0);
      gpu->model_free(m);
      free(tok);
      return;
    }
    if (s < 10) first += o[0] / o[1] / 10;
    if (s >= steps - 10) last += o[0] / o[1] / 10;
  }
  char what[96];
  snprintf(what, sizeof what, "200 steps TMTM C=128: loss %.3f -> %.3f, ratio", first, last);
  row("train", what, last / first, 0.5, 0);
  snprintf(what, sizeof what, "%.1f s", now() - t0);
  info("train", "200 steps wall time", what);
  gpu->model_free(m);
  free(tok);
}

/* ---- NCCL with one rank ---- */
static void phase_nccl(Lib *gpu) {
  Cfg c = {"nccl", "TM", 256, 64, 2, 2, 8, 4, 2, 0, 64};
  nr_model *m = make(gpu, &c, 5);
  uint8_t id[128];
  if (!m || !gpu->comm_unique_id || gpu->comm_unique_id(id) || gpu->comm_init(id, 1, 0)) {
    fprintf(stderr, "gpu_check: nccl: %s\n", gpu->last_error());
    row("nccl", "one-rank communicator", NAN, 0, 0);
    if (m) gpu->model_free(m);
    return;
  }
  int B = 2, T = 32;
  int32_t tok[2 * 32 + 1];
  for (int i = 0; i <= B * T; i++) tok[i] = (int32_t)(unif() * c.V);
  double o[2];
  size_t n = (size_t)gpu->num_params(m);
  float *before = malloc(n * 4);
  int bad = gpu->step(m, tok, tok + 1, NULL, B, T, 1.0f / (B * T), o) || gpu->download(m);
  if (!bad) memcpy(before, gpu->grads(m), n * 4);
  double t0 = now();
  bad = bad || gpu->comm_allreduce(m) || gpu->download(m);
  double ms = (now() - t0) * 1e3;
  if (bad) fprintf(stderr, "gpu_check: nccl: %s\n", gpu->last_error());
  row("nccl", "all-reduce AVERAGE, 1 rank: grads rel L2", bad ? NAN : rel_l2(gpu->grads(m), before, n), 0, 0);
  char what[64];
  snprintf(what, sizeof what, "%.2f ms for %zu floats (with the download)", ms, n);
  info("nccl", "all-reduce time", what);
  gpu->comm_free();
  gpu->model_free(m);
  free(before);
}

/* ---- speed and memory ---- */
static double flops_per_token(const Cfg *c, int T) { /* src/engine/config.ts flopsPerToken, training */
  double C = c->C, hd = C / c->H, di = c->E * C, N = c->N, R = ceil(C / 16.0), mm = (double)c->V * C, attn = 0;
  for (const char *p = c->pattern; *p; p++) {
    if (*p == 'T') {
      mm += C * (c->H + 2 * c->Hkv) * hd + C * C + 2 * C * 4 * C;
      attn += 2 * c->H * hd * (T / 2.0) * 2;
    } else {
      mm += 2 * di * C + (R + 2 * N) * di + R * di + C * di;
    }
  }
  return 3 * (2 * mm + attn);
}

static double peak_flops(const char *info) {
  if (strstr(info, "H100 PCIe")) return 756e12;
  if (strstr(info, "H100") || strstr(info, "H200") || strstr(info, "GH200")) return 989e12;
  if (strstr(info, "A100")) return 312e12;
  return 989e12;
}

static char g_pat[3][2][32];
static Cfg d_cfg(int depth, int kind) { /* kind: 0 all-T, 1 all-M, 2 hybrid (8T+12M at d20, 5T+7M at d12) */
  int C = depth == 20 ? 1280 : 768, nT = kind == 0 ? depth : kind == 1 ? 0 : depth == 20 ? 8 : 5;
  char *p = g_pat[kind][depth == 20];
  for (int i = 0; i < depth; i++) p[i] = i < nT ? 'T' : 'M';
  p[depth] = 0;
  Cfg c = {kind == 0 ? "all-T" : kind == 1 ? "all-M" : "hybrid", p, 65536, C, C / 128, C / 128, 16, 4, 2, 0, 8192};
  return c;
}

static int random_step(Lib *L, nr_model *m, int V, int B, int T, double *secs) {
  int32_t *tok = malloc((size_t)B * T * 4 + 4);
  for (int i = 0; i <= B * T; i++) tok[i] = (int32_t)(unif() * V);
  double o[2], t0 = now();
  int r = L->step(m, tok, tok + 1, NULL, B, T, 1.0f / (B * T), o);
  *secs = now() - t0;
  free(tok);
  return r;
}

/* the seed's d20 configs at their contexts */
static const struct { const char *name; int kind, T, B; } mem_cfgs[] = {
    {"rag_hybrid_d20 8T+12M 4K B=4", 2, 4096, 4},
    {"rag_mamba_d20 20M 8K B=4", 1, 8192, 4},
    {"refrag_hybrid_d20 8T+12M 6K B=2", 2, 6144, 2},
};

/* on the GPU, with the speed runs' d20 hybrid and all-M models: what the model says it holds, and the
 * device memory in use after a training step (minus what was in use before the model existed) */
static void memory_for(Lib *gpu, nr_model *m, const Cfg *c, int kind, int64_t base_used) {
  char what[96], text[160];
  for (int i = 0; i < 3; i++)
    for (int rc = 1; rc >= 0 && mem_cfgs[i].kind == kind; rc--) {
      if (gpu->release_arena) gpu->release_arena(m); /* each row allocates exactly what it needs */
      gpu->set_recompute(m, rc);
      double s;
      int64_t used[2] = {0, 0};
      int r = random_step(gpu, m, c->V, mem_cfgs[i].B, mem_cfgs[i].T, &s);
      if (gpu->mem_used) gpu->mem_used(used);
      snprintf(what, sizeof what, "%s recompute %s", mem_cfgs[i].name, rc ? "on" : "off");
      if (r) snprintf(text, sizeof text, "did not run: %s", gpu->last_error());
      else snprintf(text, sizeof text, "model %.2f GB, device in use %.2f GB, step %.2f s", gpu->act_bytes(m) / 1e9,
                    (used[0] - base_used) / 1e9, s);
      info("memory", what, text);
    }
  gpu->set_recompute(m, 0);
}

/* without a GPU: the bytes the allocator will ask for (fixed buffers + arena), from the host layout */
static void phase_plan(Lib *gpu) {
  char what[96], text[160];
  if (!gpu->plan_bytes) { info("plan", "nrcuda_plan_bytes missing", ""); return; }
  for (int i = 0; i < 3; i++) {
    Cfg c = d_cfg(20, mem_cfgs[i].kind);
    int32_t ic[NR_CFG_N_INT] = {c.V, 20, c.C, c.H, c.Hkv, c.N, c.K, c.E, 0, c.mlp, c.seq, 4 * c.C};
    float fc[NR_FCFG_N] = {10000.0f, 15.0f, 1e-6f};
    int64_t b[3];
    if (gpu->plan_bytes(ic, NR_CFG_N_INT, fc, NR_FCFG_N, c.pattern, mem_cfgs[i].B, mem_cfgs[i].T, b)) {
      info("plan", mem_cfgs[i].name, gpu->last_error());
      continue;
    }
    snprintf(what, sizeof what, "%s", mem_cfgs[i].name);
    snprintf(text, sizeof text, "fixed %.2f GB + arena %.2f GB = %.2f GB; recompute: arena %.2f GB = %.2f GB",
             b[0] / 1e9, b[1] / 1e9, (b[0] + b[1]) / 1e9, b[2] / 1e9, (b[0] + b[2]) / 1e9);
    info("plan", what, text);
  }
}

/* the step's GPU time per section kind (profile.cu's ProfKind order), per step */
static void profile_row(Lib *gpu, const char *what, int steps) {
  static const char *kinds[] = {"embed/norms", "T GEMMs+norms+RoPE", "attention", "MLP", "M GEMMs+conv", "scan",
                                "classifier", "optimizer"};
  double ms[16];
  if (!gpu->profile_read) return;
  int n = gpu->profile_read(ms);
  gpu->profile(0);
  char text[400];
  int o = 0;
  for (int k = 0; k < n && k < 8; k++)
    if (ms[k] > 0) o += snprintf(text + o, sizeof text - o, "%s%s %.1f", o ? ", " : "ms/step: ", kinds[k], ms[k] / steps);
  info("profile", what, o ? text : "no sections recorded");
}

/* B=8, T=2048: a warm-up step, then 3 timed steps + optimizer updates; one info and one profile row; tokens/s */
static double speed_of(Lib *gpu, nr_model *m, const Cfg *c, const char *what, double peak) {
  int B = 8, T = 2048;
  float hp[NR_HP_N];
  hyper(hp, 0.1f);
  double s, fb = 0, opt = 0; /* forward + backward, optimizer */
  int r = random_step(gpu, m, c->V, B, T, &s) || gpu->optim_step(m, hp, NR_HP_N, NULL); /* warm-up */
  if (gpu->profile) gpu->profile(1);
  for (int k = 0; k < 3 && !r; k++) {
    r = random_step(gpu, m, c->V, B, T, &s);
    double t0 = now();
    r = r || gpu->optim_step(m, hp, NR_HP_N, NULL);
    fb += s;
    opt += now() - t0;
  }
  if (r) fprintf(stderr, "gpu_check: speed %s: %s\n", what, gpu->last_error());
  double tps = r ? NAN : 3.0 * B * T / (fb + opt);
  double tps8 = r ? NAN : 3.0 * B * T / (fb + opt / 8); /* the optimizer once per 8 micro-steps, as the d20 configs */
  char text[200];
  snprintf(text, sizeof text, "%.0f tokens/s, MFU %.1f%% (%.1f%% with 8 micro-steps per update), step %.0f + optim %.0f ms, %.2f GB",
           tps, 100 * tps * flops_per_token(c, T) / peak, 100 * tps8 * flops_per_token(c, T) / peak, fb / 3 * 1e3,
           opt / 3 * 1e3, gpu->act_bytes(m) / 1e9);
  info("speed", what, text);
  profile_row(gpu, what, 3);
  return tps;
}

static void phase_speed(Lib *gpu, double budget_s, int with_memory) {
  double peak = peak_flops(gpu->engine_info()), t_start = now();
  char what[96], text[160];
  snprintf(text, sizeof text, "%s; peak %.0f TFLOP/s bf16", gpu->engine_info(), peak / 1e12);
  info("speed", "device", text);
  for (int depth = 20; depth >= 12; depth -= 8) /* d20 first: the goals and the memory rows */
    for (int kind = 0; kind < 3; kind++) {
      if (now() - t_start > budget_s) { info("speed", "skipped (phase budget spent)", ""); return; }
      Cfg c = d_cfg(depth, kind);
      int64_t base[2] = {0, 0};
      if (gpu->mem_used) gpu->mem_used(base);
      nr_model *m = make(gpu, &c, 1);
      if (!m) { row("speed", "model", NAN, 0, 0); continue; }
      snprintf(what, sizeof what, "d%d %s B=8 T=2048", depth, c.name);
      double tps = speed_of(gpu, m, &c, what, peak);
      if (depth == 20 && kind == 0) row("speed", "d20 all-T MFU (goal 0.40)", tps * flops_per_token(&c, 2048) / peak, 0.40, 1);
      if (depth == 20 && with_memory) memory_for(gpu, m, &c, kind, base[0]);
      gpu->model_free(m);
      if (depth == 20 && kind == 0) { /* the same with the flash attention kernel instead of cuBLAS over the T x T square */
        setenv("NANORAG_CUDA_ATTN", "flash", 1);
        if ((m = make(gpu, &c, 1))) {
          speed_of(gpu, m, &c, "d20 all-T, flash attention", peak);
          gpu->model_free(m);
        }
        unsetenv("NANORAG_CUDA_ATTN");
      }
    }
}

static void phase_scan(Lib *gpu) {
  if (!gpu->bench_scan) { info("scan", "nrcuda_bench_scan missing", ""); return; }
  char what[96], text[128];
  for (int T = 512; T <= 16384; T *= 2) {
    float ms[2];
    int r = gpu->bench_scan(1, T, 2560, 16, 5, ms);
    snprintf(what, sizeof what, "scan B=1 T=%d d_inner=2560 N=16", T);
    if (r) snprintf(text, sizeof text, "failed: %s", gpu->last_error());
    else snprintf(text, sizeof text, "fwd %.3f ms, bwd %.3f ms", ms[0], ms[1]);
    info("scan", what, text);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: gpu_check CPU_LIB CUDA_LIB [host|plan|parity|train|speed|memory|scan|nccl ...]\n");
    return 2;
  }
  Lib cpu, gpu;
  if (load(&cpu, argv[1]) || load(&gpu, argv[2])) return 2;
  int (*set_threads)(int) = (int (*)(int))dlsym(cpu.h, "nr_set_threads"); /* the CPU reference on 8 threads */
  if (set_threads) set_threads(8);
  int all = argc == 3;
#define WANT(p) (all ? strcmp(p, "host") != 0 && strcmp(p, "plan") != 0 : ({ int f_ = 0; for (int i_ = 3; i_ < argc; i_++) f_ |= !strcmp(argv[i_], p); f_; }))
  printf("| phase   | check                                        |       value | limit        | ok   |\n");
  printf("|---------|----------------------------------------------|-------------|--------------|------|\n");
  char why[4096];
  int nd = gpu.device_count(why, sizeof why);
  char text[4200];
  snprintf(text, sizeof text, "%d%s%s", nd, nd ? "" : ": ", nd ? "" : why);
  info("host", "CUDA devices", text);
  info("host", "versions", cpu.version());
  if (WANT("plan")) phase_plan(&gpu); /* host-side: no GPU needed */
  if (WANT("host") || (!all && argc == 4 && WANT("plan"))) return 0;
  if (nd < 1) {
    fprintf(stderr, "gpu_check: no usable CUDA device: %s\n", why);
    return 1;
  }
  const char *budget = getenv("GPU_CHECK_SPEED_BUDGET_S");
  double t0 = now();
  if (WANT("parity")) phase_parity(&cpu, &gpu);
  printf("| time    | after parity: %.0f s\n", now() - t0);
  if (WANT("train")) phase_train(&gpu);
  printf("| time    | after train: %.0f s\n", now() - t0);
  if (WANT("scan")) phase_scan(&gpu);
  if (WANT("nccl")) phase_nccl(&gpu);
  if (WANT("speed") || WANT("memory")) phase_speed(&gpu, budget ? atof(budget) : 150, WANT("memory"));
  printf("| time    | total: %.0f s\n", now() - t0);
  return g_fail;
}
