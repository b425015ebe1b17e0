/* Finding cuBLAS and NCCL at run time (they are not linked): an environment variable naming the file,
 * then the dynamic loader's own search (LD_LIBRARY_PATH, ldconfig), then the libraries that Python's
 * nvidia-* wheels (and torch) install under site-packages. A failure names everything searched. */
#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.cuh"

/* site-packages roots, as glob patterns (python3* covers every minor version) */
static const char *const py_roots[] = {
    "/usr/lib/python3*/site-packages",       "/usr/lib/python3*/dist-packages",
    "/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
    "/opt/conda/lib/python3*/site-packages", "$HOME/.local/lib/python3*/site-packages",
    "$VIRTUAL_ENV/lib/python3*/site-packages", "$CONDA_PREFIX/lib/python3*/site-packages",
};

static void appendf(char *why, int len, const char *fmt, const char *a, const char *b) {
  size_t n = strlen(why);
  if ((int)n < len - 1) snprintf(why + n, (size_t)len - n, fmt, a, b);
}

/* expands a leading $VAR; returns 0 when the variable is unset */
static int expand(const char *pat, char *out, size_t n) {
  if (pat[0] != '$') return snprintf(out, n, "%s", pat), 1;
  const char *slash = strchr(pat, '/');
  char var[64];
  snprintf(var, sizeof var, "%.*s", (int)(slash - pat - 1), pat + 1);
  const char *v = getenv(var);
  if (!v || !*v) return 0;
  snprintf(out, n, "%s%s", v, slash);
  return 1;
}

/* the newest match of root/rel (glob), loaded after `dep` in the same directory (RTLD_GLOBAL) */
static void *try_glob(const char *pattern, const char *dep_name) {
  glob_t g;
  void *h = NULL;
  if (glob(pattern, 0, NULL, &g) != 0) return NULL;
  for (size_t i = g.gl_pathc; i-- > 0 && !h;) {
    if (dep_name) {
      char dep[1024];
      const char *slash = strrchr(g.gl_pathv[i], '/');
      snprintf(dep, sizeof dep, "%.*s/%s", (int)(slash - g.gl_pathv[i]), g.gl_pathv[i], dep_name);
      glob_t d;
      if (glob(dep, 0, NULL, &d) == 0) {
        dlopen(d.gl_pathv[d.gl_pathc - 1], RTLD_NOW | RTLD_GLOBAL);
        globfree(&d);
      }
    }
    h = dlopen(g.gl_pathv[i], RTLD_NOW | RTLD_GLOBAL);
  }
  globfree(&g);
  return h;
}

static void *dl_find(const char *what, const char *env, const char *const *sonames, const char *const *pyrel,
                     const char *pydep, char *why, int len) {
  char buf[1024];
  if (why && len > 0) why[0] = 0;
  const char *e = getenv(env);
  void *h;
  if (e && *e) {
    if ((h = dlopen(e, RTLD_NOW | RTLD_GLOBAL))) return h;
    if (why) appendf(why, len, "%s not found: searched %s=", what, env);
    if (why) appendf(why, len, "%s (%s); ", e, dlerror());
  } else if (why) {
    appendf(why, len, "%s not found: searched %s (unset); ", what, env);
  }
  for (int i = 0; sonames[i]; i++) {
    if ((h = dlopen(sonames[i], RTLD_NOW | RTLD_GLOBAL))) return h;
    if (why) appendf(why, len, "%s on the library path; ", sonames[i], "");
  }
  for (size_t i = 0; i < sizeof py_roots / sizeof *py_roots; i++)
    for (int j = 0; pyrel[j]; j++) {
      if (!expand(py_roots[i], buf, sizeof buf)) continue;
      size_t n = strlen(buf);
      snprintf(buf + n, sizeof buf - n, "/%s", pyrel[j]);
      if ((h = try_glob(buf, pydep))) return h;
      if (why) appendf(why, len, "%s; ", buf, "");
    }
  /* last: the package directories of the python3 on PATH (virtual environments, other prefixes) */
  FILE *p = popen("python3 -c 'import sys; print(\"\\n\".join(x for x in sys.path if x.endswith(\"-packages\")))' 2>/dev/null", "r");
  char dir[768];
  int any = 0;
  while (p && !h && fgets(dir, sizeof dir, p)) {
    dir[strcspn(dir, "\n")] = 0;
    for (int j = 0; pyrel[j] && dir[0]; j++) {
      snprintf(buf, sizeof buf, "%s/%s", dir, pyrel[j]);
      if ((h = try_glob(buf, pydep))) break;
    }
    any = 1;
  }
  if (p) pclose(p);
  if (why && !h) appendf(why, len, "%s", any ? "the site-packages of python3's sys.path" : "python3's sys.path (no python3)", "");
  return h;
}

/* nvidia/cu*: the CUDA 12 wheels' nvidia/cublas/lib and the CUDA 13 wheels' nvidia/cu13/lib */
void *dl_cublas(char *why, int why_len) {
  static void *h;
  static const char *const so[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so", NULL};
  static const char *const py[] = {"nvidia/cu*/lib/libcublas.so.*", "torch/lib/libcublas.so*", NULL};
  if (!h) h = dl_find("cuBLAS", "NANORAG_CUBLAS", so, py, "libcublasLt.so.*", why, why_len);
  return h;
}

void *dl_nccl(char *why, int why_len) {
  static void *h;
  static const char *const so[] = {"libnccl.so.2", "libnccl.so", NULL};
  static const char *const py[] = {"nvidia/nccl/lib/libnccl.so.*", "nvidia/cu*/lib/libnccl.so.*", NULL};
  if (!h) h = dl_find("NCCL", "NANORAG_NCCL", so, py, NULL, why, why_len);
  return h;
}
