/* Internal declarations shared by the CPU files: the thread pool, the matmul, the model layout and
 * the per-layer kernels (one layer kind per file, forward beside backward). */
#ifndef NR_COMMON_H
#define NR_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include "nanorag.h"

/* 8-wide float vector (GCC vector extension): AVX2 with -march=x86-64-v3, SSE pairs otherwise.
 * aligned(4) lets it load from any float address. */
typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(32), aligned(4)));

static inline v8 v8_set1(float x) { return (v8){x, x, x, x, x, x, x, x}; }
static inline float v8_sum(v8 a) {
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}
static inline v8 v8_sel(v8i mask, v8 a, v8 b) { /* mask ? a : b */
  v8i ai, bi, r;
  __builtin_memcpy(&ai, &a, sizeof a);
  __builtin_memcpy(&bi, &b, sizeof b);
  r = (ai & mask) | (bi & ~mask);
  v8 o;
  __builtin_memcpy(&o, &r, sizeof o);
  return o;
}
/* exp for x <= 88 (argument range of the scan and softmax); relative error ~2e-7. One definition for
 * every vector width (scan.c instantiates the AVX-512 one): Cody-Waite reduction by ln 2, a degree-6
 * polynomial, and the exponent built in the float's bits. */
#define NR_DEFINE_VEXP(NAME, ATTR, VT, VI, SET1, SEL)                                   \
  static inline ATTR VT NAME(VT x) {                                                    \
    x = SEL(x < SET1(-87.3f), SET1(-87.3f), x);                                         \
    x = SEL(x > SET1(88.3f), SET1(88.3f), x);                                           \
    VT t = x * SET1(1.44269504088896341f);                                              \
    VT fl = __builtin_convertvector(__builtin_convertvector(t + SET1(0.5f), VI), VT);   \
    fl = SEL(fl > t + SET1(0.5f), fl - SET1(1.0f), fl); /* floor(t + 0.5) */            \
    VT r = x - fl * SET1(0.693359375f) + fl * SET1(2.12194440e-4f);                     \
    VT p = SET1(1.9875691500e-4f);                                                      \
    p = p * r + SET1(1.3981999507e-3f);                                                 \
    p = p * r + SET1(8.3334519073e-3f);                                                 \
    p = p * r + SET1(4.1665795894e-2f);                                                 \
    p = p * r + SET1(1.6666665459e-1f);                                                 \
    p = p * r + SET1(5.0000001201e-1f);                                                 \
    p = p * r * r + r + SET1(1.0f);                                                     \
    VI e = (__builtin_convertvector(fl, VI) + 127) << 23;                               \
    VT s;                                                                               \
    __builtin_memcpy(&s, &e, sizeof s);                                                 \
    return p * s;                                                                       \
  }
NR_DEFINE_VEXP(v8_exp, , v8, v8i, v8_set1, v8_sel)
/* natural log for positive normal floats; relative error ~1e-7 */
static inline v8 v8_log(v8 u) {
  v8i bits;
  __builtin_memcpy(&bits, &u, sizeof u);
  v8i e = ((bits >> 23) & 0xff) - 127;
  v8i mb = (bits & 0x7fffff) | 0x3f800000;
  v8 m;
  __builtin_memcpy(&m, &mb, sizeof m);
  v8i big = m > v8_set1(1.41421356f);
  m = v8_sel(big, m * v8_set1(0.5f), m);
  e = e + (big & 1);
  v8 s = (m - v8_set1(1.0f)) / (m + v8_set1(1.0f)), s2 = s * s;
  v8 p = v8_set1(1.0f / 9);
  p = p * s2 + v8_set1(1.0f / 7);
  p = p * s2 + v8_set1(1.0f / 5);
  p = p * s2 + v8_set1(1.0f / 3);
  p = p * s2 + v8_set1(1.0f);
  return __builtin_convertvector(e, v8) * v8_set1(0.693147180559945f) + v8_set1(2.0f) * s * p;
}
/* sum of a[j] * b[j] in double over eight interleaved partial sums, combined in a fixed order (the same
 * for any thread count). A single chain of n dependent double adds ran latency-bound: 4 cycles per
 * element in RMSNorm, QK-norm, attention backward and the gradient norm. Products of two floats are
 * exact in double, so only the order of the additions differs from the plain loop. */
typedef float v4f_ __attribute__((vector_size(16)));
typedef double v4d_ __attribute__((vector_size(32)));
static inline double dot_f64(const float *a, const float *b, long n) {
  v4d_ s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
  long j = 0;
  for (; j + 8 <= n; j += 8) {
    v8 x = *(const v8 *)(a + j), y = *(const v8 *)(b + j);
    v4f_ xl = __builtin_shufflevector(x, x, 0, 1, 2, 3), xh = __builtin_shufflevector(x, x, 4, 5, 6, 7);
    v4f_ yl = __builtin_shufflevector(y, y, 0, 1, 2, 3), yh = __builtin_shufflevector(y, y, 4, 5, 6, 7);
    s0 += __builtin_convertvector(xl, v4d_) * __builtin_convertvector(yl, v4d_);
    s1 += __builtin_convertvector(xh, v4d_) * __builtin_convertvector(yh, v4d_);
  }
  v4d_ s = s0 + s1;
  double t = (s[0] + s[1]) + (s[2] + s[3]);
  for (; j < n; j++) t += (double)a[j] * b[j];
  return t;
}

/* max of x[0..n) (n >= 1) */
static inline float vmax_f(const float *x, int n) {
  int j = 0;
  float mx = -INFINITY;
  if (n >= 8) {
    v8 m = *(const v8 *)x;
    for (j = 8; j + 8 <= n; j += 8) {
      v8 y = *(const v8 *)(x + j);
      m = v8_sel(y > m, y, m);
    }
    for (int i = 0; i < 8; i++) mx = m[i] > mx ? m[i] : mx;
  }
  for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
  return mx;
}
static inline v8 v8_sigmoid(v8 x) { return v8_set1(1.0f) / (v8_set1(1.0f) + v8_exp(-x)); }
/* softplus with torch's threshold 20; log1p(y) = log(u) - ((u - 1) - y) / u with u = 1 + y */
static inline v8 v8_softplus(v8 r) {
  v8 y = v8_exp(r), u = v8_set1(1.0f) + y;
  v8 l = v8_log(u) - ((u - v8_set1(1.0f)) - y) / u;
  l = v8_sel(r < v8_set1(-15.0f), y, l);
  return v8_sel(r > v8_set1(20.0f), r, l);
}
static inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

/* error string */
int nr_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- thread pool (pool.c) ---- */
typedef void (*task_fn)(void *ctx, int task, int tid);
void pool_run(task_fn fn, void *ctx, int ntasks);
int pool_size(void); /* 1 while serial */
/* on: tasks run on the caller, no wake-ups (one-row decode steps, see infer.c) */
void pool_serial(int on);
/* Per-thread growable scratch; slot 0..3. Contents are not preserved across calls. */
float *pool_scratch(int tid, int slot, size_t nfloats);
/* Parallel for over [0,n) in nchunks contiguous chunks: fn(ctx, begin, end, tid). */
typedef void (*range_fn)(void *ctx, int begin, int end, int tid);
void pool_for(range_fn fn, void *ctx, int n, int min_chunk);

/* ---- matmul.c ---- */
/* C[M,N] (acc ? += : =) op(A)[M,K] * op(B)[K,N]; ta: A stored K x M; tb: B stored N x K. */
void sgemm_st(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              float *C, int ldc, int acc, int tid);
void sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
           float *C, int ldc, int acc);
/* gemv.c: columns [n0, n1) of one-row c (+)= a . op(B), bit-identical to the GEMM's row */
void gemv(int tb, int n0, int n1, int K, const float *a, const float *B, long ldb, float *c, int acc);
/* Pack op(B) (K x N) once, then run several products against it (single-threaded). */
size_t sgemm_packed_size(int N, int K);
void sgemm_pack_b(float *dst, int tb, int N, int K, const float *B, int ldb);
void sgemm_st_packed(int ta, int M, int N, int K, const float *A, int lda, const float *packed, float *C, int ldc,
                     int acc, int tid);
/* Linear layer helpers (y = x W^T, W: N x K). */
void matmul_forward(float *out, int ldo, const float *inp, int ldi, const float *W, int M, int N, int K, int acc);
void matmul_backward_dx(float *dinp, int lddi, const float *dout, int lddo, const float *W, int M, int N, int K, int acc);
void matmul_backward_dw(float *dW, const float *dout, int lddo, const float *inp, int ldi, int M, int N, int K);

/* ---- config / model layout ---- */
typedef struct {
  int V, L, C, H, Hkv, hd, N, K, E, R, di, mamba_mlp, seq_len, F;
  float rope_base, softcap, eps;
  char pattern[257];
} Config;

typedef struct {
  char name[96];
  int ndim, shape[4];
  size_t off, n;
  int group;
} Tensor;

typedef struct {
  char kind; /* 'T' or 'M' */
  int has_mlp;
  /* offsets into the flat parameter buffer */
  size_t wqkv, wo;                                           /* T: c_q|c_k|c_v stacked, c_proj */
  size_t win, convw, convb, wx, wdt, dtb, alog, dskip, wout; /* M */
  size_t wfc, wproj;                                         /* MLP */
  /* activation pointers (set by acts_alloc) */
  float *xn1, *rstd1, *qkvn, *qkr, *P, *att, *xn2, *rstd2, *fc, *act;
  float *xz, *u, *xdbl, *delta, *y, *o;
} Layer;

typedef struct {
  int B, T;
  size_t cap; /* floats */
  float *mem;
  float *x, *x0n, *rstd0, *xf, *rstdf, *lossrow;
  /* backward scratch */
  float *dx, *dxn, *db1, *db2, *dd1, *dd2, *dd3, *dbc;
  float *logits, *Abuf;
  int train;
} Acts;

struct nr_model {
  Config c;
  int ntensors;
  Tensor *tensors;
  Layer *layers;
  size_t nparams, wte, lm_head;
  float *params, *grads, *m, *v;
  int64_t opt_step;
  float *rope_cos, *rope_sin; /* seq_len x hd/2 */
  Acts a;
};

struct nr_state {
  int B, max_len, pos, L;
  float **kc, **vc;         /* per layer (T): B x max_len x Hkv x hd */
  float **conv, **ssm;      /* per layer (M): B x (K-1) x di, B x di x N */
  size_t bytes;
};

/* ---- layer kernels ---- */
/* embedding.c */
void embedding_forward(float *out, const int32_t *tok, const float *wte, int BT, int C);
void embedding_backward(float *dwte, const float *dout, const int32_t *tok, int BT, int C, int V);
/* rmsnorm.c (no weights): y = x * rstd */
void rmsnorm_forward(float *y, float *rstd, const float *x, int rows, int C, float eps);
/* dx (+)= rstd * (dy - y * mean(dy*y)) */
void rmsnorm_backward(float *dx, const float *dy, const float *y, const float *rstd, int rows, int C, int acc);
/* rope.c: rotate the first nh heads of each row (stride rs) at positions pos0 + (r % T) */
void rope_forward_row(float *x, int nh, int hd, const float *cos, const float *sin);
void rope_backward_row(float *dx, int nh, int hd, const float *cos, const float *sin);
/* attention.c */
typedef struct {
  int B, Tq, Tk, pos0, H, Hkv, hd;
  const float *q; long qs, qbs;        /* q row stride, batch stride */
  const float *k, *v; long ks, kbs;    /* kv row stride, batch stride (head offsets: kvh*hd) */
  float *out; long os, obs;
  float *P;                            /* B x H x Tq x Tk saved probabilities, or NULL */
} AttnArgs;
void attention_forward(const AttnArgs *a);
void attention_backward(const AttnArgs *a, const float *dout, float *dq, float *dk, float *dv);
void attn_block_forward(nr_model *m, Layer *l, int B, int T, nr_state *s, int layer);
void attn_block_backward(nr_model *m, Layer *l, int B, int T);
/* mlp.c */
void mlp_forward(nr_model *m, Layer *l, int BT);
void mlp_backward(nr_model *m, Layer *l, int BT);
/* conv1d.c: depthwise causal conv over the x half of xz (row stride xs) + SiLU */
void conv1d_forward(float *u, const float *xz, int xs, const float *w, const float *b, const float *prev,
                    int B, int T, int d, int K);
void conv1d_backward(float *dxz, int dxs, float *dw, float *db, const float *du, const float *xz, int xs,
                     const float *w, const float *b, int B, int T, int d, int K, float *dp);
/* scan.c */
typedef struct {
  int B, T, d, N;
  const float *u, *delta, *A, *Dskip; /* A: d x N (already -exp(A_log)) */
  const float *Bm, *Cm; long bcs;     /* B_t and C_t rows, stride bcs */
  float *y;                           /* B*T x d */
  const float *h0;                    /* B x d x N initial state or NULL */
  float *hlast;                       /* B x d x N final state or NULL */
} ScanArgs;
void scan_forward(const ScanArgs *s);
void scan_backward(const ScanArgs *s, const float *dy, float *du, float *ddelta, float *dA, float *dD,
                   float *dB, float *dC, long dbcs, float *partial);
void mamba_block_forward(nr_model *m, Layer *l, int B, int T, nr_state *s, int layer);
void mamba_block_backward(nr_model *m, Layer *l, int B, int T);
/* classifier.c: lm_head + soft cap + weighted CE; backward fused when dxf != NULL */
void classifier(nr_model *m, const float *xf, const int32_t *targets, const float *weights, int BT,
                float grad_scale, float *dxf, double *out, float *token_logprobs, float *logits_out);
/* adamw.c / muon.c */
void adamw_update(float *p, const float *g, float *mm, float *vv, size_t n, float lr, float b1, float b2,
                  float eps, float wd, float bc1, float bc2, float gscale);
void muon_update(float *p, const float *g, float *buf, int rows, int cols, float lr, float mom, float wd,
                 int ns_steps, float gscale, int tid);

/* model.c */
int acts_ensure(nr_model *m, int B, int T, int train);
/* classifier rows per chunk: about 16M logits, 128..2048 rows, a multiple of 64 */
static inline int cls_chunk(int V) {
  long r = (16L << 20) / (V > 0 ? V : 1);
  r = r < 128 ? 128 : r > 2048 ? 2048 : r;
  return (int)(r & ~63L);
}
void model_forward(nr_model *m, const int32_t *tok, int B, int T, nr_state *s);
void model_backward(nr_model *m, const int32_t *tok, int B, int T);
/* batch shape and token / target ranges, with the position named */
int model_check_batch(nr_model *m, const int32_t *tok, const int32_t *tgt, int B, int T);

static inline float *PW(nr_model *m, size_t off) { return m->params + off; }
static inline float *GW(nr_model *m, size_t off) { return m->grads + off; }

#endif
