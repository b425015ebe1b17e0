/**
 * Small dense/sparse linear algebra for the LSA embedder: a CSR matrix, modified Gram-Schmidt QR,
 * a cyclic Jacobi eigensolver, and randomized truncated SVD (Halko, Martinsson & Tropp 2011,
 * subspace iteration). Everything is Float64Array with the innermost loop over contiguous memory.
 */

import { rng } from "../data/random.ts";

export { rng };

/** Standard normal samples (Box-Muller) from a uniform source. */
export function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Compressed sparse rows: row i holds cols[ptr[i]..ptr[i+1]) with values vals[...]. */
export interface Csr {
  rows: number;
  cols: number;
  ptr: Int32Array;
  idx: Int32Array;
  vals: Float64Array;
}

/** Dot product of a[oa..oa+n) and b[ob..ob+n), four accumulators (JSC runs this ~1.5x faster). */
function dot(a: Float64Array, oa: number, b: Float64Array, ob: number, n: number): number {
  let d0 = 0;
  let d1 = 0;
  let d2 = 0;
  let d3 = 0;
  let r = 0;
  for (; r + 3 < n; r += 4) {
    d0 += a[oa + r]! * b[ob + r]!;
    d1 += a[oa + r + 1]! * b[ob + r + 1]!;
    d2 += a[oa + r + 2]! * b[ob + r + 2]!;
    d3 += a[oa + r + 3]! * b[ob + r + 3]!;
  }
  for (; r < n; r++) d0 += a[oa + r]! * b[ob + r]!;
  return d0 + d1 + d2 + d3;
}

/** y[oy..oy+n) += alpha * x[ox..ox+n). */
function axpy(alpha: number, x: Float64Array, ox: number, y: Float64Array, oy: number, n: number): void {
  let r = 0;
  for (; r + 3 < n; r += 4) {
    y[oy + r]! += alpha * x[ox + r]!;
    y[oy + r + 1]! += alpha * x[ox + r + 1]!;
    y[oy + r + 2]! += alpha * x[ox + r + 2]!;
    y[oy + r + 3]! += alpha * x[ox + r + 3]!;
  }
  for (; r < n; r++) y[oy + r]! += alpha * x[ox + r]!;
}

/** Y (rows x l, column-major) = X * Z, with Z (cols x l, row-major). */
function mulRight(x: Csr, z: Float64Array, l: number): Float64Array {
  const n = x.rows;
  const y = new Float64Array(n * l);
  const acc = new Float64Array(l);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    for (let p = x.ptr[i]!; p < x.ptr[i + 1]!; p++) {
      const v = x.vals[p]!;
      const off = x.idx[p]! * l;
      axpy(v, z, off, acc, 0, l);
    }
    for (let c = 0; c < l; c++) y[c * n + i] = acc[c]!;
  }
  return y;
}

/** Z (cols x l, row-major) = X^T * Q, with Q (rows x l, column-major). */
function mulLeftT(x: Csr, q: Float64Array, l: number): Float64Array {
  const n = x.rows;
  const z = new Float64Array(x.cols * l);
  const row = new Float64Array(l);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < l; c++) row[c] = q[c * n + i]!;
    for (let p = x.ptr[i]!; p < x.ptr[i + 1]!; p++) {
      const v = x.vals[p]!;
      const off = x.idx[p]! * l;
      axpy(v, row, 0, z, off, l);
    }
  }
  return z;
}

/**
 * Orthonormalises the l columns (each of length n, column-major) in place by modified Gram-Schmidt,
 * `passes` times ("twice is enough"). A column that vanishes (rank deficiency) is set to zero.
 */
export function orthonormalize(a: Float64Array, n: number, l: number, passes = 1): void {
  for (let pass = 0; pass < passes; pass++) {
    for (let j = 0; j < l; j++) {
      const oj = j * n;
      for (let i = 0; i < j; i++) {
        const oi = i * n;
        const d = dot(a, oi, a, oj, n);
        if (d !== 0) axpy(-d, a, oi, a, oj, n);
      }
      const norm = Math.sqrt(dot(a, oj, a, oj, n));
      if (norm < 1e-10) {
        for (let r = 0; r < n; r++) a[oj + r] = 0;
      } else {
        const inv = 1 / norm;
        for (let r = 0; r < n; r++) a[oj + r]! *= inv;
      }
    }
  }
}

/**
 * Eigen-decomposition of a symmetric l x l matrix (row-major; not modified): Householder
 * tridiagonalisation then the implicit QL algorithm (tred2/tql2 as in EISPACK and JAMA).
 * Returns eigenvalues descending and eigenvectors as the columns of a row-major l x l matrix.
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const V = new Float64Array(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const at = (i: number, j: number) => i * n + j;
  // tred2
  for (let j = 0; j < n; j++) d[j] = V[at(n - 1, j)]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[at(i - 1, j)]!;
        V[at(i, j)] = 0;
        V[at(j, i)] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[at(j, i)] = f;
        g = e[j]! + V[at(j, j)]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[at(k, j)]! * d[k]!;
          e[k]! += V[at(k, j)]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[at(k, j)]! -= f * e[k]! + g * d[k]!;
        d[j] = V[at(i - 1, j)]!;
        V[at(i, j)] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[at(n - 1, i)] = V[at(i, i)]!;
    V[at(i, i)] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[at(k, i + 1)]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[at(k, i + 1)]! * V[at(k, j)]!;
        for (let k = 0; k <= i; k++) V[at(k, j)]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[at(k, i + 1)] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[at(n - 1, j)]!;
    V[at(n - 1, j)] = 0;
  }
  if (n > 0) V[at(n - 1, n - 1)] = 1;
  e[0] = 0;
  // tql2
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  if (n > 0) e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 200) break;
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          for (let k = 0; k < n; k++) {
            const o = k * n;
            h = V[o + i + 1]!;
            V[o + i + 1] = s * V[o + i]! + c * h;
            V[o + i] = c * V[o + i]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  const order = [...Array(n).keys()].sort((i, j) => d[j]! - d[i]! || i - j);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src]!;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = V[k * n + src]!;
  });
  return { values, vectors };
}

export interface SvdResult {
  /** Singular values, descending (length k). */
  sigma: Float64Array;
  /** Right singular vectors as rows per column of X: cols x k, row-major (term j -> V[j, :]). */
  v: Float64Array;
  k: number;
}

/**
 * Randomized truncated SVD of a sparse matrix: rank k, oversampling p, q power iterations.
 * Only the right singular vectors (the term-space projection) and singular values are returned.
 * Subspace iteration re-orthonormalises in the row space after every product with X X^T, which keeps
 * it stable without a QR in the (often much larger) column space.
 */
export function randomizedSvd(x: Csr, k: number, opts: { oversample?: number; powerIters?: number; seed?: number } = {}): SvdResult {
  const n = x.rows;
  const m = x.cols;
  const kk = Math.max(0, Math.min(k, n, m));
  const l = Math.min(kk + (opts.oversample ?? 10), n, m);
  const T: Record<string, number> = {};
  let tt = performance.now();
  const lap = (k: string) => {
    const now = performance.now();
    T[k] = (T[k] ?? 0) + now - tt;
    tt = now;
  };
  const gauss = gaussian(rng(opts.seed ?? 42));
  const omega = new Float64Array(m * l);
  for (let i = 0; i < omega.length; i++) omega[i] = gauss();
  lap("omega");
  let q = mulRight(x, omega, l);
  lap("mul");
  orthonormalize(q, n, l, 1);
  lap("qr");
  for (let it = 0; it < (opts.powerIters ?? 2); it++) {
    q = mulRight(x, mulLeftT(x, q, l), l);
    lap("mul");
    // One Gram-Schmidt pass between iterations; two on the final basis.
    orthonormalize(q, n, l, it === (opts.powerIters ?? 2) - 1 ? 2 : 1);
    lap("qr");
  }
  // B = Q^T X (l x m); Z = B^T = X^T Q; C = B B^T = Q^T (X Z).
  const z = mulLeftT(x, q, l);
  const w = mulRight(x, z, l);
  const c = new Float64Array(l * l);
  for (let i = 0; i < l; i++) {
    for (let j = i; j < l; j++) {
      const s = dot(q, i * n, w, j * n, n);
      c[i * l + j] = s;
      c[j * l + i] = s;
    }
  }
  lap("gram");
  const eig = symmetricEigen(c, l);
  lap("eig");
  const sigma = new Float64Array(kk);
  // coef[c][t] = U_B[c, t] / sigma_t, so V[j, t] = sum_c Z[j, c] * coef[c][t].
  const coef = new Float64Array(l * kk);
  const smax = Math.sqrt(Math.max(eig.values[0] ?? 0, 0));
  for (let t = 0; t < kk; t++) {
    const s = Math.sqrt(Math.max(eig.values[t]!, 0));
    sigma[t] = s;
    if (s <= smax * 1e-7 || s === 0) continue;
    for (let cc = 0; cc < l; cc++) coef[cc * kk + t] = eig.vectors[cc * l + t]! / s;
  }
  // V = B^T U_B Sigma^-1 = X^T (Q U_B Sigma^-1): a dense n x l x k product, then a sparse one.
  const sRows = new Float64Array(n * kk);
  for (let cc = 0; cc < l; cc++) {
    const oc = cc * kk;
    for (let r = 0; r < n; r++) {
      const qv = q[cc * n + r]!;
      if (qv !== 0) axpy(qv, coef, oc, sRows, r * kk, kk);
    }
  }
  const v = new Float64Array(m * kk);
  for (let i = 0; i < n; i++) {
    for (let p = x.ptr[i]!; p < x.ptr[i + 1]!; p++) axpy(x.vals[p]!, sRows, i * kk, v, x.idx[p]! * kk, kk);
  }
  lap("proj");
  if (process.env.NANORAG_SVD_TIMING) console.error(T);
  return { sigma, v, k: kk };
}
