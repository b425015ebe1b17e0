/* Reads the CPU model's layout (config, per-layer parameter offsets, RoPE tables) into host.h's plain
 * structs, so the CUDA files never see the CPU's internal types. */
#include "../cpu/common.h"
#include "host.h"

void cpuhost_layout(const cpu_model *m, HostConfig *c, HostLayer *layers) {
  const Config *k = &m->c;
  *c = (HostConfig){.V = k->V, .L = k->L, .C = k->C, .H = k->H, .Hkv = k->Hkv, .hd = k->hd, .N = k->N, .K = k->K,
                    .R = k->R, .di = k->di, .seq_len = k->seq_len, .F = k->F, .rope_base = k->rope_base,
                    .softcap = k->softcap, .eps = k->eps, .nparams = m->nparams, .wte = m->wte,
                    .lm_head = m->lm_head, .rope_cos = m->rope_cos, .rope_sin = m->rope_sin};
  if (!layers) return;
  for (int i = 0; i < k->L; i++) {
    const Layer *l = &m->layers[i];
    layers[i] = (HostLayer){l->kind, l->has_mlp, l->wqkv, l->wo, l->win, l->convw, l->convb, l->wx, l->wdt,
                            l->dtb, l->alog, l->dskip, l->wout, l->wfc, l->wproj};
  }
}

int cpuhost_check_batch(cpu_model *m, const int32_t *tok, const int32_t *tgt, int B, int T) {
  return model_check_batch(m, tok, tgt, B, T);
}
