/** The seed's configs/rag_mamba_d20.py: depth 20 (n_embd 1280), all Mamba, long contexts, RAG fine-tuning. GPU scale.
 * Same width, optimizer and schedule as rag_hybrid_d20; only the layers, context and top-k differ. */
import type { TrainConfig } from "../src/train/config.ts";
import ragHybridD20 from "./rag_hybrid_d20.ts";

export default {
  ...ragHybridD20,
  blockPattern: "MMMMMMMMMMMMMMMMMMMM",
  seqLen: 8192,
  topK: 10,
} satisfies Partial<TrainConfig>;
