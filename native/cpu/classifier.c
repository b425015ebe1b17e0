/* lm_head + soft cap + weighted cross-entropy, fused with its backward (llm.c style): rows are done in
 * chunks of cls_chunk(V) rows so the full B*T x V logits never exist; dlogits overwrite the chunk's logits.
 * With cap > 0: l = cap * tanh(raw / cap), dl/draw = 1 - (l/cap)^2. */
#include <stdlib.h>
#include <string.h>
#include "common.h"

typedef struct {
  float *L;          /* chunk logits (rows x V) */
  const int32_t *tgt;
  const float *w;
  float *lossrow, *tlp;
  int r0, V, grad, only_logits;
  float cap, gscale;
} RowCtx;

/* vectorised: cap, max, exp, sum, then (p - onehot) * g * (1 - tanh^2) */
static void rows_task(void *c, int i0, int i1, int tid) {
  RowCtx *x = c;
  int V = x->V, V8 = V & ~7;
  float cap = x->cap;
  for (int i = i0; i < i1; i++) {
    int r = x->r0 + i;
    float *l = x->L + (size_t)i * V;
    if (cap > 0) {
      v8 ic = v8_set1(2.0f / cap), vc = v8_set1(cap), one = v8_set1(1.0f), two = v8_set1(2.0f);
      int j = 0;
      for (; j < V8; j += 8) {
        v8 e = v8_exp(*(v8 *)(l + j) * ic);
        *(v8 *)(l + j) = vc * (one - two / (e + one));
      }
      for (; j < V; j++) l[j] = cap * tanhf(l[j] / cap);
    }
    if (x->only_logits) continue;
    int t = x->tgt[r];
    float w = x->w ? x->w[r] : 1.0f;
    if (t < 0) {
      x->lossrow[r] = 0.0f;
      if (x->tlp) x->tlp[r] = 0.0f;
      if (x->grad) memset(l, 0, V * sizeof(float));
      continue;
    }
    float mx = vmax_f(l, V);
    float lt = l[t];
    float *e = pool_scratch(tid, 1, V);
    v8 vm = v8_set1(mx), acc = v8_set1(0.0f);
    double sum = 0;
    int j = 0;
    for (; j < V8; j += 8) {
      v8 ev = v8_exp(*(v8 *)(l + j) - vm);
      *(v8 *)(e + j) = ev;
      acc += ev;
      if ((j & 1023) == 1016) { sum += v8_sum(acc); acc = v8_set1(0.0f); }
    }
    sum += v8_sum(acc);
    for (; j < V; j++) { e[j] = expf(l[j] - mx); sum += e[j]; }
    double lse = mx + log(sum);
    float ce = (float)(lse - lt);
    x->lossrow[r] = ce;
    if (x->tlp) x->tlp[r] = -ce;
    if (x->grad) {
      float g = w * x->gscale, gi = (float)(g / sum);
      v8 vg = v8_set1(gi);
      if (cap > 0) {
        v8 icap = v8_set1(1.0f / cap), one = v8_set1(1.0f);
        for (j = 0; j < V8; j += 8) {
          v8 th = *(v8 *)(l + j) * icap;
          *(v8 *)(l + j) = vg * *(v8 *)(e + j) * (one - th * th);
        }
        for (; j < V; j++) { float th = l[j] / cap; l[j] = gi * e[j] * (1.0f - th * th); }
        float th = lt / cap;
        l[t] -= g * (1.0f - th * th);
      } else {
        for (j = 0; j < V8; j += 8) *(v8 *)(l + j) = vg * *(v8 *)(e + j);
        for (; j < V; j++) l[j] = gi * e[j];
        l[t] -= g;
      }
    }
  }
}

/* the chunked lm_head + loss over `BT` rows; lossrow gets CE per row */
static void classifier_rows(nr_model *m, const float *xf, const int32_t *targets, const float *weights, int BT,
                            float grad_scale, float *dxf, float *lossrow, float *token_logprobs, float *logits_out) {
  Config *c = &m->c;
  int V = c->V, C = c->C;
  const float *W = PW(m, m->lm_head);
  int CH = cls_chunk(V);
  for (int r0 = 0; r0 < BT; r0 += CH) {
    int rows = BT - r0 < CH ? BT - r0 : CH;
    float *L = logits_out ? logits_out + (size_t)r0 * V : m->a.logits;
    matmul_forward(L, V, xf + (size_t)r0 * C, C, W, rows, V, C, 0);
    RowCtx x = {L, targets, weights, lossrow, token_logprobs, r0, V, dxf != NULL, logits_out != NULL, c->softcap,
                grad_scale};
    pool_for(rows_task, &x, rows, 4);
    if (dxf) {
      matmul_backward_dw(GW(m, m->lm_head), L, V, xf + (size_t)r0 * C, C, rows, V, C);
      matmul_backward_dx(dxf + (size_t)r0 * C, C, L, V, W, rows, V, C, 0);
    }
  }
}

/* Rows that cannot contribute (target -1, or weight 0 when training) are dropped before the lm_head:
 * with SFT masks most tokens carry no loss, and the vocabulary projection is the largest matmul. */
static float *g_cbuf;
static size_t g_ccap;

void classifier(nr_model *m, const float *xf, const int32_t *targets, const float *weights, int BT, float grad_scale,
                float *dxf, double *out, float *token_logprobs, float *logits_out) {
  if (logits_out || !targets) {
    classifier_rows(m, xf, targets, weights, BT, grad_scale, dxf, m->a.lossrow, token_logprobs, logits_out);
    return;
  }
  int C = m->c.C;
  int32_t *idx = malloc(sizeof(int32_t) * (size_t)BT);
  int nv = 0;
  for (int r = 0; r < BT; r++)
    if (targets[r] >= 0 && (!dxf || !weights || weights[r] != 0.0f)) idx[nv++] = r;
  if (nv == BT) {
    classifier_rows(m, xf, targets, weights, BT, grad_scale, dxf, m->a.lossrow, token_logprobs, NULL);
  } else {
    /* compact: xc (nv x C) | dxc (nv x C) | lc (nv) | tlc (nv) | wc (nv) ; tc as int after */
    size_t need = (size_t)nv * C * 2 + (size_t)nv * 4 + 64;
    if (need > g_ccap) {
      free(g_cbuf);
      g_cbuf = aligned_alloc(64, (need * 4 + 63) / 64 * 64);
      g_ccap = need;
    }
    float *xc = g_cbuf, *dxc = xc + (size_t)nv * C, *lc = dxc + (size_t)nv * C, *tlc = lc + nv, *wc = tlc + nv;
    int32_t *tc = (int32_t *)(wc + nv);
    for (int i = 0; i < nv; i++) {
      int r = idx[i];
      memcpy(xc + (size_t)i * C, xf + (size_t)r * C, C * sizeof(float));
      tc[i] = targets[r];
      wc[i] = weights ? weights[r] : 1.0f;
    }
    if (nv > 0)
      classifier_rows(m, xc, tc, wc, nv, grad_scale, dxf ? dxc : NULL, lc, token_logprobs ? tlc : NULL, NULL);
    for (int r = 0; r < BT; r++) m->a.lossrow[r] = 0.0f;
    for (int i = 0; i < nv; i++) m->a.lossrow[idx[i]] = lc[i];
    if (token_logprobs) {
      for (int r = 0; r < BT; r++) token_logprobs[r] = 0.0f;
      for (int i = 0; i < nv; i++) token_logprobs[idx[i]] = tlc[i];
    }
    if (dxf) {
      memset(dxf, 0, (size_t)BT * C * sizeof(float));
      for (int i = 0; i < nv; i++) memcpy(dxf + (size_t)idx[i] * C, dxc + (size_t)i * C, C * sizeof(float));
    }
  }
  free(idx);
  if (out) {
    double s = 0, ws = 0;
    for (int r = 0; r < BT; r++) {
      if (targets[r] < 0) continue;
      double w = weights ? weights[r] : 1.0;
      if (w != 0) s += w * m->a.lossrow[r];
      ws += w;
    }
    out[0] = s;
    out[1] = ws;
  }
}
