/* lm_head + soft cap + weighted cross-entropy, fused with its backward (llm.c style): rows are done in
 * chunks of CLS_CHUNK so the full B*T x V logits never exist; dlogits overwrite the chunk's logits.
 * With cap > 0: l = cap * tanh(raw / cap), dl/draw = 1 - (l/cap)^2. */
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

static void rows_task(void *c, int i0, int i1, int tid) {
  RowCtx *x = c;
  int V = x->V;
  for (int i = i0; i < i1; i++) {
    int r = x->r0 + i;
    float *l = x->L + (size_t)i * V;
    if (x->cap > 0)
      for (int j = 0; j < V; j++) l[j] = x->cap * tanhf(l[j] / x->cap);
    if (x->only_logits) continue;
    int t = x->tgt[r];
    float w = x->w ? x->w[r] : 1.0f;
    if (t < 0) {
      x->lossrow[r] = 0.0f;
      if (x->tlp) x->tlp[r] = 0.0f;
      if (x->grad) memset(l, 0, V * sizeof(float));
      continue;
    }
    float mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = l[j] > mx ? l[j] : mx;
    double sum = 0;
    for (int j = 0; j < V; j++) sum += exp((double)l[j] - mx);
    double lse = mx + log(sum);
    float ce = (float)(lse - l[t]);
    x->lossrow[r] = ce;
    if (x->tlp) x->tlp[r] = -ce;
    if (x->grad) {
      float g = w * x->gscale;
      for (int j = 0; j < V; j++) {
        float p = (float)exp((double)l[j] - lse);
        float d = g * (p - (j == t ? 1.0f : 0.0f));
        if (x->cap > 0) {
          float th = l[j] / x->cap;
          d *= 1.0f - th * th;
        }
        l[j] = d;
      }
    }
  }
}

void classifier(nr_model *m, const float *xf, const int32_t *targets, const float *weights, int BT, float grad_scale,
                float *dxf, double *out, float *token_logprobs, float *logits_out) {
  Config *c = &m->c;
  int V = c->V, C = c->C;
  const float *W = PW(m, m->lm_head);
  for (int r0 = 0; r0 < BT; r0 += CLS_CHUNK) {
    int rows = BT - r0 < CLS_CHUNK ? BT - r0 : CLS_CHUNK;
    float *L = logits_out ? logits_out + (size_t)r0 * V : m->a.logits;
    matmul_forward(L, V, xf + (size_t)r0 * C, C, W, rows, V, C, 0);
    RowCtx x = {L, targets, weights, m->a.lossrow, token_logprobs, r0, V, dxf != NULL, logits_out != NULL, c->softcap,
                grad_scale};
    pool_for(rows_task, &x, rows, 4);
    if (dxf) {
      matmul_backward_dw(GW(m, m->lm_head), L, V, xf + (size_t)r0 * C, C, rows, V, C);
      matmul_backward_dx(dxf + (size_t)r0 * C, C, L, V, W, rows, V, C, 0);
    }
  }
  if (out && !logits_out) {
    double s = 0, ws = 0;
    for (int r = 0; r < BT; r++) {
      if (targets[r] < 0) continue;
      double w = weights ? weights[r] : 1.0;
      s += w * m->a.lossrow[r];
      ws += w;
    }
    out[0] = s;
    out[1] = ws;
  }
}
