//! The analytic ceilings of one replica on a workload's mean token counts
//! (LLM-ENGINE.md §9): the arrival rate at which the token budget, the KV cache or the cap
//! on running sequences saturates, each with the step time at that operating point.

use super::config::{Batch, ReplicaConfig};
use crate::error::{QcoreError, Result};

/// The three ceilings (requests per second), their step times, and the one that binds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceilings {
    /// `B / (d_tok · E[P + O − 1])`: every step spends the token budget `B`.
    pub token_budget: f64,
    /// `M / (d_kv · E[P·O + O²/2])`: the KV cache of `M` tokens stays full.
    pub kv: f64,
    /// `S / (d_seq · E[O])`: `max_num_seqs` decodes run every step.
    pub max_num_seqs: f64,
    /// Step durations (seconds) at the three operating points, in the same order.
    pub steps: [f64; 3],
}

impl Ceilings {
    /// The binding ceiling: `(name, rate)` of the smallest.
    #[must_use]
    pub fn binding(&self) -> (&'static str, f64) {
        let all = [
            ("token_budget", self.token_budget),
            ("kv", self.kv),
            ("max_num_seqs", self.max_num_seqs),
        ];
        all.into_iter()
            .fold(all[0], |m, x| if x.1 < m.1 { x } else { m })
    }
}

/// The step of `n_dec` decodes of context `ctx` and one prefill chunk of `prefill` tokens
/// (each rounded to whole tokens and requests).
fn step(cfg: &ReplicaConfig, n_dec: f64, prefill: f64, ctx: f64) -> f64 {
    let nd = n_dec.round().max(0.0) as u32;
    let pre = prefill.round().max(0.0) as u64;
    let c = ctx.round() as u64;
    cfg.step_time.duration(&Batch {
        prefill_tokens: pre,
        prefill_tokens_sq: (pre * pre) as f64,
        prefill_reqs: u32::from(pre > 0),
        decode_reqs: nd,
        decode_ctx: u64::from(nd) * c,
        ctx: pre + u64::from(nd) * c,
    })
}

/// The ceilings of `cfg` on requests of `prompt` and `output` tokens (one entry a
/// request, means taken over them).
///
/// # Errors
/// Empty or unequal token arrays, or a request without output tokens.
pub fn ceilings(prompt: &[u32], output: &[u32], cfg: &ReplicaConfig) -> Result<Ceilings> {
    crate::error::check_same_len("prompt_tokens", prompt.len(), "output_tokens", output.len())?;
    if prompt.is_empty() {
        return Err(QcoreError::invalid(
            "workload",
            "must hold at least one request",
        ));
    }
    if output.contains(&0) {
        return Err(QcoreError::invalid("output_tokens", "must be >= 1"));
    }
    let n = prompt.len() as f64;
    let mean = |f: &dyn Fn(f64, f64) -> f64| -> f64 {
        prompt
            .iter()
            .zip(output)
            .map(|(&p, &o)| f(f64::from(p), f64::from(o)))
            .sum::<f64>()
            / n
    };
    let (ep, eo) = (mean(&|p, _| p), mean(&|_, o| o));
    let work = mean(&|p, o| p + o - 1.0); // tokens computed per request
    let g = mean(&|p, o| p * o + o * o / 2.0); // KV token-steps per request
    let ctx = g / eo; // mean context of a decode
    let budget = f64::from(cfg.max_num_batched_tokens);
    let seqs = f64::from(cfg.max_num_seqs);
    let m = f64::from(cfg.num_blocks) * f64::from(cfg.block_size);
    let dec_share = mean(&|_, o| o - 1.0) / work;
    let d_tok = step(cfg, budget * dec_share, budget * (1.0 - dec_share), ctx);
    let n_kv = m / ctx; // decodes that fill the cache
    let d_kv = step(cfg, n_kv, budget.min(n_kv * ep / eo), ctx);
    let d_seq = step(cfg, seqs, budget.min(seqs * ep / eo), ctx);
    Ok(Ceilings {
        token_budget: budget / (d_tok * work),
        kv: m / (d_kv * g),
        max_num_seqs: seqs / (d_seq * eo),
        steps: [d_tok, d_kv, d_seq],
    })
}
