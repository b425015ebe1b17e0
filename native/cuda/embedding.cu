/* Token embedding: forward gathers wte rows; backward adds each position's gradient into its token's
 * row. The positions are grouped by token on the host (a counting sort of the batch's tokens, which
 * the host has anyway), so each (token, channel) sum runs over its positions in order: deterministic,
 * no atomics, and the same order as the CPU build. */
#include <string.h>
#include "common.cuh"

__global__ void emb_fwd_k(float *out, const int32_t *tok, const float *wte, int BT, int C) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)BT * C) return;
  long r = i / C, c = i % C;
  out[i] = wte[(long)tok[r] * C + c];
}

void embedding_forward(float *out, const int32_t *tok, const float *wte, int BT, int C) {
  emb_fwd_k<<<cdiv((long)BT * C, 256), 256, 0, g_stream>>>(out, tok, wte, BT, C);
}

/* idx: pos[BT] | uniq[U] | start[U + 1] */
__global__ void emb_bwd_k(float *dwte, const float *dout, const int32_t *idx, int BT, int U, int C) {
  int u = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int32_t *pos = idx, *uniq = idx + BT, *start = uniq + U;
  float *d = dwte + (long)uniq[u] * C + c;
  float acc = *d;
  for (int k = start[u]; k < start[u + 1]; k++) acc += dout[(long)pos[k] * C + c];
  *d = acc;
}

void embedding_backward(nr_model *m, const int32_t *tok, int BT) {
  int V = m->c.V, C = m->c.C;
  int32_t *cnt = m->h_emb, *pos = cnt + V, *uniq = pos + BT, *start;
  memset(cnt, 0, sizeof(int32_t) * (size_t)V);
  for (int i = 0; i < BT; i++) cnt[tok[i]]++;
  int U = 0;
  for (int v = 0; v < V; v++)
    if (cnt[v]) uniq[U++] = v;
  start = uniq + U;
  start[0] = 0;
  for (int u = 0; u < U; u++) start[u + 1] = start[u] + cnt[uniq[u]];
  for (int u = 0; u < U; u++) cnt[uniq[u]] = start[u]; /* cnt becomes the next free slot per token */
  for (int i = 0; i < BT; i++) pos[cnt[tok[i]]++] = i;
  cudaMemcpyAsync(m->emb_idx, pos, sizeof(int32_t) * ((size_t)BT + 2 * U + 1), cudaMemcpyHostToDevice, g_stream);
  emb_bwd_k<<<dim3(U, cdiv(C, 256)), 256, 0, g_stream>>>(m->g + m->c.wte, m->dxn, m->emb_idx, BT, U, C);
}
