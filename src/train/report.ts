/**
 * Training metrics: JSONL (always), an HTML page of SVG charts (loss, learning rate, reward,
 * accuracy), and optional Weights & Biases logging that degrades to a clear message when W&B is not
 * configured or not reachable.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { log } from "../log.ts";

export type Row = Record<string, number | string>;

export class MetricsLog {
  readonly rows: Row[] = [];
  constructor(
    readonly path: string,
    /** On resume: keep earlier rows up to this (stage, step), drop later ones (they will be redone). */
    resume?: { stage: string; step: number } | null,
  ) {
    if (resume && existsSync(path)) {
      const kept: Row[] = [];
      let stageSeen = false;
      for (const line of readFileSync(path, "utf8").split("\n")) {
        if (!line.trim()) continue;
        const r = JSON.parse(line) as Row;
        if (r.stage === resume.stage) {
          stageSeen = true;
          if (Number(r.step) > resume.step) continue;
        } else if (stageSeen) continue;
        kept.push(r);
      }
      this.rows.push(...kept);
      writeFileSync(path, kept.map((r) => JSON.stringify(r)).join("\n") + (kept.length ? "\n" : ""));
    } else writeFileSync(path, "");
  }
  add(r: Row): void {
    this.rows.push(r);
    appendFileSync(this.path, `${JSON.stringify(r)}\n`);
  }
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

function chart(title: string, series: { name: string; pts: [number, number][] }[]): string {
  const W = 460, H = 220, L = 52, R = 10, Tp = 24, Bm = 28;
  const all = series.flatMap((s) => s.pts).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) return "";
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => H - Bm - ((y - y0) / (y1 - y0)) * (H - Tp - Bm);
  const fmt = (v: number) => (Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : Math.abs(v) < 0.01 ? v.toExponential(1) : v.toPrecision(3));
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`;
  svg += `<text x="${L}" y="14" font-weight="bold">${title}</text>`;
  svg += `<line x1="${L}" y1="${H - Bm}" x2="${W - R}" y2="${H - Bm}" stroke="#888"/><line x1="${L}" y1="${Tp}" x2="${L}" y2="${H - Bm}" stroke="#888"/>`;
  for (const f of [0, 0.5, 1]) {
    const y = y0 + f * (y1 - y0);
    svg += `<text x="${L - 4}" y="${sy(y) + 4}" text-anchor="end">${fmt(y)}</text>`;
    const x = x0 + f * (x1 - x0);
    svg += `<text x="${sx(x)}" y="${H - 10}" text-anchor="middle">${Math.round(x)}</text>`;
  }
  series.forEach((s, i) => {
    const pts = s.pts.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (!pts.length) return;
    const c = COLORS[i % COLORS.length];
    svg += `<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`;
    if (pts.length < 40) for (const [x, y] of pts) svg += `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2" fill="${c}"/>`;
    svg += `<text x="${W - R - 4}" y="${Tp + 12 + 13 * i}" text-anchor="end" fill="${c}">${s.name}</text>`;
  });
  return `${svg}</svg>`;
}

/** Writes an HTML page with one SVG chart per quantity; x is the global step across stages. */
export function writePlot(path: string, rows: Row[]): void {
  const x = (r: Row) => Number(r.gstep ?? r.step);
  const pick = (key: string, filter: (r: Row) => boolean = () => true) => rows.filter((r) => typeof r[key] === "number" && filter(r)).map((r) => [x(r), r[key] as number] as [number, number]);
  const stages = [...new Set(rows.map((r) => String(r.stage)))];
  const charts = [
    chart("loss", [...stages.map((s) => ({ name: `train ${s}`, pts: pick("loss", (r) => r.stage === s) })), { name: "val", pts: pick("val_loss") }]),
    chart("learning-rate multiplier", [{ name: "lr", pts: pick("lr") }]),
    chart("reward (RL)", [
      { name: "mean", pts: pick("reward") },
      { name: "answer", pts: pick("r_answer") },
      { name: "cite", pts: pick("r_cite") },
      { name: "retrieval", pts: pick("r_retrieval") },
    ]),
    chart("answer accuracy (validation)", [
      { name: "EM with retrieval", pts: pick("val_em") },
      { name: "EM closed-book", pts: pick("val_em_closed") },
    ]),
    chart("tokens/s", [{ name: "tok/s", pts: pick("tok_s") }]),
  ].filter(Boolean);
  const html = `<!doctype html><meta charset="utf-8"><title>nanorag training</title><body style="font-family:sans-serif"><h3>nanorag training (${rows.length} rows)</h3><div style="display:flex;flex-wrap:wrap;gap:12px">${charts.join("\n")}</div></body>`;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, html);
  renameSync(tmp, path);
}

/**
 * Weights & Biases: enabled with --wandb PROJECT. Needs WANDB_API_KEY; if the key is missing or the
 * server does not answer, training goes on with a warning (metrics.jsonl is always written).
 */
export class Wandb {
  private enabled = false;
  private base = process.env.WANDB_BASE_URL ?? "https://api.wandb.ai";
  private runPath = "";
  private offset = 0;
  private key = process.env.WANDB_API_KEY ?? "";
  constructor(readonly project: string | undefined) {}

  async init(name: string, config: Record<string, unknown>): Promise<void> {
    if (!this.project) return;
    if (!this.key) {
      log.warn(`--wandb ${this.project}: no WANDB_API_KEY in the environment; W&B logging is off (metrics.jsonl is still written)`);
      return;
    }
    try {
      const auth = `Basic ${Buffer.from(`api:${this.key}`).toString("base64")}`;
      const q = `mutation UpsertBucket($name: String, $project: String, $config: JSONString) { upsertBucket(input: {name: $name, modelName: $project, config: $config}) { bucket { name project { name entity { name } } } } }`;
      const res = await fetch(`${this.base}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: auth },
        body: JSON.stringify({ query: q, variables: { name, project: this.project, config: JSON.stringify(Object.fromEntries(Object.entries(config).map(([k, v]) => [k, { value: v }]))) } }),
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const j = (await res.json()) as { data?: { upsertBucket?: { bucket?: { name: string; project: { name: string; entity: { name: string } } } } } };
      const b = j.data?.upsertBucket?.bucket;
      if (!b) throw new Error("unexpected answer");
      this.runPath = `${b.project.entity.name}/${b.project.name}/${b.name}`;
      this.enabled = true;
      log.info(`W&B run ${this.runPath}`);
    } catch (e) {
      log.warn(`--wandb ${this.project}: W&B is not reachable at ${this.base} (${(e as Error).message}); logging to metrics.jsonl only`);
    }
  }

  async log(row: Row): Promise<void> {
    if (!this.enabled) return;
    try {
      const auth = `Basic ${Buffer.from(`api:${this.key}`).toString("base64")}`;
      await fetch(`${this.base}/files/${this.runPath}/file_stream`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: auth },
        body: JSON.stringify({ files: { "wandb-history.jsonl": { offset: this.offset++, content: [JSON.stringify({ _step: row.gstep ?? row.step, ...row })] } } }),
        signal: AbortSignal.timeout(5000),
      });
    } catch (e) {
      this.enabled = false;
      log.warn(`W&B stopped answering (${(e as Error).message}); logging to metrics.jsonl only`);
    }
  }
}
