/* Mamba-1 block (engine_spec.md 2.4-2.5): x += out_proj(scan(...) * silu(z)) on norm(x), optional MLP.
 * in_proj -> [x | z]; causal depthwise conv + SiLU -> u; x_proj -> [dt_low | B | C];
 * delta = softplus(dt_proj(dt_low) + dt_bias); selective scan with A = -exp(A_log) and D skip. */
#include "common.cuh"

__global__ void dt_fwd_k(float *delta, const float *bias, long n, int di) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float r = delta[i] + bias[i % di];
  delta[i] = r > 20.0f ? r : log1pf(__expf(r)); /* softplus, torch's threshold */
}

/* o = y * silu(z) */
__global__ void gate_fwd_k(float *o, const float *y, const float *xz, long n, int di) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float z = xz[(i / di) * 2 * di + di + i % di];
  o[i] = y[i] * z / (1.0f + __expf(-z));
}

/* g: d(o) in, d(y) out; dz into the z half of dxz */
__global__ void gate_bwd_k(float *g, float *dxz, const float *y, const float *xz, long n, int di) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  long zi = (i / di) * 2 * di + di + i % di;
  float z = xz[zi], sg = 1.0f / (1.0f + __expf(-z)), d = g[i];
  dxz[zi] = d * y[i] * sg * (1.0f + z * (1.0f - sg));
  g[i] = d * z * sg;
}

/* d(softplus)(r) = sigmoid(r) = 1 - exp(-delta) */
__global__ void dt_bwd_k(float *dd, const float *delta, long n) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dd[i] *= -expm1f(-delta[i]);
}

static ScanArgs scan_args(nr_model *m, Lay *l, int B, int T) {
  const HostConfig *c = &m->c;
  ScanArgs sa = {B, T, c->di, c->N, l->u, l->delta, m->p + l->h.alog, m->p + l->h.dskip, l->xdbl + c->R,
                 c->R + 2 * c->N, l->y, NULL, NULL, m->hch, m->sdl};
  return sa;
}

void mamba_block_forward(nr_model *m, Lay *l, float *x, int B, int T, nr_state *s, int layer) {
  const HostConfig *c = &m->c;
  int BT = B * T, C = c->C, di = c->di, R = c->R, K = c->K, xw = R + 2 * c->N;
  long n = (long)BT * di;
  rmsnorm_forward(l->xn1, l->rstd1, x, BT, C, c->eps);
  lin_fwd(m, l->xz, 2 * di, l->xn1, C, m->p + l->h.win, BT, 2 * di, C, 0.0f);
  conv1d_forward(l->u, l->xz, 2 * di, m->p + l->h.convw, m->p + l->h.convb, s ? s->conv[layer] : NULL, B, T, di, K);
  if (s) conv_state_update(s->conv[layer], s->tmp, l->xz, 2 * di, B, T, di, K);
  lin_fwd(m, l->xdbl, xw, l->u, di, m->p + l->h.wx, BT, xw, di, 0.0f);
  lin_fwd(m, l->delta, di, l->xdbl, xw, m->p + l->h.wdt, BT, di, R, 0.0f);
  dt_fwd_k<<<cdiv(n, 256), 256, 0, g_stream>>>(l->delta, m->p + l->h.dtb, n, di);
  ScanArgs sa = scan_args(m, l, B, T);
  if (s) sa.h0 = sa.hlast = s->ssm[layer];
  prof_mark(PROF_M_GEMM);
  scan_forward(&sa);
  prof_mark(PROF_SCAN);
  gate_fwd_k<<<cdiv(n, 256), 256, 0, g_stream>>>(l->o, l->y, l->xz, n, di);
  lin_fwd(m, x, C, l->o, di, m->p + l->h.wout, BT, C, di, 1.0f);
  prof_mark(PROF_M_GEMM);
  if (l->h.has_mlp) mlp_forward(m, l, x, BT);
}

void mamba_block_backward(nr_model *m, Lay *l, int B, int T) {
  const HostConfig *c = &m->c;
  int BT = B * T, C = c->C, di = c->di, N = c->N, R = c->R, K = c->K, xw = R + 2 * N;
  long n = (long)BT * di;
  if (l->h.has_mlp) mlp_backward(m, l, BT);
  lin_dw(m, m->g + l->h.wout, m->dx, C, l->o, di, BT, C, di);
  float *g = m->dd1, *du = m->dd2, *ddelta = m->dd3, *dxz = m->db1, *dxdbl = m->db2;
  lin_dx(m, g, di, m->dx, C, m->p + l->h.wout, BT, C, di, 0.0f);
  gate_bwd_k<<<cdiv(n, 256), 256, 0, g_stream>>>(g, dxz, l->y, l->xz, n, di);
  prof_mark(PROF_M_GEMM);
  ScanArgs sa = scan_args(m, l, B, T);
  scan_backward(&sa, g, du, ddelta, m->g + l->h.alog, m->g + l->h.dskip, dxdbl + R, xw, m->part, m->red);
  prof_mark(PROF_SCAN);
  dt_bwd_k<<<cdiv(n, 256), 256, 0, g_stream>>>(ddelta, l->delta, n);
  colsum_add(m->g + l->h.dtb, ddelta, BT, di, di, m->part);
  lin_dw(m, m->g + l->h.wdt, ddelta, di, l->xdbl, xw, BT, di, R);
  lin_dx(m, dxdbl, xw, ddelta, di, m->p + l->h.wdt, BT, di, R, 0.0f);
  lin_dw(m, m->g + l->h.wx, dxdbl, xw, l->u, di, BT, xw, di);
  lin_dx(m, du, di, dxdbl, xw, m->p + l->h.wx, BT, xw, di, 1.0f);
  conv1d_backward(dxz, 2 * di, m->g + l->h.convw, m->g + l->h.convb, du, l->xz, 2 * di, m->p + l->h.convw,
                  m->p + l->h.convb, B, T, di, K, ddelta, m->part);
  lin_dw(m, m->g + l->h.win, dxz, 2 * di, l->xn1, C, BT, 2 * di, C);
  lin_dx(m, m->dxn, C, dxz, 2 * di, m->p + l->h.win, BT, 2 * di, C, 0.0f);
  rmsnorm_backward(m->dx, m->dxn, l->xn1, l->rstd1, BT, C, 1);
  prof_mark(PROF_M_GEMM);
}
