import Fuse from "fuse.js";
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { suggest } from "../text.ts";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import * as api from "../plugin-api.ts";
import type { Retriever } from "../plugin-api.ts";
import { BUILTIN_RETRIEVERS } from "./builtin.ts";

/** What drop-in plugins get from `import ... from "nanorag"`: exactly what built-in plugins import. */
export const HOST_MODULE = { ...api };

const registry = new Map<string, Retriever>(BUILTIN_RETRIEVERS.map((r) => [r.name, r]));
const loadedDirs = new Set<string>();
let virtualModuleInstalled = false;

function installVirtualModule() {
  if (virtualModuleInstalled) return;
  virtualModuleInstalled = true;
  Bun.plugin({
    name: "nanorag-host",
    setup(build) {
      build.module("nanorag", () => ({ exports: HOST_MODULE, loader: "object" }));
      // Plugins compiled into user folders cannot resolve our dependencies; lend them ours.
      build.module("fuse.js", () => ({ exports: { default: Fuse, Fuse }, loader: "object" }));
    },
  });
}

// The repository's own plugins/ holds the built-ins, already compiled in: scanning it would load them twice.
const BUILTIN_DIR = resolve(import.meta.dir, "../../plugins");

/** Folders scanned for drop-in plugins, in order; later ones override earlier ones by name. */
export function pluginDirs(extra?: string): string[] {
  const dirs = [join(dirname(process.execPath), "plugins"), join(process.cwd(), "plugins"), join(homedir(), ".config", "nanorag", "plugins")];
  if (extra) dirs.push(resolve(extra));
  return dirs;
}

/** Imports every `.ts`/`.js`/`.mjs` file in the folders; each default export is a Retriever (or a factory of one). */
export async function loadPlugins(extraDir?: string): Promise<void> {
  if (extraDir && !(existsSync(extraDir) && statSync(extraDir).isDirectory())) throw new UserError(`--plugins ${extraDir}: not a folder`);
  for (const dir of pluginDirs(extraDir)) {
    if (!existsSync(dir)) continue;
    const real = realpathSync(dir);
    if (real === BUILTIN_DIR || loadedDirs.has(real)) continue;
    loadedDirs.add(real);
    installVirtualModule();
    for (const file of readdirSync(real).sort()) {
      if (!/\.(ts|js|mjs)$/.test(file) || file.endsWith(".d.ts")) continue;
      const path = join(real, file);
      let mod: { default?: unknown };
      try {
        mod = await import(path);
      } catch (e) {
        throw new UserError(`plugin ${path}: failed to load: ${(e as Error).message}`);
      }
      const exported = typeof mod.default === "function" ? (mod.default as (h: typeof HOST_MODULE) => unknown)(HOST_MODULE) : mod.default;
      const plugin = exported as Retriever | undefined;
      if (!plugin || typeof plugin.name !== "string" || typeof plugin.search !== "function") {
        throw new UserError(`plugin ${path}: the default export must be a retriever with a "name" and a "search" function`);
      }
      if (registry.has(plugin.name)) log.debug(`plugin ${path} replaces retriever "${plugin.name}"`);
      registry.set(plugin.name, plugin);
    }
  }
}

export function retrieverNames(): string[] {
  return [...registry.keys()].sort();
}

export function getRetriever(name: string): Retriever {
  const r = registry.get(name);
  if (!r) throw new UserError(`Unknown retriever "${name}"; available: ${retrieverNames().join(", ")}.${suggest(name, retrieverNames())}`);
  return r;
}

/** Retrievers that keep an index in the KB (they have an index hook). */
export function indexingRetrievers(): string[] {
  return retrieverNames().filter((n) => registry.get(n)!.index);
}
