/**
 * The `eval qa --html` report: one self-contained page (inline CSS and SVG, no scripts or CDN) with
 * the table and a bar chart per metric, one bar per (model, mode).
 */
import type { QaRow } from "./qa.ts";

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** Metrics drawn as bars; rates on a 0..1 axis, the rest scaled to their largest value. */
export const CHARTED: { key: keyof QaRow; label: string; unit?: boolean }[] = [
  { key: "em", label: "Exact match", unit: true },
  { key: "f1", label: "F1", unit: true },
  { key: "citation_precision", label: "Citation precision", unit: true },
  { key: "citation_recall", label: "Citation recall", unit: true },
  { key: "citation_validity", label: "Citation validity", unit: true },
  { key: "hallucination_rate", label: "Hallucination rate (lower is better)", unit: true },
  { key: "abstention_accuracy", label: "Abstention accuracy", unit: true },
  { key: "mean_hops", label: "Mean hops" },
  { key: "ttft_ms", label: "Time to first token (ms)" },
  { key: "tokens_per_s", label: "Decode tokens/s" },
];

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"];

function chart(rows: QaRow[], key: keyof QaRow, label: string, unit: boolean): string {
  const vals = rows.map((r) => r[key] as number | null);
  const max = unit ? 1 : Math.max(1e-9, ...vals.map((v) => v ?? 0));
  const barH = 18, w = 520, labelW = 200, h = rows.length * (barH + 6) + 30;
  const bars = rows.map((r, i) => {
    const v = vals[i];
    const y = 24 + i * (barH + 6);
    const bw = v === null ? 0 : ((w - labelW - 60) * v) / max;
    const text = v === null ? "-" : unit ? v.toFixed(3) : v.toFixed(1);
    return `<text x="${labelW - 6}" y="${y + 13}" text-anchor="end">${esc(`${r.model} · ${r.mode}`)}</text><rect x="${labelW}" y="${y}" width="${bw.toFixed(1)}" height="${barH}" fill="${COLORS[i % COLORS.length]}"/><text x="${labelW + bw + 4}" y="${y + 13}">${text}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="${esc(label)}"><text x="0" y="14" font-weight="bold">${esc(label)}</text>${bars.join("")}</svg>`;
}

export function qaHtml(rows: QaRow[], title: string): string {
  const cols = ["model", "mode", "questions", ...CHARTED.map((c) => c.key)] as (keyof QaRow)[];
  const cell = (v: unknown) => (v === null ? "-" : typeof v === "number" ? String(Number(v.toFixed(4))) : esc(String(v)));
  const table = `<table><tr>${cols.map((c) => `<th>${esc(String(c))}</th>`).join("")}</tr>${rows.map((r) => `<tr>${cols.map((c) => `<td>${cell(r[c])}</td>`).join("")}</tr>`).join("")}</table>`;
  const charts = CHARTED.map((c) => chart(rows, c.key, c.label, Boolean(c.unit))).join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}svg{display:block;margin:1em 0}svg text{font:12px system-ui,sans-serif}</style></head><body><h1>${esc(title)}</h1>${table}\n${charts}\n</body></html>\n`;
}
