/* Model: config, the flat parameter layout (one buffer, named views in nanochat / mamba_ssm order),
 * initialisation, the activation arena, and the forward/backward passes over the block pattern. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

/* ---- deterministic RNG (splitmix64) ---- */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double rng_unif(uint64_t *s) { return (rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
static double rng_normal(uint64_t *s) {
  double u1 = rng_unif(s), u2 = rng_unif(s);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- layout ---- */
static size_t add_tensor(nr_model *m, int *cap, const char *name, int group, int ndim, int d0, int d1, int d2) {
  if (m->ntensors == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    m->tensors = realloc(m->tensors, *cap * sizeof(Tensor));
  }
  Tensor *t = &m->tensors[m->ntensors++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = ndim;
  t->shape[0] = d0; t->shape[1] = d1; t->shape[2] = d2;
  t->n = (size_t)d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
  t->off = m->nparams;
  t->group = group;
  m->nparams += t->n;
  return t->off;
}

static int validate(const int32_t *ic, int nic, const float *fc, int nfc, const char *pattern, Config *c) {
  if (nic != NR_CFG_N_INT) return nr_fail("config: expected %d integer fields, got %d", NR_CFG_N_INT, nic);
  if (nfc != NR_FCFG_N) return nr_fail("config: expected %d float fields, got %d", NR_FCFG_N, nfc);
  if (!pattern) return nr_fail("config: block_pattern is missing");
  memset(c, 0, sizeof *c);
  c->V = ic[NR_CFG_VOCAB]; c->L = ic[NR_CFG_N_LAYER]; c->C = ic[NR_CFG_N_EMBD]; c->H = ic[NR_CFG_N_HEAD];
  c->Hkv = ic[NR_CFG_N_KV_HEAD]; c->N = ic[NR_CFG_D_STATE]; c->K = ic[NR_CFG_D_CONV]; c->E = ic[NR_CFG_EXPAND];
  c->R = ic[NR_CFG_DT_RANK]; c->mamba_mlp = ic[NR_CFG_MAMBA_MLP]; c->seq_len = ic[NR_CFG_SEQ_LEN];
  c->F = ic[NR_CFG_MLP_HIDDEN];
  c->rope_base = fc[NR_FCFG_ROPE_BASE]; c->softcap = fc[NR_FCFG_SOFTCAP]; c->eps = fc[NR_FCFG_NORM_EPS];
  size_t pl = strlen(pattern);
  if (pl < 1 || pl > 256) return nr_fail("config: block_pattern must have 1..256 letters, got %zu", pl);
  if ((int)pl != c->L) return nr_fail("config: n_layer (%d) != length of block_pattern (%zu)", c->L, pl);
  int hasT = 0, hasM = 0;
  for (size_t i = 0; i < pl; i++) {
    if (pattern[i] == 'T') hasT = 1;
    else if (pattern[i] == 'M') hasM = 1;
    else return nr_fail("config: block_pattern may only contain 'T' and 'M', got '%c' at %zu", pattern[i], i);
  }
  memcpy(c->pattern, pattern, pl + 1);
  if (c->V < 2 || c->V > (1 << 24)) return nr_fail("config: vocab_size must be in [2, 2^24], got %d", c->V);
  if (c->C < 8 || c->C > 65536) return nr_fail("config: n_embd must be in [8, 65536], got %d", c->C);
  if (c->seq_len < 1 || c->seq_len > (1 << 20)) return nr_fail("config: sequence_len must be in [1, 2^20], got %d", c->seq_len);
  if (!(c->eps > 0 && c->eps < 1)) return nr_fail("config: norm_eps must be in (0, 1)");
  if (!(c->softcap >= 0)) return nr_fail("config: logit_softcap must be >= 0 (0 = off)");
  if (hasT || c->mamba_mlp) {
    if (c->F < 1) return nr_fail("config: mlp_hidden must be >= 1, got %d", c->F);
  }
  if (hasT) {
    if (c->H < 1 || c->C % c->H) return nr_fail("config: n_head (%d) must divide n_embd (%d)", c->H, c->C);
    c->hd = c->C / c->H;
    if (c->hd % 2) return nr_fail("config: head_dim (%d) must be even for RoPE", c->hd);
    if (c->Hkv < 1 || c->H % c->Hkv) return nr_fail("config: n_kv_head (%d) must divide n_head (%d)", c->Hkv, c->H);
    if (!(c->rope_base > 1)) return nr_fail("config: rope_base must be > 1");
  } else {
    c->hd = c->H > 0 && c->C % c->H == 0 ? c->C / c->H : 2;
    if (c->Hkv < 1) c->Hkv = 1;
  }
  if (hasM) {
    if (c->N < 1 || c->N > 64) return nr_fail("config: mamba d_state must be in [1, 64], got %d", c->N);
    if (c->K < 1 || c->K > 16) return nr_fail("config: mamba d_conv must be in [1, 16], got %d", c->K);
    if (c->E < 1 || c->E > 8) return nr_fail("config: mamba expand must be in [1, 8], got %d", c->E);
    c->di = c->E * c->C;
    if (c->di % 8) return nr_fail("config: mamba d_inner = expand*n_embd (%d) must be a multiple of 8", c->di);
    if (c->R == 0) c->R = (c->C + 15) / 16;
    if (c->R < 1 || c->R > c->di) return nr_fail("config: mamba dt_rank must be in [1, d_inner], got %d", c->R);
  }
  return 0;
}

static void fill_normal(float *p, size_t n, double std, uint64_t *s) {
  for (size_t i = 0; i < n; i++) p[i] = (float)(rng_normal(s) * std);
}
static void fill_unif(float *p, size_t n, double a, uint64_t *s) {
  for (size_t i = 0; i < n; i++) p[i] = (float)((2.0 * rng_unif(s) - 1.0) * a);
}
static double lin_std(int fan_out, int fan_in) {
  double r = sqrt((double)fan_out / fan_in);
  return (1.0 / sqrt(fan_in)) * (r < 1 ? r : 1);
}

nr_model *nr_model_new(const int32_t *icfg, int n_icfg, const float *fcfg, int n_fcfg, const char *pattern,
                       uint32_t seed) {
  Config c;
  if (validate(icfg, n_icfg, fcfg, n_fcfg, pattern, &c)) return NULL;
  nr_model *m = calloc(1, sizeof *m);
  m->c = c;
  m->layers = calloc(c.L, sizeof(Layer));
  int cap = 0;
  char nm[96];
  int C = c.C, hd = c.hd, qd = (c.H + 2 * c.Hkv) * hd, di = c.di, N = c.N, R = c.R, K = c.K, F = c.F;
  m->wte = add_tensor(m, &cap, "transformer.wte.weight", NR_GROUP_EMBED, 2, c.V, C, 0);
  for (int i = 0; i < c.L; i++) {
    Layer *l = &m->layers[i];
    l->kind = c.pattern[i];
#define T2(field, suffix, group, d0, d1)                              \
  snprintf(nm, sizeof nm, "transformer.h.%d.%s", i, suffix);          \
  l->field = add_tensor(m, &cap, nm, group, 2, d0, d1, 0)
    if (l->kind == 'T') {
      l->has_mlp = 1;
      T2(wqkv, "attn.c_q.weight", NR_GROUP_MATRIX, c.H * hd, C);
      snprintf(nm, sizeof nm, "transformer.h.%d.attn.c_k.weight", i);
      add_tensor(m, &cap, nm, NR_GROUP_MATRIX, 2, c.Hkv * hd, C, 0);
      snprintf(nm, sizeof nm, "transformer.h.%d.attn.c_v.weight", i);
      add_tensor(m, &cap, nm, NR_GROUP_MATRIX, 2, c.Hkv * hd, C, 0);
      T2(wo, "attn.c_proj.weight", NR_GROUP_MATRIX, C, c.H * hd);
    } else {
      l->has_mlp = c.mamba_mlp;
      T2(win, "mixer.in_proj.weight", NR_GROUP_MATRIX, 2 * di, C);
      snprintf(nm, sizeof nm, "transformer.h.%d.mixer.conv1d.weight", i);
      l->convw = add_tensor(m, &cap, nm, NR_GROUP_VECTOR, 3, di, 1, K);
      snprintf(nm, sizeof nm, "transformer.h.%d.mixer.conv1d.bias", i);
      l->convb = add_tensor(m, &cap, nm, NR_GROUP_VECTOR, 1, di, 0, 0);
      T2(wx, "mixer.x_proj.weight", NR_GROUP_VECTOR, R + 2 * N, di);
      T2(wdt, "mixer.dt_proj.weight", NR_GROUP_VECTOR, di, R);
      snprintf(nm, sizeof nm, "transformer.h.%d.mixer.dt_proj.bias", i);
      l->dtb = add_tensor(m, &cap, nm, NR_GROUP_VECTOR, 1, di, 0, 0);
      T2(alog, "mixer.A_log", NR_GROUP_VECTOR, di, N);
      snprintf(nm, sizeof nm, "transformer.h.%d.mixer.D", i);
      l->dskip = add_tensor(m, &cap, nm, NR_GROUP_VECTOR, 1, di, 0, 0);
      T2(wout, "mixer.out_proj.weight", NR_GROUP_MATRIX, C, di);
    }
    if (l->has_mlp) {
      T2(wfc, "mlp.c_fc.weight", NR_GROUP_MATRIX, F, C);
      T2(wproj, "mlp.c_proj.weight", NR_GROUP_MATRIX, C, F);
    }
#undef T2
  }
  m->lm_head = add_tensor(m, &cap, "lm_head.weight", NR_GROUP_HEAD, 2, c.V, C, 0);
  (void)qd;
  size_t bytes = m->nparams * sizeof(float);
  m->params = aligned_alloc(64, (bytes + 63) / 64 * 64);
  m->grads = aligned_alloc(64, (bytes + 63) / 64 * 64);
  m->m = aligned_alloc(64, (bytes + 63) / 64 * 64);
  m->v = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!m->params || !m->grads || !m->m || !m->v) {
    nr_fail("out of memory allocating %zu parameters", m->nparams);
    nr_model_free(m);
    return NULL;
  }
  memset(m->params, 0, bytes); memset(m->grads, 0, bytes); memset(m->m, 0, bytes); memset(m->v, 0, bytes);
  /* init, in tensor order */
  uint64_t s = 0x5EED000000000000ull ^ seed;
  for (int ti = 0; ti < m->ntensors; ti++) {
    Tensor *t = &m->tensors[ti];
    float *p = m->params + t->off;
    const char *nmx = strrchr(t->name, '.');
    const char *base = t->name;
    if (!strcmp(base, "transformer.wte.weight")) fill_normal(p, t->n, 1.0, &s);
    else if (!strcmp(base, "lm_head.weight")) { /* zeros */ }
    else if (strstr(base, "c_proj.weight") || strstr(base, "mixer.out_proj.weight")) { /* zeros */ }
    else if (strstr(base, ".attn.c_") || strstr(base, ".mlp.c_fc")) fill_normal(p, t->n, lin_std(t->shape[0], t->shape[1]), &s);
    else if (strstr(base, "mixer.in_proj")) fill_normal(p, t->n, 1.0 / sqrt(C), &s);
    else if (strstr(base, "mixer.conv1d")) fill_unif(p, t->n, 1.0 / sqrt(K), &s);
    else if (strstr(base, "mixer.x_proj")) fill_unif(p, t->n, 1.0 / sqrt(di), &s);
    else if (strstr(base, "mixer.dt_proj.weight")) fill_unif(p, t->n, 1.0 / sqrt(R), &s);
    else if (strstr(base, "mixer.dt_proj.bias")) {
      for (size_t i = 0; i < t->n; i++) {
        double dt = exp(log(0.001) + rng_unif(&s) * (log(0.1) - log(0.001)));
        if (dt < 1e-4) dt = 1e-4;
        p[i] = (float)(dt + log(-expm1(-dt)));
      }
    } else if (strstr(base, "mixer.A_log")) {
      for (int d = 0; d < di; d++)
        for (int n = 0; n < N; n++) p[d * N + n] = logf((float)(n + 1));
    } else if (strstr(base, "mixer.D")) {
      for (size_t i = 0; i < t->n; i++) p[i] = 1.0f;
    }
    (void)nmx;
  }
  /* rope tables (fp32) */
  if (strchr(c.pattern, 'T')) {
    int h2 = hd / 2;
    m->rope_cos = malloc((size_t)c.seq_len * h2 * sizeof(float));
    m->rope_sin = malloc((size_t)c.seq_len * h2 * sizeof(float));
    for (int t = 0; t < c.seq_len; t++)
      for (int j = 0; j < h2; j++) {
        double inv = pow(c.rope_base, -2.0 * j / hd), th = t * inv;
        m->rope_cos[(size_t)t * h2 + j] = (float)cos(th);
        m->rope_sin[(size_t)t * h2 + j] = (float)sin(th);
      }
  }
  return m;
}

void nr_model_free(nr_model *m) {
  if (!m) return;
  free(m->tensors); free(m->layers); free(m->params); free(m->grads); free(m->m); free(m->v);
  free(m->rope_cos); free(m->rope_sin); free(m->a.mem);
  free(m);
}

int64_t nr_model_num_params(const nr_model *m) { return (int64_t)m->nparams; }
float *nr_model_params(nr_model *m) { return m->params; }
float *nr_model_grads(nr_model *m) { return m->grads; }
float *nr_model_opt_m(nr_model *m) { return m->m; }
float *nr_model_opt_v(nr_model *m) { return m->v; }
int64_t nr_model_opt_step(const nr_model *m) { return m->opt_step; }
void nr_model_set_opt_step(nr_model *m, int64_t s) { m->opt_step = s; }
int nr_model_num_tensors(const nr_model *m) { return m->ntensors; }
const char *nr_model_tensor_name(const nr_model *m, int i) { return i >= 0 && i < m->ntensors ? m->tensors[i].name : ""; }
int nr_model_tensor_ndim(const nr_model *m, int i) { return i >= 0 && i < m->ntensors ? m->tensors[i].ndim : 0; }
int nr_model_tensor_dim(const nr_model *m, int i, int d) {
  return i >= 0 && i < m->ntensors && d >= 0 && d < m->tensors[i].ndim ? m->tensors[i].shape[d] : 0;
}
int64_t nr_model_tensor_offset(const nr_model *m, int i) { return i >= 0 && i < m->ntensors ? (int64_t)m->tensors[i].off : -1; }
int64_t nr_model_tensor_numel(const nr_model *m, int i) { return i >= 0 && i < m->ntensors ? (int64_t)m->tensors[i].n : 0; }
int nr_model_tensor_group(const nr_model *m, int i) { return i >= 0 && i < m->ntensors ? m->tensors[i].group : -1; }

int64_t nr_model_act_bytes(const nr_model *m) { return (int64_t)m->a.cap * 4; }

/* The CPU build keeps every activation (its contexts fit host memory); recomputation is a CUDA option. */
int nr_set_recompute(nr_model *m, int on) {
  return on ? nr_fail("activation recomputation is a CUDA-build option; the CPU build keeps every activation") : 0;
}

void nr_zero_grad(nr_model *m) { memset(m->grads, 0, m->nparams * sizeof(float)); }

/* ---- activation arena ---- */
#define MAX(a, b) ((a) > (b) ? (a) : (b))
/* Carve the arena (or, with base == NULL, just measure it): one pass for both, so they agree. */
static size_t carve(nr_model *m, float *base, int B, int T, int train) {
  Acts *a = &m->a;
  Config *c = &m->c;
  size_t BT = (size_t)B * T, C = c->C, qd = (size_t)(c->H + 2 * c->Hkv) * c->hd, di = c->di,
         xw = c->R + 2 * c->N, F = c->F;
  size_t off = 0;
#define TAKE(n) (off += (((size_t)(n) + 15) & ~(size_t)15), base ? base + off - (((size_t)(n) + 15) & ~(size_t)15) : NULL)
  for (int i = 0; i < c->L; i++) {
    Layer *l = &m->layers[i];
    l->xn1 = TAKE(BT * C); l->rstd1 = TAKE(BT);
    if (l->kind == 'T') {
      l->qkvn = TAKE(BT * qd); l->qkr = TAKE(BT * (c->H + c->Hkv)); l->att = TAKE(BT * c->H * c->hd);
      l->P = train ? TAKE((size_t)B * c->H * T * T) : NULL;
    } else {
      l->xz = TAKE(BT * 2 * di); l->u = TAKE(BT * di); l->delta = TAKE(BT * di); l->y = TAKE(BT * di);
      l->o = TAKE(BT * di); l->xdbl = TAKE(BT * xw);
    }
    if (l->has_mlp) { l->xn2 = TAKE(BT * C); l->rstd2 = TAKE(BT); l->fc = TAKE(BT * F); l->act = TAKE(BT * F); }
  }
  a->x = TAKE(BT * C); a->x0n = TAKE(BT * C); a->xf = TAKE(BT * C);
  a->rstd0 = TAKE(BT); a->rstdf = TAKE(BT); a->lossrow = TAKE(BT);
  a->logits = TAKE((size_t)cls_chunk(c->V) * c->V); a->Abuf = TAKE(di * c->N + 16);
  if (train) {
    a->dx = TAKE(BT * C); a->dxn = TAKE(BT * C);
    a->db1 = TAKE(BT * MAX(MAX(F, (size_t)c->H * c->hd), 2 * di));
    a->db2 = TAKE(BT * MAX(qd, xw));
    a->dd1 = TAKE(BT * di); a->dd2 = TAKE(BT * di); a->dd3 = TAKE(BT * di);
    a->dbc = TAKE((di / 8) * BT * 2 * c->N);
  } else {
    a->dx = a->dxn = a->db1 = a->db2 = a->dd1 = a->dd2 = a->dd3 = a->dbc = NULL;
  }
#undef TAKE
  return off;
}

int acts_ensure(nr_model *m, int B, int T, int train) {
  Acts *a = &m->a;
  if (a->mem && a->B == B && a->T == T && a->train == train) return 0;
  size_t need = carve(m, NULL, B, T, train);
  if (need > a->cap) {
    free(a->mem);
    a->mem = aligned_alloc(64, need * sizeof(float));
    if (!a->mem) {
      a->cap = 0;
      a->B = a->T = 0;
      return nr_fail("out of memory: activations for B=%d T=%d need %.1f MB", B, T, need * 4.0 / 1e6);
    }
    a->cap = need;
  }
  carve(m, a->mem, B, T, train);
  a->B = B; a->T = T; a->train = train;
  return 0;
}

/* ---- passes ---- */
void model_forward(nr_model *m, const int32_t *tok, int B, int T, nr_state *s) {
  Config *c = &m->c;
  Acts *a = &m->a;
  int BT = B * T;
  embedding_forward(a->x, tok, PW(m, m->wte), BT, c->C);
  rmsnorm_forward(a->x0n, a->rstd0, a->x, BT, c->C, c->eps);
  memcpy(a->x, a->x0n, (size_t)BT * c->C * sizeof(float));
  for (int i = 0; i < c->L; i++) {
    Layer *l = &m->layers[i];
    if (l->kind == 'T') attn_block_forward(m, l, B, T, s, i);
    else mamba_block_forward(m, l, B, T, s, i);
  }
  rmsnorm_forward(a->xf, a->rstdf, a->x, BT, c->C, c->eps);
}

/* expects d(xf) in a->dxn */
void model_backward(nr_model *m, const int32_t *tok, int B, int T) {
  Config *c = &m->c;
  Acts *a = &m->a;
  int BT = B * T;
  rmsnorm_backward(a->dx, a->dxn, a->xf, a->rstdf, BT, c->C, 0);
  for (int i = c->L - 1; i >= 0; i--) {
    Layer *l = &m->layers[i];
    if (l->kind == 'T') attn_block_backward(m, l, B, T);
    else mamba_block_backward(m, l, B, T);
  }
  rmsnorm_backward(a->dxn, a->dx, a->x0n, a->rstd0, BT, c->C, 0);
  embedding_backward(GW(m, m->wte), a->dxn, tok, BT, c->C, c->V);
}

int model_check_batch(nr_model *m, const int32_t *tok, const int32_t *tgt, int B, int T) {
  if (!m) return nr_fail("model handle is NULL");
  if (B < 1 || T < 1) return nr_fail("batch shape must be positive, got B=%d T=%d", B, T);
  if (T > m->c.seq_len) return nr_fail("sequence length %d exceeds the model's sequence_len %d", T, m->c.seq_len);
  if ((int64_t)B * T > (1 << 26)) return nr_fail("batch too large: B*T=%lld", (long long)B * T);
  for (int i = 0; i < B * T; i++) {
    if (tok[i] < 0 || tok[i] >= m->c.V) return nr_fail("token %d at position %d is outside [0, %d)", tok[i], i, m->c.V);
    if (tgt && (tgt[i] < -1 || tgt[i] >= m->c.V))
      return nr_fail("target %d at position %d is outside [-1, %d)", tgt[i], i, m->c.V);
  }
  return 0;
}

int nr_step(nr_model *m, const int32_t *tok, const int32_t *tgt, const float *w, int B, int T, float grad_scale,
            double *out) {
  if (model_check_batch(m, tok, tgt, B, T)) return -1;
  if (acts_ensure(m, B, T, 1)) return -1;
  model_forward(m, tok, B, T, NULL);
  double o[2];
  classifier(m, m->a.xf, tgt, w, B * T, grad_scale, m->a.dxn, o, NULL, NULL);
  model_backward(m, tok, B, T);
  if (out) { out[0] = o[0]; out[1] = o[1]; }
  return 0;
}

int nr_eval(nr_model *m, const int32_t *tok, const int32_t *tgt, const float *w, int B, int T, double *out,
            float *token_logprobs) {
  if (model_check_batch(m, tok, tgt, B, T)) return -1;
  if (acts_ensure(m, B, T, 0)) return -1;
  model_forward(m, tok, B, T, NULL);
  double o[2];
  classifier(m, m->a.xf, tgt, w, B * T, 0.0f, NULL, o, token_logprobs, NULL);
  if (out) { out[0] = o[0]; out[1] = o[1]; }
  return 0;
}

int nr_logits(nr_model *m, const int32_t *tok, int B, int T, float *out) {
  if (model_check_batch(m, tok, NULL, B, T)) return -1;
  if (acts_ensure(m, B, T, 0)) return -1;
  model_forward(m, tok, B, T, NULL);
  classifier(m, m->a.xf, NULL, NULL, B * T, 0.0f, NULL, NULL, NULL, out);
  return 0;
}

int nr_embed(nr_model *m, const int32_t *tok, const float *mask, int B, int T, float *out) {
  if (model_check_batch(m, tok, NULL, B, T)) return -1;
  if (acts_ensure(m, B, T, 0)) return -1;
  model_forward(m, tok, B, T, NULL);
  int C = m->c.C;
  for (int b = 0; b < B; b++) {
    double *acc = calloc(C, sizeof(double)), ws = 0;
    for (int t = 0; t < T; t++) {
      float w = mask ? mask[b * T + t] : 1.0f;
      if (w == 0) continue;
      const float *x = m->a.xf + ((size_t)b * T + t) * C;
      for (int j = 0; j < C; j++) acc[j] += (double)w * x[j];
      ws += w;
    }
    for (int j = 0; j < C; j++) out[(size_t)b * C + j] = ws != 0 ? (float)(acc[j] / ws) : 0.0f;
    free(acc);
  }
  return 0;
}

/* ---- optimizer step ---- */
typedef struct {
  const float *g;
  size_t n;
  double *part;
} NormCtx2;

static void norm_task(void *c, int t, int tid) {
  NormCtx2 *x = c;
  size_t b = (size_t)t * 65536, e = b + 65536 > x->n ? x->n : b + 65536;
  x->part[t] = dot_f64(x->g + b, x->g + b, (long)(e - b));
}

typedef struct {
  float *p, *g, *buf;
  int rows, cols;
} MuonJob;
typedef struct {
  MuonJob *jobs;
  float lr, mom, wd, gs;
  int ns;
} MuonCtx;
static void muon_task(void *c, int i, int tid) {
  MuonCtx *x = c;
  MuonJob *j = &x->jobs[i];
  muon_update(j->p, j->g, j->buf, j->rows, j->cols, x->lr, x->mom, x->wd, x->ns, x->gs, tid);
}

int nr_optim_step(nr_model *m, const float *hp, int n_hp, float *out_norm) {
  if (n_hp != NR_HP_N) return nr_fail("optimizer: expected %d hyper-parameters, got %d", NR_HP_N, n_hp);
  for (int i = 0; i < NR_HP_N; i++)
    if (!isfinite(hp[i])) return nr_fail("optimizer: hyper-parameter %d is not finite", i);
  int nchunks = (int)((m->nparams + 65535) / 65536);
  double *part = calloc(nchunks, sizeof(double));
  NormCtx2 nc = {m->grads, m->nparams, part};
  pool_run(norm_task, &nc, nchunks);
  double ss = 0;
  for (int i = 0; i < nchunks; i++) ss += part[i];
  free(part);
  float norm = (float)sqrt(ss);
  if (out_norm) *out_norm = norm;
  if (!isfinite(norm)) {
    nr_zero_grad(m);
    return nr_fail("optimizer: gradient norm is not finite (%g); step skipped", norm);
  }
  float clip = hp[NR_HP_GRAD_CLIP];
  float gs = clip > 0 && norm > clip ? clip / (norm + 1e-6f) : 1.0f;
  m->opt_step++;
  float b1 = hp[NR_HP_BETA1], b2 = hp[NR_HP_BETA2];
  float bc1 = 1.0f - powf(b1, (float)m->opt_step), bc2 = 1.0f - powf(b2, (float)m->opt_step);
  int ns = (int)hp[NR_HP_NS_STEPS];
  MuonJob *jobs = malloc(sizeof(MuonJob) * 2 * m->ntensors);
  int njobs = 0;
  size_t big = 0;
  for (int i = 0; i < m->ntensors; i++) {
    Tensor *t = &m->tensors[i];
    float *p = m->params + t->off, *g = m->grads + t->off, *mm = m->m + t->off, *vv = m->v + t->off;
    switch (t->group) {
      case NR_GROUP_EMBED:
        adamw_update(p, g, mm, vv, t->n, hp[NR_HP_LR_EMBED], b1, b2, hp[NR_HP_EPS], hp[NR_HP_WEIGHT_DECAY], bc1, bc2, gs);
        break;
      case NR_GROUP_HEAD:
        adamw_update(p, g, mm, vv, t->n, hp[NR_HP_LR_HEAD], b1, b2, hp[NR_HP_EPS], hp[NR_HP_WEIGHT_DECAY], bc1, bc2, gs);
        break;
      case NR_GROUP_VECTOR:
        adamw_update(p, g, mm, vv, t->n, hp[NR_HP_LR_VECTOR], b1, b2, hp[NR_HP_EPS], 0.0f, bc1, bc2, gs);
        break;
      default: {
        int rows = t->shape[0], cols = t->shape[1];
        int parts = strstr(t->name, "in_proj") ? 2 : 1; /* in_proj: x half and z half separately */
        int pr = rows / parts;
        for (int k = 0; k < parts; k++) {
          size_t o = (size_t)k * pr * cols;
          jobs[njobs++] = (MuonJob){p + o, g + o, mm + o, pr, cols};
          if ((size_t)pr * cols > big) big = (size_t)pr * cols;
        }
      }
    }
  }
  /* Muon: small matrices one per thread (each single-threaded, so results do not depend on the
   * split); large ones one at a time with threaded GEMMs */
  MuonCtx mc = {jobs, hp[NR_HP_LR_MATRIX], hp[NR_HP_MUON_MOMENTUM], hp[NR_HP_MUON_WEIGHT_DECAY], gs, ns};
  if (big <= 512 * 512) {
    pool_run(muon_task, &mc, njobs);
  } else {
    for (int i = 0; i < njobs; i++)
      muon_update(jobs[i].p, jobs[i].g, jobs[i].buf, jobs[i].rows, jobs[i].cols, mc.lr, mc.mom, mc.wd, ns, gs, -1);
  }
  free(jobs);
  nr_zero_grad(m);
  return 0;
}
