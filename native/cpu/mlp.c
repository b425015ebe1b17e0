/* MLP (nanochat): rmsnorm -> c_fc -> relu^2 -> c_proj, residual add. Backward of relu^2 is 2 relu(a) dy. */
#include "common.h"

typedef struct {
  float *fc, *act;
  size_t n;
} ActCtx;

/* relu^2 over elements [b*1024, e*1024): forward act = relu(fc)^2; backward (act holding d(act) on
 * entry, d(fc) on exit) act = 2 relu(fc) act. Inlined with a constant `backward`, one loop each. */
static inline void relu2_slice(const ActCtx *x, int b, int e, int backward) {
  size_t i1 = (size_t)e * 1024 < x->n ? (size_t)e * 1024 : x->n;
  const float *restrict fc = x->fc;
  float *restrict act = x->act;
  size_t i = (size_t)b * 1024;
  for (; i + 8 <= i1; i += 8) {
    v8 v = *(const v8 *)(fc + i);
    v8 r = v8_sel(v > v8_set1(0.0f), v, v8_set1(0.0f));
    *(v8 *)(act + i) = backward ? v8_set1(2.0f) * r * *(v8 *)(act + i) : r * r;
  }
  for (; i < i1; i++) {
    float r = fc[i] > 0 ? fc[i] : 0.0f;
    act[i] = backward ? 2.0f * r * act[i] : r * r;
  }
}

static void relu2_fwd(void *c, int b, int e, int tid) { relu2_slice(c, b, e, 0); }
static void relu2_bwd(void *c, int b, int e, int tid) { relu2_slice(c, b, e, 1); }

void mlp_forward(nr_model *m, Layer *l, int BT) {
  Config *c = &m->c;
  Acts *a = &m->a;
  int C = c->C, F = c->F;
  rmsnorm_forward(l->xn2, l->rstd2, a->x, BT, C, c->eps);
  matmul_forward(l->fc, F, l->xn2, C, PW(m, l->wfc), BT, F, C, 0);
  ActCtx x = {l->fc, l->act, (size_t)BT * F};
  pool_for(relu2_fwd, &x, (int)((x.n + 1023) / 1024), 8);
  matmul_forward(a->x, C, l->act, F, PW(m, l->wproj), BT, C, F, 1);
}

void mlp_backward(nr_model *m, Layer *l, int BT) {
  Config *c = &m->c;
  Acts *a = &m->a;
  int C = c->C, F = c->F;
  matmul_backward_dw(GW(m, l->wproj), a->dx, C, l->act, F, BT, C, F);
  float *dact = a->db1;
  matmul_backward_dx(dact, F, a->dx, C, PW(m, l->wproj), BT, C, F, 0);
  ActCtx x = {l->fc, dact, (size_t)BT * F};
  pool_for(relu2_bwd, &x, (int)((x.n + 1023) / 1024), 8);
  matmul_backward_dw(GW(m, l->wfc), dact, F, l->xn2, C, BT, F, C);
  matmul_backward_dx(a->dxn, C, dact, F, PW(m, l->wfc), BT, F, C, 0);
  rmsnorm_backward(a->dx, a->dxn, l->xn2, l->rstd2, BT, C, 1);
}
