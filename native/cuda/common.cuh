/* Internal declarations of the CUDA build (llm.c style: one layer kind per file, forward beside
 * backward, parameters and activations in large device arenas). The host side of a model is the CPU
 * model (host.h): it owns the layout, initialisation, tensor table and the host mirrors. */
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include "nanorag.h"
}
#include "host.h"

typedef __nv_bfloat16 bf16;

/* per-layer device activations (pointers into the arena) */
struct Lay {
  HostLayer h;
  float *xin;                                                      /* recomputation: the block's input */
  float *xn1, *rstd1, *qkv, *qkr, *att, *lse, *xn2, *rstd2, *fc, *act; /* T (+ MLP) */
  float *xz, *u, *xdbl, *delta, *y, *o;                            /* M */
};

struct nr_model {
  cpu_model *host;
  HostConfig c;
  Lay *L;
  float *p, *g, *om, *ov; /* device params, grads, AdamW m / Muon momentum, AdamW v */
  bf16 *pb;               /* bf16 copy of the params, what the GEMMs read (refreshed after every update) */
  float *rope_cos, *rope_sin;
  int recompute, fp32;    /* fp32: GEMMs in fp32 (NANORAG_CUDA_FP32=1, for exact parity checks) */
  int attn_gemm;          /* training attention through cuBLAS (bf16 only; NANORAG_CUDA_ATTN=flash turns it off) */
  size_t fixed_bytes;     /* params, grads, moments, bf16 copy, RoPE, Muon workspace */
  float *mw;              /* Muon workspace */
  double *dnorm, *hnorm;  /* gradient-norm partials (device, host), one per 65536 parameters */
  float *h_loss;          /* host copy of the per-row losses */
  /* the activation arena, carved per (B, T, train) */
  void *arena;
  size_t arena_bytes, arena_need; /* allocated, and what the current shape uses */
  int B, T, train;
  size_t bf_cap;          /* elements in each bf16 operand buffer */
  float *x, *x0n, *rstd0, *xf, *rstdf, *lossrow, *logits, *xr, *xlast;
  float *dx, *dxn, *db1, *db2, *dd1, *dd2, *dd3, *part, *hch, *sdl, *red;
  size_t part_cap, red_cap;
  int32_t *tok, *tgt, *emb_idx; /* emb_idx: token positions grouped by token (embedding backward) */
  int32_t *h_emb;               /* host scratch for that grouping: V counts + 3 BT + 1 */
  float *w, *mask;
  bf16 *bfa, *bfb;
  float *att_s;           /* attention through cuBLAS: Hkv x T x T scores (fp32) and probabilities (bf16) */
  bf16 *att_p;
};

struct nr_state {
  int B, max_len, pos, L;
  float **kc, **vc, **conv, **ssm; /* host arrays of device pointers, per layer */
  float *mem, *tmp;                /* tmp: conv-state update scratch */
  size_t bytes;
};

/* ---- profile.cu: where a step's time goes (the GPU check's breakdown; off unless asked for) ---- */
enum ProfKind { PROF_START = -1, PROF_EMBED, PROF_T_GEMM, PROF_ATTN, PROF_MLP, PROF_M_GEMM, PROF_SCAN, PROF_CLASSIFIER, PROF_OPTIM, PROF_N };
void prof_mark(int kind); /* the section that ends here is of this kind */

/* ---- device.cu: process-wide CUDA context ---- */
extern cudaStream_t g_stream;
int cu_init(void);                            /* stream + cuBLAS; 0 or nr_fail */
int cu_check(const char *where);              /* sync, then report any CUDA / cuBLAS error */
void cu_note_cublas(int status, const char *what);
static inline int cdiv(long a, long b) { return (int)((a + b - 1) / b); }

/* ---- dl.cu: dlopen search ---- */
void *dl_cublas(char *why, int why_len);
void *dl_nccl(char *why, int why_len);

/* ---- gemm.cu (row-major; ta: A stored K x M; tb: B stored N x K) ---- */
enum { MM_AUTO = 0, MM_F32 = 1 };
void mm(nr_model *m, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
        int ldc, float beta, int prec);
/* row-major C = op(A) op(B) (+ beta C) on bf16 operands, fp32 accumulation and output */
void mm_bf16(int ta, int tb, int M, int N, int K, const bf16 *A, int lda, const bf16 *B, int ldb, float *C, int ldc,
             float beta);
void lin_fwd(nr_model *m, float *out, int ldo, const float *inp, int ldi, const float *W, int M, int N, int K, float beta);
void lin_dx(nr_model *m, float *dinp, int lddi, const float *dout, int lddo, const float *W, int M, int N, int K,
            float beta);
void lin_dw(nr_model *m, float *dW, const float *dout, int lddo, const float *inp, int ldi, int M, int N, int K);
void params_to_bf16(nr_model *m);
/* count row-major products C_i = op(A_i) op(B_i) with bf16 operands, fp32 C, element strides between items */
void mm_strided(int ta, int tb, int M, int N, int K, const bf16 *A, int lda, long long sA, const bf16 *B, int ldb,
                long long sB, float *C, int ldc, long long sC, float beta, int count);
void to_bf16(bf16 *dst, const float *src, size_t n);

/* ---- reduce helpers (kernels in reduce.cu) ---- */
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
/* every thread of the block gets the sum (blockDim.x a multiple of 32, <= 1024) */
__device__ __forceinline__ float block_sum(float v, float *sh /* 32 floats */) {
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : 0.0f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float *sh) {
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : -INFINITY;
  return warp_max(v);
}
/* block-wide fp64 sum for blockDim.x == 256 (result valid in thread 0) */
__device__ __forceinline__ double block_sum256_f64(double v, double *sh /* 256 */) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int k = 128; k > 0; k >>= 1) {
    if (threadIdx.x < k) sh[threadIdx.x] += sh[threadIdx.x + k];
    __syncthreads();
  }
  return sh[0];
}
/* out[j] += sum over s < nseg of part[s * n + j], in s order (deterministic second stage) */
void reduce_segments(float *out, const float *part, int nseg, int n);
/* column sums of X (rows x n, row stride ld) added to out, deterministically (part: scratch) */
void colsum_add(float *out, const float *X, int rows, int n, int ld, float *part);
#define SEG_ROWS 64

/* ---- layer kernels ---- */
void embedding_forward(float *out, const int32_t *tok, const float *wte, int BT, int C);
void embedding_backward(nr_model *m, const int32_t *host_tok, int BT); /* += into the wte gradient */
void rmsnorm_forward(float *y, float *rstd, const float *x, int rows, int C, float eps);
void rmsnorm_backward(float *dx, const float *dy, const float *y, const float *rstd, int rows, int C, int acc);
void rope_qknorm_forward(nr_model *m, Lay *l, int BT, int T, int pos0);
void rope_qknorm_backward(nr_model *m, Lay *l, float *dqkv, int BT, int T);
void attn_block_forward(nr_model *m, Lay *l, float *x, int B, int T, nr_state *s, int layer);
void attention_gemm_forward(nr_model *m, Lay *l, int B, int T);
void attention_gemm_backward(nr_model *m, Lay *l, int B, int T, const float *datt, const float *D, float *dqkv);
void attn_block_backward(nr_model *m, Lay *l, int B, int T);
void mlp_forward(nr_model *m, Lay *l, float *x, int BT);
void mlp_backward(nr_model *m, Lay *l, int BT);
void conv1d_forward(float *u, const float *xz, int xs, const float *w, const float *b, const float *prev, int B, int T,
                    int d, int K);
void conv1d_backward(float *dxz, int dxs, float *dw, float *db, const float *du, const float *xz, int xs,
                     const float *w, const float *b, int B, int T, int d, int K, float *dp, float *part);
void conv_state_update(float *st, float *tmp, const float *xz, int xs, int B, int T, int d, int K);
typedef struct {
  int B, T, d, N;
  const float *u, *delta, *Alog, *Dskip; /* A = -exp(Alog) */
  const float *BC; int bcs;              /* row r: B at BC[r*bcs], C at BC[r*bcs + N] */
  float *y;
  const float *h0; float *hlast;         /* B x d x N, may be NULL */
  float *hch, *sdl;                      /* chunk states B x nch x N x d, chunk delta sums B x nch x d */
} ScanArgs;
void scan_forward(const ScanArgs *s);
/* du, ddelta written; dAlog, dD accumulate; dB, dC written into dBC (row stride dbcs, C at +N);
 * part: B T ceil(d/32) 2N floats, red: scan_backward_scratch(B, T, d, N) floats */
void scan_backward(const ScanArgs *s, const float *dy, float *du, float *ddelta, float *dAlog, float *dD, float *dBC,
                   int dbcs, float *part, float *red);
size_t scan_backward_scratch(int B, int T, int d, int N);
void mamba_block_forward(nr_model *m, Lay *l, float *x, int B, int T, nr_state *s, int layer);
void mamba_block_backward(nr_model *m, Lay *l, int B, int T);
/* lm_head + soft cap + weighted CE over BT rows of xf; backward into dxf when non-NULL; lossrow and
 * token_logprobs (device, may be NULL) per row; logits_host: copy the capped logits out instead */
void classifier(nr_model *m, const float *xf, const int32_t *tgt, const float *w, int BT, float grad_scale, float *dxf,
                float *tlp, float *logits_host);
int cls_rows(int V);
void adamw_update(float *p, const float *g, float *mm_, float *vv, size_t n, float lr, float b1, float b2, float eps,
                  float wd, float bc1, float bc2, float gs);
void muon_update(nr_model *m, float *p, const float *g, float *buf, int rows, int cols, float lr, float mom, float wd,
                 int ns, float gs);
size_t muon_workspace(int rows, int cols);

/* ---- model.cu ---- */
int acts_ensure(nr_model *m, int B, int T, int train);
void model_forward(nr_model *m, int B, int T, nr_state *s);
void model_backward(nr_model *m, const int32_t *host_tok, int B, int T);

/* cuBLAS entry points (device.cu loads them); enums travel as int */
typedef int (*gemm_ex_fn)(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int Atype,
                          int lda, const void *B, int Btype, int ldb, const void *beta, void *C, int Ctype, int ldc,
                          int compute, int algo);
typedef int (*gemm_sb_fn)(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int Atype,
                          int lda, long long sA, const void *B, int Btype, int ldb, long long sB, const void *beta,
                          void *C, int Ctype, int ldc, long long sC, int count, int compute, int algo);
extern void *g_cublas;
extern gemm_ex_fn g_gemm_ex;
extern gemm_sb_fn g_gemm_sb;
