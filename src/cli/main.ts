#!/usr/bin/env bun
import { defineCommand, runCommand, showUsage } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { validateArgv } from "./strict.ts";

/** Each command group lives in its own file and is loaded only when used, to keep start-up fast. */
export const main = defineCommand({
  meta: { name: "nanorag", version: pkg.version, description: "Teach small language models to answer from your documents, and serve them." },
  subCommands: {
    kb: () => import("./kb.ts").then((m) => m.default),
    eval: () => import("./eval.ts").then((m) => m.default),
    tokenizer: () => import("./tokenizer.ts").then((m) => m.default),
    prepare: () => import("./prepare.ts").then((m) => m.default),
    train: () => import("./train.ts").then((m) => m.default),
    pretrain: () => import("./pretrain.ts").then((m) => m.default),
    pipeline: () => import("./pipeline.ts").then((m) => m.default),
    chat: () => import("./chat.ts").then((m) => m.default),
    ask: () => import("./ask.ts").then((m) => m.default),
    serve: () => import("./serve.ts").then((m) => m.default),
  },
});

export async function run(argv: string[]): Promise<number> {
  try {
    if (argv[0] === "--version" || argv[0] === "-v") {
      process.stdout.write(`${pkg.version}\n`);
      return 0;
    }
    const { cmd, parent } = await validateArgv(main, argv);
    const wantsHelp = argv.includes("--help") || argv.includes("-h");
    if (wantsHelp || (cmd.subCommands && !cmd.run)) {
      await showUsage(cmd, parent);
      return wantsHelp ? 0 : 1;
    }
    await runCommand(main, { rawArgs: argv });
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof UserError) {
      log.error(err.message);
      return err.exitCode;
    }
    if ((err as { code?: string }).code?.startsWith("E")) {
      log.error((err as Error).message);
      return 2;
    }
    log.error(err);
    return 1;
  }
}

if (import.meta.main) process.exit(await run(process.argv.slice(2)));
