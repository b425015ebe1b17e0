/* Inference: a state with a KV cache per T layer and conv + SSM state per M layer, fed by prefill
 * (Tn > 1) and decode (Tn == 1) through the same layer code as training; and sampling. */
#include <stdlib.h>
#include <string.h>
#include "common.h"

nr_state *nr_state_new(nr_model *m, int B, int max_len) {
  if (!m) { nr_fail("model handle is NULL"); return NULL; }
  if (B < 1 || max_len < 1) { nr_fail("state: B and max_len must be positive"); return NULL; }
  if (max_len > m->c.seq_len) {
    nr_fail("state: max_len %d exceeds the model's sequence_len %d", max_len, m->c.seq_len);
    return NULL;
  }
  Config *c = &m->c;
  nr_state *s = calloc(1, sizeof *s);
  s->B = B; s->max_len = max_len; s->L = c->L;
  s->kc = calloc(c->L, sizeof(float *)); s->vc = calloc(c->L, sizeof(float *));
  s->conv = calloc(c->L, sizeof(float *)); s->ssm = calloc(c->L, sizeof(float *));
  for (int i = 0; i < c->L; i++) {
    if (c->pattern[i] == 'T') {
      size_t n = (size_t)B * max_len * c->Hkv * c->hd;
      s->kc[i] = calloc(n, sizeof(float)); s->vc[i] = calloc(n, sizeof(float));
      s->bytes += 2 * n * sizeof(float);
    } else {
      size_t nc = (size_t)B * (c->K > 1 ? c->K - 1 : 1) * c->di, ns = (size_t)B * c->di * c->N;
      s->conv[i] = calloc(nc, sizeof(float)); s->ssm[i] = calloc(ns, sizeof(float));
      s->bytes += (nc + ns) * sizeof(float);
    }
  }
  return s;
}

void nr_state_free(nr_state *s) {
  if (!s) return;
  for (int i = 0; i < s->L; i++) { free(s->kc[i]); free(s->vc[i]); free(s->conv[i]); free(s->ssm[i]); }
  free(s->kc); free(s->vc); free(s->conv); free(s->ssm);
  free(s);
}

int nr_state_pos(const nr_state *s) { return s ? s->pos : -1; }
int64_t nr_state_bytes(const nr_state *s) { return s ? (int64_t)s->bytes : 0; }

void nr_state_reset(nr_state *s) {
  if (!s) return;
  s->pos = 0;
}

int nr_state_forward(nr_model *m, nr_state *s, const int32_t *tok, int Tn, float *logits, int all_positions) {
  if (!m || !s) return nr_fail("model or state handle is NULL");
  if (Tn < 1) return nr_fail("state_forward: need at least one token");
  if (s->pos + Tn > s->max_len)
    return nr_fail("state is full: position %d + %d tokens exceeds max_len %d", s->pos, Tn, s->max_len);
  int B = s->B, V = m->c.V, C = m->c.C;
  for (int i = 0; i < B * Tn; i++)
    if (tok[i] < 0 || tok[i] >= V) return nr_fail("token %d at position %d is outside [0, %d)", tok[i], i, V);
  if (s->pos == 0) { /* fresh sequence: clear recurrent state */
    for (int i = 0; i < m->c.L; i++)
      if (m->c.pattern[i] == 'M') {
        memset(s->conv[i], 0, (size_t)B * (m->c.K > 1 ? m->c.K - 1 : 1) * m->c.di * sizeof(float));
        memset(s->ssm[i], 0, (size_t)B * m->c.di * m->c.N * sizeof(float));
      }
  }
  if (acts_ensure(m, B, Tn, 0)) return -1;
  /* One row per step: ~15 parallel regions of 10-200 us each, where waking a second thread costs as
   * much as the region, and on a loaded machine a descheduled worker stalls every one of them (2
   * threads measured 2x slower than 1, docs/benchmarks.md "Decode"). Results do not depend on it. */
  pool_serial(B * Tn == 1);
  model_forward(m, tok, B, Tn, s);
  s->pos += Tn;
  if (all_positions) {
    classifier(m, m->a.xf, NULL, NULL, B * Tn, 0.0f, NULL, NULL, NULL, logits);
  } else {
    float *tmp = malloc((size_t)B * C * sizeof(float));
    for (int b = 0; b < B; b++)
      memcpy(tmp + (size_t)b * C, m->a.xf + ((size_t)b * Tn + Tn - 1) * C, C * sizeof(float));
    classifier(m, tmp, NULL, NULL, B, 0.0f, NULL, NULL, NULL, logits);
    free(tmp);
  }
  pool_serial(0);
  return 0;
}

/* ---- sampling ---- */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct { float l; int i; } LI;
static int cmp_desc(const void *a, const void *b) {
  const LI *x = a, *y = b;
  if (x->l != y->l) return x->l < y->l ? 1 : -1;
  return x->i - y->i;
}

int nr_sample(const float *logits, int B, int V, float temperature, int top_k, float top_p, uint64_t *rng,
              int32_t *out) {
  if (V < 1 || B < 1) return nr_fail("sample: bad shape");
  if (!rng) return nr_fail("sample: rng state is NULL");
  LI *buf = malloc((size_t)V * sizeof(LI));
  for (int b = 0; b < B; b++) {
    const float *l = logits + (size_t)b * V;
    if (!(temperature > 0)) {
      int best = 0;
      for (int j = 1; j < V; j++) if (l[j] > l[best]) best = j;
      out[b] = best;
      continue;
    }
    for (int j = 0; j < V; j++) { buf[j].l = l[j] / temperature; buf[j].i = j; }
    int n = V;
    if ((top_k > 0 && top_k < V) || top_p < 1.0f) {
      qsort(buf, V, sizeof(LI), cmp_desc);
      if (top_k > 0 && top_k < n) n = top_k;
    }
    float mx = buf[0].l;
    for (int j = 1; j < n; j++) if (buf[j].l > mx) mx = buf[j].l;
    double sum = 0;
    double *p = malloc((size_t)n * sizeof(double));
    for (int j = 0; j < n; j++) { p[j] = exp((double)buf[j].l - mx); sum += p[j]; }
    if (top_p < 1.0f && top_p > 0) { /* smallest prefix (sorted) with mass >= top_p */
      double c = 0;
      int k = 0;
      while (k < n) { c += p[k] / sum; k++; if (c >= top_p) break; }
      n = k;
      sum = 0;
      for (int j = 0; j < n; j++) sum += p[j];
    }
    double r = (rng_next(rng) >> 11) * (1.0 / 9007199254740992.0) * sum, c = 0;
    int pick = buf[n - 1].i;
    for (int j = 0; j < n; j++) { c += p[j]; if (r < c) { pick = buf[j].i; break; } }
    out[b] = pick;
    free(p);
  }
  free(buf);
  return 0;
}
