/** Preloaded by `bun test` (package.json): once every test file has run, the temp folders go. */
import { afterAll } from "bun:test";
import { removeTempDirs } from "./helpers.ts";

afterAll(removeTempDirs);
