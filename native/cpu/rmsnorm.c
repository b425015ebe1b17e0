/* RMSNorm without a gain: y = x / sqrt(mean(x^2) + eps); backward dx = r * (dy - y * mean(dy*y)). */
#include "common.h"

typedef struct {
  float *y, *rstd, *dx;
  const float *x, *dy, *yc, *rc;
  int C, acc;
  float eps;
} NormCtx;

static void fwd(void *c, int b, int e, int tid) {
  NormCtx *n = c;
  int C = n->C;
  for (int r = b; r < e; r++) {
    const float *x = n->x + (size_t)r * C;
    float *y = n->y + (size_t)r * C;
    double ss = dot_f64(x, x, C);
    float rs = (float)(1.0 / sqrt(ss / C + n->eps));
    for (int j = 0; j < C; j++) y[j] = x[j] * rs;
    if (n->rstd) n->rstd[r] = rs;
  }
}

void rmsnorm_forward(float *y, float *rstd, const float *x, int rows, int C, float eps) {
  NormCtx n = {.y = y, .rstd = rstd, .x = x, .C = C, .eps = eps};
  if (rows < 64) fwd(&n, 0, rows, 0);
  else pool_for(fwd, &n, rows, 32);
}

static void bwd(void *c, int b, int e, int tid) {
  NormCtx *n = c;
  int C = n->C;
  for (int r = b; r < e; r++) {
    const float *dy = n->dy + (size_t)r * C, *y = n->yc + (size_t)r * C;
    float *dx = n->dx + (size_t)r * C;
    double s = dot_f64(dy, y, C);
    float mean = (float)(s / C), rs = n->rc[r];
    if (n->acc)
      for (int j = 0; j < C; j++) dx[j] += rs * (dy[j] - y[j] * mean);
    else
      for (int j = 0; j < C; j++) dx[j] = rs * (dy[j] - y[j] * mean);
  }
}

void rmsnorm_backward(float *dx, const float *dy, const float *y, const float *rstd, int rows, int C, int acc) {
  NormCtx n = {.dx = dx, .dy = dy, .yc = y, .rc = rstd, .C = C, .acc = acc};
  if (rows < 64) bwd(&n, 0, rows, 0);
  else pool_for(bwd, &n, rows, 32);
}
