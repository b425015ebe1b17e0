/**
 * Runs benchmarks: `npm run bench` runs every bench/*.bench.ts in turn; `npm run bench -- retrieval`
 * runs those whose file name contains "retrieval". Each prints its own table (see docs/benchmarks.md).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

const filters = process.argv.slice(2);
const files = readdirSync(import.meta.dir)
  .filter((f) => f.endsWith(".bench.ts") && (filters.length === 0 || filters.some((x) => f.includes(x))))
  .sort();
let failed = 0;
for (const f of files) {
  console.error(`\n=== ${f} ===`);
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, f)], { stdout: "inherit", stderr: "inherit" });
  if (p.exitCode !== 0) failed++;
}
process.exit(failed ? 1 : 0);
