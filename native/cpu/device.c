/* The device ABI on the CPU build: one device (the host), parameters already live in host memory, and no NCCL.
 * CPU ranks of a multi-process run average gradients over the TypeScript TCP all-reduce (src/train/parallel/). */
#include <stdio.h>
#include "common.h"
#include "nanorag.h"

int nr_device_count(char *why, int why_len) {
  if (why && why_len > 0) snprintf(why, (size_t)why_len, "cpu");
  return 1;
}

int nr_set_device(int index) {
  if (index != 0) return nr_fail("nr_set_device: the CPU build has one device (index 0), got %d", index);
  return 0;
}

int nr_model_download(nr_model *m) { return 0; }
int nr_model_upload(nr_model *m) { return 0; }

static const char no_comm[] =
    "the CPU build has no NCCL communicator: CPU ranks average gradients over the host's TCP all-reduce instead";

int nr_comm_unique_id(uint8_t out[128]) { return nr_fail("nr_comm_unique_id: %s", no_comm); }
int nr_comm_init(const uint8_t id[128], int nranks, int rank) { return nr_fail("nr_comm_init: %s", no_comm); }
int nr_comm_allreduce_grads(nr_model *m) { return nr_fail("nr_comm_allreduce_grads: %s", no_comm); }
void nr_comm_free(void) {}
