/* The bridge between the CUDA build and its host side (the CPU model compiled with cpu_as_host.h):
 * plain C types only, included by host_bridge.c (C) and the .cu files (C++). */
#ifndef NR_CUDA_HOST_H
#define NR_CUDA_HOST_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct cpu_model cpu_model;

typedef struct {
  char kind; /* 'T' or 'M' */
  int has_mlp;
  size_t wqkv, wo, win, convw, convb, wx, wdt, dtb, alog, dskip, wout, wfc, wproj; /* offsets in floats */
} HostLayer;

typedef struct {
  int V, L, C, H, Hkv, hd, N, K, R, di, seq_len, F;
  float rope_base, softcap, eps;
  size_t nparams, wte, lm_head;
  const float *rope_cos, *rope_sin; /* seq_len x hd/2 (NULL without T layers) */
} HostConfig;

/* layers: room for c->L entries (call once with layers == NULL to read L) */
void cpuhost_layout(const cpu_model *m, HostConfig *c, HostLayer *layers);

cpu_model *cpuhost_model_new(const int32_t *icfg, int n_icfg, const float *fcfg, int n_fcfg, const char *pattern,
                             uint32_t seed);
void cpuhost_model_free(cpu_model *m);
float *cpuhost_model_params(cpu_model *m);
float *cpuhost_model_grads(cpu_model *m);
float *cpuhost_model_opt_m(cpu_model *m);
float *cpuhost_model_opt_v(cpu_model *m);
int64_t cpuhost_model_opt_step(const cpu_model *m);
void cpuhost_model_set_opt_step(cpu_model *m, int64_t step);
int cpuhost_model_num_tensors(const cpu_model *m);
const char *cpuhost_model_tensor_name(const cpu_model *m, int i);
int cpuhost_model_tensor_ndim(const cpu_model *m, int i);
int cpuhost_model_tensor_dim(const cpu_model *m, int i, int d);
int64_t cpuhost_model_tensor_offset(const cpu_model *m, int i);
int64_t cpuhost_model_tensor_numel(const cpu_model *m, int i);
int cpuhost_model_tensor_group(const cpu_model *m, int i);
int cpuhost_check_batch(cpu_model *m, const int32_t *tok, const int32_t *tgt, int B, int T);
int nr_fail(const char *fmt, ...);

#ifdef __cplusplus
}
#endif
#endif
