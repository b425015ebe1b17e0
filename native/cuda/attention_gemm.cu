/* Training attention through cuBLAS tensor cores (the default in bf16 training; inference and the fp32
 * parity mode use the flash kernels of attention.cu). Per batch row and GQA group offset, strided
 * batched GEMMs over the KV heads: S = Q K^T into a T x T fp32 buffer per head, a causal softmax
 * writing bf16 probabilities and the log-sum-exp, O = P V. Backward recomputes P from the
 * log-sum-exp: dV = P^T dO, dP = dO V^T, dS = P (dP - D) scale, dQ = dS K, dK = dS^T Q. The full
 * square is multiplied (twice the causal FLOPs) in exchange for tensor-core GEMMs; the buffers hold
 * one batch row at a time (Hkv x T x T x 6 bytes). */
#include "common.cuh"

/* P = softmax of the causal prefix of each score row (block per (row, head)); lse written or read */
__global__ void att_softmax_k(const float *S, bf16 *P, float *lse, int T, float scale, int read_lse, long lbase,
                              int lstride) {
  __shared__ float sh[32];
  int i = blockIdx.x, kv = blockIdx.y, lim = i + 1;
  long o = ((long)kv * T + i) * T;
  const float *s = S + o;
  float *L = lse + lbase + (long)kv * lstride + i, l;
  if (read_lse) {
    l = *L;
  } else {
    float mx = -INFINITY, sum = 0.0f;
    for (int j = threadIdx.x; j < lim; j += blockDim.x) mx = fmaxf(mx, s[j] * scale);
    mx = block_max(mx, sh);
    for (int j = threadIdx.x; j < lim; j += blockDim.x) sum += __expf(s[j] * scale - mx);
    l = mx + logf(block_sum(sum, sh));
    if (threadIdx.x == 0) *L = l;
  }
  for (int j = threadIdx.x; j < T; j += blockDim.x) P[o + j] = __float2bfloat16(j < lim ? __expf(s[j] * scale - l) : 0.0f);
}

/* dS = P (dP - D_i) scale, in place over P (entries above the diagonal stay 0) */
__global__ void att_ds_k(const float *dP, bf16 *P, const float *D, int T, float scale, long dbase, int dstride) {
  int i = blockIdx.x, kv = blockIdx.y;
  long o = ((long)kv * T + i) * T;
  float Di = D[dbase + (long)kv * dstride + i];
  for (int j = threadIdx.x; j <= i; j += blockDim.x)
    P[o + j] = __float2bfloat16(__bfloat162float(P[o + j]) * (dP[o + j] - Di) * scale);
}

struct Heads { /* bf16 views of one batch row's q, k, v for GQA offset j, batched over kv heads */
  const bf16 *q, *k, *v;
  int qd, sq; /* row stride (elements); q stride between batched heads (k and v: hd) */
};

static Heads heads(nr_model *m, const bf16 *qkv, int b, int T, int j) {
  const HostConfig *c = &m->c;
  int hd = c->hd, g = c->H / c->Hkv, qd = (c->H + 2 * c->Hkv) * hd;
  const bf16 *row = qkv + (long)b * T * qd;
  return Heads{row + j * hd, row + c->H * hd, row + (c->H + c->Hkv) * hd, qd, g * hd};
}

void attention_gemm_forward(nr_model *m, Lay *l, int B, int T) {
  const HostConfig *c = &m->c;
  int H = c->H, Hkv = c->Hkv, hd = c->hd, g = H / Hkv, qd = (H + 2 * Hkv) * hd;
  long long TT = (long long)T * T;
  float scale = 1.0f / sqrtf((float)hd);
  to_bf16(m->bfa, l->qkv, (size_t)B * T * qd);
  for (int b = 0; b < B; b++)
    for (int j = 0; j < g; j++) {
      Heads x = heads(m, m->bfa, b, T, j);
      mm_strided(0, 1, T, T, hd, x.q, qd, x.sq, x.k, qd, hd, m->att_s, T, TT, 0.0f, Hkv);
      att_softmax_k<<<dim3(T, Hkv), 256, 0, g_stream>>>(m->att_s, m->att_p, l->lse, T, scale, 0, ((long)b * H + j) * T,
                                                        g * T);
      mm_strided(0, 0, T, hd, T, m->att_p, T, TT, x.v, qd, hd, l->att + (long)b * T * H * hd + j * hd, H * hd, g * hd,
                 0.0f, Hkv);
    }
}

/* datt: d(out), D: its row dots with out (attn_dsum); dqkv: every element written */
void attention_gemm_backward(nr_model *m, Lay *l, int B, int T, const float *datt, const float *D, float *dqkv) {
  const HostConfig *c = &m->c;
  int H = c->H, Hkv = c->Hkv, hd = c->hd, g = H / Hkv, qd = (H + 2 * Hkv) * hd;
  long long TT = (long long)T * T;
  float scale = 1.0f / sqrtf((float)hd);
  to_bf16(m->bfa, l->qkv, (size_t)B * T * qd);
  to_bf16(m->bfb, datt, (size_t)B * T * H * hd);
  for (int b = 0; b < B; b++)
    for (int j = 0; j < g; j++) {
      Heads x = heads(m, m->bfa, b, T, j);
      const bf16 *dO = m->bfb + (long)b * T * H * hd + j * hd;
      float *dq = dqkv + (long)b * T * qd + j * hd, *dk = dqkv + (long)b * T * qd + H * hd, *dv = dk + Hkv * hd;
      float beta = j ? 1.0f : 0.0f; /* dK, dV sum over the group's heads */
      long lb = ((long)b * H + j) * T;
      mm_strided(0, 1, T, T, hd, x.q, qd, x.sq, x.k, qd, hd, m->att_s, T, TT, 0.0f, Hkv);
      att_softmax_k<<<dim3(T, Hkv), 256, 0, g_stream>>>(m->att_s, m->att_p, l->lse, T, scale, 1, lb, g * T);
      mm_strided(1, 0, T, hd, T, m->att_p, T, TT, dO, H * hd, g * hd, dv, qd, hd, beta, Hkv);
      mm_strided(0, 1, T, T, hd, dO, H * hd, g * hd, x.v, qd, hd, m->att_s, T, TT, 0.0f, Hkv);
      att_ds_k<<<dim3(T, Hkv), 256, 0, g_stream>>>(m->att_s, m->att_p, D, T, scale, lb, g * T);
      mm_strided(0, 0, T, hd, T, m->att_p, T, TT, x.k, qd, hd, dq, qd, g * hd, 0.0f, Hkv);
      mm_strided(1, 0, T, hd, T, m->att_p, T, TT, x.q, qd, x.sq, dk, qd, hd, beta, Hkv);
    }
}
