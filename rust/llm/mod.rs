//! The LLM replica engine: continuous batching with a token budget, chunked prefill, a
//! KV block pool with a prefix cache and LIFO preemption by recompute, following vLLM
//! V1's scheduler, and a routed fleet of replicas.
//!
//! The semantics (one step, the block pool, the step-time models, the metrics and the
//! routers) are those of the project's engine specification; every deviation from
//! vLLM V1 is a named option of [`ReplicaConfig`].
//!
//! ```
//! use qcore::llm::{run_engine, ReplicaConfig, RunOptions, StepTime, Workload};
//! let st = StepTime::Linear { c0: 0.01, c_tok: 1e-4, c_seq: 0.0, c_ctx: 0.0 };
//! let cfg = ReplicaConfig::new(1000, st);
//! let w = Workload::new(vec![0.0], vec![100], vec![5]).unwrap();
//! let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
//! // One prefill step of 100 tokens, then 4 decode steps.
//! assert!((r.records.first_token[0] - 0.02).abs() < 1e-12);
//! assert!((r.records.finish[0] - 0.06).abs() < 1e-12);
//! ```

pub(crate) mod ceilings;
pub(crate) mod config;
pub(crate) mod engine;
pub(crate) mod run;
pub(crate) mod scale;

pub use ceilings::{ceilings, Ceilings};
pub use config::{
    default_max_num_batched_tokens, gpu_preset, model_preset, num_blocks, roofline, Admission,
    Batch, BatchFormation, GpuSpec, MemoryAdmission, ModelSpec, Preemption, ReplicaConfig,
    Scheduler, StepTime, Table, VidurTables, DISTSERVE_DECODE_TOKENS, GPU_PRESETS, MODEL_PRESETS,
    VIDUR_OPS,
};
pub use engine::{
    ReplicaStats, Workload, STATUS_FINISHED, STATUS_REJECTED, STATUS_SHED, STATUS_TIMED_OUT,
    STATUS_UNFINISHED,
};
pub use run::{
    run_disaggregated, run_disaggregated_with, run_engine, run_engine_progress, run_fleet,
    run_fleet_admitted, run_fleet_progress, Disaggregation, FleetConfig, KvTransfer, Progress,
    Records, Router, RunOptions, RunResult, StepTrace, Timeline,
};
pub use scale::{
    run_fleet_autoscaled, AutoscaleConfig, AutoscaledRun, FleetMetric, ReplicaLives, ScaleReport,
    ScaleSignal, ScaleTimeline, MAX_REPLICAS,
};

#[cfg(test)]
mod tests;
