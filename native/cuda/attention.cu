/* The T block: rmsnorm -> c_q|c_k|c_v (one stacked GEMM) -> RoPE + QK-norm -> causal GQA attention ->
 * c_proj, residual add. Attention is a tiled flash-style kernel: K/V tiles go through shared memory,
 * each query keeps a running max and sum (online softmax), and only the log-sum-exp per query is kept
 * for backward, which recomputes the probabilities (FlashAttention-2 split: one kernel walks keys for
 * dQ, one walks queries for dK/dV, summing the heads of a GQA group; no atomics).
 * Layout: TPQ threads share one query (or key) row; thread `sub` owns dims sub, sub+TPQ, ... (at most
 * 16), so the threads of a row read consecutive shared-memory words. Key j is visible to query i iff
 * j <= pos0 + i. Training in bf16 uses the tensor-core path of attention_gemm.cu instead. */
#include "common.cuh"

#define AT_THREADS 128
#define DPT 16

struct AttnArgs {
  int B, Tq, Tk, pos0, H, Hkv, hd;
  const float *q; long qs, qbs;
  const float *k, *v; long ks, kbs;
  float *o; long os, obs;
  float *lse; /* B x H x Tq, or NULL */
};

__device__ __forceinline__ float group_sum(float s, int tpq) {
  for (int off = tpq >> 1; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  return s;
}

/* rows x hd tile starting at row r0 (of n valid rows) into shared memory; invalid rows are zero */
__device__ __forceinline__ void load_tile(float *dst, const float *src, long stride, int r0, int n, int rows, int hd,
                                          float mul) {
  for (int i = threadIdx.x; i < rows * hd; i += blockDim.x) {
    int r = i / hd, d = i % hd;
    dst[i] = r0 + r < n ? src[(long)(r0 + r) * stride + d] * mul : 0.0f;
  }
}

/* the keys the block's queries see are [0, key_end) */
__device__ __forceinline__ int key_end(const AttnArgs &a, int qpb) {
  return min(a.Tk, a.pos0 + min(a.Tq, (int)(blockIdx.x + 1) * qpb));
}

/* the K and V tiles starting at key k0 into shared memory (all threads call it) */
__device__ __forceinline__ void load_kv(float *Ks, float *Vs, const AttnArgs &a, int b, int kvh, int k0, int kend,
                                        int kt) {
  __syncthreads();
  load_tile(Ks, a.k + b * a.kbs + kvh * a.hd, a.ks, k0, kend, kt, a.hd, 1.0f);
  load_tile(Vs, a.v + b * a.kbs + kvh * a.hd, a.ks, k0, kend, kt, a.hd, 1.0f);
  __syncthreads();
}

/* which (batch, head, query row, dim slot) a thread serves in the query-major kernels */
struct QLane {
  int b, h, kvh, sub, qi;
  bool ok;
};
__device__ __forceinline__ QLane query_lane(const AttnArgs &a, int tpq) {
  QLane l;
  l.b = blockIdx.z;
  l.h = blockIdx.y;
  l.kvh = l.h / (a.H / a.Hkv);
  l.sub = threadIdx.x % tpq;
  l.qi = blockIdx.x * (AT_THREADS / tpq) + threadIdx.x / tpq;
  l.ok = l.qi < a.Tq;
  return l;
}

/* Walks the keys visible to TPQ-thread query rows. DQ = false: the forward pass (online softmax, out
 * and log-sum-exp). DQ = true: dQ of the backward pass, probabilities recomputed from the log-sum-exp. */
template <int TPQ, bool DQ>
__global__ void __launch_bounds__(AT_THREADS) flash_q_k(AttnArgs a, const float *dout, const float *D, float *dq,
                                                        float scale, int kt) {
  extern __shared__ float sm[];
  const int QPB = AT_THREADS / TPQ, hd = a.hd;
  float *Ks = sm, *Vs = sm + kt * hd;
  const QLane L = query_lane(a, TPQ);
  const int b = L.b, h = L.h, kvh = L.kvh, sub = L.sub, qi = L.qi;
  const bool qok = L.ok;
  long qoff = b * a.qbs + (long)qi * a.qs + h * hd, ooff = b * a.obs + (long)qi * a.os + h * hd;
  float q[DPT], g[DPT], acc[DPT]; /* acc: the output row (forward) or dq (backward) */
#pragma unroll
  for (int e = 0; e < DPT; e++) {
    int d = e * TPQ + sub;
    q[e] = qok && d < hd ? a.q[qoff + d] * scale : 0.0f;
    g[e] = DQ && qok && d < hd ? dout[ooff + d] : 0.0f;
    acc[e] = 0.0f;
  }
  long row = ((long)b * a.H + h) * a.Tq + qi;
  float mrow = -INFINITY, lsum = 0.0f; /* forward: running max and sum */
  float lse = DQ && qok ? a.lse[row] : 0.0f, Di = DQ && qok ? D[row] : 0.0f;
  int kend = key_end(a, QPB), lim = a.pos0 + qi;
  for (int k0 = 0; k0 < kend; k0 += kt) {
    load_kv(Ks, Vs, a, b, kvh, k0, kend, kt);
    for (int j = 0; j < kt; j++) {
      float s = 0.0f, dp = 0.0f;
#pragma unroll
      for (int e = 0; e < DPT; e++) {
        int d = e * TPQ + sub;
        if (d < hd) {
          s += q[e] * Ks[j * hd + d];
          if (DQ) dp += g[e] * Vs[j * hd + d];
        }
      }
      s = group_sum(s, TPQ);
      if (DQ) dp = group_sum(dp, TPQ);
      int kj = k0 + j;
      if (!qok || kj > lim || kj >= kend) continue;
      if (DQ) {
        float ds = __expf(s - lse) * (dp - Di);
#pragma unroll
        for (int e = 0; e < DPT; e++) {
          int d = e * TPQ + sub;
          if (d < hd) acc[e] += ds * Ks[j * hd + d];
        }
      } else {
        float mnew = fmaxf(mrow, s), corr = __expf(mrow - mnew), p = __expf(s - mnew);
        lsum = lsum * corr + p;
#pragma unroll
        for (int e = 0; e < DPT; e++) {
          int d = e * TPQ + sub;
          if (d < hd) acc[e] = acc[e] * corr + p * Vs[j * hd + d];
        }
        mrow = mnew;
      }
    }
  }
  if (!qok) return;
  float mul = DQ ? scale : 1.0f / lsum;
  float *out = DQ ? dq + qoff : a.o + ooff;
#pragma unroll
  for (int e = 0; e < DPT; e++) {
    int d = e * TPQ + sub;
    if (d < hd) out[d] = acc[e] * mul;
  }
  if (!DQ && a.lse && sub == 0) a.lse[row] = mrow + logf(lsum);
}

/* D_i = dO_i . O_i per (b, h, i), one warp each */
__global__ void attn_dsum_k(float *D, AttnArgs a, const float *dout) {
  long w = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (w >= (long)a.B * a.H * a.Tq) return;
  int i = w % a.Tq, h = (w / a.Tq) % a.H, b = w / ((long)a.Tq * a.H);
  const float *o = a.o + b * a.obs + (long)i * a.os + h * a.hd, *d = dout + b * a.obs + (long)i * a.os + h * a.hd;
  float s = 0.0f;
  for (int j = lane; j < a.hd; j += 32) s += o[j] * d[j];
  s = warp_sum(s);
  if (lane == 0) D[w] = s;
}

/* dK, dV: TPQ threads per key, walking the queries that see the block's keys, over the group's heads */
template <int TPQ>
__global__ void __launch_bounds__(AT_THREADS) flash_dkv_k(AttnArgs a, const float *dout, const float *D, float *dk,
                                                          float *dv, float scale, int qt) {
  extern __shared__ float sm[];
  const int KPB = AT_THREADS / TPQ, hd = a.hd;
  float *Qs = sm, *Gs = sm + qt * hd, *Ls = Gs + qt * hd, *Ds = Ls + qt;
  int b = blockIdx.z, kvh = blockIdx.y, sub = threadIdx.x % TPQ, grp = a.H / a.Hkv;
  int kj = blockIdx.x * KPB + threadIdx.x / TPQ, kfirst = blockIdx.x * KPB;
  bool kok = kj < a.Tk;
  long koff = b * a.kbs + (long)kj * a.ks + kvh * hd;
  float k[DPT], v[DPT], dka[DPT], dva[DPT];
#pragma unroll
  for (int e = 0; e < DPT; e++) {
    int d = e * TPQ + sub;
    k[e] = kok && d < hd ? a.k[koff + d] : 0.0f;
    v[e] = kok && d < hd ? a.v[koff + d] : 0.0f;
    dka[e] = dva[e] = 0.0f;
  }
  int i0 = max(0, kfirst - a.pos0);
  for (int h = kvh * grp; h < (kvh + 1) * grp; h++) {
    const float *qb = a.q + b * a.qbs + h * hd, *gb = dout + b * a.obs + h * hd;
    long rb = ((long)b * a.H + h) * a.Tq;
    for (int q0 = i0; q0 < a.Tq; q0 += qt) {
      __syncthreads();
      load_tile(Qs, qb, a.qs, q0, a.Tq, qt, hd, scale);
      load_tile(Gs, gb, a.os, q0, a.Tq, qt, hd, 1.0f);
      for (int i = threadIdx.x; i < qt; i += blockDim.x) {
        Ls[i] = q0 + i < a.Tq ? a.lse[rb + q0 + i] : 0.0f;
        Ds[i] = q0 + i < a.Tq ? D[rb + q0 + i] : 0.0f;
      }
      __syncthreads();
      for (int i = 0; i < qt; i++) {
        float s = 0.0f, dp = 0.0f;
#pragma unroll
        for (int e = 0; e < DPT; e++) {
          int d = e * TPQ + sub;
          if (d < hd) {
            s += Qs[i * hd + d] * k[e];
            dp += Gs[i * hd + d] * v[e];
          }
        }
        s = group_sum(s, TPQ);
        dp = group_sum(dp, TPQ);
        int qi = q0 + i;
        if (!kok || qi >= a.Tq || kj > a.pos0 + qi) continue;
        float p = __expf(s - Ls[i]), ds = p * (dp - Ds[i]);
#pragma unroll
        for (int e = 0; e < DPT; e++) {
          int d = e * TPQ + sub;
          if (d < hd) {
            dva[e] += p * Gs[i * hd + d];
            dka[e] += ds * Qs[i * hd + d];
          }
        }
      }
    }
  }
  if (!kok) return;
#pragma unroll
  for (int e = 0; e < DPT; e++) {
    int d = e * TPQ + sub;
    if (d < hd) {
      dk[koff + d] = dka[e];
      dv[koff + d] = dva[e];
    }
  }
}

static int tpq_for(int hd) { return hd <= 16 ? 1 : hd <= 32 ? 2 : hd <= 64 ? 4 : hd <= 128 ? 8 : 16; }
static int tile_for(int hd) { return hd > 128 ? 16 : 32; }

#define DISPATCH(tpq, KERNEL, grid, smem, ...)                                                   \
  switch (tpq) {                                                                                 \
    case 1: KERNEL(1)<<<grid, AT_THREADS, smem, g_stream>>>(__VA_ARGS__); break;                \
    case 2: KERNEL(2)<<<grid, AT_THREADS, smem, g_stream>>>(__VA_ARGS__); break;                \
    case 4: KERNEL(4)<<<grid, AT_THREADS, smem, g_stream>>>(__VA_ARGS__); break;                \
    case 8: KERNEL(8)<<<grid, AT_THREADS, smem, g_stream>>>(__VA_ARGS__); break;                \
    default: KERNEL(16)<<<grid, AT_THREADS, smem, g_stream>>>(__VA_ARGS__); break;              \
  }

#define FLASH_FWD(tpq) flash_q_k<tpq, false>
#define FLASH_DQ(tpq) flash_q_k<tpq, true>
#define FLASH_DKV(tpq) flash_dkv_k<tpq>
static void attention_forward(const AttnArgs *a) {
  int tpq = tpq_for(a->hd), kt = tile_for(a->hd);
  dim3 grid(cdiv(a->Tq, AT_THREADS / tpq), a->H, a->B);
  size_t smem = 2 * (size_t)kt * a->hd * sizeof(float);
  DISPATCH(tpq, FLASH_FWD, grid, smem, *a, NULL, NULL, NULL, 1.0f / sqrtf((float)a->hd), kt);
}

/* dq, dk, dv: row layouts of q, k, v (every row written) */
static void attention_backward(const AttnArgs *a, const float *dout, float *D, float *dq, float *dk, float *dv) {
  int tpq = tpq_for(a->hd), kt = tile_for(a->hd);
  float scale = 1.0f / sqrtf((float)a->hd);
  attn_dsum_k<<<cdiv((long)a->B * a->H * a->Tq * 32, 256), 256, 0, g_stream>>>(D, *a, dout);
  size_t smem = 2 * (size_t)kt * a->hd * sizeof(float);
  dim3 gq(cdiv(a->Tq, AT_THREADS / tpq), a->H, a->B);
  DISPATCH(tpq, FLASH_DQ, gq, smem, *a, dout, D, dq, scale, kt);
  dim3 gk(cdiv(a->Tk, AT_THREADS / tpq), a->Hkv, a->B);
  smem += 2 * (size_t)kt * sizeof(float);
  DISPATCH(tpq, FLASH_DKV, gk, smem, *a, dout, D, dk, dv, scale, kt);
}

/* the new keys and values (after RoPE and QK-norm) into the cache at pos0 */
__global__ void kv_store_k(float *kc, float *vc, const float *qkv, int B, int T, int pos0, int max_len, int kvw, int qd,
                           int koff) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)B * T * kvw) return;
  int e = i % kvw;
  long r = i / kvw, b = r / T, t = r % T;
  long dst = (b * max_len + pos0 + t) * kvw + e;
  kc[dst] = qkv[r * qd + koff + e];
  vc[dst] = qkv[r * qd + koff + kvw + e];
}

static AttnArgs self_args(nr_model *m, Lay *l, int B, int T) {
  const HostConfig *c = &m->c;
  int hd = c->hd, H = c->H, Hkv = c->Hkv, qd = (H + 2 * Hkv) * hd;
  AttnArgs at = {B, T, T, 0, H, Hkv, hd, l->qkv, qd, (long)T * qd, l->qkv + H * hd, l->qkv + (H + Hkv) * hd, qd,
                 (long)T * qd, l->att, H * hd, (long)T * H * hd, l->lse};
  return at;
}

void attn_block_forward(nr_model *m, Lay *l, float *x, int B, int T, nr_state *s, int layer) {
  const HostConfig *c = &m->c;
  int BT = B * T, C = c->C, hd = c->hd, H = c->H, Hkv = c->Hkv, qd = (H + 2 * Hkv) * hd;
  int pos0 = s ? s->pos : 0;
  rmsnorm_forward(l->xn1, l->rstd1, x, BT, C, c->eps);
  lin_fwd(m, l->qkv, qd, l->xn1, C, m->p + l->h.wqkv, BT, qd, C, 0.0f);
  rope_qknorm_forward(m, l, BT, T, pos0);
  prof_mark(PROF_T_GEMM);
  AttnArgs at = self_args(m, l, B, T);
  if (!m->train) at.lse = NULL;
  if (s) {
    int kvw = Hkv * hd;
    kv_store_k<<<cdiv((long)BT * kvw, 256), 256, 0, g_stream>>>(s->kc[layer], s->vc[layer], l->qkv, B, T, pos0,
                                                               s->max_len, kvw, qd, H * hd);
    at.k = s->kc[layer];
    at.v = s->vc[layer];
    at.ks = kvw;
    at.kbs = (long)s->max_len * kvw;
    at.Tk = pos0 + T;
    at.pos0 = pos0;
  }
  if (!s && m->train && m->attn_gemm) attention_gemm_forward(m, l, B, T);
  else attention_forward(&at);
  prof_mark(PROF_ATTN);
  lin_fwd(m, x, C, l->att, H * hd, m->p + l->h.wo, BT, C, H * hd, 1.0f);
  prof_mark(PROF_T_GEMM);
  if (l->h.has_mlp) mlp_forward(m, l, x, BT);
}

void attn_block_backward(nr_model *m, Lay *l, int B, int T) {
  const HostConfig *c = &m->c;
  int BT = B * T, C = c->C, hd = c->hd, H = c->H, Hkv = c->Hkv, qd = (H + 2 * Hkv) * hd;
  if (l->h.has_mlp) mlp_backward(m, l, BT);
  lin_dw(m, m->g + l->h.wo, m->dx, C, l->att, H * hd, BT, C, H * hd);
  float *datt = m->db1, *dqkv = m->db2;
  lin_dx(m, datt, H * hd, m->dx, C, m->p + l->h.wo, BT, C, H * hd, 0.0f);
  prof_mark(PROF_T_GEMM);
  AttnArgs at = self_args(m, l, B, T);
  if (m->attn_gemm) {
    attn_dsum_k<<<cdiv((long)B * H * T * 32, 256), 256, 0, g_stream>>>(m->red, at, datt);
    attention_gemm_backward(m, l, B, T, datt, m->red, dqkv);
  } else {
    attention_backward(&at, datt, m->red, dqkv, dqkv + H * hd, dqkv + (H + Hkv) * hd);
  }
  prof_mark(PROF_ATTN);
  rope_qknorm_backward(m, l, dqkv, BT, T);
  lin_dw(m, m->g + l->h.wqkv, dqkv, qd, l->xn1, C, BT, qd, C);
  lin_dx(m, m->dxn, C, dqkv, qd, m->p + l->h.wqkv, BT, qd, C, 0.0f);
  rmsnorm_backward(m->dx, m->dxn, l->xn1, l->rstd1, BT, C, 1);
  prof_mark(PROF_T_GEMM);
}
