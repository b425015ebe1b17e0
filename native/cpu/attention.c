/* Causal self-attention (T block): rmsnorm -> c_q/c_k/c_v (one stacked matmul) -> RoPE -> QK-norm ->
 * softmax(q k^T / sqrt(hd)) v with GQA -> c_proj, residual add. The attention core works on query
 * blocks of QB rows and only on the keys a block can see; probabilities are saved for backward in
 * training (B x H x T x T) and kept in per-thread scratch at inference. Key j is visible to query i
 * iff j <= pos0 + i. */
#include <string.h>
#include "common.h"

#define QB 64

static void softmax_rows(float *S, int ld, int rows, int i0, int pos0, int kmax, int zero_to, float scale) {
  for (int r = 0; r < rows; r++) {
    float *s = S + (size_t)r * ld;
    int lim = pos0 + i0 + r + 1; /* visible keys: [0, lim) */
    if (lim > kmax) lim = kmax;
    float mx = vmax_f(s, lim) * scale;
    double sum = 0;
    int j = 0;
    v8 vs = v8_set1(scale), vm = v8_set1(mx);
    for (; j + 8 <= lim; j += 8) {
      v8 e = v8_exp(*(v8 *)(s + j) * vs - vm);
      *(v8 *)(s + j) = e;
      sum += v8_sum(e);
    }
    for (; j < lim; j++) {
      s[j] = expf(s[j] * scale - mx);
      sum += s[j];
    }
    float inv = (float)(1.0 / sum);
    for (j = 0; j < lim; j++) s[j] *= inv;
    for (j = lim; j < zero_to; j++) s[j] = 0.0f;
  }
}

typedef struct {
  const AttnArgs *a;
  const float *dout;
  float *dq, *dk, *dv;
} AttnCtx;

/* Inference / eval: online softmax over key tiles of KT (flash-attention style), key tile outer and
 * query blocks inner, so each K/V tile is packed once and the score tile stays in cache however long
 * the context is; nothing is kept for backward. m and l are the running row max and sum. */
#define KT 256
static void flash_head(const AttnArgs *a, const float *q, const float *k, const float *v, float *o, float scale,
                       int tid) {
  int hd = a->hd, Tq = a->Tq, Tk = a->Tk;
  size_t kp = sgemm_packed_size(KT, hd), vp = sgemm_packed_size(hd, KT);
  float *S = pool_scratch(tid, 0, (size_t)QB * KT + kp + vp + 2 * (size_t)Tq);
  float *pk = S + (size_t)QB * KT, *pv = pk + kp, *mrow = pv + vp, *lrow = mrow + Tq;
  for (int r = 0; r < Tq; r++) {
    mrow[r] = -INFINITY;
    lrow[r] = 0.0f;
    for (int j = 0; j < hd; j++) o[(size_t)r * a->os + j] = 0.0f;
  }
  int kend = a->pos0 + Tq < Tk ? a->pos0 + Tq : Tk;
  for (int k0 = 0; k0 < kend; k0 += KT) {
    int kn = kend - k0 < KT ? kend - k0 : KT;
    /* one query (decode): the one-row products read K and V in place; packing them would cost more */
    int pack = Tq > 1;
    if (pack) {
      sgemm_pack_b(pk, 1, kn, hd, k + (size_t)k0 * a->ks, a->ks);  /* K tile as op(B) = K^T: hd x kn */
      sgemm_pack_b(pv, 0, hd, kn, v + (size_t)k0 * a->ks, a->ks);  /* V tile: kn x hd */
    }
    int first = k0 - a->pos0; /* the first query row that sees key k0 */
    if (first < 0) first = 0;
    for (int i0 = first / QB * QB; i0 < Tq; i0 += QB) {
      int rows = Tq - i0 < QB ? Tq - i0 : QB;
      if (pack) sgemm_st_packed(0, rows, kn, hd, q + (size_t)i0 * a->qs, a->qs, pk, S, KT, 0, tid);
      else sgemm_st(0, 1, rows, kn, hd, q + (size_t)i0 * a->qs, a->qs, k + (size_t)k0 * a->ks, a->ks, S, KT, 0, tid);
      for (int r = 0; r < rows; r++) {
        float *srow = S + (size_t)r * KT;
        int gr = i0 + r, lim = a->pos0 + gr + 1 - k0; /* visible keys in this tile: [0, lim) */
        if (lim > kn) lim = kn;
        if (lim <= 0) {
          for (int j = 0; j < kn; j++) srow[j] = 0.0f;
          continue;
        }
        int j;
        float mx = vmax_f(srow, lim) * scale;
        float mnew = mx > mrow[gr] ? mx : mrow[gr];
        float corr = mrow[gr] == -INFINITY ? 0.0f : expf(mrow[gr] - mnew);
        v8 vs = v8_set1(scale), vm = v8_set1(mnew), acc = v8_set1(0.0f);
        for (j = 0; j + 8 <= lim; j += 8) {
          v8 e = v8_exp(*(v8 *)(srow + j) * vs - vm);
          *(v8 *)(srow + j) = e;
          acc += e;
        }
        float sum = v8_sum(acc);
        for (; j < lim; j++) {
          srow[j] = expf(srow[j] * scale - mnew);
          sum += srow[j];
        }
        for (j = lim; j < kn; j++) srow[j] = 0.0f;
        lrow[gr] = lrow[gr] * corr + sum;
        mrow[gr] = mnew;
        if (corr != 1.0f)
          for (int c = 0; c < hd; c++) o[(size_t)gr * a->os + c] *= corr;
      }
      if (pack) sgemm_st_packed(0, rows, hd, kn, S, KT, pv, o + (size_t)i0 * a->os, a->os, 1, tid);
      else sgemm_st(0, 0, rows, hd, kn, S, KT, v + (size_t)k0 * a->ks, a->ks, o + (size_t)i0 * a->os, a->os, 1, tid);
    }
  }
  for (int r = 0; r < Tq; r++) {
    float inv = 1.0f / lrow[r];
    for (int c = 0; c < hd; c++) o[(size_t)r * a->os + c] *= inv;
  }
}

static void fwd_task(void *c, int task, int tid) {
  const AttnArgs *a = ((AttnCtx *)c)->a;
  int b = task / a->H, h = task % a->H, kvh = h / (a->H / a->Hkv), hd = a->hd;
  const float *q = a->q + b * a->qbs + h * hd;
  const float *k = a->k + b * a->kbs + kvh * hd;
  const float *v = a->v + b * a->kbs + kvh * hd;
  float *o = a->out + b * a->obs + h * hd;
  float scale = 1.0f / sqrtf((float)hd);
  if (!a->P) {
    flash_head(a, q, k, v, o, scale, tid);
    return;
  }
  /* training: keep the probabilities for backward. K^T is packed once per head; each query block
   * uses a prefix of its panels (valid while hd fits one k-block of the GEMM, hd <= 256). */
  float *pk = hd <= 256 ? pool_scratch(tid, 1, sgemm_packed_size(a->Tk, hd)) : NULL;
  if (pk) sgemm_pack_b(pk, 1, a->Tk, hd, k, a->ks);
  for (int i0 = 0; i0 < a->Tq; i0 += QB) {
    int rows = a->Tq - i0 < QB ? a->Tq - i0 : QB;
    int kmax = a->pos0 + i0 + rows;
    if (kmax > a->Tk) kmax = a->Tk;
    float *S = a->P + (((size_t)b * a->H + h) * a->Tq + i0) * a->Tk;
    if (pk) sgemm_st_packed(0, rows, kmax, hd, q + i0 * a->qs, a->qs, pk, S, a->Tk, 0, tid);
    else sgemm_st(0, 1, rows, kmax, hd, q + i0 * a->qs, a->qs, k, a->ks, S, a->Tk, 0, tid);
    softmax_rows(S, a->Tk, rows, i0, a->pos0, kmax, a->Tk, scale);
    sgemm_st(0, 0, rows, hd, kmax, S, a->Tk, v, a->ks, o + i0 * a->os, a->os, 0, tid);
  }
}

void attention_forward(const AttnArgs *a) {
  AttnCtx c = {a, NULL, NULL, NULL, NULL};
  pool_run(fwd_task, &c, a->B * a->H);
}

/* one task per (b, kv head): the heads of a group share dk/dv rows */
static void bwd_task(void *c, int task, int tid) {
  AttnCtx *x = c;
  const AttnArgs *a = x->a;
  int g = a->H / a->Hkv, b = task / a->Hkv, kvh = task % a->Hkv, hd = a->hd;
  float scale = 1.0f / sqrtf((float)hd);
  const float *k = a->k + b * a->kbs + kvh * hd;
  const float *v = a->v + b * a->kbs + kvh * hd;
  float *dk = x->dk + b * a->kbs + kvh * hd;
  float *dv = x->dv + b * a->kbs + kvh * hd;
  /* V^T packed once for the group (dP = dO V^T for every query block uses a prefix of it) */
  float *pvt = hd <= 256 ? pool_scratch(tid, 1, sgemm_packed_size(a->Tk, hd)) : NULL;
  if (pvt) sgemm_pack_b(pvt, 1, a->Tk, hd, v, a->ks);
  for (int h = kvh * g; h < (kvh + 1) * g; h++) {
    const float *q = a->q + b * a->qbs + h * hd;
    float *dq = x->dq + b * a->qbs + h * hd;
    const float *dO = x->dout + b * a->obs + h * hd;
    for (int i0 = 0; i0 < a->Tq; i0 += QB) {
      int rows = a->Tq - i0 < QB ? a->Tq - i0 : QB;
      int kmax = a->pos0 + i0 + rows;
      if (kmax > a->Tk) kmax = a->Tk;
      const float *P = a->P + (((size_t)b * a->H + h) * a->Tq + i0) * a->Tk;
      int ld = a->Tk;
      float *dP = pool_scratch(tid, 0, (size_t)QB * kmax);
      if (pvt) sgemm_st_packed(0, rows, kmax, hd, dO + i0 * a->os, a->os, pvt, dP, kmax, 0, tid);
      else sgemm_st(0, 1, rows, kmax, hd, dO + i0 * a->os, a->os, v, a->ks, dP, kmax, 0, tid);
      sgemm_st(1, 0, kmax, hd, rows, P, ld, dO + i0 * a->os, a->os, dv, a->ks, 1, tid);
      for (int r = 0; r < rows; r++) {
        const float *p = P + (size_t)r * ld;
        float *d = dP + (size_t)r * kmax;
        float sf = (float)dot_f64(p, d, kmax);
        for (int j = 0; j < kmax; j++) d[j] = p[j] * (d[j] - sf) * scale;
      }
      sgemm_st(0, 0, rows, hd, kmax, dP, kmax, k, a->ks, dq + i0 * a->qs, a->qs, 0, tid);
      sgemm_st(1, 0, kmax, hd, rows, dP, kmax, q + i0 * a->qs, a->qs, dk, a->ks, 1, tid);
    }
  }
}

void attention_backward(const AttnArgs *a, const float *dout, float *dq, float *dk, float *dv) {
  AttnCtx c = {a, dout, dq, dk, dv};
  pool_run(bwd_task, &c, a->B * a->Hkv);
}

/* ---- RoPE + QK-norm over the q and k heads of each qkv row ---- */
typedef struct {
  nr_model *m;
  Layer *l;
  float *buf; /* qkv rows (forward: qkvn; backward: dqkv) */
  int T, pos0;
} QkCtx;

static void qk_fwd(void *c, int b, int e, int tid) {
  QkCtx *x = c;
  Config *cf = &x->m->c;
  int qd = (cf->H + 2 * cf->Hkv) * cf->hd, nh = cf->H + cf->Hkv, hd = cf->hd;
  for (int r = b; r < e; r++) {
    int pos = x->pos0 + r % x->T;
    float *row = x->buf + (size_t)r * qd;
    rope_forward_row(row, nh, hd, x->m->rope_cos + (size_t)pos * (hd / 2), x->m->rope_sin + (size_t)pos * (hd / 2));
    for (int h = 0; h < nh; h++) {
      float *y = row + h * hd;
      double ss = dot_f64(y, y, hd);
      float rs = (float)(1.0 / sqrt(ss / hd + cf->eps));
      for (int j = 0; j < hd; j++) y[j] *= rs;
      x->l->qkr[(size_t)r * nh + h] = rs;
    }
  }
}

static void qk_bwd(void *c, int b, int e, int tid) {
  QkCtx *x = c;
  Config *cf = &x->m->c;
  int qd = (cf->H + 2 * cf->Hkv) * cf->hd, nh = cf->H + cf->Hkv, hd = cf->hd;
  for (int r = b; r < e; r++) {
    int pos = r % x->T;
    float *drow = x->buf + (size_t)r * qd;
    const float *yrow = x->l->qkvn + (size_t)r * qd;
    for (int h = 0; h < nh; h++) {
      float *dy = drow + h * hd;
      const float *y = yrow + h * hd;
      float rs = x->l->qkr[(size_t)r * nh + h];
      double s = dot_f64(dy, y, hd);
      float mean = (float)(s / hd);
      for (int j = 0; j < hd; j++) dy[j] = rs * (dy[j] - y[j] * mean);
    }
    rope_backward_row(drow, nh, hd, x->m->rope_cos + (size_t)pos * (hd / 2), x->m->rope_sin + (size_t)pos * (hd / 2));
  }
}

void attn_block_forward(nr_model *m, Layer *l, int B, int T, nr_state *s, int layer) {
  Config *c = &m->c;
  Acts *a = &m->a;
  int BT = B * T, C = c->C, hd = c->hd, H = c->H, Hkv = c->Hkv, qd = (H + 2 * Hkv) * hd;
  int pos0 = s ? s->pos : 0;
  rmsnorm_forward(l->xn1, l->rstd1, a->x, BT, C, c->eps);
  matmul_forward(l->qkvn, qd, l->xn1, C, PW(m, l->wqkv), BT, qd, C, 0);
  QkCtx qc = {m, l, l->qkvn, T, pos0};
  pool_for(qk_fwd, &qc, BT, 32);
  AttnArgs at = {.B = B, .Tq = T, .Tk = T, .pos0 = pos0, .H = H, .Hkv = Hkv, .hd = hd,
                 .q = l->qkvn, .qs = qd, .qbs = (long)T * qd,
                 .k = l->qkvn + H * hd, .v = l->qkvn + (H + Hkv) * hd, .ks = qd, .kbs = (long)T * qd,
                 .out = l->att, .os = H * hd, .obs = (long)T * H * hd, .P = s ? NULL : l->P};
  if (s) {
    long ks = (long)Hkv * hd, kbs = (long)s->max_len * ks;
    for (int b = 0; b < B; b++)
      for (int t = 0; t < T; t++) {
        const float *row = l->qkvn + ((size_t)b * T + t) * qd;
        memcpy(s->kc[layer] + b * kbs + (pos0 + t) * ks, row + H * hd, ks * sizeof(float));
        memcpy(s->vc[layer] + b * kbs + (pos0 + t) * ks, row + (H + Hkv) * hd, ks * sizeof(float));
      }
    at.k = s->kc[layer];
    at.v = s->vc[layer];
    at.ks = ks;
    at.kbs = kbs;
    at.Tk = pos0 + T;
  }
  attention_forward(&at);
  matmul_forward(a->x, C, l->att, H * hd, PW(m, l->wo), BT, C, H * hd, 1);
  if (l->has_mlp) mlp_forward(m, l, BT);
}

void attn_block_backward(nr_model *m, Layer *l, int B, int T) {
  Config *c = &m->c;
  Acts *a = &m->a;
  int BT = B * T, C = c->C, hd = c->hd, H = c->H, Hkv = c->Hkv, qd = (H + 2 * Hkv) * hd;
  if (l->has_mlp) mlp_backward(m, l, BT);
  matmul_backward_dw(GW(m, l->wo), a->dx, C, l->att, H * hd, BT, C, H * hd);
  float *datt = a->db1, *dqkv = a->db2;
  matmul_backward_dx(datt, H * hd, a->dx, C, PW(m, l->wo), BT, C, H * hd, 0);
  memset(dqkv, 0, (size_t)BT * qd * sizeof(float));
  AttnArgs at = {.B = B, .Tq = T, .Tk = T, .pos0 = 0, .H = H, .Hkv = Hkv, .hd = hd,
                 .q = l->qkvn, .qs = qd, .qbs = (long)T * qd,
                 .k = l->qkvn + H * hd, .v = l->qkvn + (H + Hkv) * hd, .ks = qd, .kbs = (long)T * qd,
                 .out = l->att, .os = H * hd, .obs = (long)T * H * hd, .P = l->P};
  attention_backward(&at, datt, dqkv, dqkv + H * hd, dqkv + (H + Hkv) * hd);
  QkCtx qc = {m, l, dqkv, T, 0};
  pool_for(qk_bwd, &qc, BT, 32);
  matmul_backward_dw(GW(m, l->wqkv), dqkv, qd, l->xn1, C, BT, qd, C);
  matmul_backward_dx(a->dxn, C, dqkv, qd, PW(m, l->wqkv), BT, qd, C, 0);
  rmsnorm_backward(a->dx, a->dxn, l->xn1, l->rstd1, BT, C, 1);
}
