/* RMSNorm without a gain: y = x / sqrt(mean(x^2) + eps); backward dx = r * (dy - y * mean(dy*y)).
 * One block per row. */
#include "common.cuh"

__global__ void rms_fwd_k(float *y, float *rstd, const float *x, int C, float eps) {
  __shared__ float sh[32];
  long r = blockIdx.x;
  const float *xr = x + r * C;
  float ss = 0.0f;
  for (int j = threadIdx.x; j < C; j += blockDim.x) ss += xr[j] * xr[j];
  ss = block_sum(ss, sh);
  float rs = rsqrtf(ss / C + eps);
  for (int j = threadIdx.x; j < C; j += blockDim.x) y[r * C + j] = xr[j] * rs;
  if (rstd && threadIdx.x == 0) rstd[r] = rs;
}

void rmsnorm_forward(float *y, float *rstd, const float *x, int rows, int C, float eps) {
  rms_fwd_k<<<rows, 256, 0, g_stream>>>(y, rstd, x, C, eps);
}

__global__ void rms_bwd_k(float *dx, const float *dy, const float *y, const float *rstd, int C, int acc) {
  __shared__ float sh[32];
  long r = blockIdx.x;
  const float *dyr = dy + r * C, *yr = y + r * C;
  float s = 0.0f;
  for (int j = threadIdx.x; j < C; j += blockDim.x) s += dyr[j] * yr[j];
  s = block_sum(s, sh);
  float mean = s / C, rs = rstd[r];
  for (int j = threadIdx.x; j < C; j += blockDim.x) {
    float v = rs * (dyr[j] - yr[j] * mean);
    dx[r * C + j] = acc ? dx[r * C + j] + v : v;
  }
}

void rmsnorm_backward(float *dx, const float *dy, const float *y, const float *rstd, int rows, int C, int acc) {
  rms_bwd_k<<<rows, 256, 0, g_stream>>>(dx, dy, y, rstd, C, acc);
}
