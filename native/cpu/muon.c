/* Muon (nanochat / Keller Jordan): Nesterov momentum, then the quintic Newton-Schulz orthogonalisation
 * (a, b, c) = (3.4445, -4.7750, 2.0315) in fp32, then p -= lr * sqrt(max(1, rows/cols)) * O.
 * Optional decoupled weight decay p *= 1 - lr*wd. */
#include <stdlib.h>
#include <string.h>
#include "common.h"

/* tid >= 0: single-threaded on that pool thread (scratch slot 1); tid < 0: threaded GEMMs */
void muon_update(float *p, const float *g, float *buf, int rows, int cols, float lr, float mom, float wd, int ns_steps,
                 float gscale, int tid) {
  size_t n = (size_t)rows * cols;
  int tr = rows > cols, mr = tr ? cols : rows, nc = tr ? rows : cols; /* X is mr x nc, mr <= nc */
  float *X = tid >= 0 ? pool_scratch(tid, 1, 2 * n + 2 * (size_t)mr * mr) : malloc((2 * n + 2 * (size_t)mr * mr) * sizeof(float));
  float *base = X, *X2 = X + n, *A = X2 + n, *B2 = A + (size_t)mr * mr;
#define GEMM(ta, tb, M_, N_, K_, A_, lda, B_, ldb, C_, ldc, acc) \
  (tid >= 0 ? sgemm_st(ta, tb, M_, N_, K_, A_, lda, B_, ldb, C_, ldc, acc, tid) : sgemm(ta, tb, M_, N_, K_, A_, lda, B_, ldb, C_, ldc, acc))
  double ss = 0;
  for (size_t i = 0; i < n; i++) {
    float gg = g[i] * gscale;
    buf[i] = mom * buf[i] + (1.0f - mom) * gg;
    float u = (1.0f - mom) * gg + mom * buf[i];
    if (tr) X[(i % cols) * rows + i / cols] = u;
    else X[i] = u;
    ss += (double)u * u;
  }
  float inv = (float)(1.0 / (sqrt(ss) + 1e-7));
  for (size_t i = 0; i < n; i++) X[i] *= inv;
  const float a = 3.4445f, b = -4.7750f, c = 2.0315f;
  for (int it = 0; it < ns_steps; it++) {
    GEMM(0, 1, mr, mr, nc, X, nc, X, nc, A, mr, 0);           /* A = X X^T */
    GEMM(0, 0, mr, mr, mr, A, mr, A, mr, B2, mr, 0);          /* B2 = A A */
    for (size_t i = 0; i < (size_t)mr * mr; i++) B2[i] = b * A[i] + c * B2[i];
    memcpy(X2, X, n * sizeof(float));
    for (size_t i = 0; i < n; i++) X2[i] *= a;
    GEMM(0, 0, mr, nc, mr, B2, mr, X, nc, X2, nc, 1);         /* X2 = a X + B2 X */
    float *t = X; X = X2; X2 = t;
  }
  float scale = lr * sqrtf(fmaxf(1.0f, (float)rows / (float)cols));
  float decay = 1.0f - lr * wd;
  for (size_t i = 0; i < n; i++) {
    float o = tr ? X[(i % cols) * rows + i / cols] : X[i];
    p[i] = p[i] * decay - scale * o;
  }
  if (tid < 0) free(base);
#undef GEMM
}
