/* Data-parallel collectives over NCCL (dlopen'ed at run time): one communicator per process, and an
 * in-place average of the gradient buffer in buckets of 32M floats (so each call stays within NCCL's
 * int-sized element counts and a bucket can be reduced while the next is queued). */
#include <dlfcn.h>
#include <string.h>
#include "common.cuh"

typedef struct { char internal[128]; } nccl_id;
typedef void *nccl_comm;
enum { NCCL_FLOAT32 = 7, NCCL_AVG = 4 };
#define BUCKET (32u << 20)

static struct {
  int (*get_id)(nccl_id *);
  int (*init_rank)(nccl_comm *, int, nccl_id, int);
  int (*all_reduce)(const void *, void *, size_t, int, int, nccl_comm, cudaStream_t);
  int (*destroy)(nccl_comm);
  const char *(*err)(int);
  nccl_comm comm;
} N;

static int load(void) {
  if (N.get_id) return 0;
  char why[2048];
  void *h = dl_nccl(why, sizeof why);
  if (!h) return nr_fail("%s", why);
  *(void **)&N.init_rank = dlsym(h, "ncclCommInitRank");
  *(void **)&N.all_reduce = dlsym(h, "ncclAllReduce");
  *(void **)&N.destroy = dlsym(h, "ncclCommDestroy");
  *(void **)&N.err = dlsym(h, "ncclGetErrorString");
  *(void **)&N.get_id = dlsym(h, "ncclGetUniqueId");
  if (!N.get_id || !N.init_rank || !N.all_reduce || !N.destroy || !N.err) {
    N.get_id = NULL;
    return nr_fail("NCCL library lacks ncclGetUniqueId/ncclCommInitRank/ncclAllReduce");
  }
  return 0;
}

extern "C" int nr_comm_unique_id(uint8_t out[128]) {
  nccl_id id;
  if (load()) return -1;
  int r = N.get_id(&id);
  if (r) return nr_fail("ncclGetUniqueId: %s", N.err(r));
  memcpy(out, id.internal, 128);
  return 0;
}

extern "C" int nr_comm_init(const uint8_t idb[128], int nranks, int rank) {
  if (load() || cu_init()) return -1;
  if (nranks < 1 || rank < 0 || rank >= nranks) return nr_fail("nr_comm_init: rank %d of %d", rank, nranks);
  if (N.comm) return nr_fail("nr_comm_init: this process already has a communicator");
  nccl_id id;
  memcpy(id.internal, idb, 128);
  int r = N.init_rank(&N.comm, nranks, id, rank);
  if (r) {
    N.comm = NULL;
    return nr_fail("ncclCommInitRank (rank %d of %d): %s", rank, nranks, N.err(r));
  }
  return 0;
}

extern "C" int nr_comm_allreduce_grads(nr_model *m) {
  if (!N.comm) return nr_fail("nr_comm_allreduce_grads: call nr_comm_init first");
  size_t n = m->c.nparams;
  for (size_t o = 0; o < n; o += BUCKET) {
    size_t k = n - o < BUCKET ? n - o : BUCKET;
    int r = N.all_reduce(m->g + o, m->g + o, k, NCCL_FLOAT32, NCCL_AVG, N.comm, g_stream);
    if (r) return nr_fail("ncclAllReduce: %s", N.err(r));
  }
  return cu_check("nr_comm_allreduce_grads");
}

extern "C" void nr_comm_free(void) {
  if (N.comm) N.destroy(N.comm);
  N.comm = NULL;
}
