/* Blocked, packed single-precision GEMM (Goto/BLIS style) with a 6x16 register micro-kernel written
 * with GCC vector extensions (AVX2+FMA under -march=x86-64-v3), threaded by splitting C into row or
 * column slabs. Every C element is summed in the same k order whatever the split, so results do not
 * depend on the thread count. Linear-layer forward/backward helpers sit at the bottom. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

/* micro-tile: 6x16 (AVX2, 12 ymm accumulators) or 8x32 (AVX-512, 16 zmm accumulators), chosen once at
 * run time from the CPU; packing follows the chosen tile. Each C element is the same sequential FMA
 * chain over k in both kernels. */
static int MR = 6, NR = 16, g_isa = -1;
#define MAXMR 8
#define MAXNR 32
#define KC 256
#define MC 96
#define NC 512

typedef float v16 __attribute__((vector_size(64), aligned(4)));

/* A is read in place (no packing): element (r, k) of the micro-tile is a[r*rs + k*ks]. Row-major A
 * (ks == 1) reads MR row streams; transposed or packed A (rs == 1) reads MR contiguous floats per k. */
#define KLOOP(VT, NRH, NROWS, BODY_ROWS, BODY_COLS)                                 \
  if (ks == 1) {                                                                    \
    for (int k = 0; k < kc; k++) {                                                  \
      VT b0 = *(const VT *)b, b1 = *(const VT *)(b + NRH);                          \
      BODY_ROWS                                                                     \
      b += 2 * NRH;                                                                 \
    }                                                                               \
  } else {                                                                          \
    for (int k = 0; k < kc; k++) {                                                  \
      VT b0 = *(const VT *)b, b1 = *(const VT *)(b + NRH);                          \
      BODY_COLS                                                                     \
      a += ks;                                                                      \
      b += 2 * NRH;                                                                 \
    }                                                                               \
  }

__attribute__((target("avx512f"))) static void kernel512(int kc, const float *restrict a, long rs, long ks,
                                                          const float *restrict b, float *C, int ldc, int mr, int nr,
                                                          int acc) {
  v16 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
  v16 c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0}, c60 = {0}, c61 = {0}, c70 = {0}, c71 = {0};
  const float *r0 = a, *r1 = a + rs, *r2 = a + 2 * rs, *r3 = a + 3 * rs;
  const float *r4 = a + 4 * rs, *r5 = a + 5 * rs, *r6 = a + 6 * rs, *r7 = a + 7 * rs;
#define R(x, i, c0, c1) { float s_ = (x)[i]; v16 av = {s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_}; c0 += av * b0; c1 += av * b1; }
  KLOOP(v16, 16, 8,
        R(r0, k, c00, c01) R(r1, k, c10, c11) R(r2, k, c20, c21) R(r3, k, c30, c31)
        R(r4, k, c40, c41) R(r5, k, c50, c51) R(r6, k, c60, c61) R(r7, k, c70, c71),
        R(a, 0, c00, c01) R(a, 1, c10, c11) R(a, 2, c20, c21) R(a, 3, c30, c31)
        R(a, 4, c40, c41) R(a, 5, c50, c51) R(a, 6, c60, c61) R(a, 7, c70, c71))
#undef R
  if (mr == 8 && nr == 32) {
#define ST(r, x0, x1)                                             \
  do {                                                            \
    v16 *p = (v16 *)(C + (size_t)(r) * ldc);                      \
    if (acc) { p[0] = p[0] + x0; p[1] = p[1] + x1; }              \
    else { p[0] = x0; p[1] = x1; }                                \
  } while (0)
    ST(0, c00, c01); ST(1, c10, c11); ST(2, c20, c21); ST(3, c30, c31);
    ST(4, c40, c41); ST(5, c50, c51); ST(6, c60, c61); ST(7, c70, c71);
#undef ST
    return;
  }
  float t[8][32] __attribute__((aligned(64)));
  *(v16 *)&t[0][0] = c00; *(v16 *)&t[0][16] = c01; *(v16 *)&t[1][0] = c10; *(v16 *)&t[1][16] = c11;
  *(v16 *)&t[2][0] = c20; *(v16 *)&t[2][16] = c21; *(v16 *)&t[3][0] = c30; *(v16 *)&t[3][16] = c31;
  *(v16 *)&t[4][0] = c40; *(v16 *)&t[4][16] = c41; *(v16 *)&t[5][0] = c50; *(v16 *)&t[5][16] = c51;
  *(v16 *)&t[6][0] = c60; *(v16 *)&t[6][16] = c61; *(v16 *)&t[7][0] = c70; *(v16 *)&t[7][16] = c71;
  for (int r = 0; r < mr; r++)
    for (int c = 0; c < nr; c++) C[(size_t)r * ldc + c] = acc ? C[(size_t)r * ldc + c] + t[r][c] : t[r][c];
}

static void kernel(int kc, const float *restrict a, long rs, long ks, const float *restrict b, float *C, int ldc,
                   int mr, int nr, int acc) {
  v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
  v8 c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
  const float *r0 = a, *r1 = a + rs, *r2 = a + 2 * rs, *r3 = a + 3 * rs, *r4 = a + 4 * rs, *r5 = a + 5 * rs;
#define R(x, i, c0, c1) { v8 av = v8_set1((x)[i]); c0 += av * b0; c1 += av * b1; }
  KLOOP(v8, 8, 6,
        R(r0, k, c00, c01) R(r1, k, c10, c11) R(r2, k, c20, c21) R(r3, k, c30, c31) R(r4, k, c40, c41)
        R(r5, k, c50, c51),
        R(a, 0, c00, c01) R(a, 1, c10, c11) R(a, 2, c20, c21) R(a, 3, c30, c31) R(a, 4, c40, c41)
        R(a, 5, c50, c51))
#undef R
  if (mr == 6 && nr == 16) {
#define ST(r, x0, x1)                                             \
  do {                                                            \
    v8 *p = (v8 *)(C + (size_t)(r) * ldc);                        \
    if (acc) { p[0] = p[0] + x0; p[1] = p[1] + x1; }              \
    else { p[0] = x0; p[1] = x1; }                                \
  } while (0)
    ST(0, c00, c01); ST(1, c10, c11); ST(2, c20, c21);
    ST(3, c30, c31); ST(4, c40, c41); ST(5, c50, c51);
#undef ST
    return;
  }
  float t[6][16] __attribute__((aligned(32)));
  *(v8 *)&t[0][0] = c00; *(v8 *)&t[0][8] = c01;
  *(v8 *)&t[1][0] = c10; *(v8 *)&t[1][8] = c11;
  *(v8 *)&t[2][0] = c20; *(v8 *)&t[2][8] = c21;
  *(v8 *)&t[3][0] = c30; *(v8 *)&t[3][8] = c31;
  *(v8 *)&t[4][0] = c40; *(v8 *)&t[4][8] = c41;
  *(v8 *)&t[5][0] = c50; *(v8 *)&t[5][8] = c51;
  for (int r = 0; r < mr; r++)
    for (int c = 0; c < nr; c++) C[(size_t)r * ldc + c] = acc ? C[(size_t)r * ldc + c] + t[r][c] : t[r][c];
}

static void pick_isa(void) {
  if (g_isa >= 0) return;
  __builtin_cpu_init();
  const char *env = getenv("NANORAG_NO_AVX512");
  g_isa = __builtin_cpu_supports("avx512f") && !(env && *env && *env != '0') ? 1 : 0;
  MR = g_isa ? 8 : 6;
  NR = g_isa ? 32 : 16;
}

/* edge strips (fewer than MR rows) are copied into a zero-padded [k][MR] buffer */
static void pack_a_edge(float *dst, int ta, const float *A, int lda, int i0, int mr, int k0, int kc) {
  for (int k = 0; k < kc; k++)
    for (int r = 0; r < MR; r++)
      *dst++ = r < mr ? (ta ? A[(size_t)(k0 + k) * lda + i0 + r] : A[(size_t)(i0 + r) * lda + k0 + k]) : 0.0f;
}

static void pack_b(float *dst, int tb, const float *B, int ldb, int k0, int kc, int j0, int nc) {
  for (int p = 0; p < nc; p += NR) {
    int nr = nc - p < NR ? nc - p : NR;
    if (!tb) {
      for (int k = 0; k < kc; k++) {
        const float *src = B + (size_t)(k0 + k) * ldb + j0 + p;
        if (nr == NR) {
          memcpy(dst, src, NR * sizeof(float));
        } else {
          for (int c = 0; c < NR; c++) dst[c] = c < nr ? src[c] : 0.0f;
        }
        dst += NR;
      }
    } else {
      /* B stored N x K: copy row by row (contiguous reads), scattering into the panel */
      for (int c = 0; c < NR; c++) {
        if (c < nr) {
          const float *src = B + (size_t)(j0 + p + c) * ldb + k0;
          for (int k = 0; k < kc; k++) dst[(size_t)k * NR + c] = src[k];
        } else {
          for (int k = 0; k < kc; k++) dst[(size_t)k * NR + c] = 0.0f;
        }
      }
      dst += (size_t)kc * NR;
    }
  }
}

/* prepacked: B already packed for every (j0, k0) block in loop order (see prepack_b), or NULL */
static void sgemm_core(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc, int acc, int tid, const float *prepacked) {
  if (M <= 0 || N <= 0) return;
  if (M == 1 && !ta && !prepacked) { /* one row: stream B once instead of packing it */
    gemv(tb, 0, N, K, A, B, ldb, C, acc);
    return;
  }
  if (K <= 0) {
    if (!acc)
      for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, N * sizeof(float));
    return;
  }
  pick_isa();
  float *pa = pool_scratch(tid, 2, (size_t)MAXMR * KC);
  float *pb = pool_scratch(tid, 3, (size_t)KC * ((NC + MAXNR - 1) / MAXNR * MAXNR));
  long rs = ta ? 1 : lda, ks = ta ? lda : 1;
  size_t boff = 0;
  for (int j0 = 0; j0 < N; j0 += NC) {
    int nc = N - j0 < NC ? N - j0 : NC;
    for (int k0 = 0; k0 < K; k0 += KC) {
      int kc = K - k0 < KC ? K - k0 : KC;
      int ac = acc || k0 > 0;
      if (prepacked) {
        pb = (float *)prepacked + boff;
        boff += (size_t)kc * ((nc + NR - 1) / NR * NR);
      } else {
        pack_b(pb, tb, B, ldb, k0, kc, j0, nc);
      }
      for (int i0 = 0; i0 < M; i0 += MC) {
        int mc = M - i0 < MC ? M - i0 : MC;
        for (int jp = 0; jp < nc; jp += NR) {
          int nr = nc - jp < NR ? nc - jp : NR;
          const float *bp = pb + (size_t)(jp / NR) * NR * kc;
          for (int ip = 0; ip < mc; ip += MR) {
            int mr = mc - ip < MR ? mc - ip : MR;
            float *c = C + (size_t)(i0 + ip) * ldc + j0 + jp;
            const float *a = A + (size_t)(i0 + ip) * rs + (size_t)k0 * ks;
            long ars = rs, aks = ks;
            if (mr < MR) { /* pack once per (edge strip, k block): only the first column panel packs */
              if (jp == 0) pack_a_edge(pa, ta, A, lda, i0 + ip, mr, k0, kc);
              a = pa; ars = 1; aks = MR;
            }
            if (g_isa) kernel512(kc, a, ars, aks, bp, c, ldc, mr, nr, ac);
            else kernel(kc, a, ars, aks, bp, c, ldc, mr, nr, ac);
          }
        }
      }
    }
  }
}

void sgemm_st(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              float *C, int ldc, int acc, int tid) {
  sgemm_core(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc, tid, NULL);
}

/* ---- packed-B API for callers that reuse one B across many products (attention tiles) ---- */
size_t sgemm_packed_size(int N, int K) {
  pick_isa();
  return (size_t)K * ((N + MAXNR - 1) / MAXNR * MAXNR) + MAXNR;
}
void sgemm_pack_b(float *dst, int tb, int N, int K, const float *B, int ldb) {
  pick_isa();
  size_t off = 0;
  for (int j0 = 0; j0 < N; j0 += NC) {
    int nc = N - j0 < NC ? N - j0 : NC;
    for (int k0 = 0; k0 < K; k0 += KC) {
      int kc = K - k0 < KC ? K - k0 : KC;
      pack_b(dst + off, tb, B, ldb, k0, kc, j0, nc);
      off += (size_t)kc * ((nc + NR - 1) / NR * NR);
    }
  }
}
void sgemm_st_packed(int ta, int M, int N, int K, const float *A, int lda, const float *packed, float *C, int ldc,
                     int acc, int tid) {
  sgemm_core(ta, 0, M, N, K, A, lda, NULL, 0, C, ldc, acc, tid, packed);
}

/* ---- B packed once for all row slabs (threaded path) ---- */
static float *g_packed;
static size_t g_packed_n;

typedef struct {
  int tb, N, K, ldb, nkb;
  const float *B;
  float *dst;
} PackCtx;

static void prepack_task(void *c, int t, int tid) {
  PackCtx *p = c;
  int jb = t / p->nkb, kb = t % p->nkb, j0 = jb * NC, k0 = kb * KC;
  int nc = p->N - j0 < NC ? p->N - j0 : NC, kc = p->K - k0 < KC ? p->K - k0 : KC;
  size_t ncpad_full = (size_t)NC, off = (size_t)jb * ncpad_full * p->K; /* earlier j blocks are full */
  size_t ncpad = (size_t)(nc + NR - 1) / NR * NR;
  off += ncpad * (size_t)k0;
  pack_b(p->dst + off, p->tb, p->B, p->ldb, k0, kc, j0, nc);
}

static const float *prepack_b(int tb, int N, int K, const float *B, int ldb) {
  size_t need = (size_t)K * ((N + NR - 1) / NR * NR);
  if (need > g_packed_n) {
    free(g_packed);
    g_packed = aligned_alloc(64, (need * 4 + 63) / 64 * 64);
    g_packed_n = g_packed ? need : 0;
    if (!g_packed) return NULL;
  }
  int nkb = (K + KC - 1) / KC, njb = (N + NC - 1) / NC;
  PackCtx p = {tb, N, K, ldb, nkb, B, g_packed};
  pool_run(prepack_task, &p, nkb * njb);
  return g_packed;
}

typedef struct {
  int ta, tb, M, N, K, lda, ldb, ldc, acc, split_m, chunk;
  const float *A, *B;
  float *C;
  const float *packed;
} GemmCtx;

static void gemm_task(void *c, int t, int tid) {
  GemmCtx *g = c;
  int b = t * g->chunk;
  if (g->split_m) {
    int e = b + g->chunk > g->M ? g->M : b + g->chunk;
    if (b >= e) return;
    const float *A = g->ta ? g->A + b : g->A + (size_t)b * g->lda;
    sgemm_core(g->ta, g->tb, e - b, g->N, g->K, A, g->lda, g->B, g->ldb, g->C + (size_t)b * g->ldc, g->ldc, g->acc,
               tid, g->packed);
  } else {
    int e = b + g->chunk > g->N ? g->N : b + g->chunk;
    if (b >= e) return;
    const float *B = g->tb ? g->B + (size_t)b * g->ldb : g->B + b;
    sgemm_st(g->ta, g->tb, g->M, e - b, g->K, g->A, g->lda, B, g->ldb, g->C + b, g->ldc, g->acc, tid);
  }
}

typedef struct {
  int tb, N, K, ldb, acc, chunk;
  const float *a, *B;
  float *c;
} GemvCtx;

static void gemv_task(void *x, int t, int tid) {
  GemvCtx *g = x;
  int n0 = t * g->chunk, n1 = n0 + g->chunk < g->N ? n0 + g->chunk : g->N;
  gemv(g->tb, n0, n1, g->K, g->a, g->B, g->ldb, g->c, g->acc);
}

/* Threads pay for a one-row product only from ~1 MB of B on (lm_head, not a layer's small matrices);
 * slabs of at least 64k weights, in whole 32-column tiles. */
static void gemv_threaded(int tb, int N, int K, const float *a, const float *B, int ldb, float *c, int acc, int nt) {
  size_t w = (size_t)N * K;
  if (nt == 1 || w < ((size_t)1 << 18)) {
    gemv(tb, 0, N, K, a, B, ldb, c, acc);
    return;
  }
  int parts = nt * 2, minrows = (int)(((size_t)1 << 16) / (size_t)K) + 1;
  int chunk = (N + parts - 1) / parts;
  if (chunk < minrows) chunk = minrows;
  chunk = (chunk + 31) / 32 * 32;
  GemvCtx g = {tb, N, K, ldb, acc, chunk, a, B, c};
  pool_run(gemv_task, &g, (N + chunk - 1) / chunk);
}

void sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
           int ldc, int acc) {
  pick_isa();
  int nt = pool_size();
  if (M == 1 && !ta) {
    gemv_threaded(tb, N, K, A, B, ldb, C, acc, nt);
    return;
  }
  double flops = 2.0 * M * N * K;
  if (nt == 1 || flops < 2e5) {
    sgemm_st(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc, 0);
    return;
  }
  GemmCtx g = {ta, tb, M, N, K, lda, ldb, ldc, acc, 0, 0, A, B, C, NULL};
  /* split the larger side into slabs; a few per thread for balance on big problems */
  /* Several slabs per thread, claimed dynamically: when a thread is descheduled (a busy machine) the
   * others take its share instead of waiting for it. Slabs of at least ~2 MFLOP keep B repacking cheap. */
  int parts = nt * 6;
  double minpart = 2e6;
  if (flops / parts < minpart) parts = (int)(flops / minpart) > nt ? (int)(flops / minpart) : nt;
  if (M >= N) {
    g.split_m = 1;
    g.chunk = ((M + parts - 1) / parts + MR - 1) / MR * MR;
    if (g.chunk >= MC) g.chunk = (g.chunk + MC - 1) / MC * MC;
    if ((M + g.chunk - 1) / g.chunk > 1 && (size_t)K * N <= ((size_t)16 << 20)) g.packed = prepack_b(tb, N, K, B, ldb);
    pool_run(gemm_task, &g, (M + g.chunk - 1) / g.chunk);
  } else {
    g.chunk = ((N + parts - 1) / parts + NR - 1) / NR * NR;
    pool_run(gemm_task, &g, (N + g.chunk - 1) / g.chunk);
  }
}

/* out[M,N] (+)= inp[M,K] . W[N,K]^T */
void matmul_forward(float *out, int ldo, const float *inp, int ldi, const float *W, int M, int N, int K, int acc) {
  sgemm(0, 1, M, N, K, inp, ldi, W, K, out, ldo, acc);
}
/* dinp[M,K] (+)= dout[M,N] . W[N,K] */
void matmul_backward_dx(float *dinp, int lddi, const float *dout, int lddo, const float *W, int M, int N, int K,
                        int acc) {
  sgemm(0, 0, M, K, N, dout, lddo, W, K, dinp, lddi, acc);
}
/* dW[N,K] += dout[M,N]^T . inp[M,K] */
void matmul_backward_dw(float *dW, const float *dout, int lddo, const float *inp, int ldi, int M, int N, int K) {
  sgemm(1, 0, N, K, M, dout, lddo, inp, ldi, dW, K, 1);
}

void nr_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
              int acc) {
  sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
}

const char *nr_engine_info(void) {
  static char buf[64];
  pick_isa();
  snprintf(buf, sizeof buf, "cpu %s threads=%d", g_isa ? "avx512" : "avx2", pool_size());
  return buf;
}
