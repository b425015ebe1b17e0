/* Mamba-1 block (engine_spec.md 2.4-2.5): x += out_proj(scan(...) * silu(z)) on norm(x), optional MLP.
 * in_proj -> [x | z]; causal depthwise conv + SiLU -> u; x_proj -> [dt_low | B | C];
 * delta = softplus(dt_proj(dt_low) + dt_bias); selective scan with A = -exp(A_log) and D skip. */
#include <string.h>
#include "common.h"

typedef struct {
  nr_model *m;
  Layer *l;
  float *g, *dxz; /* backward: d(o) -> gamma in place, dz into dxz */
  float *ddelta;
  int di, BT;
} EwCtx;

static inline float softplusf(float r) { return r > 20.0f ? r : log1pf(expf(r)); }

static void dt_fwd(void *c, int r0, int r1, int tid) {
  EwCtx *x = c;
  const float *bias = PW(x->m, x->l->dtb);
  for (int r = r0; r < r1; r++) {
    float *d = x->l->delta + (size_t)r * x->di;
    int j = 0;
    for (; j + 8 <= x->di; j += 8) *(v8 *)(d + j) = v8_softplus(*(v8 *)(d + j) + *(const v8 *)(bias + j));
    for (; j < x->di; j++) d[j] = softplusf(d[j] + bias[j]);
  }
}

static void gate_fwd(void *c, int r0, int r1, int tid) {
  EwCtx *x = c;
  int di = x->di;
  for (int r = r0; r < r1; r++) {
    const float *y = x->l->y + (size_t)r * di, *z = x->l->xz + (size_t)r * 2 * di + di;
    float *o = x->l->o + (size_t)r * di;
    for (int j = 0; j < di; j += 8) {
      v8 zz = *(const v8 *)(z + j);
      *(v8 *)(o + j) = *(const v8 *)(y + j) * zz * v8_sigmoid(zz);
    }
  }
}

static void gate_bwd(void *c, int r0, int r1, int tid) {
  EwCtx *x = c;
  int di = x->di;
  for (int r = r0; r < r1; r++) {
    const float *y = x->l->y + (size_t)r * di, *z = x->l->xz + (size_t)r * 2 * di + di;
    float *g = x->g + (size_t)r * di, *dz = x->dxz + (size_t)r * 2 * di + di;
    for (int j = 0; j < di; j += 8) { /* di % 8 == 0 */
      v8 zz = *(const v8 *)(z + j), sg = v8_sigmoid(zz), dout = *(v8 *)(g + j), one = v8_set1(1.0f);
      *(v8 *)(dz + j) = dout * *(const v8 *)(y + j) * sg * (one + zz * (one - sg));
      *(v8 *)(g + j) = dout * zz * sg;
    }
  }
}

/* d(softplus): sigma(r) = 1 - exp(-delta) */
static void dt_bwd(void *c, int r0, int r1, int tid) {
  EwCtx *x = c;
  for (int r = r0; r < r1; r++) {
    float *dd = x->ddelta + (size_t)r * x->di;
    const float *d = x->l->delta + (size_t)r * x->di;
    for (int j = 0; j < x->di; j += 8) { /* sigma(r) = 1 - exp(-delta); delta < 1e-3: use the series */
      v8 dl = *(const v8 *)(d + j);
      v8 e = v8_set1(1.0f) - v8_exp(-dl), ser = dl * (v8_set1(1.0f) - v8_set1(0.5f) * dl);
      *(v8 *)(dd + j) = *(v8 *)(dd + j) * v8_sel(dl < v8_set1(1e-3f), ser, e);
    }
  }
}

/* dt_bias grad: per-channel sums over rows, channel ranges per task (order fixed per channel) */
static void dtb_bwd(void *c, int c0, int c1, int tid) {
  EwCtx *x = c;
  float *g = GW(x->m, x->l->dtb);
  for (int r = 0; r < x->BT; r++) {
    const float *dd = x->ddelta + (size_t)r * x->di;
    for (int j = c0; j < c1; j++) g[j] += dd[j];
  }
}

static void fill_A(nr_model *m, Layer *l, float *A) {
  int n = m->c.di * m->c.N;
  const float *al = PW(m, l->alog);
  for (int i = 0; i < n; i++) A[i] = -expf(al[i]);
}

void mamba_block_forward(nr_model *m, Layer *l, int B, int T, nr_state *s, int layer) {
  Config *c = &m->c;
  Acts *a = &m->a;
  int BT = B * T, C = c->C, di = c->di, N = c->N, R = c->R, K = c->K, xw = R + 2 * N;
  rmsnorm_forward(l->xn1, l->rstd1, a->x, BT, C, c->eps);
  matmul_forward(l->xz, 2 * di, l->xn1, C, PW(m, l->win), BT, 2 * di, C, 0);
  conv1d_forward(l->u, l->xz, 2 * di, PW(m, l->convw), PW(m, l->convb), s ? s->conv[layer] : NULL, B, T, di, K);
  if (s && K > 1) { /* new conv state: the last K-1 inputs of [prev | x] */
    float *st = s->conv[layer];
    float *tmp = pool_scratch(0, 0, (size_t)(K - 1) * di);
    for (int b = 0; b < B; b++) {
      float *sb = st + (size_t)b * (K - 1) * di;
      for (int j = 0; j < K - 1; j++) {
        int src = T - (K - 1) + j; /* index into new inputs; < 0 means older state */
        if (src >= 0) memcpy(tmp + (size_t)j * di, l->xz + ((size_t)b * T + src) * 2 * di, di * sizeof(float));
        else memcpy(tmp + (size_t)j * di, sb + (size_t)(K - 1 + src) * di, di * sizeof(float));
      }
      memcpy(sb, tmp, (size_t)(K - 1) * di * sizeof(float));
    }
  }
  matmul_forward(l->xdbl, xw, l->u, di, PW(m, l->wx), BT, xw, di, 0);
  matmul_forward(l->delta, di, l->xdbl, xw, PW(m, l->wdt), BT, di, R, 0);
  EwCtx e = {m, l, NULL, NULL, NULL, di, BT};
  pool_for(dt_fwd, &e, BT, 32);
  float *A = a->Abuf;
  fill_A(m, l, A);
  ScanArgs sa = {.B = B, .T = T, .d = di, .N = N, .u = l->u, .delta = l->delta, .A = A, .Dskip = PW(m, l->dskip),
                 .Bm = l->xdbl + R, .Cm = l->xdbl + R + N, .bcs = xw, .y = l->y,
                 .h0 = s ? s->ssm[layer] : NULL, .hlast = s ? s->ssm[layer] : NULL};
  scan_forward(&sa);
  pool_for(gate_fwd, &e, BT, 32);
  matmul_forward(a->x, C, l->o, di, PW(m, l->wout), BT, C, di, 1);
  if (l->has_mlp) mlp_forward(m, l, BT);
}

void mamba_block_backward(nr_model *m, Layer *l, int B, int T) {
  Config *c = &m->c;
  Acts *a = &m->a;
  int BT = B * T, C = c->C, di = c->di, N = c->N, R = c->R, K = c->K, xw = R + 2 * N;
  if (l->has_mlp) mlp_backward(m, l, BT);
  matmul_backward_dw(GW(m, l->wout), a->dx, C, l->o, di, BT, C, di);
  float *g = a->dd1, *du = a->dd2, *ddelta = a->dd3, *dxz = a->db1, *dxdbl = a->db2;
  matmul_backward_dx(g, di, a->dx, C, PW(m, l->wout), BT, C, di, 0);
  EwCtx e = {m, l, g, dxz, ddelta, di, BT};
  pool_for(gate_bwd, &e, BT, 32);
  float *A = a->Abuf;
  fill_A(m, l, A);
  ScanArgs sa = {.B = B, .T = T, .d = di, .N = N, .u = l->u, .delta = l->delta, .A = A, .Dskip = PW(m, l->dskip),
                 .Bm = l->xdbl + R, .Cm = l->xdbl + R + N, .bcs = xw, .y = l->y};
  scan_backward(&sa, g, du, ddelta, GW(m, l->alog), GW(m, l->dskip), dxdbl + R, dxdbl + R + N, xw, a->dbc);
  pool_for(dt_bwd, &e, BT, 32);
  pool_for(dtb_bwd, &e, di, 64);
  matmul_backward_dw(GW(m, l->wdt), ddelta, di, l->xdbl, xw, BT, di, R);
  matmul_backward_dx(dxdbl, xw, ddelta, di, PW(m, l->wdt), BT, di, R, 0);
  matmul_backward_dw(GW(m, l->wx), dxdbl, xw, l->u, di, BT, xw, di);
  matmul_backward_dx(du, di, dxdbl, xw, PW(m, l->wx), BT, xw, di, 1);
  conv1d_backward(dxz, 2 * di, GW(m, l->convw), GW(m, l->convb), du, l->xz, 2 * di, PW(m, l->convw), PW(m, l->convb), B,
                  T, di, K, ddelta);
  matmul_backward_dw(GW(m, l->win), dxz, 2 * di, l->xn1, C, BT, 2 * di, C);
  matmul_backward_dx(a->dxn, C, dxz, 2 * di, PW(m, l->win), BT, 2 * di, C, 0);
  rmsnorm_backward(a->dx, a->dxn, l->xn1, l->rstd1, BT, C, 1);
}
