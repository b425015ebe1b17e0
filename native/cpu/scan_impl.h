/* Vector-width template for scan.c (included twice: 8-wide AVX2 and 16-wide AVX-512). Expects VT, VW,
 * VSET1, VEXP, VSUM, HSUM8 (8 sums of VW-lane vectors), VATTR and FN(name) to be defined. */
static VATTR void FN(load_A)(const ScanArgs *s, int c0, VT *Av) {
  for (int n = 0; n < s->N; n++)
    for (int i = 0; i < VW; i++) Av[n][i] = s->A[(size_t)(c0 + i) * s->N + n];
}

/* forward for one batch row and 8 channels; hs (T x N VT) receives every state and as (T x N VT)
 * every decay factor when non-NULL */
static VATTR void FN(scan_group)(const ScanArgs *s, int b, int c0, const VT *Av, VT *hs, VT *as, int write_y) {
  int N = s->N, d = s->d;
  VT h[MAXN];
  for (int n = 0; n < N; n++) {
    if (s->h0)
      for (int i = 0; i < VW; i++) h[n][i] = s->h0[((size_t)b * d + c0 + i) * N + n];
    else
      h[n] = VSET1(0.0f);
  }
  VT Dv = *(const VT *)(s->Dskip + c0);
  for (int t = 0; t < s->T; t++) {
    size_t row = (size_t)b * s->T + t;
    VT dl = *(const VT *)(s->delta + row * d + c0), uu = *(const VT *)(s->u + row * d + c0);
    VT du = dl * uu, y = Dv * uu;
    const float *Bt = s->Bm + row * s->bcs, *Ct = s->Cm + row * s->bcs;
    for (int n = 0; n < N; n++) {
      VT a = VEXP(dl * Av[n]);
      h[n] = a * h[n] + du * VSET1(Bt[n]);
      y += h[n] * VSET1(Ct[n]);
      if (as) as[(size_t)t * N + n] = a;
    }
    if (hs) memcpy(hs + (size_t)t * N, h, N * sizeof(VT));
    if (write_y) *(VT *)(s->y + row * d + c0) = y;
  }
  if (s->hlast)
    for (int n = 0; n < N; n++)
      for (int i = 0; i < VW; i++) s->hlast[((size_t)b * d + c0 + i) * N + n] = h[n][i];
}

static VATTR void FN(fwd_task)(void *c, int task, int tid) {
  const ScanArgs *s = c;
  int groups = s->d / VW, b = task / groups, c0 = (task % groups) * VW;
  VT Av[MAXN];
  FN(load_A)(s, c0, Av);
  FN(scan_group)(s, b, c0, Av, NULL, NULL, 1);
}



static VATTR void FN(bwd_task)(void *c, int g, int tid) {
  BwdCtx *x = c;
  const ScanArgs *s = x->s;
  int N = s->N, d = s->d, T = s->T, c0 = g * VW;
  size_t BT = (size_t)s->B * T;
  /* rows of [dB (N) | dC (N)]; g < d / VW <= d / 8 partial slots. Every row and n is written below
   * (all b, all t), so the slot needs no clearing. */
  float *part = x->partial + (size_t)g * BT * 2 * N;
  VT Av[MAXN], dA[MAXN], lam[MAXN], anext[MAXN];
  FN(load_A)(s, c0, Av);
  for (int n = 0; n < N; n++) dA[n] = VSET1(0.0f);
  VT dDacc = VSET1(0.0f), Dv = *(const VT *)(s->Dskip + c0);
  VT *hs = (VT *)pool_scratch(tid, 1, (size_t)T * N * VW * 2), *as = hs + (size_t)T * N;
  ScanArgs fs = *s;
  fs.hlast = NULL;
  for (int b = 0; b < s->B; b++) {
    FN(scan_group)(&fs, b, c0, Av, hs, as, 0);
    for (int n = 0; n < N; n++) lam[n] = anext[n] = VSET1(0.0f);
    (void)Av;
    for (int t = T - 1; t >= 0; t--) {
      size_t row = (size_t)b * T + t;
      VT gm = *(const VT *)(x->dy + row * d + c0);
      VT dl = *(const VT *)(s->delta + row * d + c0), uu = *(const VT *)(s->u + row * d + c0);
      const float *Bt = s->Bm + row * s->bcs, *Ct = s->Cm + row * s->bcs;
      float *pB = part + row * 2 * N, *pC = pB + N;
      VT dlu = dl * uu, duacc = Dv * gm, ddl = VSET1(0.0f);
      dDacc += gm * uu;
      const VT *ht = hs + (size_t)t * N, *hp = t > 0 ? hs + (size_t)(t - 1) * N : NULL;
      VT vB[MAXN], vC[MAXN];
      for (int n = 0; n < N; n++) {
        VT Bn = VSET1(Bt[n]);
        VT l = gm * VSET1(Ct[n]) + anext[n] * lam[n];
        VT a = as[(size_t)t * N + n];
        VT ah = hp ? a * hp[n] : VSET1(0.0f);
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
        HSUM8(vB + n, pB + n);
        HSUM8(vC + n, pC + n);
      }
      for (int n = n8; n < N; n++) {
        pB[n] = VSUM(vB[n]);
        pC[n] = VSUM(vC[n]);
      }
      *(VT *)(x->du + row * d + c0) = duacc;
      *(VT *)(x->ddelta + row * d + c0) = ddl;
    }
  }
  for (int n = 0; n < N; n++)
    for (int i = 0; i < VW; i++) x->dAlog[(size_t)(c0 + i) * N + n] += dA[n][i] * Av[n][i];
  for (int i = 0; i < VW; i++) x->dD[c0 + i] += dDacc[i];
}

