//! Replica configuration, step-time models and memory → blocks (LLM-ENGINE.md §2, §5, §6).

use std::sync::Arc;

use crate::error::{QcoreError, Result};
use crate::policy::{check_num, TokenBucket};

/// The scheduled batch of one step, as the step-time models see it (§5).
///
/// A *decode* is a scheduled request that has emitted at least one token and computes
/// only its last emitted token; every other scheduled request is a *prefill chunk*.
/// `ctx` of a request is its computed tokens after the step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Batch {
    /// Σ `n_i` over the prefill chunks.
    pub prefill_tokens: u64,
    /// Σ `n_i²` over the prefill chunks.
    pub prefill_tokens_sq: f64,
    /// Number of prefill chunks.
    pub prefill_reqs: u32,
    /// Number of decodes (`B_d`).
    pub decode_reqs: u32,
    /// Σ ctx over the decodes.
    pub decode_ctx: u64,
    /// Σ ctx over every scheduled request.
    pub ctx: u64,
}

impl Batch {
    /// Number of scheduled requests.
    #[inline]
    pub fn reqs(&self) -> u32 {
        self.prefill_reqs + self.decode_reqs
    }
}

/// A piecewise-linear table `x → y`, extrapolated linearly from the two end points on
/// either side.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Table {
    /// A table from strictly increasing `x` and finite, non-negative `y` (at least two points).
    pub fn new(name: &str, x: Vec<f64>, y: Vec<f64>) -> Result<Self> {
        if x.len() != y.len() {
            return Err(QcoreError::invalid(
                name,
                format!("has {} x values and {} y values", x.len(), y.len()),
            ));
        }
        if x.len() < 2 {
            return Err(QcoreError::invalid(name, "needs at least two points"));
        }
        crate::error::check_finite(name, &x)?;
        crate::error::check_finite(name, &y)?;
        if x.windows(2).any(|w| w[1] <= w[0]) {
            return Err(QcoreError::invalid(
                name,
                "x values must be strictly increasing",
            ));
        }
        if y.iter().any(|&v| v < 0.0) {
            return Err(QcoreError::invalid(name, "times must be non-negative"));
        }
        Ok(Table { x, y })
    }

    /// The x values.
    pub fn x(&self) -> &[f64] {
        &self.x
    }

    /// The y values.
    pub fn y(&self) -> &[f64] {
        &self.y
    }

    /// Linear interpolation at `v` (linear extrapolation outside), floored at 0.
    #[inline]
    pub fn eval(&self, v: f64) -> f64 {
        let n = self.x.len();
        // Index of the segment [i, i+1] used: the first segment whose right end ≥ v,
        // clamped to the first and last segments.
        let i = match self.x[1..n - 1].iter().position(|&xr| v <= xr) {
            Some(k) => k,
            None => n - 2,
        };
        let (x0, x1, y0, y1) = (self.x[i], self.x[i + 1], self.y[i], self.y[i + 1]);
        let y = y0 + (y1 - y0) * (v - x0) / (x1 - x0);
        y.max(0.0)
    }
}

/// How long one step takes, from the scheduled batch (§5). Times in seconds unless noted.
#[derive(Debug, Clone, PartialEq)]
pub enum StepTime {
    /// `d = c0 + c_tok·Σ_prefill n_i + c_seq·(#scheduled) + c_ctx·Σ_all ctx` (seconds).
    Linear {
        c0: f64,
        c_tok: f64,
        c_seq: f64,
        c_ctx: f64,
    },
    /// `DistServe`'s fitted form, in **milliseconds** as `DistServe`'s files give them:
    /// `[any prefill]·(a_p + b_p·Σn + c_p·Σn²) + [any decode]·(a + b·Σ_decode ctx + c·B_d)`
    /// with `(a, b, c)` = `decode_small` when `B_d < threshold`, else `decode_large`.
    Phases {
        prefill: [f64; 3],
        decode_small: [f64; 3],
        decode_large: [f64; 3],
        threshold: u32,
    },
    /// Measured tables (seconds): `prefill(Σ_prefill n_i) + decode(B_d)`, each term present
    /// only when its part of the batch is not empty (`SplitwiseSim`'s `perf_model.csv`).
    Table { prefill: Table, decode: Table },
    /// `DistServe`'s simulator: [`StepTime::Phases`] (ms) with its pipeline split and fixed
    /// overheads, `(a + b·Σn + c·Σn²)/pp + pp + 2 + 1e-4·Σn` for a prefill step and
    /// `(a + b·Σ(ctx+1) + c·B)/pp + 2 + 1e-4·Σctx` for a decode step (`ctx` before the
    /// step). Used with [`Scheduler::DistServe`], whose steps are never mixed. With
    /// `clock_ms` the duration is returned in milliseconds, for a run whose clock is
    /// `DistServe`'s (arrivals in ms too): it then adds exactly what `DistServe` adds.
    DistServeSim {
        prefill: [f64; 3],
        decode_small: [f64; 3],
        decode_large: [f64; 3],
        threshold: u32,
        pipeline_parallel: u32,
        clock_ms: bool,
    },
    /// Vidur's execution-time predictor, from its exported tables (see [`VidurTables`]).
    Vidur(Arc<VidurTables>),
    /// The roofline floor: `max(2·params·Σn / (peak_flops·mfu),
    /// (weight_bytes + Σ_all ctx·kv_bytes_per_token) / hbm_bandwidth) + overhead`.
    Roofline {
        params: f64,
        weight_bytes: f64,
        kv_bytes_per_token: f64,
        hbm_bandwidth: f64,
        peak_flops: f64,
        mfu: f64,
        overhead: f64,
    },
}

fn nonneg(name: &str, v: f64) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(QcoreError::invalid(
            name,
            format!("must be finite and >= 0, got {v}"),
        ));
    }
    Ok(())
}

fn positive(name: &str, v: f64) -> Result<()> {
    if !v.is_finite() || v <= 0.0 {
        return Err(QcoreError::invalid(
            name,
            format!("must be finite and > 0, got {v}"),
        ));
    }
    Ok(())
}

impl StepTime {
    /// Check the coefficients.
    pub fn check(&self) -> Result<()> {
        match self {
            StepTime::Linear {
                c0,
                c_tok,
                c_seq,
                c_ctx,
            } => {
                nonneg("step_time.c0", *c0)?;
                nonneg("step_time.c_tok", *c_tok)?;
                nonneg("step_time.c_seq", *c_seq)?;
                nonneg("step_time.c_ctx", *c_ctx)?;
            }
            StepTime::Phases {
                prefill,
                decode_small,
                decode_large,
                ..
            } => {
                for (name, c) in [
                    ("step_time.prefill", prefill),
                    ("step_time.decode_small", decode_small),
                    ("step_time.decode_large", decode_large),
                ] {
                    if c.iter().any(|v| !v.is_finite()) {
                        return Err(QcoreError::invalid(name, "must be finite"));
                    }
                }
            }
            StepTime::Table { .. } | StepTime::Vidur(_) => {}
            StepTime::DistServeSim {
                prefill,
                decode_small,
                decode_large,
                pipeline_parallel,
                ..
            } => {
                for (name, c) in [
                    ("step_time.prefill", prefill),
                    ("step_time.decode_small", decode_small),
                    ("step_time.decode_large", decode_large),
                ] {
                    if c.iter().any(|v| !v.is_finite()) {
                        return Err(QcoreError::invalid(name, "must be finite"));
                    }
                }
                if *pipeline_parallel == 0 {
                    return Err(QcoreError::invalid(
                        "step_time.pipeline_parallel",
                        "must be >= 1",
                    ));
                }
            }
            StepTime::Roofline {
                params,
                weight_bytes,
                kv_bytes_per_token,
                hbm_bandwidth,
                peak_flops,
                mfu,
                overhead,
            } => {
                positive("step_time.params", *params)?;
                nonneg("step_time.weight_bytes", *weight_bytes)?;
                nonneg("step_time.kv_bytes_per_token", *kv_bytes_per_token)?;
                positive("step_time.hbm_bandwidth", *hbm_bandwidth)?;
                positive("step_time.peak_flops", *peak_flops)?;
                positive("step_time.mfu", *mfu)?;
                if *mfu > 1.0 {
                    return Err(QcoreError::invalid(
                        "step_time.mfu",
                        format!("must be in (0, 1], got {mfu}"),
                    ));
                }
                nonneg("step_time.overhead", *overhead)?;
            }
        }
        Ok(())
    }

    /// The duration (seconds) of a step serving `b`; 0 for an empty batch. Never negative.
    #[inline]
    pub fn duration(&self, b: &Batch) -> f64 {
        if b.reqs() == 0 {
            return 0.0;
        }
        let d = match self {
            StepTime::Linear {
                c0,
                c_tok,
                c_seq,
                c_ctx,
            } => {
                c0 + c_tok * b.prefill_tokens as f64
                    + c_seq * f64::from(b.reqs())
                    + c_ctx * b.ctx as f64
            }
            StepTime::Phases {
                prefill,
                decode_small,
                decode_large,
                threshold,
            } => {
                let mut ms = 0.0;
                if b.prefill_reqs > 0 {
                    let n = b.prefill_tokens as f64;
                    ms += prefill[0] + prefill[1] * n + prefill[2] * b.prefill_tokens_sq;
                }
                if b.decode_reqs > 0 {
                    let c = if b.decode_reqs < *threshold {
                        decode_small
                    } else {
                        decode_large
                    };
                    ms += c[0] + c[1] * b.decode_ctx as f64 + c[2] * f64::from(b.decode_reqs);
                }
                ms * 1e-3
            }
            StepTime::DistServeSim {
                prefill,
                decode_small,
                decode_large,
                threshold,
                pipeline_parallel,
                clock_ms,
            } => {
                let pp = f64::from(*pipeline_parallel);
                // 1 / pp without a division when it is 1 (the same value).
                let inv_pp = if *pipeline_parallel == 1 {
                    1.0
                } else {
                    1.0 / pp
                };
                let mut ms = 0.0;
                if b.prefill_reqs > 0 {
                    let n = b.prefill_tokens as f64;
                    ms += ((prefill[0] + prefill[1] * n + prefill[2] * b.prefill_tokens_sq)
                        * inv_pp
                        + pp)
                        + (2.0 + 1e-4 * n);
                }
                if b.decode_reqs > 0 {
                    let c = if b.decode_reqs < *threshold {
                        decode_small
                    } else {
                        decode_large
                    };
                    let bd = f64::from(b.decode_reqs);
                    let s1 = b.decode_ctx as f64;
                    ms += (c[0] + c[1] * s1 + c[2] * bd) * inv_pp + (2.0 + 1e-4 * (s1 - bd));
                }
                if *clock_ms {
                    ms
                } else {
                    ms * 1e-3
                }
            }
            StepTime::Vidur(t) => t.duration(b),
            StepTime::Table { prefill, decode } => {
                let mut s = 0.0;
                if b.prefill_reqs > 0 {
                    s += prefill.eval(b.prefill_tokens as f64);
                }
                if b.decode_reqs > 0 {
                    s += decode.eval(f64::from(b.decode_reqs));
                }
                s
            }
            StepTime::Roofline {
                params,
                weight_bytes,
                kv_bytes_per_token,
                hbm_bandwidth,
                peak_flops,
                mfu,
                overhead,
            } => {
                let compute = 2.0 * params * b.prefill_tokens as f64 / (peak_flops * mfu);
                let memory = (weight_bytes + b.ctx as f64 * kv_bytes_per_token) / hbm_bandwidth;
                compute.max(memory) + overhead
            }
        };
        d.max(0.0)
    }
}

/// Vidur's execution-time tables for one model on one GPU (its `sklearn` predictor's
/// predictions, exported): per-layer times in **milliseconds**.
///
/// With `n` the batch's tokens and `r = ceil8(n)`, a step takes
/// `(attn + mlp + add[r]) · num_layers · 1e-3` seconds, where
/// `attn = pre_proj[r] + post_proj[r] + rope[r] + kv_save[n] + dec + pre + input_norm[r]`
/// and `mlp = up_proj[r] + down_proj[r] + act[r] + post_attn_norm[r]` (the last term only
/// when `post_attn_norm`), summed left to right as Vidur does. The decode attention is
/// `dec = decode[B_d][ceil_g(floor(Σ decode ctx / B_d)) / g]·(1 + dec_overhead·[B_d > 1])`
/// (`g` = `kv_gran`, ctx the tokens a decode has processed, its new one included) and the
/// prefill attention `pre = prefill[ceil_g(c) / g][round(sqrt(Σ n_i²))]·(1 +
/// pre_overhead·[#prefills > 1])`, the prefill table holding Vidur's prediction at the
/// squared key `round(sqrt(Σ n_i²))²`; `c` is the prefills' summed cached context (Vidur
/// sums `ceil_g` per request: the same whenever at most one prefill has cached context, and
/// always 0 under [`Scheduler::Vidur`], where prefills start from nothing). Indices past
/// a table's end read its last entry.
#[derive(Debug, Clone, PartialEq)]
pub struct VidurTables {
    /// Indexed by `r`: `attn_pre_proj, attn_post_proj, attn_rope, mlp_up_proj,
    /// mlp_down_proj, mlp_act, input_layernorm, post_attention_layernorm, add`.
    pub ops: [Vec<f64>; 9],
    /// `attn_kv_cache_save`, indexed by `n`.
    pub kv_save: Vec<f64>,
    /// Row-major `decode[batch size][ctx / g]`, `decode_cols` columns.
    pub decode: Vec<f64>,
    pub decode_cols: usize,
    /// Row-major `prefill[cached ctx / g][round(sqrt(Σ n²))]`, `prefill_cols` columns.
    pub prefill: Vec<f64>,
    pub prefill_cols: usize,
    pub num_layers: u32,
    pub post_attn_norm: bool,
    /// Batching overheads of the attention terms (0.1 in Vidur).
    pub dec_overhead: f64,
    pub pre_overhead: f64,
    /// Context quantisation of the attention keys (64 in Vidur).
    pub kv_gran: u32,
}

/// Op names of [`VidurTables::ops`], in order (the `.npz` keys without `lin_`).
pub const VIDUR_OPS: [&str; 9] = [
    "attn_pre_proj",
    "attn_post_proj",
    "attn_rope",
    "mlp_up_proj",
    "mlp_down_proj",
    "mlp_act",
    "input_layernorm",
    "post_attention_layernorm",
    "add",
];

impl VidurTables {
    /// Check shapes and values: every entry a step can read (index ≥ 1 of the token
    /// tables, rows ≥ 1 of `decode`, columns ≥ 1 of `prefill`) finite and ≥ 0.
    pub fn check(&self) -> Result<()> {
        let ok = |v: &f64| v.is_finite() && *v >= 0.0;
        for (name, t) in VIDUR_OPS.iter().zip(&self.ops) {
            if t.len() < 2 || !t[1..].iter().all(ok) {
                return Err(QcoreError::invalid(
                    format!("step_time.{name}"),
                    "needs at least two entries, finite and >= 0 from index 1",
                ));
            }
        }
        if self.kv_save.len() < 2 || !self.kv_save[1..].iter().all(ok) {
            return Err(QcoreError::invalid(
                "step_time.kv_save",
                "needs at least two entries, finite and >= 0 from index 1",
            ));
        }
        if self.decode_cols == 0
            || self.decode.len() % self.decode_cols != 0
            || self.decode.len() < 2 * self.decode_cols
            || !self.decode[self.decode_cols..].iter().all(ok)
        {
            return Err(QcoreError::invalid(
                "step_time.decode",
                "must be a (batch size, context) table of at least two rows, finite and >= 0 from row 1",
            ));
        }
        if self.prefill_cols < 2
            || self.prefill.len() % self.prefill_cols != 0
            || self.prefill.is_empty()
            || !self
                .prefill
                .chunks(self.prefill_cols)
                .all(|row| row[1..].iter().all(ok))
        {
            return Err(QcoreError::invalid(
                "step_time.prefill",
                "must be a (context, chunk) table of at least two columns, finite and >= 0 from column 1",
            ));
        }
        if self.num_layers == 0 {
            return Err(QcoreError::invalid("step_time.num_layers", "must be >= 1"));
        }
        if self.kv_gran == 0 {
            return Err(QcoreError::invalid("step_time.kv_gran", "must be >= 1"));
        }
        nonneg("step_time.dec_overhead", self.dec_overhead)?;
        nonneg("step_time.pre_overhead", self.pre_overhead)?;
        Ok(())
    }

    /// Seconds of a step serving `b` (not empty).
    #[inline]
    fn duration(&self, b: &Batch) -> f64 {
        #[inline]
        fn at(t: &[f64], i: u64) -> f64 {
            t[(i as usize).min(t.len() - 1)]
        }
        let g = u64::from(self.kv_gran);
        let n = b.prefill_tokens + u64::from(b.decode_reqs);
        let r = n.div_ceil(8) * 8;
        let dec = if b.decode_reqs > 0 {
            let bd = u64::from(b.decode_reqs);
            let ctx = (b.decode_ctx / bd).div_ceil(g);
            let rows = self.decode.len() / self.decode_cols;
            let row = (bd as usize).min(rows - 1);
            let col = (ctx as usize).min(self.decode_cols - 1);
            let f = if bd > 1 { 1.0 + self.dec_overhead } else { 1.0 };
            self.decode[row * self.decode_cols + col] * f
        } else {
            0.0
        };
        let pre = if b.prefill_reqs > 0 {
            let cached = (b.ctx - b.decode_ctx).saturating_sub(b.prefill_tokens);
            let rows = self.prefill.len() / self.prefill_cols;
            let row = (cached.div_ceil(g) as usize).min(rows - 1);
            let col = (b.prefill_tokens_sq.sqrt().round() as usize).min(self.prefill_cols - 1);
            let f = if b.prefill_reqs > 1 {
                1.0 + self.pre_overhead
            } else {
                1.0
            };
            self.prefill[row * self.prefill_cols + col] * f
        } else {
            0.0
        };
        let o = &self.ops;
        let attn = at(&o[0], r)
            + at(&o[1], r)
            + at(&o[2], r)
            + at(&self.kv_save, n)
            + dec
            + pre
            + at(&o[6], r);
        let mut mlp = at(&o[3], r) + at(&o[4], r) + at(&o[5], r);
        if self.post_attn_norm {
            mlp += at(&o[7], r);
        }
        let block = attn + mlp + at(&o[8], r);
        block * f64::from(self.num_layers) * 1e-3
    }
}

/// `DistServe`'s simulator caps a decode step at this many `Σ (ctx + 1)` tokens.
pub const DISTSERVE_DECODE_TOKENS: u32 = 50_000;

/// How a step's batch is formed from `running` and `waiting`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchFormation {
    /// vLLM V1 (the default, §3): running requests first, in list order, then waiting ones
    /// in FCFS order, within the token budget `max_num_batched_tokens` and the
    /// `max_num_seqs` cap; prompts are chunked when `chunked_prefill` is on; prefills and
    /// decodes share a step.
    VllmV1,
    /// Vidur's `vllm` replica scheduler (vLLM V0's, as Vidur models it): a
    /// **prefill-only** step if any waiting request can be admitted — the longest FCFS
    /// prefix of `waiting` whose padded size `(n + 1)·max(tokens)` stays within
    /// `max_num_batched_tokens`, each request taking all its tokens (no chunking), with
    /// `running` and the batch below `max_num_seqs`; otherwise a **decode-only** step over
    /// `running` sorted stably by arrival, at most `max_num_seqs` requests, the batch
    /// going back to the tail of `running`.
    PrefillPriorityUnmixed,
    /// `DistServe`'s `simdistserve`: a **prefill-only** step whenever anything waits (strict
    /// priority) — the longest FCFS prefix of `waiting` whose tokens sum to at most
    /// `max_num_batched_tokens`, no request cap; else a **decode-only** step over the
    /// longest prefix of `running` whose `Σ (ctx + 1)` is at most `decode_tokens`, its
    /// unfinished requests going back to the tail in batch order. Never mixed.
    StrictPrefillPriority { decode_tokens: u32 },
}

/// How KV memory admits requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MemoryAdmission {
    /// vLLM V1 (the default, §4): identified blocks with reference counts and the prefix
    /// cache; a request is admitted from `waiting` when its new blocks (and the cached
    /// ones it revives) leave `int(watermark·num_blocks)` blocks free; a running request
    /// grows when its new blocks are free.
    FreeBlocks,
    /// Vidur's (vLLM V0's) block manager: blocks are counted, not identified (no prefix
    /// cache); a waiting request is admitted when `free − ceil(tokens / block_size) ≥
    /// int(watermark·num_blocks)`; a running request grows only while at least **one
    /// block is free**, even when it needs none.
    Watermark,
    /// No KV model (`DistServe`'s simulator): every request fits; no blocks are held and
    /// nothing is ever preempted.
    Unlimited,
}

/// Which running request is preempted (restarted by recompute: its blocks are freed, its
/// computed tokens reset and it goes to the front of `waiting`) when a running request
/// cannot grow. The victim is taken among the running requests not yet in the batch;
/// with none left, the request itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Preemption {
    /// vLLM V1 (the default): the tail of `running`.
    RecomputeLifo,
    /// Vidur's: the most recently arrived (latest arrival, then highest id).
    RecomputeLatestArrival,
    /// Never preempt: only with [`MemoryAdmission::Unlimited`], where nothing runs out.
    Never,
}

impl BatchFormation {
    /// The option of this name (`vllm_v1`, `prefill_priority_unmixed`,
    /// `strict_prefill_priority`); `decode_tokens` is the last one's decode cap.
    pub fn from_name(name: &str, decode_tokens: u32) -> Result<Self> {
        Ok(match name {
            "vllm_v1" => BatchFormation::VllmV1,
            "prefill_priority_unmixed" => BatchFormation::PrefillPriorityUnmixed,
            "strict_prefill_priority" => BatchFormation::StrictPrefillPriority { decode_tokens },
            other => {
                return Err(QcoreError::invalid(
                    "batch_formation",
                    format!(
                        "is unknown: {other:?} (vllm_v1, prefill_priority_unmixed, strict_prefill_priority)"
                    ),
                ))
            }
        })
    }

    /// The option's name.
    pub fn name(&self) -> &'static str {
        match self {
            BatchFormation::VllmV1 => "vllm_v1",
            BatchFormation::PrefillPriorityUnmixed => "prefill_priority_unmixed",
            BatchFormation::StrictPrefillPriority { .. } => "strict_prefill_priority",
        }
    }
}

impl MemoryAdmission {
    /// The option of this name (`free_blocks`, `watermark`, `unlimited`).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "free_blocks" => MemoryAdmission::FreeBlocks,
            "watermark" => MemoryAdmission::Watermark,
            "unlimited" => MemoryAdmission::Unlimited,
            other => {
                return Err(QcoreError::invalid(
                    "memory_admission",
                    format!("is unknown: {other:?} (free_blocks, watermark, unlimited)"),
                ))
            }
        })
    }

    /// The option's name.
    pub fn name(&self) -> &'static str {
        match self {
            MemoryAdmission::FreeBlocks => "free_blocks",
            MemoryAdmission::Watermark => "watermark",
            MemoryAdmission::Unlimited => "unlimited",
        }
    }
}

impl Preemption {
    /// The option of this name (`recompute_lifo`, `recompute_latest_arrival`, `never`).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "recompute_lifo" => Preemption::RecomputeLifo,
            "recompute_latest_arrival" => Preemption::RecomputeLatestArrival,
            "never" => Preemption::Never,
            other => {
                return Err(QcoreError::invalid(
                    "preemption",
                    format!(
                        "is unknown: {other:?} (recompute_lifo, recompute_latest_arrival, never)"
                    ),
                ))
            }
        })
    }

    /// The option's name.
    pub fn name(&self) -> &'static str {
        match self {
            Preemption::RecomputeLifo => "recompute_lifo",
            Preemption::RecomputeLatestArrival => "recompute_latest_arrival",
            Preemption::Never => "never",
        }
    }
}

/// A named preset of the three scheduling policies (batch formation, memory admission,
/// preemption); the step time is chosen separately.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheduler {
    /// vLLM V1: [`BatchFormation::VllmV1`], [`MemoryAdmission::FreeBlocks`],
    /// [`Preemption::RecomputeLifo`].
    VllmV1,
    /// `DistServe`'s colocated simulator (`simdistserve`, backend `vllm`):
    /// [`BatchFormation::StrictPrefillPriority`], [`MemoryAdmission::Unlimited`],
    /// [`Preemption::Never`].
    DistServe { decode_tokens: u32 },
    /// Vidur's `vllm` replica scheduler: [`BatchFormation::PrefillPriorityUnmixed`],
    /// [`MemoryAdmission::Watermark`], [`Preemption::RecomputeLatestArrival`] (and no
    /// prefix cache, which [`MemoryAdmission::Watermark`] does not model).
    Vidur,
}

impl Scheduler {
    /// The preset of this name (`vllm_v1`, `distserve`, `vidur`).
    pub fn from_name(name: &str, decode_tokens: u32) -> Result<Self> {
        Ok(match name {
            "vllm_v1" => Scheduler::VllmV1,
            "distserve" => Scheduler::DistServe { decode_tokens },
            "vidur" => Scheduler::Vidur,
            other => {
                return Err(QcoreError::invalid(
                    "scheduler",
                    format!("is unknown: {other:?} (vllm_v1, distserve, vidur)"),
                ))
            }
        })
    }

    /// The three policies the preset sets.
    pub fn policies(self) -> (BatchFormation, MemoryAdmission, Preemption) {
        match self {
            Scheduler::VllmV1 => (
                BatchFormation::VllmV1,
                MemoryAdmission::FreeBlocks,
                Preemption::RecomputeLifo,
            ),
            Scheduler::DistServe { decode_tokens } => (
                BatchFormation::StrictPrefillPriority { decode_tokens },
                MemoryAdmission::Unlimited,
                Preemption::Never,
            ),
            Scheduler::Vidur => (
                BatchFormation::PrefillPriorityUnmixed,
                MemoryAdmission::Watermark,
                Preemption::RecomputeLatestArrival,
            ),
        }
    }
}

/// One replica's engine configuration (§2). Build with [`ReplicaConfig::new`] and adjust
/// the public fields; [`ReplicaConfig::check`] validates them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaConfig {
    /// Tokens per KV block.
    pub block_size: u32,
    /// KV capacity in blocks.
    pub num_blocks: u32,
    /// Cap on running requests.
    pub max_num_seqs: u32,
    /// Token budget per step.
    pub max_num_batched_tokens: u32,
    /// Whether a prompt may be split across steps.
    pub chunked_prefill: bool,
    /// Cap on one request's tokens per step (0: off).
    pub long_prefill_token_threshold: u32,
    /// Reuse of cached prompt blocks (needs block hashes in the workload).
    pub prefix_caching: bool,
    /// Fraction of `num_blocks` kept free when admitting waiting requests (0: none, vLLM V1).
    pub watermark: f64,
    /// The step-time model.
    pub step_time: StepTime,
    /// The batch-formation policy.
    pub batch_formation: BatchFormation,
    /// The memory-admission policy.
    pub memory_admission: MemoryAdmission,
    /// The preemption policy.
    pub preemption: Preemption,
}

impl ReplicaConfig {
    /// vLLM V1's defaults (§2) with the given capacity and step time.
    pub fn new(num_blocks: u32, step_time: StepTime) -> Self {
        ReplicaConfig {
            block_size: 16,
            num_blocks,
            max_num_seqs: 256,
            max_num_batched_tokens: 2048,
            chunked_prefill: true,
            long_prefill_token_threshold: 0,
            prefix_caching: true,
            watermark: 0.0,
            step_time,
            batch_formation: BatchFormation::VllmV1,
            memory_admission: MemoryAdmission::FreeBlocks,
            preemption: Preemption::RecomputeLifo,
        }
    }

    /// Set the three scheduling policies from a preset.
    pub fn set_scheduler(&mut self, s: Scheduler) {
        (self.batch_formation, self.memory_admission, self.preemption) = s.policies();
    }

    /// Set the policies from the preset named `scheduler`, then each of
    /// `batch_formation`, `memory_admission` and `preemption` given by name (see their
    /// `from_name`); `decode_tokens` is the strict-prefill-priority decode cap.
    pub fn set_policies(
        &mut self,
        scheduler: &str,
        decode_tokens: u32,
        batch_formation: Option<&str>,
        memory_admission: Option<&str>,
        preemption: Option<&str>,
    ) -> Result<()> {
        self.set_scheduler(Scheduler::from_name(scheduler, decode_tokens)?);
        if let Some(b) = batch_formation {
            self.batch_formation = BatchFormation::from_name(b, decode_tokens)?;
        }
        if let Some(m) = memory_admission {
            self.memory_admission = MemoryAdmission::from_name(m)?;
        }
        if let Some(p) = preemption {
            self.preemption = Preemption::from_name(p)?;
        }
        Ok(())
    }

    /// The preset whose policies these are, if any.
    pub fn scheduler(&self) -> Option<Scheduler> {
        let p = (self.batch_formation, self.memory_admission, self.preemption);
        let decode_tokens = match self.batch_formation {
            BatchFormation::StrictPrefillPriority { decode_tokens } => decode_tokens,
            _ => DISTSERVE_DECODE_TOKENS,
        };
        [
            Scheduler::VllmV1,
            Scheduler::Vidur,
            Scheduler::DistServe { decode_tokens },
        ]
        .into_iter()
        .find(|s| s.policies() == p)
    }

    /// Whether blocks are identified and prompt blocks cached (needs block hashes in the
    /// workload too).
    #[inline]
    pub fn caches_prefixes(&self) -> bool {
        self.prefix_caching && self.memory_admission == MemoryAdmission::FreeBlocks
    }

    /// Validate every field; the error names the field.
    pub fn check(&self) -> Result<()> {
        if self.block_size == 0 {
            return Err(QcoreError::invalid("block_size", "must be >= 1"));
        }
        if self.num_blocks == 0 {
            return Err(QcoreError::invalid("num_blocks", "must be >= 1"));
        }
        if self.max_num_seqs == 0 {
            return Err(QcoreError::invalid("max_num_seqs", "must be >= 1"));
        }
        if self.max_num_batched_tokens == 0 {
            return Err(QcoreError::invalid(
                "max_num_batched_tokens",
                "must be >= 1",
            ));
        }
        if let BatchFormation::StrictPrefillPriority { decode_tokens } = self.batch_formation {
            if decode_tokens == 0 {
                return Err(QcoreError::invalid("decode_tokens", "must be >= 1"));
            }
        }
        if self.preemption == Preemption::Never
            && self.memory_admission != MemoryAdmission::Unlimited
        {
            return Err(QcoreError::invalid(
                "preemption",
                format!(
                    "never needs memory_admission unlimited (with {} a request that cannot grow would wait forever)",
                    self.memory_admission.name()
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.watermark) {
            return Err(QcoreError::invalid(
                "watermark",
                format!("must be in [0, 1), got {}", self.watermark),
            ));
        }
        self.step_time.check()
    }

    /// Blocks that `tokens` tokens occupy.
    #[inline]
    pub fn blocks_for(&self, tokens: u64) -> u64 {
        tokens.div_ceil(u64::from(self.block_size))
    }

    /// Blocks kept free at admission of waiting requests: `int(watermark · num_blocks)`,
    /// as vLLM V0 and Vidur round it.
    pub fn watermark_blocks(&self) -> u32 {
        (self.watermark * f64::from(self.num_blocks)).floor() as u32
    }
}

/// vLLM's default token budget for a GPU: 8192 on GPUs of at least 70 GiB, else 2048.
pub fn default_max_num_batched_tokens(gpu_memory_bytes: f64) -> u32 {
    if gpu_memory_bytes >= 70.0 * GIB {
        8192
    } else {
        2048
    }
}

/// A model's shape (§6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// Parameters.
    pub params: f64,
    /// Transformer layers.
    pub layers: u32,
    /// KV heads (after grouped-query attention).
    pub kv_heads: u32,
    /// Head dimension.
    pub head_dim: u32,
    /// Bytes per weight and per KV element (2 for fp16/bf16).
    pub dtype_bytes: f64,
}

impl ModelSpec {
    /// Check the fields.
    pub fn check(&self) -> Result<()> {
        positive("model.params", self.params)?;
        positive("model.dtype_bytes", self.dtype_bytes)?;
        if self.layers == 0 || self.kv_heads == 0 || self.head_dim == 0 {
            return Err(QcoreError::invalid(
                "model",
                "layers, kv_heads and head_dim must be >= 1",
            ));
        }
        Ok(())
    }

    /// `2 · layers · kv_heads · head_dim · dtype_bytes / tensor_parallel` (one GPU's share).
    pub fn kv_bytes_per_token(&self, tensor_parallel: u32) -> f64 {
        2.0 * f64::from(self.layers)
            * f64::from(self.kv_heads)
            * f64::from(self.head_dim)
            * self.dtype_bytes
            / f64::from(tensor_parallel)
    }

    /// Weight bytes on one GPU at `tensor_parallel`.
    pub fn weight_bytes(&self, tensor_parallel: u32) -> f64 {
        self.params * self.dtype_bytes / f64::from(tensor_parallel)
    }
}

/// A GPU (§6): memory, bandwidth and peak dense fp16/bf16 FLOP/s. Prices are data, not
/// hardware: the one price table is `qcore/data/llm/gpu_prices.csv`, with sources and dates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuSpec {
    /// Memory in bytes.
    pub memory_bytes: f64,
    /// HBM bandwidth in bytes per second.
    pub hbm_bandwidth: f64,
    /// Peak dense fp16/bf16 FLOP/s.
    pub peak_flops: f64,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Named model shapes (public model cards).
pub const MODEL_PRESETS: &[(&str, ModelSpec)] = &[
    (
        "llama-3-8b",
        ModelSpec {
            params: 8.03e9,
            layers: 32,
            kv_heads: 8,
            head_dim: 128,
            dtype_bytes: 2.0,
        },
    ),
    (
        "llama-3-70b",
        ModelSpec {
            params: 70.6e9,
            layers: 80,
            kv_heads: 8,
            head_dim: 128,
            dtype_bytes: 2.0,
        },
    ),
    (
        "llama-2-7b",
        ModelSpec {
            params: 6.74e9,
            layers: 32,
            kv_heads: 32,
            head_dim: 128,
            dtype_bytes: 2.0,
        },
    ),
    (
        "llama-2-70b",
        ModelSpec {
            params: 69.0e9,
            layers: 80,
            kv_heads: 8,
            head_dim: 128,
            dtype_bytes: 2.0,
        },
    ),
    (
        "mistral-7b",
        ModelSpec {
            params: 7.24e9,
            layers: 32,
            kv_heads: 8,
            head_dim: 128,
            dtype_bytes: 2.0,
        },
    ),
    (
        "opt-13b",
        ModelSpec {
            params: 12.9e9,
            layers: 40,
            kv_heads: 40,
            head_dim: 128,
            dtype_bytes: 2.0,
        },
    ),
    (
        "opt-66b",
        ModelSpec {
            params: 65.7e9,
            layers: 64,
            kv_heads: 72,
            head_dim: 128,
            dtype_bytes: 2.0,
        },
    ),
    (
        "bloom-176b",
        ModelSpec {
            params: 176.2e9,
            layers: 70,
            kv_heads: 112,
            head_dim: 128,
            dtype_bytes: 2.0,
        },
    ),
];

/// Named GPUs (vendor data sheets).
pub const GPU_PRESETS: &[(&str, GpuSpec)] = &[
    (
        "a100-80gb",
        GpuSpec {
            memory_bytes: 80.0 * GIB,
            hbm_bandwidth: 2.039e12,
            peak_flops: 312e12,
        },
    ),
    (
        "a100-40gb",
        GpuSpec {
            memory_bytes: 40.0 * GIB,
            hbm_bandwidth: 1.555e12,
            peak_flops: 312e12,
        },
    ),
    (
        "h100-80gb",
        GpuSpec {
            memory_bytes: 80.0 * GIB,
            hbm_bandwidth: 3.35e12,
            peak_flops: 989e12,
        },
    ),
    (
        "l4-24gb",
        GpuSpec {
            memory_bytes: 24.0 * GIB,
            hbm_bandwidth: 0.3e12,
            peak_flops: 121e12,
        },
    ),
    (
        "a10g-24gb",
        GpuSpec {
            memory_bytes: 24.0 * GIB,
            hbm_bandwidth: 0.6e12,
            peak_flops: 125e12,
        },
    ),
];

/// The entry `name` of a preset table; the error names `arg` and lists the names.
fn preset<T: Copy>(table: &[(&str, T)], name: &str, arg: &str) -> Result<T> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            QcoreError::invalid(
                arg,
                format!(
                    "is an unknown preset {name:?} (known: {})",
                    names.join(", ")
                ),
            )
        })
}

/// A model preset by name.
pub fn model_preset(name: &str) -> Result<ModelSpec> {
    preset(MODEL_PRESETS, name, "model")
}

/// A GPU preset by name.
pub fn gpu_preset(name: &str) -> Result<GpuSpec> {
    preset(GPU_PRESETS, name, "gpu")
}

/// KV blocks one GPU of a tensor-parallel group holds (§6):
/// `floor((memory · utilization − weights − activation_reserve) / (block_size · kv_bytes_per_token))`.
pub fn num_blocks(
    model: &ModelSpec,
    gpu: &GpuSpec,
    tensor_parallel: u32,
    block_size: u32,
    gpu_memory_utilization: f64,
    activation_reserve: f64,
) -> Result<u32> {
    model.check()?;
    if tensor_parallel == 0 {
        return Err(QcoreError::invalid("tensor_parallel", "must be >= 1"));
    }
    if block_size == 0 {
        return Err(QcoreError::invalid("block_size", "must be >= 1"));
    }
    if !(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0) {
        return Err(QcoreError::invalid(
            "gpu_memory_utilization",
            format!("must be in (0, 1], got {gpu_memory_utilization}"),
        ));
    }
    nonneg("activation_reserve", activation_reserve)?;
    positive("gpu.memory_bytes", gpu.memory_bytes)?;
    let free = gpu.memory_bytes * gpu_memory_utilization
        - model.weight_bytes(tensor_parallel)
        - activation_reserve;
    let per_block = f64::from(block_size) * model.kv_bytes_per_token(tensor_parallel);
    let blocks = (free / per_block).floor();
    if blocks < 1.0 {
        return Err(QcoreError::invalid(
            "gpu",
            format!(
                "memory leaves no room for the KV cache: {:.2} GiB usable, {:.2} GiB of weights a GPU",
                gpu.memory_bytes * gpu_memory_utilization / GIB,
                model.weight_bytes(tensor_parallel) / GIB
            ),
        ));
    }
    Ok(blocks.min(f64::from(u32::MAX)) as u32)
}

/// The roofline step time of `model` on `tensor_parallel` GPUs of kind `gpu` (§5).
pub fn roofline(
    model: &ModelSpec,
    gpu: &GpuSpec,
    tensor_parallel: u32,
    mfu: f64,
    overhead: f64,
) -> Result<StepTime> {
    model.check()?;
    if tensor_parallel == 0 {
        return Err(QcoreError::invalid("tensor_parallel", "must be >= 1"));
    }
    let tp = f64::from(tensor_parallel);
    let st = StepTime::Roofline {
        params: model.params,
        // One GPU's share of weights and KV read at its own bandwidth; compute split across the group.
        weight_bytes: model.weight_bytes(tensor_parallel),
        kv_bytes_per_token: model.kv_bytes_per_token(tensor_parallel),
        hbm_bandwidth: gpu.hbm_bandwidth,
        peak_flops: gpu.peak_flops * tp,
        mfu,
        overhead,
    };
    st.check()?;
    Ok(st)
}

/// Admission and shedding in front of a fleet: every field `None` (the default) admits
/// every request, and the run is the one without admission.
///
/// Checked in this order when a request arrives (after the test that it can ever fit a
/// replica): the token bucket (before routing, so its decisions depend only on the
/// arrivals and prompt lengths), then routing, then the waiting cap and the
/// predicted-TTFT bound on the routed replica. The queue-wait deadline is applied when a
/// replica begins a step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Admission {
    /// Token bucket refill rate in prompt tokens per second (with `token_burst`). A
    /// request costs its prompt tokens; one that finds fewer in the bucket is shed and
    /// takes none.
    pub token_rate: Option<f64>,
    /// Token bucket capacity in prompt tokens (the bucket starts full).
    pub token_burst: Option<f64>,
    /// Shed a request when the routed replica's waiting queue holds `max_waiting`
    /// requests or more at its arrival (preempted requests return to `waiting`
    /// regardless).
    pub max_waiting: Option<u32>,
    /// Drop (status timed out) a request in a replica's waiting queue that has not
    /// emitted its first token when a step begins more than `max_wait` seconds after its
    /// arrival: one never scheduled (its queue wait exceeded the deadline), or one
    /// preempted before its first token (the tokens computed for it are wasted).
    pub max_wait: Option<f64>,
    /// Reject a request whose predicted TTFT on the routed replica exceeds this (seconds):
    /// `(W + P) · d(B) / B + d(B)`, `W` the tokens the replica's waiting requests still
    /// have to compute, `P` its prompt, `B = max_num_batched_tokens` and `d(B)` the
    /// step-time model's duration of one prefill chunk of `B` tokens.
    pub max_predicted_ttft: Option<f64>,
}

impl Admission {
    /// Whether any option is set.
    #[must_use]
    pub fn is_active(&self) -> bool {
        *self != Admission::default()
    }

    /// Validate the fields.
    ///
    /// # Errors
    /// A bucket with only one of rate and burst, or outside [`TokenBucket::check`]'s
    /// domain (rate > 0, burst >= 1 prompt token); `max_waiting` of 0; `max_wait` not
    /// finite and >= 0; `max_predicted_ttft` not finite and > 0.
    pub fn check(&self) -> Result<()> {
        match (self.token_rate, self.token_burst) {
            (Some(rate), Some(burst)) => TokenBucket::check(
                ("admission.token_rate", rate),
                ("admission.token_burst", burst),
            )?,
            (None, None) => {}
            (rate, _) => {
                let (name, other) = if rate.is_some() {
                    ("admission.token_burst", "token_rate")
                } else {
                    ("admission.token_rate", "token_burst")
                };
                return Err(QcoreError::invalid(
                    name,
                    format!("is required with {other} (the token bucket needs both)"),
                ));
            }
        }
        if self.max_waiting == Some(0) {
            return Err(QcoreError::invalid(
                "admission.max_waiting",
                "must be >= 1 (it sheds a request when waiting >= max_waiting)",
            ));
        }
        if let Some(v) = self.max_wait {
            check_num("admission.max_wait", v, 0.0, false)?;
        }
        if let Some(v) = self.max_predicted_ttft {
            check_num("admission.max_predicted_ttft", v, 0.0, true)?;
        }
        Ok(())
    }
}
