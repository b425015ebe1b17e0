/** The seed's configs/refrag_hybrid_d20.py: depth 20 hybrid (8T + 12M), recursive retrieval with rewards. GPU scale.
 * The architecture of rag_hybrid_d20, with the seed's REFRAG context, batch, learning rates and rewards. */
import type { TrainConfig } from "../src/train/config.ts";
import ragHybridD20 from "./rag_hybrid_d20.ts";

export default {
  ...ragHybridD20,
  seqLen: 6144,
  topK: 3,
  maxHops: 3,
  topKPerHop: 3,
  useRewards: true,
  lrEmbed: 0.1,
  lrHead: 0.002,
  lrMatrix: 0.01,
  initLrFrac: 0.01,
  deviceBatch: 2,
  // target_examples_per_step 16 / device_batch_size 2
  gradAccum: 8,
  refragSteps: 500,
  refragLrFrac: 1,
  steps: 500,
  evalEvery: 50,
  // the seed's reward_weight_answer / relevance / efficiency (declared there, used here)
  wAnswer: 0.6,
  wRetrieval: 0.3,
  wHop: 0.1,
  wCite: 0,
} satisfies Partial<TrainConfig>;
