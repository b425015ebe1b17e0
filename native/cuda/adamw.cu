/* AdamW with decoupled weight decay (torch semantics): p *= 1 - lr*wd; m,v lerp; p -= lr/bc1 * m / (sqrt(v/bc2) + eps).
 * gs multiplies the gradient first (global-norm clipping). */
#include "common.cuh"

__global__ void adamw_k(float *p, const float *g, float *mm_, float *vv, size_t n, float lr, float b1, float b2,
                        float eps, float wd, float bc1, float bc2, float gs) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float gg = g[i] * gs;
  float m = mm_[i] = b1 * mm_[i] + (1.0f - b1) * gg;
  float v = vv[i] = b2 * vv[i] + (1.0f - b2) * gg * gg;
  p[i] = p[i] * (1.0f - lr * wd) - (lr / bc1) * m / (sqrtf(v / bc2) + eps);
}

void adamw_update(float *p, const float *g, float *mm_, float *vv, size_t n, float lr, float b1, float b2, float eps,
                  float wd, float bc1, float bc2, float gs) {
  adamw_k<<<cdiv((long)n, 256), 256, 0, g_stream>>>(p, g, mm_, vv, n, lr, b1, b2, eps, wd, bc1, bc2, gs);
}
