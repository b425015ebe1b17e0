import type { ArgsDef, CommandDef } from "citty";
import { UserError } from "../errors.ts";
import { suggest } from "../text.ts";

type AnyCommand = CommandDef<ArgsDef>;
type Resolvable<T> = T | (() => T | Promise<T>) | Promise<T>;

async function resolve<T>(v: Resolvable<T>): Promise<T> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * citty ignores unknown flags and gives no hint for a wrong enum value or command name. This walks
 * the same command chain citty will run and refuses such input up front, naming the closest valid
 * choice. It returns the leaf command and its parent so the caller can show help for it.
 */
export async function validateArgv(root: AnyCommand, argv: string[]): Promise<{ cmd: AnyCommand; parent?: AnyCommand; path: string[] }> {
  let cmd = root;
  let parent: AnyCommand | undefined;
  const path: string[] = [];
  let rest = argv;
  for (;;) {
    const args = (await resolve(cmd.args ?? {})) as ArgsDef;
    const subs = (await resolve(cmd.subCommands ?? {})) as Record<string, Resolvable<AnyCommand>>;
    const valueFlags = new Map<string, { name: string; options?: string[] }>();
    const boolFlags = new Set<string>(["help", "h", "version"]);
    for (const [name, def] of Object.entries(args)) {
      const d = def as { type?: string; alias?: string | string[]; options?: string[] };
      const names = [name, kebab(name), ...(Array.isArray(d.alias) ? d.alias : d.alias ? [d.alias] : [])];
      for (const n of names) {
        if (d.type === "string" || d.type === "enum") valueFlags.set(n, { name, options: d.options });
        else if (d.type === "boolean") {
          boolFlags.add(n);
          boolFlags.add(`no-${n}`);
        }
      }
    }
    const known = [...valueFlags.keys(), ...boolFlags].filter((n) => n.length > 1);
    let subIndex = -1;
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i]!;
      if (a === "--") break;
      if (!a.startsWith("-") || a === "-") {
        if (Object.keys(subs).length > 0) {
          subIndex = i;
          break;
        }
        continue;
      }
      const body = a.replace(/^--?/, "");
      const eq = body.indexOf("=");
      const flag = eq >= 0 ? body.slice(0, eq) : body;
      let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
      const spec = valueFlags.get(flag);
      if (spec) {
        if (value === undefined) {
          value = rest[i + 1];
          if (value === undefined) throw new UserError(`Missing value for --${flag}`);
          i++;
        }
        if (spec.options && !spec.options.includes(value)) {
          throw new UserError(`Invalid value "${value}" for --${flag}: expected one of ${spec.options.join(", ")}.${suggest(value, spec.options)}`);
        }
      } else if (!boolFlags.has(flag)) {
        throw new UserError(`Unknown option --${flag}${path.length ? ` for "${path.join(" ")}"` : ""}.${suggest(flag, known).replace(/"([^"]+)"/, '"--$1"')}`);
      }
    }
    if (subIndex < 0) return { cmd, parent, path };
    const name = rest[subIndex]!;
    if (!(name in subs)) {
      if (rest.includes("--help") || rest.includes("-h")) return { cmd, parent, path };
      throw new UserError(`Unknown command "${[...path, name].join(" ")}".${suggest(name, Object.keys(subs))}`);
    }
    parent = cmd;
    cmd = await resolve(subs[name]!);
    path.push(name);
    rest = rest.slice(subIndex + 1);
  }
}
