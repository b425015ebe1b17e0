/** The native engine: models, inference state, sampling, checkpoints. */
export { flopsPerToken, type ModelConfig, resolveConfig } from "./config.ts";
export { DEVICE_FLAGS, type Device, type DeviceFlag, selectDevice } from "./device.ts";
export { engineInfo, getThreads, setThreads } from "./ffi.ts";
export { defaultHyper, InferenceState, Model, type OptimHyper, Sampler, type StepResult, type TensorInfo } from "./model.ts";
export { loadCheckpoint, readSafetensors, saveCheckpoint, writeSafetensors } from "./checkpoint.ts";
