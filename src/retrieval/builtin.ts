import type { Retriever } from "../plugin-api.ts";
import bm25 from "../../plugins/bm25.ts";
import dense from "../../plugins/dense.ts";
import fuzzy from "../../plugins/fuzzy.ts";
import hybrid, { hybridCc, hybridRrf } from "../../plugins/hybrid.ts";
import simple from "../../plugins/simple.ts";

/** Retrievers compiled into the binary. Drop-in plugins with the same name replace them. */
export const BUILTIN_RETRIEVERS: Retriever[] = [simple, bm25, fuzzy, dense, hybrid, hybridRrf, hybridCc];
