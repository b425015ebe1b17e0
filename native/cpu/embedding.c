/* Token embedding (wte): forward gathers rows, backward scatters (+=) in token order (deterministic). */
#include <string.h>
#include "common.h"

void embedding_forward(float *out, const int32_t *tok, const float *wte, int BT, int C) {
  for (int i = 0; i < BT; i++) memcpy(out + (size_t)i * C, wte + (size_t)tok[i] * C, C * sizeof(float));
}

typedef struct {
  float *dwte;
  const float *dout;
  const int32_t *tok;
  int BT, C, V;
} EmbCtx;

/* each task owns a vocabulary range, so no two threads write one row */
static void emb_bwd(void *c, int b, int e, int tid) {
  EmbCtx *x = c;
  for (int i = 0; i < x->BT; i++) {
    int t = x->tok[i];
    if (t < b || t >= e) continue;
    float *d = x->dwte + (size_t)t * x->C;
    const float *g = x->dout + (size_t)i * x->C;
    for (int j = 0; j < x->C; j++) d[j] += g[j];
  }
}

void embedding_backward(float *dwte, const float *dout, const int32_t *tok, int BT, int C, int V) {
  EmbCtx x = {dwte, dout, tok, BT, C, V};
  if (pool_size() == 1 || BT < 256) emb_bwd(&x, 0, V, 0);
  else pool_for(emb_bwd, &x, V, 1);
}
