/** The seed's configs/rag_hybrid_d20.py: depth 20 (n_embd 1280), 8 transformer + 12 Mamba layers, RAG fine-tuning. GPU scale. */
import type { TrainConfig } from "../src/train/config.ts";

export default {
  blockPattern: "TTTTTTTTMMMMMMMMMMMM",
  nEmbd: 1280,
  nHead: 10,
  nKvHead: 10,
  mambaDState: 16,
  mambaDConv: 4,
  mambaExpand: 2,
  mambaUseMlp: false,
  seqLen: 4096,
  retriever: "dense",
  topK: 5,
  lrEmbed: 0.2,
  lrHead: 0.004,
  lrMatrix: 0.02,
  weightDecay: 0,
  initLrFrac: 0.02,
  deviceBatch: 4,
  // target_examples_per_step 32 / device_batch_size 4
  gradAccum: 8,
  warmupSteps: 0,
  warmdownFrac: 1,
  finalLrFrac: 0,
  evalEvery: 100,
  pack: false,
} satisfies Partial<TrainConfig>;
