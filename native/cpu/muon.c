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
  /* X[r][c] (or X[c][r] when transposed) by nested loops: a division and a modulo per element cost
   * more than the update itself */
  for (int r = 0; r < rows; r++) {
    size_t i = (size_t)r * cols;
    for (int c2 = 0; c2 < cols; c2++, i++) {
      float gg = g[i] * gscale;
      buf[i] = mom * buf[i] + (1.0f - mom) * gg;
      float u = (1.0f - mom) * gg + mom * buf[i];
      X[tr ? (size_t)c2 * rows + r : i] = u;
    }
  }
  double ss = dot_f64(X, X, (long)n);
  float inv = (float)(1.0 / (sqrt(ss) + 1e-7));
  for (size_t i = 0; i < n; i++) X[i] *= inv;
  const float a = 3.4445f, b = -4.7750f, c = 2.0315f;
  /* Dst (mr x mr) = Src Src^T, symmetric: only the lower block triangle is multiplied (row blocks of 64
   * against the rows above them), then mirrored; same sums in the same order as the full product. */
#define SYMGRAM(Src, n_, Dst)                                                                            \
  do {                                                                                                  \
    for (int i0 = 0; i0 < mr; i0 += 64) {                                                               \
      int rr = mr - i0 < 64 ? mr - i0 : 64;                                                             \
      GEMM(0, 1, rr, i0 + rr, n_, Src + (size_t)i0 * (n_), n_, Src, n_, Dst + (size_t)i0 * mr, mr, 0); \
    }                                                                                                   \
    for (int r = 0; r < mr; r++)                                                                        \
      for (int c2 = r + 1; c2 < mr; c2++) Dst[(size_t)r * mr + c2] = Dst[(size_t)c2 * mr + r];          \
  } while (0)
  for (int it = 0; it < ns_steps; it++) {
    SYMGRAM(X, nc, A);                                        /* A = X X^T */
    SYMGRAM(A, mr, B2);                                       /* B2 = A A = A A^T (A symmetric) */
    for (size_t i = 0; i < (size_t)mr * mr; i++) B2[i] = b * A[i] + c * B2[i];
    for (size_t i = 0; i < n; i++) X2[i] = X[i] * a;
    GEMM(0, 0, mr, nc, mr, B2, mr, X, nc, X2, nc, 1);         /* X2 = a X + B2 X */
    float *t = X; X = X2; X2 = t;
  }
  float scale = lr * sqrtf(fmaxf(1.0f, (float)rows / (float)cols));
  float decay = 1.0f - lr * wd;
  for (int r = 0; r < rows; r++) {
    size_t i = (size_t)r * cols;
    for (int c2 = 0; c2 < cols; c2++, i++) p[i] = p[i] * decay - scale * X[tr ? (size_t)c2 * rows + r : i];
  }
  if (tid < 0) free(base);
#undef GEMM
#undef SYMGRAM
}
