/* Mamba's causal depthwise conv1d (weight d x 1 x K, bias d) followed by SiLU:
 * p_t[c] = b[c] + sum_k w[c,k] x_{t-K+1+k}[c], u = silu(p). x comes from the first half of xz rows.
 * prev (B x (K-1) x d, may be NULL) holds the inputs before t = 0 (inference state), oldest first. */
#include <string.h>
#include "common.h"

typedef struct {
  float *u, *dxz, *dw, *db, *dp;
  const float *xz, *w, *b, *prev, *du;
  int xs, dxs, B, T, d, K;
  float *wT; /* K x d transposed weights */
} ConvCtx;

static float *transpose_w(const float *w, int d, int K) {
  float *wT = pool_scratch(0, 0, (size_t)K * d);
  for (int ch = 0; ch < d; ch++)
    for (int k = 0; k < K; k++) wT[(size_t)k * d + ch] = w[(size_t)ch * K + k];
  return wT;
}

static inline float xin(const ConvCtx *c, int b, int s, int ch) {
  if (s >= 0) return c->xz[((size_t)b * c->T + s) * c->xs + ch];
  if (!c->prev) return 0.0f;
  return c->prev[((size_t)b * (c->K - 1) + (c->K - 1 + s)) * c->d + ch];
}

/* p for one row into out[d] */
static void conv_row(const ConvCtx *c, int row, float *out) {
  int b = row / c->T, t = row % c->T, d = c->d, K = c->K;
  for (int ch = 0; ch < d; ch++) out[ch] = c->b[ch];
  for (int k = 0; k < K; k++) {
    int s = t - K + 1 + k;
    const float *w = c->wT + (size_t)k * d;
    if (s >= 0) {
      const float *x = c->xz + ((size_t)b * c->T + s) * c->xs;
      for (int ch = 0; ch < d; ch++) out[ch] += w[ch] * x[ch];
    } else if (c->prev) {
      for (int ch = 0; ch < d; ch++) out[ch] += w[ch] * xin(c, b, s, ch);
    }
  }
}

static void fwd(void *cx, int r0, int r1, int tid) {
  ConvCtx *c = cx;
  for (int r = r0; r < r1; r++) {
    float *u = c->u + (size_t)r * c->d;
    conv_row(c, r, u);
    for (int ch = 0; ch < c->d; ch += 8) { /* d % 8 == 0 */
      v8 p = *(v8 *)(u + ch);
      *(v8 *)(u + ch) = p * v8_sigmoid(p);
    }
  }
}

void conv1d_forward(float *u, const float *xz, int xs, const float *w, const float *b, const float *prev, int B, int T,
                    int d, int K) {
  ConvCtx c = {.u = u, .xz = xz, .w = w, .b = b, .prev = prev, .xs = xs, .B = B, .T = T, .d = d, .K = K};
  c.wT = transpose_w(w, d, K);
  pool_for(fwd, &c, B * T, 32);
}

static void bwd_dp(void *cx, int r0, int r1, int tid) {
  ConvCtx *c = cx;
  for (int r = r0; r < r1; r++) {
    float *dp = c->dp + (size_t)r * c->d;
    const float *du = c->du + (size_t)r * c->d;
    conv_row(c, r, dp);
    for (int ch = 0; ch < c->d; ch += 8) {
      v8 p = *(v8 *)(dp + ch), sg = v8_sigmoid(p), one = v8_set1(1.0f);
      *(v8 *)(dp + ch) = *(const v8 *)(du + ch) * sg * (one + p * (one - sg));
    }
  }
}

/* channel-range tasks: each owns dw, db and dx for its channels. Weights and their gradient are
 * handled transposed ([k][ch]) so that the inner loops run over contiguous channels. */
static void bwd_ch(void *cx, int c0, int c1, int tid) {
  ConvCtx *c = cx;
  int K = c->K, T = c->T, d = c->d, n = c1 - c0;
  float *wT = pool_scratch(tid, 0, (size_t)2 * K * n + n), *dwT = wT + (size_t)K * n, *dbl = dwT + (size_t)K * n;
  for (int k = 0; k < K; k++)
    for (int j = 0; j < n; j++) {
      wT[(size_t)k * n + j] = c->w[(size_t)(c0 + j) * K + k];
      dwT[(size_t)k * n + j] = 0.0f;
    }
  for (int j = 0; j < n; j++) dbl[j] = 0.0f;
  for (int b = 0; b < c->B; b++)
    for (int t = 0; t < T; t++) {
      size_t row = (size_t)b * T + t;
      const float *dp = c->dp + row * d + c0;
      float *dx = c->dxz + row * c->dxs + c0;
      for (int j = 0; j < n; j++) dbl[j] += dp[j];
      for (int j = 0; j < n; j++) dx[j] = 0.0f;
      for (int k = 0; k < K; k++) {
        int s = t - K + 1 + k;
        if (s >= 0) {
          const float *x = c->xz + ((size_t)b * T + s) * c->xs + c0;
          float *dw = dwT + (size_t)k * n;
          for (int j = 0; j < n; j++) dw[j] += dp[j] * x[j];
        }
        int tt = t + K - 1 - k; /* dx_t gets w[k] * dp_{t+K-1-k} */
        if (tt < T) {
          const float *dq = c->dp + ((size_t)b * T + tt) * d + c0, *w = wT + (size_t)k * n;
          for (int j = 0; j < n; j++) dx[j] += w[j] * dq[j];
        }
      }
    }
  for (int k = 0; k < K; k++)
    for (int j = 0; j < n; j++) c->dw[(size_t)(c0 + j) * K + k] += dwT[(size_t)k * n + j];
  for (int j = 0; j < n; j++) c->db[c0 + j] += dbl[j];
}

void conv1d_backward(float *dxz, int dxs, float *dw, float *db, const float *du, const float *xz, int xs,
                             const float *w, const float *b, int B, int T, int d, int K, float *dp) {
  ConvCtx c = {.dxz = dxz, .dw = dw, .db = db, .dp = dp, .xz = xz, .w = w, .b = b, .du = du,
               .xs = xs, .dxs = dxs, .B = B, .T = T, .d = d, .K = K};
  c.wT = transpose_w(w, d, K);
  pool_for(bwd_dp, &c, B * T, 32);
  /* each channel's sums run over (b, t) in order, whatever the chunking */
  pool_for(bwd_ch, &c, d, 32);
}
