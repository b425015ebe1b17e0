import type { Database } from "bun:sqlite";
import { UserError } from "../errors.ts";

/**
 * Embedders turn texts into L2-normalised float vectors of a fixed dimension. What identifies one
 * (its name, dimension and the settings that change its vectors) is stored in the KB's meta under
 * `dense.embedder`; a KB is only ever searched or extended with the embedder it was built with.
 */
export interface EmbedderIdentity {
  name: string;
  dim: number;
  /** Settings that change the vectors (compared on mismatch checks) plus how to reach it (url...). */
  settings: Record<string, string | number>;
}

export interface Embedder {
  readonly identity: EmbedderIdentity;
  /** Unit-length vectors (or all-zero when a text has nothing the embedder knows). */
  embed(texts: string[], kind: "document" | "query"): Promise<Float32Array[]>;
}

/** A requested embedder: `lsa`, `lsa:dim=128`, `http:url=http://host/v1,model=bge-small`. */
export interface EmbedderSpec {
  name: string;
  options: Record<string, string>;
}

/** What a factory may touch: the KB handle and its meta. */
export interface DenseEnv {
  db: Database;
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
}

export interface EmbedderFactory {
  name: string;
  description: string;
  /** Option keys this embedder accepts. */
  options: string[];
  /** Option keys whose value must match the stored identity (besides the name). */
  identityKeys: string[];
  /** The spec with its options in the form the identity stores (e.g. a path made absolute), for comparing. */
  canonical?(spec: EmbedderSpec): EmbedderSpec;
  /** A fresh embedder for a build; fitted ones (lsa) fit on `corpus` and persist their model. */
  create(spec: EmbedderSpec, env: DenseEnv, corpus: string[]): Promise<Embedder>;
  /** The embedder a KB was built with, from its stored identity. */
  load(identity: EmbedderIdentity, env: DenseEnv): Promise<Embedder>;
  /** Drops whatever `create` persisted (before a refit). */
  drop?(env: DenseEnv): void;
}

export function parseSpec(text: string): EmbedderSpec {
  const s = text.trim();
  const m = /^([A-Za-z0-9_-]+)(?:[:\s]+(.*))?$/s.exec(s);
  if (!m) throw new UserError(`invalid embedder "${text}": expected NAME or NAME:key=value,key=value (e.g. "lsa:dim=256", "http:url=http://localhost:8080/v1,model=bge-small")`);
  const options: Record<string, string> = {};
  for (const part of (m[2] ?? "").split(/[,\s]+/).filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UserError(`invalid embedder option "${part}" in "${text}": expected key=value`);
    options[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { name: m[1]!.toLowerCase(), options };
}

export function formatSpec(spec: EmbedderSpec): string {
  const opts = Object.entries(spec.options).map(([k, v]) => `${k}=${v}`);
  return opts.length ? `${spec.name}:${opts.join(",")}` : spec.name;
}

export function formatIdentity(id: EmbedderIdentity): string {
  const keys = Object.entries(id.settings)
    .filter(([k]) => k !== "url" && k !== "api_key_env")
    .map(([k, v]) => `${k}=${v}`);
  return `${id.name} (dim ${id.dim}${keys.length ? `, ${keys.join(", ")}` : ""})`;
}

/** Throws a clear UserError when `spec` asks for something other than the stored embedder. */
export function checkSpecMatches(spec: EmbedderSpec, stored: EmbedderIdentity, factory: EmbedderFactory | undefined, kbPath: string): void {
  const problems: string[] = [];
  if (spec.name !== stored.name) problems.push(`embedder ${spec.name} != ${stored.name}`);
  else if (factory) {
    const options = (factory.canonical?.(spec) ?? spec).options;
    for (const key of factory.identityKeys) {
      const want = options[key];
      if (want === undefined) continue;
      const have = key === "dim" ? stored.dim : stored.settings[key];
      if (String(have) !== want) problems.push(`${key} ${want} != ${have}`);
    }
  }
  if (problems.length) {
    throw new UserError(
      `embedder mismatch: ${kbPath} was built with ${formatIdentity(stored)}, but ${spec.name}${
        Object.keys(spec.options).length ? ` (${Object.entries(spec.options).map(([k, v]) => `${k}=${v}`).join(", ")})` : ""
      } was requested (${problems.join("; ")}). Query it with the same embedder, or re-embed everything with \`nanorag kb reindex --kb ${kbPath} --embedder ${formatSpec(spec)}\`.`,
    );
  }
}

/** L2-normalises in place; returns false for an all-zero vector. */
export function normalize(v: Float32Array | Float64Array): boolean {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  if (s === 0 || !Number.isFinite(s)) return false;
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return true;
}
