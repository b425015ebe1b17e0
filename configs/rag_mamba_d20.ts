/** The seed's configs/rag_mamba_d20.py: depth 20 (n_embd 1280), all Mamba, long contexts, RAG fine-tuning. GPU scale. */
import type { TrainConfig } from "../src/train/config.ts";

export default {
  blockPattern: "MMMMMMMMMMMMMMMMMMMM",
  nEmbd: 1280,
  nHead: 10,
  nKvHead: 10,
  mambaDState: 16,
  mambaDConv: 4,
  mambaExpand: 2,
  mambaUseMlp: false,
  seqLen: 8192,
  retriever: "dense",
  topK: 10,
  lrEmbed: 0.2,
  lrHead: 0.004,
  lrMatrix: 0.02,
  weightDecay: 0,
  initLrFrac: 0.02,
  deviceBatch: 4,
  gradAccum: 8,
  warmupSteps: 0,
  warmdownFrac: 1,
  finalLrFrac: 0,
  evalEvery: 100,
  pack: false,
} satisfies Partial<TrainConfig>;
