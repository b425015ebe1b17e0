import { createConsola } from "consola";

/** Logs and progress go to stderr so that stdout carries only data (JSON, results). */
export const log = createConsola({
  stdout: process.stderr,
  stderr: process.stderr,
  level: process.env.NANORAG_LOG_LEVEL ? Number(process.env.NANORAG_LOG_LEVEL) : 3,
});

/**
 * A progress line with rate and ETA on stderr. On a TTY it redraws in place; elsewhere it logs a
 * line every 25% so CI logs stay short.
 */
export function progress(label: string, total: number, unit = "items") {
  const start = performance.now();
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  let lastQuarter = -1;
  let lastDraw = 0;
  const line = (done: number) => {
    const secs = (performance.now() - start) / 1000;
    const rate = done / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (total - done) / rate : 0;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    return `${label} ${done}/${total} (${pct}%) ${formatRate(rate)} ${unit}/s, ETA ${formatSeconds(eta)}`;
  };
  return {
    tick(done: number) {
      if (tty) {
        const now = performance.now();
        if (now - lastDraw < 100 && done < total) return;
        lastDraw = now;
        process.stderr.write(`\r${line(done)}\x1b[K`);
        return;
      }
      const quarter = total > 0 ? Math.floor((4 * done) / total) : 4;
      if (quarter > lastQuarter) {
        lastQuarter = quarter;
        log.info(line(done));
      }
    },
    done(done = total) {
      if (tty) process.stderr.write(`\r${line(done)}\x1b[K\n`);
      else if (lastQuarter < 4) log.info(line(done));
    },
  };
}

export function formatRate(r: number): string {
  return r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1);
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const whole = Math.round(s); // round once, so 239.6 s reads 4m0s, not 3m60s
  if (whole < 60) return `${whole}s`;
  const m = Math.floor(whole / 60);
  return m < 60 ? `${m}m${whole % 60}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}
