/* Mamba's causal depthwise conv1d (weight d x 1 x K, bias d) + SiLU over the x half of xz rows:
 * p_t[c] = b[c] + sum_k w[c,k] x_{t-K+1+k}[c], u = silu(p). prev (B x (K-1) x d, may be NULL) holds
 * the inputs before t = 0 (inference state), oldest first. Weight and bias gradients are reduced over
 * rows in segments, then over segments in order (deterministic). */
#include "common.cuh"

__device__ __forceinline__ float conv_in(const float *xz, int xs, const float *prev, int b, int T, int s, int c, int d,
                                         int K) {
  if (s >= 0) return xz[((long)b * T + s) * xs + c];
  return prev ? prev[((long)b * (K - 1) + (K - 1 + s)) * d + c] : 0.0f;
}

__device__ __forceinline__ float conv_pre(const float *xz, int xs, const float *w, const float *bias,
                                          const float *prev, int b, int t, int T, int c, int d, int K) {
  float p = bias[c];
  for (int k = 0; k < K; k++) p += w[c * K + k] * conv_in(xz, xs, prev, b, T, t - K + 1 + k, c, d, K);
  return p;
}

__global__ void conv_fwd_k(float *u, const float *xz, int xs, const float *w, const float *bias, const float *prev,
                           int B, int T, int d, int K) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)B * T * d) return;
  int c = i % d;
  long r = i / d;
  float p = conv_pre(xz, xs, w, bias, prev, r / T, r % T, T, c, d, K);
  u[i] = p / (1.0f + __expf(-p));
}

void conv1d_forward(float *u, const float *xz, int xs, const float *w, const float *b, const float *prev, int B, int T,
                    int d, int K) {
  conv_fwd_k<<<cdiv((long)B * T * d, 256), 256, 0, g_stream>>>(u, xz, xs, w, b, prev, B, T, d, K);
}

/* dp = du * silu'(p), p recomputed */
__global__ void conv_dp_k(float *dp, const float *du, const float *xz, int xs, const float *w, const float *bias, int B,
                          int T, int d, int K) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)B * T * d) return;
  int c = i % d;
  long r = i / d;
  float p = conv_pre(xz, xs, w, bias, NULL, r / T, r % T, T, c, d, K), sg = 1.0f / (1.0f + __expf(-p));
  dp[i] = du[i] * sg * (1.0f + p * (1.0f - sg));
}

/* dx_t[c] = sum_k w[c,k] dp_{t+K-1-k}[c] (within the row's sequence) */
__global__ void conv_dx_k(float *dxz, int dxs, const float *dp, const float *w, int B, int T, int d, int K) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)B * T * d) return;
  int c = i % d;
  long r = i / d;
  int t = r % T;
  float s = 0.0f;
  for (int k = 0; k < K; k++) {
    int tt = t + K - 1 - k;
    if (tt < T) s += w[c * K + k] * dp[(r + tt - t) * d + c];
  }
  dxz[r * dxs + c] = s;
}

/* per segment of rows: part[seg][c * (K+1) + k] = sum dp_t[c] x_{t-K+1+k}[c], and [.. + K] = sum dp_t[c] */
__global__ void conv_dw_k(float *part, const float *dp, const float *xz, int xs, int B, int T, int d, int K) {
  int c = blockIdx.x * blockDim.x + threadIdx.x, seg = blockIdx.y;
  if (c >= d) return;
  int r1 = min(B * T, (seg + 1) * SEG_ROWS);
  float acc[17];
  for (int k = 0; k <= K; k++) acc[k] = 0.0f;
  for (int r = seg * SEG_ROWS; r < r1; r++) {
    float g = dp[(long)r * d + c];
    int b = r / T, t = r % T;
    for (int k = 0; k < K; k++) acc[k] += g * conv_in(xz, xs, NULL, b, T, t - K + 1 + k, c, d, K);
    acc[K] += g;
  }
  for (int k = 0; k <= K; k++) part[((long)seg * d + c) * (K + 1) + k] = acc[k];
}

/* out: dw (d x K) and db (d) from the (K+1)-wide partial rows */
__global__ void conv_dw_reduce_k(float *dw, float *db, const float *part, int nseg, int d, int K) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= d * (K + 1)) return;
  float s = 0.0f;
  for (int g = 0; g < nseg; g++) s += part[(long)g * d * (K + 1) + i];
  int c = i / (K + 1), k = i % (K + 1);
  if (k < K) dw[c * K + k] += s;
  else db[c] += s;
}

void conv1d_backward(float *dxz, int dxs, float *dw, float *db, const float *du, const float *xz, int xs,
                     const float *w, const float *b, int B, int T, int d, int K, float *dp, float *part) {
  long n = (long)B * T * d;
  int nseg = cdiv((long)B * T, SEG_ROWS);
  conv_dp_k<<<cdiv(n, 256), 256, 0, g_stream>>>(dp, du, xz, xs, w, b, B, T, d, K);
  conv_dx_k<<<cdiv(n, 256), 256, 0, g_stream>>>(dxz, dxs, dp, w, B, T, d, K);
  conv_dw_k<<<dim3(cdiv(d, 128), nseg), 128, 0, g_stream>>>(part, dp, xz, xs, B, T, d, K);
  conv_dw_reduce_k<<<cdiv(d * (K + 1), 256), 256, 0, g_stream>>>(dw, db, part, nseg, d, K);
}

/* new conv state = the last K-1 inputs of [prev | x], through tmp (the reads overlap the writes) */
__global__ void conv_state_k(float *tmp, const float *st, const float *xz, int xs, int B, int T, int d, int K) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)B * (K - 1) * d) return;
  int c = i % d, j = (i / d) % (K - 1), b = i / ((long)d * (K - 1));
  tmp[i] = conv_in(xz, xs, st, b, T, T - (K - 1) + j, c, d, K);
}

void conv_state_update(float *st, float *tmp, const float *xz, int xs, int B, int T, int d, int K) {
  if (K < 2) return;
  long n = (long)B * (K - 1) * d;
  conv_state_k<<<cdiv(n, 256), 256, 0, g_stream>>>(tmp, st, xz, xs, B, T, d, K);
  cudaMemcpyAsync(st, tmp, n * sizeof(float), cudaMemcpyDeviceToDevice, g_stream);
}
