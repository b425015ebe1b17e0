/** Helpers the latency benchmarks share: options, stderr progress, load average, process CPU time, medians. */
import { readFileSync } from "node:fs";

export const argv = process.argv.slice(2);
export const opt = (k: string, d: string) => (argv.includes(k) ? argv[argv.indexOf(k) + 1]! : d);
export const say = (s: string) => process.stderr.write(`${s}\n`);
/** the 1, 5 and 15-minute load averages, as read */
export const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
/** CPU time this process has used (all threads), in ms */
export const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
