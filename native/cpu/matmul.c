/* Blocked, packed single-precision GEMM (Goto/BLIS style) with a 6x16 register micro-kernel written
 * with GCC vector extensions (AVX2+FMA under -march=x86-64-v3), threaded by splitting C into row or
 * column slabs. Every C element is summed in the same k order whatever the split, so results do not
 * depend on the thread count. Linear-layer forward/backward helpers sit at the bottom. */
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
#define NC 1024

typedef float v16 __attribute__((vector_size(64), aligned(4)));

__attribute__((target("avx512f"))) static void kernel512(int kc, const float *restrict a, const float *restrict b,
                                                          float *C, int ldc, int mr, int nr, int acc) {
  v16 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
  v16 c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0}, c60 = {0}, c61 = {0}, c70 = {0}, c71 = {0};
  for (int k = 0; k < kc; k++) {
    v16 b0 = *(const v16 *)b, b1 = *(const v16 *)(b + 16);
#define R(i, x0, x1) { v16 av = (v16){} + a[i]; x0 += av * b0; x1 += av * b1; }
    R(0, c00, c01) R(1, c10, c11) R(2, c20, c21) R(3, c30, c31)
    R(4, c40, c41) R(5, c50, c51) R(6, c60, c61) R(7, c70, c71)
#undef R
    a += 8;
    b += 32;
  }
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

static void pick_isa(void) {
  if (g_isa >= 0) return;
  __builtin_cpu_init();
  const char *env = getenv("NANORAG_NO_AVX512");
  g_isa = __builtin_cpu_supports("avx512f") && !(env && *env && *env != '0') ? 1 : 0;
  MR = g_isa ? 8 : 6;
  NR = g_isa ? 32 : 16;
}

static void pack_a(float *dst, int ta, const float *A, int lda, int i0, int mc, int k0, int kc) {
  for (int p = 0; p < mc; p += MR) {
    int mr = mc - p < MR ? mc - p : MR;
    if (!ta) {
      const float *rows[MAXMR];
      for (int r = 0; r < MR; r++) rows[r] = r < mr ? A + (size_t)(i0 + p + r) * lda + k0 : NULL;
      for (int k = 0; k < kc; k++)
        for (int r = 0; r < MR; r++) *dst++ = r < mr ? rows[r][k] : 0.0f;
    } else {
      for (int k = 0; k < kc; k++) {
        const float *src = A + (size_t)(k0 + k) * lda + i0 + p;
        for (int r = 0; r < MR; r++) *dst++ = r < mr ? src[r] : 0.0f;
      }
    }
  }
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
      for (int k = 0; k < kc; k++) {
        for (int c = 0; c < NR; c++) dst[c] = c < nr ? B[(size_t)(j0 + p + c) * ldb + k0 + k] : 0.0f;
        dst += NR;
      }
    }
  }
}

static void kernel(int kc, const float *restrict a, const float *restrict b, float *C, int ldc, int mr,
                   int nr, int acc) {
  v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
  v8 c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
  for (int k = 0; k < kc; k++) {
    v8 b0 = *(const v8 *)b, b1 = *(const v8 *)(b + 8), av;
    av = v8_set1(a[0]); c00 += av * b0; c01 += av * b1;
    av = v8_set1(a[1]); c10 += av * b0; c11 += av * b1;
    av = v8_set1(a[2]); c20 += av * b0; c21 += av * b1;
    av = v8_set1(a[3]); c30 += av * b0; c31 += av * b1;
    av = v8_set1(a[4]); c40 += av * b0; c41 += av * b1;
    av = v8_set1(a[5]); c50 += av * b0; c51 += av * b1;
    a += 6;
    b += 16;
  }
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

void sgemm_st(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              float *C, int ldc, int acc, int tid) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!acc)
      for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, N * sizeof(float));
    return;
  }
  pick_isa();
  float *pa = pool_scratch(tid, 2, (size_t)MC * KC);
  float *pb = pool_scratch(tid, 3, (size_t)KC * ((NC + NR - 1) / NR * NR));
  for (int j0 = 0; j0 < N; j0 += NC) {
    int nc = N - j0 < NC ? N - j0 : NC;
    for (int k0 = 0; k0 < K; k0 += KC) {
      int kc = K - k0 < KC ? K - k0 : KC;
      int ac = acc || k0 > 0;
      pack_b(pb, tb, B, ldb, k0, kc, j0, nc);
      for (int i0 = 0; i0 < M; i0 += MC) {
        int mc = M - i0 < MC ? M - i0 : MC;
        pack_a(pa, ta, A, lda, i0, mc, k0, kc);
        for (int jp = 0; jp < nc; jp += NR) {
          int nr = nc - jp < NR ? nc - jp : NR;
          const float *bp = pb + (size_t)(jp / NR) * NR * kc;
          for (int ip = 0; ip < mc; ip += MR) {
            int mr = mc - ip < MR ? mc - ip : MR;
            (g_isa ? kernel512 : kernel)(kc, pa + (size_t)(ip / MR) * MR * kc, bp, C + (size_t)(i0 + ip) * ldc + j0 + jp, ldc, mr,
                   nr, ac);
          }
        }
      }
    }
  }
}

typedef struct {
  int ta, tb, M, N, K, lda, ldb, ldc, acc, split_m, chunk;
  const float *A, *B;
  float *C;
} GemmCtx;

static void gemm_task(void *c, int t, int tid) {
  GemmCtx *g = c;
  int b = t * g->chunk;
  if (g->split_m) {
    int e = b + g->chunk > g->M ? g->M : b + g->chunk;
    if (b >= e) return;
    const float *A = g->ta ? g->A + b : g->A + (size_t)b * g->lda;
    sgemm_st(g->ta, g->tb, e - b, g->N, g->K, A, g->lda, g->B, g->ldb, g->C + (size_t)b * g->ldc, g->ldc, g->acc,
             tid);
  } else {
    int e = b + g->chunk > g->N ? g->N : b + g->chunk;
    if (b >= e) return;
    const float *B = g->tb ? g->B + (size_t)b * g->ldb : g->B + b;
    sgemm_st(g->ta, g->tb, g->M, e - b, g->K, g->A, g->lda, B, g->ldb, g->C + b, g->ldc, g->acc, tid);
  }
}

void sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
           int ldc, int acc) {
  pick_isa();
  int nt = pool_size();
  double flops = 2.0 * M * N * K;
  if (nt == 1 || flops < 2e5) {
    sgemm_st(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc, 0);
    return;
  }
  GemmCtx g = {ta, tb, M, N, K, lda, ldb, ldc, acc, 0, 0, A, B, C};
  /* split the larger side into slabs; a few per thread for balance on big problems */
  int parts = flops > 5e7 ? nt * 2 : nt;
  if (M >= N) {
    g.split_m = 1;
    g.chunk = ((M + parts - 1) / parts + MR - 1) / MR * MR;
    if (M >= MC * parts) g.chunk = (g.chunk + MC - 1) / MC * MC;
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
