/**
 * The CPU main job's model (docs/training.md, ../shared/reference/learning_to_read.md): a small hybrid
 * (one attention layer, one Mamba layer... see blockPattern), d_model 128, short packed rows, dense
 * supervision (several questions per set of documents) and a gold-only curriculum first.
 */
import type { TrainConfig } from "../src/train/config.ts";

export default {
  blockPattern: "TMT",
  nEmbd: 128,
  nHead: 4,
  nKvHead: 4,
  seqLen: 256,
  deviceBatch: 8,
  gradAccum: 1,
  steps: 1500,
  warmupSteps: 20,
  warmdownFrac: 0.3,
  evalEvery: 250,
  evalQuestions: 30,
  saveEvery: 250,
  qaPerContext: 4,
  topK: 3,
  distractors: 2,
  abstainRate: 0.1,
  curriculumFrac: 0.3,
  retriever: "bm25",
  refragSteps: 200,
  useRewards: true,
  rlSteps: 20,
  rlQuestions: 4,
  groupSize: 4,
} satisfies Partial<TrainConfig>;
