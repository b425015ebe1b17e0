/** Learning-rate schedules: linear warmup, constant, then a linear warmdown to `finalFrac` (nanochat's shape). */
export interface ScheduleOptions {
  steps: number;
  warmupSteps: number;
  /** fraction of `steps` at the end spent decaying */
  warmdownFrac: number;
  finalFrac: number;
}

/** The multiplier on every group's learning rate at optimizer step `step` (0-based). */
export function lrMultiplier(step: number, o: ScheduleOptions): number {
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (step + 1) / o.warmupSteps;
  const warmdown = Math.round(o.warmdownFrac * o.steps);
  const start = o.steps - warmdown;
  if (warmdown <= 0 || step < start) return 1;
  const progress = Math.min(1, (step - start + 1) / warmdown);
  return 1 - progress * (1 - o.finalFrac);
}
