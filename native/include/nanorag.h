/* nanorag native C ABI: opaque handles, plain pointers, int status plus a readable error string.
 *
 * Conventions
 * - Functions returning int: 0 on success, nonzero on error; nr_last_error() then says why.
 * - Functions returning a handle return NULL on error (same error string).
 * - All arrays are caller-owned, contiguous, row-major. Tokens and targets are int32; a target of -1
 *   is ignored. Loss weights are float32 per token (0 ignores a token; negative is allowed).
 * - The engine is single-caller: call it from one thread at a time. It runs its own pthread pool.
 * - Parameters live in one flat float32 buffer (llm.c style); nr_model_params/nr_model_grads give
 *   pointers into it and nr_model_tensor_* describe the named views (nanochat / mamba_ssm names).
 */
#ifndef NANORAG_H
#define NANORAG_H

#include <stdint.h>

#define NR_VERSION "0.2.0"

const char *nr_version(void);
const char *nr_last_error(void);
/* "cpu avx512" or "cpu avx2" (the GEMM/scan kernels in use), then the thread count. */
const char *nr_engine_info(void);

/* Threads: n >= 1; returns the number in use. */
int nr_set_threads(int n);
int nr_get_threads(void);

/* Integer config fields, in this order (nr_model_new's icfg). */
enum {
  NR_CFG_VOCAB = 0,   /* vocab_size */
  NR_CFG_N_LAYER,     /* n_layer (== strlen(pattern)) */
  NR_CFG_N_EMBD,      /* C */
  NR_CFG_N_HEAD,      /* H */
  NR_CFG_N_KV_HEAD,   /* H_kv, divides H */
  NR_CFG_D_STATE,     /* Mamba N */
  NR_CFG_D_CONV,      /* Mamba K */
  NR_CFG_EXPAND,      /* Mamba expand (d_inner = expand * C) */
  NR_CFG_DT_RANK,     /* Mamba R; 0 = auto = ceil(C/16) */
  NR_CFG_MAMBA_MLP,   /* 1: M blocks also get an MLP */
  NR_CFG_SEQ_LEN,     /* max sequence length (rope table, caches) */
  NR_CFG_MLP_HIDDEN,  /* MLP hidden width (nanochat: 4*C) */
  NR_CFG_N_INT
};
/* Float config fields (fcfg). */
enum { NR_FCFG_ROPE_BASE = 0, NR_FCFG_SOFTCAP, NR_FCFG_NORM_EPS, NR_FCFG_N };

typedef struct nr_model nr_model;
typedef struct nr_state nr_state;

/* pattern: one char per layer, 'T' (attention + MLP) or 'M' (Mamba-1). */
nr_model *nr_model_new(const int32_t *icfg, int n_icfg, const float *fcfg, int n_fcfg,
                       const char *pattern, uint32_t seed);
void nr_model_free(nr_model *m);

int64_t nr_model_num_params(const nr_model *m);
float *nr_model_params(nr_model *m);
float *nr_model_grads(nr_model *m);
float *nr_model_opt_m(nr_model *m);   /* AdamW exp_avg, or Muon momentum buffer */
float *nr_model_opt_v(nr_model *m);   /* AdamW exp_avg_sq (zero for Muon tensors) */
int64_t nr_model_opt_step(const nr_model *m);
void nr_model_set_opt_step(nr_model *m, int64_t step);

int nr_model_num_tensors(const nr_model *m);
const char *nr_model_tensor_name(const nr_model *m, int i);
int nr_model_tensor_ndim(const nr_model *m, int i);
int nr_model_tensor_dim(const nr_model *m, int i, int d);
int64_t nr_model_tensor_offset(const nr_model *m, int i);  /* in floats */
int64_t nr_model_tensor_numel(const nr_model *m, int i);
int nr_model_tensor_group(const nr_model *m, int i);      /* NR_GROUP_* */
enum { NR_GROUP_EMBED = 0, NR_GROUP_HEAD = 1, NR_GROUP_MATRIX = 2, NR_GROUP_VECTOR = 3 };

/* Training. Forward + backward over B rows of T tokens; parameter gradients accumulate (+=).
 * The gradient is that of grad_scale * sum_i w_i * CE_i (weights NULL = 1 for every valid target).
 * out[0] = sum_i w_i * CE_i, out[1] = sum_i w_i (both over valid targets), in double. */
int nr_step(nr_model *m, const int32_t *tokens, const int32_t *targets, const float *weights,
            int B, int T, float grad_scale, double *out);
/* Forward only. out as nr_step. token_logprobs (B*T, may be NULL) gets log p(target) (0 where ignored). */
int nr_eval(nr_model *m, const int32_t *tokens, const int32_t *targets, const float *weights,
            int B, int T, double *out, float *token_logprobs);
/* Full-forward logits (after soft cap), out: B*T*V. */
int nr_logits(nr_model *m, const int32_t *tokens, int B, int T, float *out);
/* Mean of the final (normalised) hidden states over mask (B*T floats, NULL = all). out: B*C. */
int nr_embed(nr_model *m, const int32_t *tokens, const float *mask, int B, int T, float *out);
void nr_zero_grad(nr_model *m);
/* Bytes of the activation arena as last sized (training keeps attention probabilities and backward scratch).
 * CUDA build: every device byte the model needs at that shape (parameters, gradients, moments, bf16 copy,
 * Muon workspace, arena). */
int64_t nr_model_act_bytes(const nr_model *m);
/* Activation recomputation per block (long contexts): training keeps only each block's input and reruns
 * the block's forward pass during backward. CUDA build only; the CPU build accepts 0 and refuses 1. */
int nr_set_recompute(nr_model *m, int on);

/* Optimizer hyper-parameters (nr_optim_step's hp array), in this order. */
enum {
  NR_HP_LR_EMBED = 0,   /* AdamW lr for wte */
  NR_HP_LR_HEAD,        /* AdamW lr for lm_head */
  NR_HP_LR_MATRIX,      /* Muon lr for 2-D block matrices */
  NR_HP_LR_VECTOR,      /* AdamW lr for Mamba vectors / small matrices (no weight decay) */
  NR_HP_BETA1,
  NR_HP_BETA2,
  NR_HP_EPS,
  NR_HP_WEIGHT_DECAY,   /* decoupled, AdamW on wte and lm_head */
  NR_HP_MUON_MOMENTUM,
  NR_HP_MUON_WEIGHT_DECAY,
  NR_HP_GRAD_CLIP,      /* global L2 norm; <= 0 disables */
  NR_HP_NS_STEPS,       /* Newton-Schulz iterations (5) */
  NR_HP_N
};
/* Clip, step, then zero the gradients. out_grad_norm (may be NULL) gets the pre-clip norm. */
int nr_optim_step(nr_model *m, const float *hp, int n_hp, float *out_grad_norm);

/* Inference state: KV cache for T layers, conv + SSM state for M layers. One position counter,
 * shared by the B rows (rows advance together). */
nr_state *nr_state_new(nr_model *m, int B, int max_len);
void nr_state_free(nr_state *s);
void nr_state_reset(nr_state *s);
int nr_state_pos(const nr_state *s);
int64_t nr_state_bytes(const nr_state *s);
/* Feed Tn tokens per row (B*Tn) at the current position. logits: B*V for the last position, or
 * B*Tn*V when all_positions. Prefill is Tn > 1, decode is Tn == 1. */
int nr_state_forward(nr_model *m, nr_state *s, const int32_t *tokens, int Tn, float *logits,
                     int all_positions);

/* Sampling from logits (B rows of V). temperature <= 0: argmax. top_k <= 0: off. top_p >= 1: off.
 * rng: one uint64 state, advanced in place. out: B token ids. */
int nr_sample(const float *logits, int B, int V, float temperature, int top_k, float top_p,
              uint64_t *rng, int32_t *out);

/* Exact KNN by squared L2 distance over n float vectors of dim (row-major, vecs), or over just the
 * given row indices (rows, n of them; NULL = rows 0..n-1). Writes the nearest min(k, n) rows, nearest
 * first, ties by lower row, with their squared distances. Runs on up to `threads` threads of its own.
 * Returns the count written, or -1 (nr_last_error). */
int nr_knn(const float *vecs, int dim, const int32_t *rows, int64_t n, const float *q, int k, int threads,
           int32_t *out_rows, float *out_dist);

/* The engine's threaded SGEMM (benchmarks, tests): C[M,N] (acc ? += : =) op(A) op(B), row-major;
 * ta: A is stored K x M; tb: B is stored N x K. */
void nr_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
              int ldc, int acc);

/* Devices. CPU build: returns 1 and why = "cpu". CUDA build: number of usable CUDA devices; 0 with `why` filled (no
 * driver, no device, cuBLAS not found: names what was searched). why may be NULL. */
int nr_device_count(char *why, int why_len);
/* CUDA: select a GPU for this process (call before nr_model_new). CPU: index 0 only. */
int nr_set_device(int index);
/* The CUDA build keeps params, grads and optimizer state on the GPU; nr_model_params/grads/opt_m/opt_v return HOST
 * MIRRORS. nr_model_download copies device -> host mirrors (params, grads, opt_m, opt_v, opt step); nr_model_upload
 * copies host -> device (after a checkpoint load or any host write). CPU build: both are no-ops returning 0. */
int nr_model_download(nr_model *m);
int nr_model_upload(nr_model *m);
/* Data-parallel collectives: NCCL (dlopen'ed at run time) in the CUDA build. The CPU build returns nonzero with an
 * error saying CPU ranks average gradients over the host's TCP all-reduce instead. */
int nr_comm_unique_id(uint8_t out[128]);
int nr_comm_init(const uint8_t id[128], int nranks, int rank);
int nr_comm_allreduce_grads(nr_model *m); /* in-place AVERAGE of the gradient buffer across ranks */
void nr_comm_free(void);

#endif
