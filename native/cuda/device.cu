/* The process-wide CUDA context: device choice, one stream, the cuBLAS handle, error reporting, and the
 * device ABI calls that are not about a model (nr_device_count, nr_set_device, nr_engine_info). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include "common.cuh"

cudaStream_t g_stream;
void *g_cublas;
gemm_ex_fn g_gemm_ex;
gemm_sb_fn g_gemm_sb;
static int g_dev, g_ready, g_cublas_status;
static char g_cublas_what[128];

typedef int (*create_fn)(void **);
typedef int (*set_stream_fn)(void *, cudaStream_t);

/* the first failing cuBLAS call is reported by the next cu_check */
void cu_note_cublas(int status, const char *what) {
  if (status != 0 && g_cublas_status == 0) {
    g_cublas_status = status;
    snprintf(g_cublas_what, sizeof g_cublas_what, "%s", what);
  }
}

int cu_check(const char *where) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaStreamSynchronize(g_stream);
  if (e != cudaSuccess) return nr_fail("%s: CUDA error: %s (%s)", where, cudaGetErrorString(e), cudaGetErrorName(e));
  if (g_cublas_status) {
    int s = g_cublas_status;
    g_cublas_status = 0;
    return nr_fail("%s: cuBLAS %s failed with status %d", where, g_cublas_what, s);
  }
  return 0;
}

int cu_init(void) {
  if (g_ready) return 0;
  char why[2048];
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0)
    return nr_fail("no CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
  if (cudaSetDevice(g_dev) != cudaSuccess) return nr_fail("cannot select CUDA device %d of %d", g_dev, n);
  void *lib = dl_cublas(why, sizeof why);
  if (!lib) return nr_fail("%s", why);
  create_fn create = (create_fn)dlsym(lib, "cublasCreate_v2");
  set_stream_fn set_stream = (set_stream_fn)dlsym(lib, "cublasSetStream_v2");
  g_gemm_ex = (gemm_ex_fn)dlsym(lib, "cublasGemmEx");
  g_gemm_sb = (gemm_sb_fn)dlsym(lib, "cublasGemmStridedBatchedEx");
  if (!create || !set_stream || !g_gemm_ex || !g_gemm_sb)
    return nr_fail("cuBLAS library lacks cublasCreate_v2 / cublasGemmEx / cublasGemmStridedBatchedEx");
  if (cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking) != cudaSuccess)
    return nr_fail("cannot create a CUDA stream on device %d", g_dev);
  int s = create(&g_cublas);
  if (s != 0) return nr_fail("cublasCreate failed with status %d", s);
  set_stream(g_cublas, g_stream);
  g_ready = 1;
  return 0;
}

extern "C" int nr_device_count(char *why, int why_len) {
  int n = 0;
  char cub[2048];
  cudaError_t e = cudaGetDeviceCount(&n);
  void *lib = dl_cublas(cub, sizeof cub);
  if (e == cudaSuccess && n > 0 && lib) return n;
  if (!why || why_len <= 0) return 0;
  if (e != cudaSuccess) snprintf(why, (size_t)why_len, "no CUDA device: %s", cudaGetErrorString(e));
  else snprintf(why, (size_t)why_len, "%s", n == 0 ? "no CUDA device" : "");
  size_t k = strlen(why);
  if (!lib && (int)k < why_len - 1) snprintf(why + k, (size_t)why_len - k, "%s%s", k ? "; " : "", cub);
  return 0;
}

extern "C" int nr_set_device(int index) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || index < 0 || index >= n)
    return nr_fail("nr_set_device: device %d does not exist (%d CUDA devices)", index, n);
  if (g_ready && index != g_dev) return nr_fail("nr_set_device: device %d is already in use by this process", g_dev);
  g_dev = index;
  return cudaSetDevice(index) == cudaSuccess ? 0 : nr_fail("nr_set_device: cannot select device %d", index);
}

extern "C" const char *nr_engine_info(void) {
  static char buf[512];
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, g_dev) != cudaSuccess) return "cuda (no device)";
  const char *fp = getenv("NANORAG_CUDA_FP32");
  snprintf(buf, sizeof buf, "cuda %s sm_%d%d, %d SMs, %s GEMMs (cuBLAS)", p.name, p.major, p.minor,
           p.multiProcessorCount, fp && *fp && *fp != '0' ? "fp32" : "bf16");
  return buf;
}

/* Test hook for the GPU check (not in nanorag.h): device memory in use and in total, in bytes. */
extern "C" int nrcuda_mem_used(int64_t out[2]) {
  size_t fr = 0, tot = 0;
  if (cu_init() || cudaMemGetInfo(&fr, &tot) != cudaSuccess) return nr_fail("cudaMemGetInfo failed");
  out[0] = (int64_t)(tot - fr);
  out[1] = (int64_t)tot;
  return 0;
}
