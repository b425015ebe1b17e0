import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cli, PETS, tempDir, writeJsonl } from "./helpers.ts";

describe("nanorag CLI", () => {
  test("--help lists the command groups and exits 0", () => {
    const r = cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("kb");
    expect(r.stdout).toContain("eval");
  });

  test("nested --help shows the leaf's options", () => {
    const r = cli(["kb", "search", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--top-k");
    expect(r.stdout).toContain("--retriever");
  });

  test("a group without a subcommand prints usage and fails", () => {
    const r = cli(["kb"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("build");
  });

  test("unknown flags, commands and enum values are errors with the nearest valid name", () => {
    const flag = cli(["kb", "search", "--kb", "x.db", "--topk", "3", "q"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('Unknown option --topk');
    expect(flag.stderr).toContain('"--top-k"');
    const cmd = cli(["kb", "serch"]);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain('Did you mean "search"');
    const enumValue = cli(["kb", "search", "--kb", "x.db", "--group", "docs", "q"]);
    expect(enumValue.code).toBe(2);
    expect(enumValue.stderr).toContain('Did you mean "doc"');
    const swapped = cli(["serve", "--model", "m", "--kb", "x.db", "--prot", "8080"]);
    expect(swapped.code).toBe(2);
    expect(swapped.stderr).toContain('Did you mean "--port"');
  });

  test("--key value and --key=value are the same, and JSON goes to stdout with logs on stderr", () => {
    const dir = tempDir();
    const input = writeJsonl(join(dir, "docs.jsonl"), PETS);
    const kb = join(dir, "kb.db");
    expect(cli(["kb", "build", `--input=${input}`, "--kb", kb]).code).toBe(0);
    const a = cli(["kb", "search", "--kb", kb, "--top-k", "2", "--json", "wolves"]);
    const b = cli(["kb", "search", `--kb=${kb}`, "--top-k=2", "--json", "wolves"]);
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout)).toEqual(JSON.parse(b.stdout));
    expect(JSON.parse(a.stdout).hits[0].docId).toBe("dogs");
    const built = cli(["kb", "build", "--input", input, "--kb", kb, "--json"]);
    expect(JSON.parse(built.stdout).documents).toBe(4);
    expect(built.stderr).toContain("built");
  });

  test("an unknown retriever is refused with a suggestion", () => {
    const dir = tempDir();
    const kb = join(dir, "kb.db");
    cli(["kb", "build", "--input", writeJsonl(join(dir, "d.jsonl"), PETS), "--kb", kb]);
    const r = cli(["kb", "search", "--kb", kb, "-r", "bm52", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Did you mean "bm25"');
  });

  test("--version prints the package version", () => {
    const r = cli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
