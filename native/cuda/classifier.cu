/* lm_head + soft cap + weighted cross-entropy, fused with its backward (llm.c style): rows go in chunks
 * of cls_rows(V), so the full B*T x V logits never exist; one block per row caps, takes the max and the
 * sum of exponentials, writes the loss, and overwrites the logits with their gradient.
 * With cap > 0: l = cap * tanh(raw / cap), dl/draw = 1 - (l/cap)^2. */
#include "common.cuh"

int cls_rows(int V) { /* 128M logits a chunk (512 MB): few chunks, so lm_head's fp32 gradient is read and written few times */
  long r = (128L << 20) / (V > 0 ? V : 1);
  return (int)(r < 64 ? 64 : r > 8192 ? 8192 : r);
}

__global__ void cls_rows_k(float *L, int V, int r0, const int32_t *tgt, const float *w, float *lossrow, float *tlp,
                           float cap, float gscale, int grad) {
  __shared__ float sh[32];
  int r = r0 + blockIdx.x;
  float *l = L + (long)blockIdx.x * V;
  if (cap > 0)
    for (int j = threadIdx.x; j < V; j += blockDim.x) l[j] = cap * tanhf(l[j] / cap);
  if (!tgt) return; /* logits only */
  int t = tgt[r];
  if (t < 0) {
    if (threadIdx.x == 0) {
      lossrow[r] = 0.0f;
      if (tlp) tlp[r] = 0.0f;
    }
    if (grad)
      for (int j = threadIdx.x; j < V; j += blockDim.x) l[j] = 0.0f;
    return;
  }
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, l[j]);
  mx = block_max(mx, sh); /* its barriers also publish the capped row */
  float lt = l[t], sum = 0.0f;
  for (int j = threadIdx.x; j < V; j += blockDim.x) sum += __expf(l[j] - mx);
  sum = block_sum(sum, sh);
  float ce = mx + logf(sum) - lt;
  if (threadIdx.x == 0) {
    lossrow[r] = ce;
    if (tlp) tlp[r] = -ce;
  }
  if (!grad) return;
  float g = (w ? w[r] : 1.0f) * gscale, gi = g / sum;
  for (int j = threadIdx.x; j < V; j += blockDim.x) {
    float d = gi * __expf(l[j] - mx) - (j == t ? g : 0.0f);
    if (cap > 0) {
      float th = l[j] / cap;
      d *= 1.0f - th * th;
    }
    l[j] = d;
  }
}

void classifier(nr_model *m, const float *xf, const int32_t *tgt, const float *w, int BT, float grad_scale, float *dxf,
                float *tlp, float *logits_host) {
  int V = m->c.V, C = m->c.C, CH = cls_rows(V);
  const float *W = m->p + m->c.lm_head;
  for (int r0 = 0; r0 < BT; r0 += CH) {
    int rows = BT - r0 < CH ? BT - r0 : CH;
    float *L = m->logits;
    lin_fwd(m, L, V, xf + (size_t)r0 * C, C, W, rows, V, C, 0.0f);
    cls_rows_k<<<rows, 256, 0, g_stream>>>(L, V, r0, tgt, w, m->lossrow, tlp, m->c.softcap, grad_scale, dxf != NULL);
    if (logits_host)
      cudaMemcpyAsync(logits_host + (size_t)r0 * V, L, sizeof(float) * rows * V, cudaMemcpyDeviceToHost, g_stream);
    if (dxf) {
      lin_dw(m, m->g + m->c.lm_head, L, V, xf + (size_t)r0 * C, C, rows, V, C);
      lin_dx(m, dxf + (size_t)r0 * C, C, L, V, W, rows, V, C, 0.0f);
    }
  }
}
