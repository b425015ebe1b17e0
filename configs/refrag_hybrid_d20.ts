/** The seed's configs/refrag_hybrid_d20.py: depth 20 hybrid (8T + 12M), recursive retrieval with rewards. GPU scale. */
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
  seqLen: 6144,
  retriever: "dense",
  topK: 3,
  maxHops: 3,
  topKPerHop: 3,
  useRewards: true,
  lrEmbed: 0.1,
  lrHead: 0.002,
  lrMatrix: 0.01,
  weightDecay: 0,
  initLrFrac: 0.01,
  deviceBatch: 2,
  // target_examples_per_step 16 / device_batch_size 2
  gradAccum: 8,
  refragSteps: 500,
  steps: 500,
  warmupSteps: 0,
  warmdownFrac: 1,
  finalLrFrac: 0,
  evalEvery: 50,
  // the seed's reward_weight_answer / relevance / efficiency (declared there, used here)
  wAnswer: 0.6,
  wRetrieval: 0.3,
  wHop: 0.1,
  wCite: 0,
  pack: false,
} satisfies Partial<TrainConfig>;
