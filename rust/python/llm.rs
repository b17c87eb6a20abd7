//! Bindings of the LLM replica engine (`qcore.llm`): argument conversion, GIL release and
//! error mapping only.

use std::collections::HashMap;
use std::sync::Arc;

use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::convert::slice;
use crate::error::QcoreError;
use crate::llm::{
    self, FleetConfig, GpuSpec, ModelSpec, ReplicaConfig, ReplicaStats, Router, RunOptions,
    RunResult, StepTime, Table, VidurTables, Workload,
};

/// Token counts: int64 values in [1, 2^32), converted to `u32`; the error names the argument.
fn tokens(a: &PyReadonlyArray1<'_, i64>, name: &str) -> PyResult<Vec<u32>> {
    let s = slice(a, name)?;
    let mut out = Vec::with_capacity(s.len());
    for (i, &v) in s.iter().enumerate() {
        if v < 1 || v > i64::from(u32::MAX) {
            return Err(
                QcoreError::invalid(name, format!("must be >= 1 (got {v} at index {i})")).into(),
            );
        }
        out.push(v as u32);
    }
    Ok(out)
}

/// Replica fields: `(block_size, num_blocks, max_num_seqs, max_num_batched_tokens,
/// chunked_prefill, long_prefill_token_threshold, prefix_caching, watermark, scheduler,
/// decode_tokens, (batch_formation, memory_admission, preemption))`; the last three
/// override the `scheduler` preset when given.
type ReplicaSpec = (
    u32,
    u32,
    u32,
    u32,
    bool,
    u32,
    bool,
    f64,
    String,
    u32,
    (Option<String>, Option<String>, Option<String>),
);

/// A step-time spec: `(kind, coefficients, prefill_x, prefill_y, decode_x, decode_y,
/// threshold, vidur_tables)`.
type StepSpec<'py> = (
    String,
    Vec<f64>,
    Option<PyReadonlyArray1<'py, f64>>,
    Option<PyReadonlyArray1<'py, f64>>,
    Option<PyReadonlyArray1<'py, f64>>,
    Option<PyReadonlyArray1<'py, f64>>,
    u32,
    Option<Py<VidurTablesPy>>,
);

/// Vidur's step-time tables, converted once (they are large) and shared by every run.
#[pyclass(frozen, module = "qcore._qcore", name = "_VidurTables")]
pub struct VidurTablesPy {
    inner: Arc<VidurTables>,
}

fn table2(a: &PyReadonlyArray2<'_, f64>, name: &str) -> PyResult<(Vec<f64>, usize)> {
    let cols = a.shape()[1];
    let v = a
        .as_slice()
        .map_err(|_| PyErr::from(QcoreError::invalid(name, "must be C-contiguous")))?;
    Ok((v.to_vec(), cols))
}

#[pymethods]
impl VidurTablesPy {
    /// `ops`: the nine per-layer op tables of `VIDUR_OPS` (indexed by rounded tokens);
    /// `decode[batch, ctx / kv_gran]`, `prefill[ctx / kv_gran, round(sqrt(Σ n²))]`.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        ops: Vec<PyReadonlyArray1<'_, f64>>,
        kv_save: PyReadonlyArray1<'_, f64>,
        decode: PyReadonlyArray2<'_, f64>,
        prefill: PyReadonlyArray2<'_, f64>,
        num_layers: u32,
        post_attn_norm: bool,
        dec_overhead: f64,
        pre_overhead: f64,
        kv_gran: u32,
    ) -> PyResult<Self> {
        if ops.len() != llm::VIDUR_OPS.len() {
            return Err(QcoreError::invalid(
                "ops",
                format!(
                    "needs {} tables ({}), got {}",
                    llm::VIDUR_OPS.len(),
                    llm::VIDUR_OPS.join(", "),
                    ops.len()
                ),
            )
            .into());
        }
        let mut v: Vec<Vec<f64>> = Vec::with_capacity(ops.len());
        for (a, name) in ops.iter().zip(llm::VIDUR_OPS) {
            v.push(slice(a, name)?.to_vec());
        }
        let ops: [Vec<f64>; 9] = v
            .try_into()
            .map_err(|_| PyErr::from(QcoreError::invalid("ops", "nine tables expected")))?;
        let (decode, decode_cols) = table2(&decode, "decode")?;
        let (prefill, prefill_cols) = table2(&prefill, "prefill")?;
        let t = VidurTables {
            ops,
            kv_save: slice(&kv_save, "kv_save")?.to_vec(),
            decode,
            decode_cols,
            prefill,
            prefill_cols,
            num_layers,
            post_attn_norm,
            dec_overhead,
            pre_overhead,
            kv_gran,
        };
        t.check()?;
        Ok(VidurTablesPy { inner: Arc::new(t) })
    }
}

/// A fleet spec: `(replicas, router, weight, staleness, seed)`.
type FleetSpec = (u32, String, f64, f64, u64);

fn coeffs<const N: usize>(c: &[f64], kind: &str) -> PyResult<[f64; N]> {
    c.try_into().map_err(|_| {
        super::errors::InvalidArgumentError::new_err(format!(
            "step_time {kind:?} needs {N} coefficients, got {}",
            c.len()
        ))
    })
}

fn table(
    x: Option<&PyReadonlyArray1<'_, f64>>,
    y: Option<&PyReadonlyArray1<'_, f64>>,
    name: &str,
) -> PyResult<Table> {
    match (x, y) {
        (Some(x), Some(y)) => Ok(Table::new(
            name,
            slice(x, name)?.to_vec(),
            slice(y, name)?.to_vec(),
        )?),
        _ => Err(super::errors::InvalidArgumentError::new_err(format!(
            "{name} table is missing"
        ))),
    }
}

fn step_time(spec: &StepSpec<'_>) -> PyResult<StepTime> {
    let (kind, c, px, py, dx, dy, threshold, vidur) = spec;
    let st = match kind.as_str() {
        "linear" => {
            let [c0, c_tok, c_seq, c_ctx] = coeffs::<4>(c, kind)?;
            StepTime::Linear {
                c0,
                c_tok,
                c_seq,
                c_ctx,
            }
        }
        "phases" => {
            let k = coeffs::<9>(c, kind)?;
            StepTime::Phases {
                prefill: [k[0], k[1], k[2]],
                decode_small: [k[3], k[4], k[5]],
                decode_large: [k[6], k[7], k[8]],
                threshold: *threshold,
            }
        }
        "distserve_sim" => {
            let k = coeffs::<11>(c, kind)?;
            if !(k[9] >= 1.0 && k[9] <= f64::from(u32::MAX) && k[9].fract() == 0.0) {
                return Err(QcoreError::invalid(
                    "step_time.pipeline_parallel",
                    format!("must be an integer >= 1, got {}", k[9]),
                )
                .into());
            }
            StepTime::DistServeSim {
                prefill: [k[0], k[1], k[2]],
                decode_small: [k[3], k[4], k[5]],
                decode_large: [k[6], k[7], k[8]],
                threshold: *threshold,
                pipeline_parallel: k[9] as u32,
                clock_ms: k[10] != 0.0,
            }
        }
        "vidur" => match vidur {
            Some(t) => StepTime::Vidur(Arc::clone(&t.get().inner)),
            None => return Err(QcoreError::invalid("step_time", "vidur step time without its tables").into()),
        },
        "table" => StepTime::Table {
            prefill: table(px.as_ref(), py.as_ref(), "prefill")?,
            decode: table(dx.as_ref(), dy.as_ref(), "decode")?,
        },
        "roofline" => {
            let [params, weight_bytes, kv_bytes_per_token, hbm_bandwidth, peak_flops, mfu, overhead] =
                coeffs::<7>(c, kind)?;
            StepTime::Roofline {
                params,
                weight_bytes,
                kv_bytes_per_token,
                hbm_bandwidth,
                peak_flops,
                mfu,
                overhead,
            }
        }
        other => {
            return Err(QcoreError::invalid(
                "step_time",
                format!(
                "has an unknown kind {other:?} (linear, phases, distserve_sim, table, vidur, roofline)"
            ),
            )
            .into())
        }
    };
    st.check()?;
    Ok(st)
}

fn replica(r: ReplicaSpec, st: StepTime) -> PyResult<ReplicaConfig> {
    let (
        block_size,
        num_blocks,
        max_num_seqs,
        max_num_batched_tokens,
        chunked,
        thr,
        prefix,
        watermark,
        scheduler,
        decode_tokens,
        (batch_formation, memory_admission, preemption),
    ) = r;
    let mut cfg = ReplicaConfig {
        block_size,
        num_blocks,
        max_num_seqs,
        max_num_batched_tokens,
        chunked_prefill: chunked,
        long_prefill_token_threshold: thr,
        prefix_caching: prefix,
        watermark,
        step_time: st,
        batch_formation: llm::BatchFormation::VllmV1,
        memory_admission: llm::MemoryAdmission::FreeBlocks,
        preemption: llm::Preemption::RecomputeLifo,
    };
    cfg.set_policies(
        &scheduler,
        decode_tokens,
        batch_formation.as_deref(),
        memory_admission.as_deref(),
        preemption.as_deref(),
    )?;
    cfg.check()?;
    Ok(cfg)
}

fn router(name: &str, weight: f64) -> PyResult<Router> {
    Ok(match name {
        "round_robin" => Router::RoundRobin,
        "random" => Router::Random,
        "least_requests" => Router::LeastRequests,
        "least_tokens" => Router::LeastTokens,
        "power_of_two" => Router::PowerOfTwo,
        "vllm_dp" => Router::VllmDp,
        "prefix_affinity" => Router::PrefixAffinity { weight },
        other => {
            return Err(QcoreError::invalid(
                "router",
                format!(
                    "is unknown: {other:?} (round_robin, random, least_requests, least_tokens, power_of_two, vllm_dp, prefix_affinity)"
                ),
            )
            .into())
        }
    })
}

fn stats_to_py<'py>(py: Python<'py>, s: &ReplicaStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("arrived", s.arrived)?;
    d.set_item("finished", s.finished)?;
    d.set_item("steps", s.steps)?;
    d.set_item("token_steps", s.token_steps)?;
    d.set_item("prefill_tokens", s.prefill_tokens)?;
    d.set_item("output_tokens", s.output_tokens)?;
    d.set_item("busy_time", s.busy_time)?;
    d.set_item("preemptions", s.preemptions)?;
    d.set_item("hit_tokens", s.hit_tokens)?;
    d.set_item("lookup_tokens", s.lookup_tokens)?;
    d.set_item("in_system_area", s.in_system_area)?;
    d.set_item("max_blocks_used", s.max_blocks_used)?;
    d.set_item("max_running", s.max_running)?;
    d.set_item("max_step_tokens", s.max_step_tokens)?;
    d.set_item("stuck_rejected", s.stuck_rejected)?;
    Ok(d)
}

fn result_to_py(py: Python<'_>, r: RunResult) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let rec = PyDict::new(py);
    let x = r.records;
    rec.set_item("replica", x.replica.into_pyarray(py))?;
    rec.set_item("status", x.status.into_pyarray(py))?;
    rec.set_item("first_scheduled", x.first_scheduled.into_pyarray(py))?;
    rec.set_item("first_token", x.first_token.into_pyarray(py))?;
    rec.set_item("finish", x.finish.into_pyarray(py))?;
    rec.set_item("output_tokens", x.output_tokens.into_pyarray(py))?;
    rec.set_item("preemptions", x.preemptions.into_pyarray(py))?;
    rec.set_item("cached_tokens", x.cached_tokens.into_pyarray(py))?;
    d.set_item("records", rec)?;
    for (name, sk) in [
        ("ttft", &r.ttft),
        ("tpot", &r.tpot),
        ("itl", &r.itl),
        ("e2e", &r.e2e),
        ("queue", &r.queue),
    ] {
        d.set_item(name, PyBytes::new(py, &sk.to_bytes()))?;
    }
    let reps = PyList::empty(py);
    for s in &r.replicas {
        reps.append(stats_to_py(py, s)?)?;
    }
    d.set_item("replicas", reps)?;
    d.set_item("rejected", r.rejected)?;
    d.set_item("admission_rejected", r.admission_rejected)?;
    d.set_item("shed", r.shed)?;
    d.set_item("timed_out", r.timed_out)?;
    d.set_item("wasted_tokens", r.wasted_tokens)?;
    d.set_item("t0", r.t0)?;
    d.set_item("t_end", r.t_end)?;
    match r.trace {
        Some(t) => {
            let td = PyDict::new(py);
            td.set_item("step_replica", t.step_replica.into_pyarray(py))?;
            td.set_item("step_start", t.step_start.into_pyarray(py))?;
            td.set_item("step_end", t.step_end.into_pyarray(py))?;
            td.set_item("step_waiting", t.step_waiting.into_pyarray(py))?;
            td.set_item("sched_step", t.sched_step.into_pyarray(py))?;
            td.set_item("sched_request", t.sched_request.into_pyarray(py))?;
            td.set_item("sched_tokens", t.sched_tokens.into_pyarray(py))?;
            td.set_item("preempt_step", t.preempt_step.into_pyarray(py))?;
            td.set_item("preempt_request", t.preempt_request.into_pyarray(py))?;
            d.set_item("trace", td)?;
        }
        None => d.set_item("trace", py.None())?,
    }
    match r.timeline {
        Some(t) => {
            let td = PyDict::new(py);
            td.set_item("time", t.time.into_pyarray(py))?;
            td.set_item("replica", t.replica.into_pyarray(py))?;
            td.set_item("kv_blocks", t.kv_blocks.into_pyarray(py))?;
            td.set_item("waiting", t.waiting.into_pyarray(py))?;
            td.set_item("running", t.running.into_pyarray(py))?;
            td.set_item("batch_tokens", t.batch_tokens.into_pyarray(py))?;
            d.set_item("timeline", td)?;
        }
        None => d.set_item("timeline", py.None())?,
    }
    Ok(d)
}

/// The decode side of a disaggregated run: `(replica, step time, prefill replicas, decode
/// replicas, KV transfer (bytes_per_token, bandwidth, latency) or None)`.
type DisaggSpec<'py> = (
    ReplicaSpec,
    StepSpec<'py>,
    u32,
    u32,
    Option<(f64, f64, f64)>,
);

/// Admission of a fleet: `(token_rate, token_burst, max_waiting, max_wait,
/// max_predicted_ttft)`.
type AdmissionSpec = (
    Option<f64>,
    Option<f64>,
    Option<i64>,
    Option<f64>,
    Option<f64>,
);

/// The core's admission from its spec, checked.
fn admission(spec: AdmissionSpec) -> PyResult<llm::Admission> {
    let (token_rate, token_burst, max_waiting, max_wait, max_predicted_ttft) = spec;
    let max_waiting = match max_waiting {
        Some(v) => Some(u32::try_from(v).map_err(|_| {
            QcoreError::invalid(
                "admission.max_waiting",
                format!("must be in [1, 4294967295], got {v}"),
            )
        })?),
        None => None,
    };
    let a = llm::Admission {
        token_rate,
        token_burst,
        max_waiting,
        max_wait,
        max_predicted_ttft,
    };
    a.check()?;
    Ok(a)
}

/// Validate an admission spec (the core's checks).
#[pyfunction]
fn _llm_admission_check(spec: AdmissionSpec) -> PyResult<()> {
    admission(spec).map(|_| ())
}

/// Run the engine (or a fleet when `fleet` is given) on a workload.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (arrival, prompt_tokens, output_tokens, hash_offsets, hash_ids, hash_block_tokens, replica_spec, step_spec, fleet_spec, relative_accuracy, trace, timeline_interval, progress=None, disagg_spec=None, admission_spec=None, autoscale_spec=None))]
fn _llm_simulate<'py>(
    py: Python<'py>,
    arrival: PyReadonlyArray1<'py, f64>,
    prompt_tokens: PyReadonlyArray1<'py, i64>,
    output_tokens: PyReadonlyArray1<'py, i64>,
    hash_offsets: Option<PyReadonlyArray1<'py, i64>>,
    hash_ids: Option<PyReadonlyArray1<'py, i64>>,
    hash_block_tokens: u32,
    replica_spec: ReplicaSpec,
    step_spec: StepSpec<'py>,
    fleet_spec: Option<FleetSpec>,
    relative_accuracy: f64,
    trace: bool,
    timeline_interval: Option<f64>,
    progress: Option<Py<PyAny>>,
    disagg_spec: Option<DisaggSpec<'py>>,
    admission_spec: Option<AdmissionSpec>,
    autoscale_spec: Option<AutoscaleSpec<'py>>,
) -> PyResult<Bound<'py, PyDict>> {
    let p = tokens(&prompt_tokens, "prompt_tokens")?;
    let o = tokens(&output_tokens, "output_tokens")?;
    let mut w = Workload::new(slice(&arrival, "arrival")?.to_vec(), p, o)?;
    if let (Some(off), Some(ids)) = (&hash_offsets, &hash_ids) {
        let off: Vec<usize> = slice(off, "hash_offsets")?
            .iter()
            .map(|&v| v.max(0) as usize)
            .collect();
        let ids: Vec<u64> = slice(ids, "hash_ids")?.iter().map(|&v| v as u64).collect();
        w = w.with_hashes(off, ids, hash_block_tokens)?;
    }
    let cfg = replica(replica_spec, step_time(&step_spec)?)?;
    let fleet = match fleet_spec {
        Some((replicas, name, weight, staleness, seed)) => {
            let f = FleetConfig {
                replicas,
                router: router(&name, weight)?,
                staleness,
                seed,
            };
            f.check()?;
            Some(f)
        }
        None => None,
    };
    let adm = admission_spec.map_or(Ok(llm::Admission::default()), admission)?;
    if adm.is_active() && (fleet.is_none() || disagg_spec.is_some()) {
        return Err(QcoreError::invalid(
            "admission",
            "applies to a colocated fleet (fleet_spec), not to disaggregated pools",
        )
        .into());
    }
    let opts = RunOptions {
        relative_accuracy,
        trace,
        timeline_interval,
    };
    let disagg = match disagg_spec {
        Some((rspec, sspec, np, nd, x)) => {
            let pools = llm::Disaggregation {
                prefill_replicas: np,
                decode_replicas: nd,
                transfer: x.map(|(bytes_per_token, bandwidth, latency)| llm::KvTransfer {
                    bytes_per_token,
                    bandwidth,
                    latency,
                }),
            };
            Some((replica(rspec, step_time(&sspec)?)?, pools))
        }
        None => None,
    };
    let scaling = match autoscale_spec {
        Some(spec) => {
            if fleet.is_none() || disagg.is_some() {
                return Err(QcoreError::invalid(
                    "autoscale",
                    "applies to a colocated fleet (fleet_spec), not to disaggregated pools",
                )
                .into());
            }
            Some(autoscale(spec)?)
        }
        None => None,
    };
    let res = py.detach(|| {
        // `progress(arrived, total)` at most every 0.2 s, and once at the end.
        let mut last = std::time::Instant::now();
        let mut report = |done: usize, total: usize| {
            if let Some(cb) = &progress {
                if done == total || last.elapsed() >= std::time::Duration::from_millis(200) {
                    last = std::time::Instant::now();
                    Python::attach(|py| {
                        let _ = cb.call1(py, (done, total));
                    });
                }
            }
        };
        match (&disagg, &fleet, scaling) {
            (Some((dec, pools)), _, _) => {
                llm::run_disaggregated_with(&w, &cfg, dec, pools, &opts, &mut report)
                    .map(|r| (r, None))
            }
            (None, Some(f), Some((sc, policy))) => {
                llm::run_fleet_autoscaled(&w, &cfg, f, &adm, &opts, &sc, policy, &mut report)
                    .map(|r| (r.result, Some(r.scaling)))
            }
            (None, Some(f), None) => {
                llm::run_fleet_admitted(&w, &cfg, f, &adm, &opts, &mut report).map(|r| (r, None))
            }
            (None, None, _) => {
                llm::run_engine_progress(&w, &cfg, &opts, &mut report).map(|r| (r, None))
            }
        }
    })?;
    let (res, scaling) = res;
    let d = result_to_py(py, res)?;
    match scaling {
        Some(s) => d.set_item("scaling", scaling_to_py(py, s)?)?,
        None => d.set_item("scaling", py.None())?,
    }
    Ok(d)
}

/// `((kind, numbers, strings), [(metric, target)], composite, min_replicas,
/// max_replicas, cold_start, sample_interval, ttft_window, seed)`.
type AutoscaleSpec<'py> = (
    (String, HashMap<String, f64>, HashMap<String, String>),
    Vec<(String, f64)>,
    bool,
    u32,
    u32,
    super::sim::DistSpec<'py>,
    f64,
    f64,
    u64,
);

type Policy = Box<dyn crate::policy::Autoscaler + Send>;

fn autoscale(spec: AutoscaleSpec<'_>) -> PyResult<(llm::AutoscaleConfig, Policy)> {
    let ((kind, numbers, strings), terms, composite, lo, hi, cold, dt, window, seed) = spec;
    let policy = crate::policy::PolicySpec {
        kind,
        numbers,
        strings,
    }
    .autoscaler()?;
    let mut metrics = Vec::with_capacity(terms.len());
    for (name, target) in terms {
        metrics.push((llm::FleetMetric::parse(&name)?, target));
    }
    let signal = match (composite, metrics.as_slice()) {
        (false, [(m, _)]) => llm::ScaleSignal::Metric(*m),
        (false, _) => {
            return Err(QcoreError::invalid("metric", "give one metric, or a composite").into())
        }
        (true, _) => llm::ScaleSignal::Composite(metrics),
    };
    let cfg = llm::AutoscaleConfig {
        min_replicas: lo,
        max_replicas: hi,
        cold_start: super::sim::dist_from(&cold, "cold_start")?,
        sample_interval: dt,
        signal,
        ttft_window: window,
        seed,
    };
    cfg.check()?;
    Ok((cfg, policy))
}

fn scaling_to_py(py: Python<'_>, s: llm::ScaleReport) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let replica_seconds = s.replica_seconds();
    let tl = s.timeline;
    let td = PyDict::new(py);
    td.set_item("t", tl.time.into_pyarray(py))?;
    td.set_item("ready", tl.ready.into_pyarray(py))?;
    td.set_item("starting", tl.starting.into_pyarray(py))?;
    td.set_item("draining", tl.draining.into_pyarray(py))?;
    td.set_item("target", tl.target.into_pyarray(py))?;
    td.set_item("metric", tl.metric.into_pyarray(py))?;
    d.set_item("timeline", td)?;
    let l = s.lives;
    let ld = PyDict::new(py);
    ld.set_item("replica", l.slot.into_pyarray(py))?;
    ld.set_item("requested", l.requested.into_pyarray(py))?;
    ld.set_item("ready", l.ready.into_pyarray(py))?;
    ld.set_item("drain", l.drain.into_pyarray(py))?;
    ld.set_item("left", l.left.into_pyarray(py))?;
    d.set_item("lives", ld)?;
    d.set_item("starting_seconds", s.starting_seconds)?;
    d.set_item("ready_seconds", s.ready_seconds)?;
    d.set_item("draining_seconds", s.draining_seconds)?;
    d.set_item("replica_seconds", replica_seconds)?;
    d.set_item("scale_events", s.scale_events)?;
    d.set_item("peak_replicas", s.peak_replicas)?;
    d.set_item("t_stop", s.t_stop)?;
    Ok(d)
}

fn model_tuple(m: &ModelSpec) -> (f64, u32, u32, u32, f64) {
    (m.params, m.layers, m.kv_heads, m.head_dim, m.dtype_bytes)
}

fn gpu_tuple(g: &GpuSpec) -> (f64, f64, f64) {
    (g.memory_bytes, g.hbm_bandwidth, g.peak_flops)
}

/// The model and GPU presets: `({name: (params, layers, kv_heads, head_dim, dtype_bytes)},
/// {name: (memory_bytes, hbm_bandwidth, peak_flops)})`.
#[pyfunction]
fn _llm_presets(py: Python<'_>) -> PyResult<(Bound<'_, PyDict>, Bound<'_, PyDict>)> {
    let m = PyDict::new(py);
    for (name, spec) in llm::MODEL_PRESETS {
        m.set_item(*name, model_tuple(spec))?;
    }
    let g = PyDict::new(py);
    for (name, spec) in llm::GPU_PRESETS {
        g.set_item(*name, gpu_tuple(spec))?;
    }
    Ok((m, g))
}

type ModelArg = (f64, u32, u32, u32, f64);
type GpuArg = (f64, f64, f64);

fn model_from(m: ModelArg) -> ModelSpec {
    ModelSpec {
        params: m.0,
        layers: m.1,
        kv_heads: m.2,
        head_dim: m.3,
        dtype_bytes: m.4,
    }
}

fn gpu_from(g: GpuArg) -> GpuSpec {
    GpuSpec {
        memory_bytes: g.0,
        hbm_bandwidth: g.1,
        peak_flops: g.2,
    }
}

/// KV blocks of one GPU (§6).
#[pyfunction]
fn _llm_num_blocks(
    model: ModelArg,
    gpu: GpuArg,
    tensor_parallel: u32,
    block_size: u32,
    gpu_memory_utilization: f64,
    activation_reserve: f64,
) -> PyResult<u32> {
    Ok(llm::num_blocks(
        &model_from(model),
        &gpu_from(gpu),
        tensor_parallel,
        block_size,
        gpu_memory_utilization,
        activation_reserve,
    )?)
}

/// KV bytes per token on one GPU of the group.
#[pyfunction]
fn _llm_kv_bytes_per_token(model: ModelArg, tensor_parallel: u32) -> PyResult<f64> {
    let m = model_from(model);
    m.check()?;
    if tensor_parallel == 0 {
        return Err(QcoreError::invalid("tensor_parallel", "must be >= 1").into());
    }
    Ok(m.kv_bytes_per_token(tensor_parallel))
}

/// Roofline coefficients `(params, weight_bytes, kv_bytes_per_token, hbm_bandwidth,
/// peak_flops, mfu, overhead)` of a model on a GPU group.
#[pyfunction]
fn _llm_roofline(
    model: ModelArg,
    gpu: GpuArg,
    tensor_parallel: u32,
    mfu: f64,
    overhead: f64,
) -> PyResult<Vec<f64>> {
    match llm::roofline(
        &model_from(model),
        &gpu_from(gpu),
        tensor_parallel,
        mfu,
        overhead,
    )? {
        StepTime::Roofline {
            params,
            weight_bytes,
            kv_bytes_per_token,
            hbm_bandwidth,
            peak_flops,
            mfu,
            overhead,
        } => Ok(vec![
            params,
            weight_bytes,
            kv_bytes_per_token,
            hbm_bandwidth,
            peak_flops,
            mfu,
            overhead,
        ]),
        _ => Err(super::errors::InvalidArgumentError::new_err(
            "roofline did not return a roofline model",
        )),
    }
}

/// Duration of one step: `batch = (prefill_tokens, prefill_tokens_sq, prefill_reqs,
/// decode_reqs, decode_ctx, ctx)`.
#[pyfunction]
fn _llm_step_duration(
    step_spec: StepSpec<'_>,
    batch: (u64, f64, u32, u32, u64, u64),
) -> PyResult<f64> {
    let st = step_time(&step_spec)?;
    let b = llm::Batch {
        prefill_tokens: batch.0,
        prefill_tokens_sq: batch.1,
        prefill_reqs: batch.2,
        decode_reqs: batch.3,
        decode_ctx: batch.4,
        ctx: batch.5,
    };
    Ok(st.duration(&b))
}

/// The analytic ceilings of a replica on the token counts of a workload (§9).
#[pyfunction]
fn _llm_ceilings<'py>(
    py: Python<'py>,
    prompt_tokens: PyReadonlyArray1<'py, i64>,
    output_tokens: PyReadonlyArray1<'py, i64>,
    replica_spec: ReplicaSpec,
    step_spec: StepSpec<'py>,
) -> PyResult<Bound<'py, PyDict>> {
    let p = tokens(&prompt_tokens, "prompt_tokens")?;
    let o = tokens(&output_tokens, "output_tokens")?;
    let cfg = replica(replica_spec, step_time(&step_spec)?)?;
    let c = llm::ceilings(&p, &o, &cfg)?;
    let d = PyDict::new(py);
    d.set_item("token_budget", c.token_budget)?;
    d.set_item("kv", c.kv)?;
    d.set_item("max_num_seqs", c.max_num_seqs)?;
    d.set_item("steps", c.steps.to_vec())?;
    let (name, rate) = c.binding();
    d.set_item("binding", name)?;
    d.set_item("rate", rate)?;
    Ok(d)
}

/// The replica defaults of the core (§2): a dict of field → value.
#[pyfunction]
fn _llm_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let c = ReplicaConfig::new(
        1,
        StepTime::Linear {
            c0: 0.0,
            c_tok: 0.0,
            c_seq: 0.0,
            c_ctx: 0.0,
        },
    );
    let d = PyDict::new(py);
    d.set_item("block_size", c.block_size)?;
    d.set_item("max_num_seqs", c.max_num_seqs)?;
    d.set_item("max_num_batched_tokens", c.max_num_batched_tokens)?;
    d.set_item(
        "max_num_batched_tokens_large_gpu",
        llm::default_max_num_batched_tokens(f64::INFINITY),
    )?;
    d.set_item("chunked_prefill", c.chunked_prefill)?;
    d.set_item(
        "long_prefill_token_threshold",
        c.long_prefill_token_threshold,
    )?;
    d.set_item("prefix_caching", c.prefix_caching)?;
    d.set_item("watermark", c.watermark)?;
    d.set_item("scheduler", "vllm_v1")?;
    d.set_item("batch_formation", c.batch_formation.name())?;
    d.set_item("memory_admission", c.memory_admission.name())?;
    d.set_item("preemption", c.preemption.name())?;
    d.set_item("decode_tokens", llm::DISTSERVE_DECODE_TOKENS)?;
    Ok(d)
}

/// The names of the batch-formation, memory-admission and preemption policies a replica
/// uses: the `scheduler` preset's, overridden by those given; the combination checked.
#[pyfunction]
#[pyo3(signature = (scheduler, decode_tokens, batch_formation=None, memory_admission=None, preemption=None))]
fn _llm_policies(
    scheduler: &str,
    decode_tokens: u32,
    batch_formation: Option<&str>,
    memory_admission: Option<&str>,
    preemption: Option<&str>,
) -> PyResult<(&'static str, &'static str, &'static str)> {
    let step = StepTime::Linear {
        c0: 1.0,
        c_tok: 0.0,
        c_seq: 0.0,
        c_ctx: 0.0,
    };
    let mut c = ReplicaConfig::new(1, step);
    c.set_policies(
        scheduler,
        decode_tokens,
        batch_formation,
        memory_admission,
        preemption,
    )?;
    c.check()?;
    Ok((
        c.batch_formation.name(),
        c.memory_admission.name(),
        c.preemption.name(),
    ))
}

/// vLLM's default token budget for a GPU with this much memory.
#[pyfunction]
fn _llm_default_batched_tokens(gpu_memory_bytes: f64) -> u32 {
    llm::default_max_num_batched_tokens(gpu_memory_bytes)
}

/// A synthetic workload: `(arrival, prompt_tokens, output_tokens)`.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn _llm_synthetic<'py>(
    py: Python<'py>,
    arrivals: super::sim::ArrivalSpec<'py>,
    prompt: super::sim::DistSpec<'py>,
    output: super::sim::DistSpec<'py>,
    n: usize,
    seed: u64,
) -> PyResult<(
    Bound<'py, numpy::PyArray1<f64>>,
    Bound<'py, numpy::PyArray1<i64>>,
    Bound<'py, numpy::PyArray1<i64>>,
)> {
    let a = super::sim::arrivals_from(&arrivals)?;
    let p = super::sim::dist_from(&prompt, "prompt_tokens")?;
    let o = super::sim::dist_from(&output, "output_tokens")?;
    let w = py.detach(|| Workload::synthetic(&a, &p, &o, n, seed))?;
    let pi: Vec<i64> = w.prompt().iter().map(|&x| i64::from(x)).collect();
    let oi: Vec<i64> = w.output().iter().map(|&x| i64::from(x)).collect();
    Ok((
        w.arrival().to_vec().into_pyarray(py),
        pi.into_pyarray(py),
        oi.into_pyarray(py),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<VidurTablesPy>()?;
    m.add_function(wrap_pyfunction!(_llm_simulate, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_admission_check, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_presets, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_num_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_kv_bytes_per_token, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_roofline, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_step_duration, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_ceilings, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_synthetic, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_default_batched_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(_llm_policies, m)?)?;
    Ok(())
}
