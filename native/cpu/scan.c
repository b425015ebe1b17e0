/* Mamba-1 selective scan (engine_spec.md 2.4-2.6), vectorised over 8 channels at a time:
 *   a_t = exp(delta_t[d] A[d,n]),  h_t = a_t h_{t-1} + delta_t[d] B_t[n] u_t[d],
 *   y_t[d] = sum_n C_t[n] h_t[d,n] + D[d] u_t[d].
 * Backward walks t in reverse with the adjoint lambda_t = gamma_t C_t + a_{t+1} lambda_{t+1},
 * recomputing the forward states of the (b, channel group) first. dB/dC are reduced over channels
 * through per-task partial rows summed in a fixed order (deterministic for any thread count).
 * Requires d % 8 == 0 and N <= 64. */
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

static void load_A(const ScanArgs *s, int c0, v8 *Av) {
  for (int n = 0; n < s->N; n++)
    for (int i = 0; i < 8; i++) Av[n][i] = s->A[(size_t)(c0 + i) * s->N + n];
}

/* forward for one batch row and 8 channels; hs (T x N v8) receives every state and as (T x N v8)
 * every decay factor when non-NULL */
static void scan_group(const ScanArgs *s, int b, int c0, const v8 *Av, v8 *hs, v8 *as, int write_y) {
  int N = s->N, d = s->d;
  v8 h[MAXN];
  for (int n = 0; n < N; n++) {
    if (s->h0)
      for (int i = 0; i < 8; i++) h[n][i] = s->h0[((size_t)b * d + c0 + i) * N + n];
    else
      h[n] = v8_set1(0.0f);
  }
  v8 Dv = *(const v8 *)(s->Dskip + c0);
  for (int t = 0; t < s->T; t++) {
    size_t row = (size_t)b * s->T + t;
    v8 dl = *(const v8 *)(s->delta + row * d + c0), uu = *(const v8 *)(s->u + row * d + c0);
    v8 du = dl * uu, y = Dv * uu;
    const float *Bt = s->Bm + row * s->bcs, *Ct = s->Cm + row * s->bcs;
    for (int n = 0; n < N; n++) {
      v8 a = v8_exp(dl * Av[n]);
      h[n] = a * h[n] + du * v8_set1(Bt[n]);
      y += h[n] * v8_set1(Ct[n]);
      if (as) as[(size_t)t * N + n] = a;
    }
    if (hs) memcpy(hs + (size_t)t * N, h, N * sizeof(v8));
    if (write_y) *(v8 *)(s->y + row * d + c0) = y;
  }
  if (s->hlast)
    for (int n = 0; n < N; n++)
      for (int i = 0; i < 8; i++) s->hlast[((size_t)b * d + c0 + i) * N + n] = h[n][i];
}

static void fwd_task(void *c, int task, int tid) {
  const ScanArgs *s = c;
  int groups = s->d / 8, b = task / groups, c0 = (task % groups) * 8;
  v8 Av[MAXN];
  load_A(s, c0, Av);
  scan_group(s, b, c0, Av, NULL, NULL, 1);
}

void scan_forward(const ScanArgs *s) { pool_run(fwd_task, (void *)s, s->B * (s->d / 8)); }

typedef struct {
  const ScanArgs *s;
  const float *dy;
  float *du, *ddelta, *dAlog, *dD, *partial;
} BwdCtx;

static void bwd_task(void *c, int g, int tid) {
  BwdCtx *x = c;
  const ScanArgs *s = x->s;
  int N = s->N, d = s->d, T = s->T, c0 = g * 8;
  size_t BT = (size_t)s->B * T;
  float *part = x->partial + (size_t)g * BT * 2 * N; /* rows of [dB (N) | dC (N)] */
  memset(part, 0, BT * 2 * N * sizeof(float));
  v8 Av[MAXN], dA[MAXN], lam[MAXN], anext[MAXN];
  load_A(s, c0, Av);
  for (int n = 0; n < N; n++) dA[n] = v8_set1(0.0f);
  v8 dDacc = v8_set1(0.0f), Dv = *(const v8 *)(s->Dskip + c0);
  v8 *hs = (v8 *)pool_scratch(tid, 1, (size_t)T * N * 8 * 2), *as = hs + (size_t)T * N;
  ScanArgs fs = *s;
  fs.hlast = NULL;
  for (int b = 0; b < s->B; b++) {
    scan_group(&fs, b, c0, Av, hs, as, 0);
    for (int n = 0; n < N; n++) lam[n] = anext[n] = v8_set1(0.0f);
    (void)Av;
    for (int t = T - 1; t >= 0; t--) {
      size_t row = (size_t)b * T + t;
      v8 gm = *(const v8 *)(x->dy + row * d + c0);
      v8 dl = *(const v8 *)(s->delta + row * d + c0), uu = *(const v8 *)(s->u + row * d + c0);
      const float *Bt = s->Bm + row * s->bcs, *Ct = s->Cm + row * s->bcs;
      float *pB = part + row * 2 * N, *pC = pB + N;
      v8 dlu = dl * uu, duacc = Dv * gm, ddl = v8_set1(0.0f);
      dDacc += gm * uu;
      const v8 *ht = hs + (size_t)t * N, *hp = t > 0 ? hs + (size_t)(t - 1) * N : NULL;
      v8 vB[MAXN], vC[MAXN];
      for (int n = 0; n < N; n++) {
        v8 Bn = v8_set1(Bt[n]);
        v8 l = gm * v8_set1(Ct[n]) + anext[n] * lam[n];
        v8 a = as[(size_t)t * N + n];
        v8 ah = hp ? a * hp[n] : v8_set1(0.0f);
        vC[n] = gm * ht[n];
        vB[n] = l * dlu;
        duacc += l * dl * Bn;
        ddl += l * (Av[n] * ah + Bn * uu);
        dA[n] += l * dl * ah;
        lam[n] = l;
        anext[n] = a;
      }
      int n8 = N & ~7;
      for (int n = 0; n < n8; n += 8) {
        hsum8(vB + n, pB + n);
        hsum8(vC + n, pC + n);
      }
      for (int n = n8; n < N; n++) {
        pB[n] = v8_sum(vB[n]);
        pC[n] = v8_sum(vC[n]);
      }
      *(v8 *)(x->du + row * d + c0) = duacc;
      *(v8 *)(x->ddelta + row * d + c0) = ddl;
    }
  }
  for (int n = 0; n < N; n++)
    for (int i = 0; i < 8; i++) x->dAlog[(size_t)(c0 + i) * N + n] += dA[n][i] * Av[n][i];
  for (int i = 0; i < 8; i++) x->dD[c0 + i] += dDacc[i];
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
  int G = s->d / 8;
  pool_run(bwd_task, &x, G);
  Red2 r = {partial, dB, dC, dbcs, s->N, G, (size_t)s->B * s->T};
  pool_for(red2, &r, s->B * s->T, 64);
}
