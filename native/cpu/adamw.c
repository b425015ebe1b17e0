/* AdamW with decoupled weight decay (torch semantics): p *= 1 - lr*wd; m,v lerp; p -= lr/bc1 * m / (sqrt(v/bc2) + eps).
 * gscale multiplies the gradient first (global-norm clipping). */
#include "common.h"

typedef struct {
  float *p, *mm, *vv;
  const float *g;
  float lr, b1, b2, eps, wd, bc1, bc2, gs;
} AdamCtx;

static void task(void *c, int b, int e, int tid) {
  AdamCtx *x = c;
  for (size_t i = (size_t)b * 4096; i < (size_t)e * 4096; i++) {
    float g = x->g[i] * x->gs;
    float m = x->mm[i] = x->b1 * x->mm[i] + (1.0f - x->b1) * g;
    float v = x->vv[i] = x->b2 * x->vv[i] + (1.0f - x->b2) * g * g;
    float p = x->p[i] * (1.0f - x->lr * x->wd);
    x->p[i] = p - (x->lr / x->bc1) * m / (sqrtf(v / x->bc2) + x->eps);
  }
}

void adamw_update(float *p, const float *g, float *mm, float *vv, size_t n, float lr, float b1, float b2, float eps,
                  float wd, float bc1, float bc2, float gscale) {
  AdamCtx x = {p, mm, vv, g, lr, b1, b2, eps, wd, bc1, bc2, gscale};
  size_t full = n / 4096;
  if (full) pool_for(task, &x, (int)full, 4);
  AdamCtx t = x; /* tail */
  t.p += full * 4096; t.mm += full * 4096; t.vv += full * 4096; t.g += full * 4096;
  for (size_t i = 0; i < n - full * 4096; i++) {
    float gg = t.g[i] * gscale;
    float m = t.mm[i] = b1 * t.mm[i] + (1.0f - b1) * gg;
    float v = t.vv[i] = b2 * t.vv[i] + (1.0f - b2) * gg * gg;
    float pp = t.p[i] * (1.0f - lr * wd);
    t.p[i] = pp - (lr / bc1) * m / (sqrtf(v / bc2) + eps);
  }
}
