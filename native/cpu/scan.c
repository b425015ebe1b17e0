/* Mamba-1 selective scan (engine_spec.md 2.4-2.6), vectorised over 8 channels at a time:
 *   a_t = exp(delta_t[d] A[d,n]),  h_t = a_t h_{t-1} + delta_t[d] B_t[n] u_t[d],
 *   y_t[d] = sum_n C_t[n] h_t[d,n] + D[d] u_t[d].
 * Backward walks t in reverse with the adjoint lambda_t = gamma_t C_t + a_{t+1} lambda_{t+1},
 * recomputing the forward states of the (b, channel group) first. dB/dC are reduced over channels
 * through per-task partial rows summed in a fixed order (deterministic for any thread count).
 * Requires d % 8 == 0 and N <= 64. */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif

#define MAXN 64

/* out[i] = sum of the 8 lanes of x[i], for 8 vectors at once */
static inline void hsum8(const v8 *x, float *out) {
#ifdef __AVX2__
  __m256 h01 = _mm256_hadd_ps((__m256)x[0], (__m256)x[1]), h23 = _mm256_hadd_ps((__m256)x[2], (__m256)x[3]);
  __m256 h45 = _mm256_hadd_ps((__m256)x[4], (__m256)x[5]), h67 = _mm256_hadd_ps((__m256)x[6], (__m256)x[7]);
  __m256 a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);
  __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
  _mm256_storeu_ps(out, s);
#else
  for (int i = 0; i < 8; i++) out[i] = v8_sum(x[i]);
#endif
}

typedef struct {
  const ScanArgs *s;
  const float *dy;
  float *du, *ddelta, *dAlog, *dD, *partial;
} BwdCtx;

/* ---- 8 channels per vector (AVX2) ---- */
#define VT v8
#define VW 8
#define VSET1 v8_set1
#define VEXP v8_exp
#define VSUM v8_sum
#define HSUM8 hsum8
#define VATTR
#define FN(x) x##_8
#include "scan_impl.h"
#undef VT
#undef VW
#undef VSET1
#undef VEXP
#undef VSUM
#undef HSUM8
#undef VATTR
#undef FN

/* ---- 16 channels per vector (AVX-512, chosen at run time) ---- */
typedef float v16s __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16i __attribute__((vector_size(64), aligned(4)));
#define A512 __attribute__((target("avx512f")))
static inline A512 v16s v16_set1(float x) { return (v16s){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
static inline A512 v16s v16_sel(v16i m, v16s a, v16s b) {
  v16i ai, bi, r;
  __builtin_memcpy(&ai, &a, sizeof a);
  __builtin_memcpy(&bi, &b, sizeof b);
  r = (ai & m) | (bi & ~m);
  v16s o;
  __builtin_memcpy(&o, &r, sizeof o);
  return o;
}
NR_DEFINE_VEXP(v16_exp, A512, v16s, v16i, v16_set1, v16_sel)
static inline A512 float v16_sum(v16s a) {
  v8 lo, hi;
  __builtin_memcpy(&lo, &a, sizeof lo);
  __builtin_memcpy(&hi, (const char *)&a + 32, sizeof hi);
  return v8_sum(lo + hi);
}
static inline A512 void hsum8_16(const v16s *x, float *out) {
  v8 y[8];
  for (int i = 0; i < 8; i++) {
    v8 lo, hi;
    __builtin_memcpy(&lo, &x[i], sizeof lo);
    __builtin_memcpy(&hi, (const char *)&x[i] + 32, sizeof hi);
    y[i] = lo + hi;
  }
  hsum8(y, out);
}
#define VT v16s
#define VW 16
#define VSET1 v16_set1
#define VEXP v16_exp
#define VSUM v16_sum
#define HSUM8 hsum8_16
#define VATTR A512
#define FN(x) x##_16
#include "scan_impl.h"

static int use16(int d) {
  static int avx512 = -1;
  if (avx512 < 0) {
    __builtin_cpu_init();
    const char *env = getenv("NANORAG_NO_AVX512");
    avx512 = __builtin_cpu_supports("avx512f") && !(env && *env && *env != '0');
  }
  return avx512 && d % 16 == 0;
}

void scan_forward(const ScanArgs *s) {
  if (use16(s->d)) pool_run(fwd_task_16, (void *)s, s->B * (s->d / 16));
  else pool_run(fwd_task_8, (void *)s, s->B * (s->d / 8));
}

typedef struct {
  const float *partial;
  float *dB, *dC;
  long dbcs;
  int N, G;
  size_t BT;
} Red2;

static void red2(void *c, int r0, int r1, int tid) {
  Red2 *x = c;
  int N = x->N;
  for (int r = r0; r < r1; r++) {
    float *dB = x->dB + (size_t)r * x->dbcs, *dC = x->dC + (size_t)r * x->dbcs;
    for (int n = 0; n < N; n++) dB[n] = dC[n] = 0.0f;
    for (int g = 0; g < x->G; g++) {
      const float *p = x->partial + ((size_t)g * x->BT + r) * 2 * N;
      for (int n = 0; n < N; n++) {
        dB[n] += p[n];
        dC[n] += p[N + n];
      }
    }
  }
}

/* du, ddelta are written (=); dAlog, dD accumulate (+=); dB, dC (row stride dbcs) are written (=).
 * partial: (d/8) x B*T x 2N floats of scratch. The initial state h0 is treated as a constant. */
void scan_backward(const ScanArgs *s, const float *dy, float *du, float *ddelta, float *dAlog, float *dD, float *dB,
                   float *dC, long dbcs, float *partial) {
  BwdCtx x = {s, dy, du, ddelta, dAlog, dD, partial};
  int w16 = use16(s->d), G = s->d / (w16 ? 16 : 8);
  pool_run(w16 ? bwd_task_16 : bwd_task_8, &x, G);
  Red2 r = {partial, dB, dC, dbcs, s->N, G, (size_t)s->B * s->T};
  pool_for(red2, &r, s->B * s->T, 64);
}
