/**
 * Checkpoints: a directory holding model.safetensors (weights, nanochat / mamba_ssm names, F32),
 * optim.safetensors (AdamW exp_avg / exp_avg_sq, Muon momentum_buffer) and config.json (model config,
 * optimizer step, user metadata such as tokenizer identity and training step, and the byte length
 * and hash of each tensor file). Every file is written to a temporary name, fsynced and renamed;
 * config.json goes last, so a checkpoint is complete exactly when its config.json names matching files.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { InputError, UserError } from "../errors.ts";
import { Model } from "./model.ts";

export interface StTensor {
  dtype: "F32";
  shape: number[];
  data: Float32Array;
}

function atomicWrite(path: string, parts: Uint8Array[]): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, "w");
  try {
    for (const p of parts) {
      let off = 0;
      while (off < p.length) off += writeSync(fd, p, off, p.length - off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Encode tensors (in the given order) as safetensors. */
export function encodeSafetensors(tensors: [string, StTensor][], metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: shape ${t.shape} does not match ${t.data.length} values`);
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8) json += " ";
  const hb = Buffer.from(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(hb.length), true);
  return [len, hb, ...tensors.map(([, t]) => bytesOf(t.data))];
}

export function writeSafetensors(path: string, tensors: [string, StTensor][], metadata: Record<string, string> = {}): void {
  atomicWrite(path, encodeSafetensors(tensors, metadata));
}

/** Parse a safetensors file (F32 tensors only); refuses truncated or malformed files. */
export function readSafetensors(path: string, buf?: Uint8Array): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  const b = buf ?? readFileSync(path);
  if (b.length < 8) throw new InputError(path, null, null, "truncated safetensors file (no header length)");
  const hlen = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  if (hlen > b.length - 8 || hlen > 100_000_000) throw new InputError(path, null, null, `truncated or corrupt safetensors header (length ${hlen}, file ${b.length} bytes)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(b.subarray(8, 8 + hlen)).toString("utf8"));
  } catch (e) {
    throw new InputError(path, null, null, `corrupt safetensors header: ${(e as Error).message}`);
  }
  const base = 8 + hlen;
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = v as Record<string, string>;
      continue;
    }
    const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (t.dtype !== "F32") throw new InputError(path, null, name, `dtype ${t.dtype} is not supported (F32 only)`);
    const [s, e] = t.data_offsets;
    const n = t.shape.reduce((a, c) => a * c, 1);
    if (e - s !== n * 4) throw new InputError(path, null, name, `byte range ${s}..${e} does not match shape ${JSON.stringify(t.shape)}`);
    if (base + e > b.length) throw new InputError(path, null, name, `file is truncated (tensor ends at ${base + e}, file has ${b.length} bytes)`);
    const data = new Float32Array(n);
    new Uint8Array(data.buffer).set(b.subarray(base + s, base + e));
    tensors.set(name, { dtype: "F32", shape: t.shape, data });
  }
  return { tensors, metadata };
}

function hashHex(b: Uint8Array): string {
  return Bun.hash(b).toString(16);
}

export interface CheckpointMeta {
  [k: string]: unknown;
}

/** Save model weights, optimizer state and config (+ meta, e.g. tokenizer identity, step) to `dir`. */
export function saveCheckpoint(model: Model, dir: string, meta: CheckpointMeta = {}): void {
  mkdirSync(dir, { recursive: true });
  model.download();
  const ts = model.tensors();
  const P = model.params, M = model.optM, V = model.optV;
  const w: [string, StTensor][] = ts.map((t) => [t.name, { dtype: "F32", shape: t.shape, data: P.subarray(t.offset, t.offset + t.numel) }]);
  const o: [string, StTensor][] = [];
  for (const t of ts) {
    const sl = (a: Float32Array) => a.subarray(t.offset, t.offset + t.numel);
    if (t.group === "matrix") o.push([`${t.name}.momentum_buffer`, { dtype: "F32", shape: t.shape, data: sl(M) }]);
    else {
      o.push([`${t.name}.exp_avg`, { dtype: "F32", shape: t.shape, data: sl(M) }]);
      o.push([`${t.name}.exp_avg_sq`, { dtype: "F32", shape: t.shape, data: sl(V) }]);
    }
  }
  const files: Record<string, { bytes: number; hash: string }> = {};
  for (const [name, tensors, md] of [
    ["model.safetensors", w, { format: "pt" }],
    ["optim.safetensors", o, { format: "nanorag-optim" }],
  ] as const) {
    const parts = encodeSafetensors(tensors, md);
    const all = Buffer.concat(parts);
    files[name] = { bytes: all.length, hash: hashHex(all) };
    atomicWrite(join(dir, name), [all]);
  }
  const cfg = {
    format: "nanorag-checkpoint",
    version: 1,
    model_config: model.config,
    optimizer: { step: model.optStep },
    files,
    meta,
  };
  atomicWrite(join(dir, "config.json"), [Buffer.from(`${JSON.stringify(cfg, null, 2)}\n`)]);
}

/** Load a checkpoint directory written by saveCheckpoint; refuses truncated or mismatched files. */
export function loadCheckpoint(dir: string, opts: { optimizer?: boolean } = {}): { model: Model; meta: CheckpointMeta } {
  const cpath = join(dir, "config.json");
  if (!existsSync(cpath)) throw new UserError(`${dir}: not a checkpoint (no config.json)`);
  let cfg: {
    format?: string;
    version?: number;
    model_config?: unknown;
    optimizer?: { step?: number };
    files?: Record<string, { bytes: number; hash: string }>;
    meta?: CheckpointMeta;
  };
  try {
    cfg = JSON.parse(readFileSync(cpath, "utf8"));
  } catch (e) {
    throw new InputError(cpath, null, null, `not valid JSON: ${(e as Error).message}`);
  }
  if (cfg.format !== "nanorag-checkpoint") throw new InputError(cpath, null, "format", `expected "nanorag-checkpoint", got ${JSON.stringify(cfg.format)}`);
  if (cfg.version !== 1) throw new InputError(cpath, null, "version", `unsupported checkpoint version ${cfg.version}`);
  const model = Model.create(cfg.model_config, 0);
  try {
    const read = (name: string): Uint8Array => {
      const p = join(dir, name);
      if (!existsSync(p)) throw new UserError(`${p}: missing checkpoint file`);
      const b = readFileSync(p);
      const want = cfg.files?.[name];
      if (want) {
        if (b.length !== want.bytes) throw new InputError(p, null, null, `size ${b.length} bytes does not match config.json (${want.bytes}); the file is truncated or from another checkpoint`);
        if (hashHex(b) !== want.hash) throw new InputError(p, null, null, "content hash does not match config.json; the file is corrupt or from another checkpoint");
      }
      return b;
    };
    const mp = join(dir, "model.safetensors");
    const { tensors } = readSafetensors(mp, read("model.safetensors"));
    const P = model.params;
    for (const t of model.tensors()) {
      const s = tensors.get(t.name);
      if (!s) throw new InputError(mp, null, t.name, "tensor is missing (checkpoint does not match the model config)");
      if (s.shape.join(",") !== t.shape.join(",")) throw new InputError(mp, null, t.name, `shape ${JSON.stringify(s.shape)} does not match the model's ${JSON.stringify(t.shape)}`);
      P.set(s.data, t.offset);
    }
    if (tensors.size !== model.tensors().length) {
      const known = new Set(model.tensors().map((t) => t.name));
      const extra = [...tensors.keys()].filter((k) => !known.has(k));
      throw new InputError(mp, null, extra[0] ?? null, `unexpected tensor(s) for this config: ${extra.slice(0, 3).join(", ")}`);
    }
    if (opts.optimizer !== false && existsSync(join(dir, "optim.safetensors"))) {
      const op = join(dir, "optim.safetensors");
      const { tensors: ot } = readSafetensors(op, read("optim.safetensors"));
      const M = model.optM, V = model.optV;
      for (const t of model.tensors()) {
        const get = (k: string) => {
          const s = ot.get(k);
          if (!s || s.data.length !== t.numel) throw new InputError(op, null, k, "optimizer tensor is missing or has the wrong size");
          return s.data;
        };
        if (t.group === "matrix") M.set(get(`${t.name}.momentum_buffer`), t.offset);
        else {
          M.set(get(`${t.name}.exp_avg`), t.offset);
          V.set(get(`${t.name}.exp_avg_sq`), t.offset);
        }
      }
      model.optStep = cfg.optimizer?.step ?? 0;
    }
    model.upload();
  } catch (e) {
    model.free();
    throw e;
  }
  return { model, meta: cfg.meta ?? {} };
}
