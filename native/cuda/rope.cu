/* RoPE (split halves, nanochat sign convention) then QK-norm (weightless RMSNorm per head), over the
 * H query and Hkv key heads of each qkv row, in place; one warp per (row, head). Backward: the norm's
 * backward, then the inverse rotation. Row r is at position pos0 + r % T. */
#include "common.cuh"

__global__ void rope_qk_fwd_k(float *qkv, float *qkr, const float *cs, const float *sn, int BT, int T, int pos0,
                              int nh, int hd, int qd, float eps) {
  long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31, h2 = hd / 2;
  if (wid >= (long)BT * nh) return; /* whole warps leave together */
  long r = wid / nh;
  int h = wid % nh, pos = pos0 + r % T;
  float *x = qkv + r * qd + h * hd;
  const float *c = cs + (long)pos * h2, *s = sn + (long)pos * h2;
  float ss = 0.0f;
  for (int j = lane; j < h2; j += 32) {
    float a = x[j], b = x[j + h2];
    float y1 = a * c[j] + b * s[j], y2 = -a * s[j] + b * c[j];
    x[j] = y1;
    x[j + h2] = y2;
    ss += y1 * y1 + y2 * y2;
  }
  ss = warp_sum(ss);
  float rs = rsqrtf(ss / hd + eps);
  for (int j = lane; j < h2; j += 32) { /* each lane scales the pairs it wrote */
    x[j] *= rs;
    x[j + h2] *= rs;
  }
  if (lane == 0) qkr[r * nh + h] = rs;
}

void rope_qknorm_forward(nr_model *m, Lay *l, int BT, int T, int pos0) {
  const HostConfig *c = &m->c;
  int nh = c->H + c->Hkv, qd = (c->H + 2 * c->Hkv) * c->hd;
  rope_qk_fwd_k<<<cdiv((long)BT * nh * 32, 256), 256, 0, g_stream>>>(l->qkv, l->qkr, m->rope_cos, m->rope_sin, BT, T,
                                                                     pos0, nh, c->hd, qd, c->eps);
}

__global__ void rope_qk_bwd_k(float *dqkv, const float *qkv, const float *qkr, const float *cs, const float *sn,
                              int BT, int T, int nh, int hd, int qd) {
  long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31, h2 = hd / 2;
  if (wid >= (long)BT * nh) return;
  long r = wid / nh;
  int h = wid % nh, pos = r % T;
  float *d = dqkv + r * qd + h * hd;
  const float *y = qkv + r * qd + h * hd, *c = cs + (long)pos * h2, *s = sn + (long)pos * h2;
  float dot = 0.0f;
  for (int j = lane; j < h2; j += 32) dot += d[j] * y[j] + d[j + h2] * y[j + h2];
  float mean = warp_sum(dot) / hd, rs = qkr[r * nh + h];
  for (int j = lane; j < h2; j += 32) {
    float a = rs * (d[j] - y[j] * mean), b = rs * (d[j + h2] - y[j + h2] * mean);
    d[j] = a * c[j] - b * s[j];
    d[j + h2] = a * s[j] + b * c[j];
  }
}

void rope_qknorm_backward(nr_model *m, Lay *l, float *dqkv, int BT, int T) {
  const HostConfig *c = &m->c;
  int nh = c->H + c->Hkv, qd = (c->H + 2 * c->Hkv) * c->hd;
  rope_qk_bwd_k<<<cdiv((long)BT * nh * 32, 256), 256, 0, g_stream>>>(dqkv, l->qkv, l->qkr, m->rope_cos, m->rope_sin,
                                                                     BT, T, nh, c->hd, qd);
}
