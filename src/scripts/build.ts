/**
 * Builds dist/nanorag: one executable with the Bun runtime, the CLI, the built-in plugins and the
 * native libraries (native/build/*.so, sqlite-vec's vec0.so) embedded through `with { type: "file" }`
 * imports. Run through `npm run build`, which builds the native library first.
 */
import { $ } from "bun";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");
mkdirSync(join(root, "dist"), { recursive: true });
await $`bun ${join(root, "src/scripts/plugin-types.ts")}`;
await $`bun build --compile --minify --sourcemap ${join(root, "src/cli/main.ts")} --outfile ${join(root, "dist/nanorag")}`.quiet();
console.error(`built ${join(root, "dist/nanorag")}`);
