/** A tiny model for tests and smoke runs: seconds per step on one core. */
import type { TrainConfig } from "../src/train/config.ts";

export default {
  blockPattern: "TM",
  nEmbd: 32,
  nHead: 2,
  nKvHead: 2,
  mambaDState: 4,
  seqLen: 128,
  deviceBatch: 2,
  gradAccum: 1,
  steps: 8,
  warmupSteps: 2,
  evalEvery: 4,
  evalBatches: 1,
  evalQuestions: 2,
  saveEvery: 4,
  qaPerContext: 2,
  distractors: 1,
  refragSteps: 4,
  rlSteps: 2,
  rlQuestions: 2,
  groupSize: 2,
  maxNewTokens: 12,
} satisfies Partial<TrainConfig>;
