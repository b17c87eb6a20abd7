//! Exact limits of the engine (LLM-ENGINE.md §9) and unit checks.

use super::*;
use crate::sim::rng::Rng;

fn linear(c0: f64, c_tok: f64) -> StepTime {
    StepTime::Linear {
        c0,
        c_tok,
        c_seq: 0.0,
        c_ctx: 0.0,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

fn random_workload(seed: u64, n: usize, rate: f64, pmax: u32, omax: u32) -> Workload {
    let mut rng = Rng::new(seed);
    let mut t = 0.0;
    let mut a = Vec::new();
    let mut p = Vec::new();
    let mut o = Vec::new();
    for _ in 0..n {
        t += rng.exp1() / rate;
        a.push(t);
        p.push(1 + rng.index(pmax as usize) as u32);
        o.push(1 + rng.index(omax as usize) as u32);
    }
    Workload::new(a, p, o).unwrap()
}

#[test]
fn one_request_alone() {
    // Prompt 5000 with a 2048 budget: chunks 2048, 2048, 904; then O - 1 decode steps.
    let st = StepTime::Linear {
        c0: 0.005,
        c_tok: 1e-5,
        c_seq: 1e-4,
        c_ctx: 1e-7,
    };
    let cfg = ReplicaConfig::new(10_000, st.clone());
    let w = Workload::new(vec![1.0], vec![5000], vec![7]).unwrap();
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    let mut ttft = 0.0;
    let mut done = 0u64;
    for n in [2048u64, 2048, 904] {
        done += n;
        ttft += 0.005 + 1e-5 * n as f64 + 1e-4 + 1e-7 * done as f64;
    }
    assert!(close(r.records.first_token[0] - 1.0, ttft));
    let mut e2e = ttft;
    for g in 1..7u64 {
        // Decode of batch 1: ctx = P + g (tokens held after the step).
        e2e += 0.005 + 1e-4 + 1e-7 * (5000 + g) as f64;
    }
    assert!(close(r.records.finish[0] - 1.0, e2e));
    assert_eq!(r.records.output_tokens[0], 7);
    assert_eq!(r.replicas[0].steps, 3 + 6);
}

#[test]
fn one_request_without_chunking_is_one_prefill_step() {
    let mut cfg = ReplicaConfig::new(10_000, linear(0.01, 1e-4));
    cfg.chunked_prefill = false;
    cfg.max_num_batched_tokens = 8192;
    let w = Workload::new(vec![0.0], vec![5000], vec![3]).unwrap();
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    assert!(close(r.records.first_token[0], 0.01 + 0.5));
    assert!(close(r.records.finish[0], 0.51 + 2.0 * 0.01));
}

fn check_conservation(w: &Workload, cfg: &ReplicaConfig) -> RunResult {
    let r = run_engine(w, cfg, &RunOptions::default()).unwrap();
    let s = &r.replicas[0];
    assert!(s.max_blocks_used <= cfg.num_blocks);
    assert!(s.max_step_tokens <= cfg.max_num_batched_tokens);
    assert!(s.max_running <= cfg.max_num_seqs);
    let mut finished = 0;
    for k in 0..w.len() {
        match r.records.status[k] {
            STATUS_FINISHED => {
                assert_eq!(r.records.output_tokens[k], w.output[k]);
                assert!(r.records.finish[k] >= r.records.first_token[k]);
                assert!(
                    r.records.first_token[k] > w.arrival[k]
                        || cfg.step_time.duration(&Batch {
                            prefill_reqs: 1,
                            ..Batch::default()
                        }) == 0.0
                );
                finished += 1;
            }
            STATUS_REJECTED => {}
            other => panic!("request {k} ended with status {other}"),
        }
    }
    assert_eq!(finished as u64, s.finished);
    assert_eq!(
        s.output_tokens,
        r.records
            .output_tokens
            .iter()
            .map(|&x| u64::from(x))
            .sum::<u64>()
    );
    r
}

#[test]
fn conservation_and_preemption() {
    let w = random_workload(7, 400, 20.0, 600, 300);
    // Ample KV: no preemption.
    let cfg = ReplicaConfig::new(100_000, linear(0.01, 1e-5));
    let r = check_conservation(&w, &cfg);
    assert_eq!(r.replicas[0].preemptions, 0);
    // Tight KV: preemptions, still every request finishes once with its tokens.
    let mut cfg = ReplicaConfig::new(120, linear(0.01, 1e-5));
    cfg.max_num_seqs = 16;
    cfg.max_num_batched_tokens = 512;
    let r = check_conservation(&w, &cfg);
    assert!(r.replicas[0].preemptions > 0);
    assert_eq!(r.rejected, 0);
    let pre: u64 = r.records.preemptions.iter().map(|&x| u64::from(x)).sum();
    assert_eq!(pre, r.replicas[0].preemptions);
}

#[test]
fn little_law_is_exact_when_everything_finishes() {
    let w = random_workload(3, 300, 15.0, 400, 200);
    let mut cfg = ReplicaConfig::new(200, linear(0.01, 1e-5));
    cfg.max_num_batched_tokens = 512;
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    let sum_e2e: f64 = (0..w.len())
        .map(|k| r.records.finish[k] - w.arrival[k])
        .sum();
    assert!(
        close(r.replicas[0].in_system_area, sum_e2e),
        "{} {}",
        r.replicas[0].in_system_area,
        sum_e2e
    );
}

#[test]
fn requests_that_can_never_fit_are_rejected() {
    // 10 blocks of 16 = 160 tokens: P + O - 1 = 160 fits, 161 does not.
    let cfg = ReplicaConfig::new(10, linear(0.01, 0.0));
    let w = Workload::new(vec![0.0, 0.0, 1.0], vec![150, 151, 10], vec![11, 11, 2]).unwrap();
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    assert_eq!(
        r.records.status,
        vec![STATUS_FINISHED, STATUS_REJECTED, STATUS_FINISHED]
    );
    assert_eq!(r.rejected, 1);
    // Without chunked prefill, a prompt above the budget can never be scheduled.
    let mut cfg = ReplicaConfig::new(1000, linear(0.01, 0.0));
    cfg.chunked_prefill = false;
    cfg.max_num_batched_tokens = 100;
    let w = Workload::new(vec![0.0, 0.0], vec![101, 100], vec![1, 1]).unwrap();
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    assert_eq!(r.records.status, vec![STATUS_REJECTED, STATUS_FINISHED]);
}

#[test]
fn self_preemption_takes_no_time() {
    // Two requests each needing 3 blocks at the end; 4 blocks in all.
    let mut cfg = ReplicaConfig::new(4, linear(1.0, 0.0));
    cfg.block_size = 4;
    let w = Workload::new(vec![0.0, 0.0], vec![4, 4], vec![8, 8]).unwrap();
    let opts = RunOptions {
        trace: true,
        ..RunOptions::default()
    };
    let r = run_engine(&w, &cfg, &opts).unwrap();
    assert!(r.records.status.iter().all(|&s| s == STATUS_FINISHED));
    assert!(r.replicas[0].preemptions >= 1);
    let tr = r.trace.unwrap();
    // The preempted request is always the later one (LIFO).
    assert!(tr.preempt_request.iter().all(|&q| q == 1));
    assert_eq!(r.records.output_tokens, vec![8, 8]);
}

#[test]
fn one_replica_fleet_equals_engine() {
    let w = random_workload(11, 300, 30.0, 500, 200);
    let mut cfg = ReplicaConfig::new(150, linear(0.01, 1e-5));
    cfg.max_num_batched_tokens = 256;
    let opts = RunOptions {
        trace: true,
        timeline_interval: Some(0.5),
        ..RunOptions::default()
    };
    let a = run_engine(&w, &cfg, &opts).unwrap();
    for router in [
        Router::RoundRobin,
        Router::LeastTokens,
        Router::PowerOfTwo,
        Router::PrefixAffinity { weight: 1.0 },
    ] {
        let f = FleetConfig {
            replicas: 1,
            router,
            staleness: 0.0,
            seed: 1,
        };
        let b = run_fleet(&w, &cfg, &f, &opts).unwrap();
        assert_eq!(a.records, b.records);
        assert_eq!(a.trace, b.trace);
        assert_eq!(a.timeline, b.timeline);
        assert_eq!(a.replicas, b.replicas);
        assert_eq!(a.ttft, b.ttft);
        assert_eq!(a.itl, b.itl);
    }
}

#[test]
fn fleet_routers_conserve() {
    let w = random_workload(5, 600, 80.0, 500, 200);
    let mut cfg = ReplicaConfig::new(300, linear(0.01, 1e-5));
    cfg.max_num_batched_tokens = 512;
    for router in [
        Router::RoundRobin,
        Router::Random,
        Router::LeastRequests,
        Router::LeastTokens,
        Router::PowerOfTwo,
        Router::VllmDp,
        Router::PrefixAffinity { weight: 1.0 },
    ] {
        for staleness in [0.0, 0.5] {
            let f = FleetConfig {
                replicas: 4,
                router,
                staleness,
                seed: 3,
            };
            let r = run_fleet(&w, &cfg, &f, &RunOptions::default()).unwrap();
            assert!(
                r.records.status.iter().all(|&s| s == STATUS_FINISHED),
                "{router:?}"
            );
            let total: u64 = r.replicas.iter().map(|s| s.arrived).sum();
            assert_eq!(total, w.len() as u64);
            if router == Router::RoundRobin {
                assert!(r.replicas.iter().all(|s| s.arrived == 150));
            }
            for (i, s) in r.replicas.iter().enumerate() {
                let e2e: f64 = (0..w.len())
                    .filter(|&k| r.records.replica[k] == i as i32)
                    .map(|k| r.records.finish[k] - w.arrival[k])
                    .sum();
                assert!(close(s.in_system_area, e2e), "{router:?} replica {i}");
            }
        }
    }
}

/// An offline replay of the prefix cache with unbounded memory, in the simplest shape:
/// a set of keys seen so far.
#[test]
fn prefix_hits_equal_offline_replay() {
    // Requests far apart in time (each finishes before the next arrives), ample KV: the
    // hit of request i is the longest run of its keys present among earlier requests'.
    let mut rng = Rng::new(9);
    let n = 60;
    let hbt = 64u32;
    let mut arrival = Vec::new();
    let mut prompt = Vec::new();
    let mut offsets = vec![0usize];
    let mut ids: Vec<u64> = Vec::new();
    let mut next_id = 1000u64;
    let bases: Vec<Vec<u64>> = (0..4)
        .map(|b| (0..8).map(|j| (b * 100 + j) as u64).collect())
        .collect();
    for i in 0..n {
        arrival.push(i as f64 * 100.0);
        let p = 1 + rng.index(500) as u32;
        prompt.push(p);
        let nh = p.div_ceil(hbt) as usize;
        let base = &bases[rng.index(4)];
        let share = rng.index(nh + 1);
        for j in 0..nh {
            if j < share && j < base.len() {
                ids.push(base[j]);
            } else {
                ids.push(next_id);
                next_id += 1;
            }
        }
        offsets.push(ids.len());
    }
    let output = vec![3u32; n];
    let w = Workload::new(arrival, prompt.clone(), output)
        .unwrap()
        .with_hashes(offsets.clone(), ids.clone(), hbt)
        .unwrap();
    let mut cfg = ReplicaConfig::new(100_000, linear(0.01, 1e-5));
    cfg.block_size = 16;
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..n {
        let p = prompt[i];
        let h = &ids[offsets[i]..offsets[i + 1]];
        let key = |j: u32| (h[(j * 16 / hbt) as usize], j);
        let mut hit = 0;
        while hit < (p - 1) / 16 && seen.contains(&key(hit)) {
            hit += 1;
        }
        assert_eq!(r.records.cached_tokens[i], hit * 16, "request {i}");
        for j in 0..p / 16 {
            seen.insert(key(j));
        }
    }
    assert!(r.replicas[0].hit_tokens > 0);
}

#[test]
fn eviction_takes_least_recently_freed() {
    // 8 blocks of 4 tokens. Request A (prompt 16, 4 cacheable blocks) finishes and frees
    // its blocks; B (distinct, 16 tokens) needs 4 blocks + 1: it takes the never-used
    // blocks first, then A's last block (freed first). A's first 3 blocks stay cached.
    let mut cfg = ReplicaConfig::new(8, linear(1.0, 0.0));
    cfg.block_size = 4;
    let w = Workload::new(vec![0.0, 10.0, 20.0], vec![16, 16, 13], vec![1, 2, 1])
        .unwrap()
        .with_hashes(
            vec![0, 4, 8, 12],
            vec![1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 9],
            4,
        )
        .unwrap();
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    // C shares A's first three hash blocks, at most floor(12/4) = 3 blocks.
    assert_eq!(r.records.cached_tokens, vec![0, 0, 12]);
    // With 6 blocks, B (5 blocks) evicts 1 free never-used... blocks 4,5 then A's 3,2,1.
    let mut cfg6 = cfg.clone();
    cfg6.num_blocks = 6;
    let r = run_engine(&w, &cfg6, &RunOptions::default()).unwrap();
    // A's blocks were freed last-first: queue [4, 5, 3(A3), 2(A2), 1(A1), 0(A0)]; B takes
    // 4, 5, A3, A2, A1: only A0 survives, so C hits one block.
    assert_eq!(r.records.cached_tokens, vec![0, 0, 4]);
}

#[test]
fn table_interpolates_and_extrapolates() {
    let t = Table::new("t", vec![1.0, 2.0, 4.0], vec![10.0, 20.0, 30.0]).unwrap();
    assert!(close(t.eval(1.5), 15.0));
    assert!(close(t.eval(3.0), 25.0));
    assert!(close(t.eval(6.0), 40.0));
    assert!(close(t.eval(0.5), 5.0));
    assert!(Table::new("t", vec![1.0, 1.0], vec![1.0, 2.0]).is_err());
    let st = StepTime::Table {
        prefill: Table::new("prefill", vec![0.0, 1000.0], vec![0.01, 0.11]).unwrap(),
        decode: Table::new("decode", vec![1.0, 64.0], vec![0.03, 0.05]).unwrap(),
    };
    let b = Batch {
        prefill_tokens: 500,
        prefill_tokens_sq: 250_000.0,
        prefill_reqs: 1,
        decode_reqs: 1,
        decode_ctx: 10,
        ctx: 510,
    };
    assert!(close(st.duration(&b), 0.06 + 0.03));
}

#[test]
fn phases_switch_at_threshold() {
    let st = StepTime::Phases {
        prefill: [10.0, 0.1, 0.0],
        decode_small: [20.0, 0.0, 1.0],
        decode_large: [5.0, 0.0, 2.0],
        threshold: 95,
    };
    let mut b = Batch {
        decode_reqs: 94,
        ..Batch::default()
    };
    assert!(close(st.duration(&b), (20.0 + 94.0) * 1e-3));
    b.decode_reqs = 95;
    assert!(close(st.duration(&b), (5.0 + 190.0) * 1e-3));
    b.prefill_reqs = 1;
    b.prefill_tokens = 100;
    assert!(close(st.duration(&b), (5.0 + 190.0 + 20.0) * 1e-3));
}

#[test]
fn memory_to_blocks_example() {
    let m = model_preset("llama-3-8b").unwrap();
    assert_eq!(m.kv_bytes_per_token(1), 131072.0);
    let g = gpu_preset("h100-80gb").unwrap();
    let n = num_blocks(&m, &g, 1, 16, 0.9, 0.0).unwrap();
    // (72 GiB − 16.06 GB) / 2 MiB ≈ 29,205 blocks (≈ 467k tokens).
    assert!((28_000..30_000).contains(&n), "{n}");
    assert!(model_preset("gpt-9").is_err());
    let small = gpu_preset("l4-24gb").unwrap();
    let m70 = model_preset("llama-3-70b").unwrap();
    assert!(num_blocks(&m70, &small, 1, 16, 0.9, 0.0).is_err());
}

#[test]
fn bad_input_is_named() {
    let e = Workload::new(vec![0.0, f64::NAN], vec![1, 1], vec![1, 1]).unwrap_err();
    assert!(e.to_string().starts_with("arrival"));
    let e = Workload::new(vec![0.0], vec![0], vec![1]).unwrap_err();
    assert!(e.to_string().starts_with("prompt_tokens"));
    let e = Workload::new(vec![0.0], vec![1], vec![0]).unwrap_err();
    assert!(e.to_string().starts_with("output_tokens"));
    let e = Workload::new(vec![1.0, 0.0], vec![1, 1], vec![1, 1]).unwrap_err();
    assert!(e.to_string().contains("non-decreasing"));
    let mut cfg = ReplicaConfig::new(10, linear(-1.0, 0.0));
    assert!(cfg.check().unwrap_err().to_string().contains("c0"));
    cfg.step_time = linear(0.0, 0.0);
    cfg.max_num_batched_tokens = 0;
    assert!(cfg
        .check()
        .unwrap_err()
        .to_string()
        .contains("max_num_batched_tokens"));
}

#[test]
fn a_head_no_empty_replica_can_schedule_is_rejected_not_looped_on() {
    // 10 blocks with a 50 % watermark: a request needing 8 blocks fits the pool but can
    // never be admitted; the run rejects it and serves the others.
    let mut cfg = ReplicaConfig::new(10, linear(0.01, 0.0));
    cfg.block_size = 4;
    cfg.watermark = 0.5;
    let w = Workload::new(vec![0.0, 0.0, 0.5], vec![30, 8, 8], vec![2, 2, 2]).unwrap();
    for fleet in [false, true] {
        let r = if fleet {
            let f = FleetConfig {
                replicas: 2,
                router: Router::RoundRobin,
                staleness: 0.0,
                seed: 1,
            };
            run_fleet(&w, &cfg, &f, &RunOptions::default()).unwrap()
        } else {
            run_engine(&w, &cfg, &RunOptions::default()).unwrap()
        };
        assert_eq!(
            r.records.status,
            vec![STATUS_REJECTED, STATUS_FINISHED, STATUS_FINISHED]
        );
        assert_eq!(r.rejected, 1);
    }
}

#[test]
fn an_empty_workload_is_an_empty_result() {
    let cfg = ReplicaConfig::new(10, linear(0.01, 0.0));
    let w = Workload::new(vec![], vec![], vec![]).unwrap();
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    assert!(r.records.status.is_empty() && r.ttft.is_empty());
}

#[test]
fn huge_pools_and_timelines_are_cheap_or_refused() {
    // A pool of 4 billion blocks allocates only the blocks the run touches.
    let cfg = ReplicaConfig::new(u32::MAX, linear(0.01, 0.0));
    let w = Workload::new(vec![0.0, 1.0], vec![100, 100], vec![2, 2]).unwrap();
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    assert_eq!(r.records.status, vec![STATUS_FINISHED; 2]);
    let opts = RunOptions {
        timeline_interval: Some(1e-9),
        ..RunOptions::default()
    };
    let e = run_engine(&w, &cfg, &opts).unwrap_err();
    assert!(e.to_string().starts_with("timeline_interval is too small"));
    let e = Workload::new(vec![0.0], vec![u32::MAX], vec![1]).unwrap_err();
    assert!(e.to_string().contains("below 2^32"));
}

#[test]
fn distserve_decode_steps_take_a_capped_prefix_and_rotate() {
    // One prefill step for all three (t = 1), then decode steps capped at 30 tokens of
    // Σ(ctx + 1): [0, 1] (t = 2), [2, 0] (t = 3, request 0 done), [1, 2] (t = 4).
    let mut cfg = ReplicaConfig::new(1, linear(1.0, 0.0));
    cfg.set_scheduler(Scheduler::DistServe { decode_tokens: 30 });
    let w = Workload::new(vec![0.0; 3], vec![10; 3], vec![3; 3]).unwrap();
    let opts = RunOptions {
        trace: true,
        ..RunOptions::default()
    };
    let r = run_engine(&w, &cfg, &opts).unwrap();
    assert_eq!(r.records.finish, vec![3.0, 4.0, 4.0]);
    assert_eq!(r.records.first_token, vec![1.0; 3]);
    let tr = r.trace.unwrap();
    assert_eq!(tr.sched_request, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
    assert_eq!(tr.sched_step, vec![0, 0, 0, 1, 1, 2, 2, 3, 3]);
    // No KV model: a one-block pool holds any request; a prompt above the budget is rejected.
    cfg.max_num_batched_tokens = 9;
    let r = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
    assert_eq!(r.rejected, 3);
}

#[test]
fn disaggregation_needs_the_vllm_or_strict_prefill_priority_batch_formation() {
    let mut cfg = ReplicaConfig::new(100, linear(1.0, 0.0));
    let w = Workload::new(vec![0.0, 0.0], vec![10, 20], vec![3, 1]).unwrap();
    // vLLM V1 on both pools: the same schedule here (one prefill step of both).
    let r =
        run_disaggregated(&w, &cfg, &cfg, 1, 1, &RunOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(r.records.finish, vec![3.0, 1.0]);
    cfg.set_scheduler(Scheduler::Vidur);
    let e = run_disaggregated(&w, &cfg, &cfg, 1, 1, &RunOptions::default(), &mut |_, _| {});
    assert!(e
        .unwrap_err()
        .to_string()
        .starts_with("prefill must use the vllm_v1 or strict_prefill_priority batch formation"));
    cfg.set_scheduler(Scheduler::DistServe {
        decode_tokens: 1000,
    });
    let r =
        run_disaggregated(&w, &cfg, &cfg, 1, 1, &RunOptions::default(), &mut |_, _| {}).unwrap();
    // One prefill step of both (t = 1): the second request (one token) finishes there;
    // the first decodes on the decode replica at t = 2 and 3.
    assert_eq!(r.records.finish, vec![3.0, 1.0]);
    assert_eq!(r.records.first_token, vec![1.0, 1.0]);
    assert_eq!(r.replicas[0].steps, 1);
    assert_eq!(r.replicas[1].steps, 2);
}

/// A Vidur table whose every entry encodes its own index, so a lookup is readable.
fn vidur_tables() -> VidurTables {
    let ops: [Vec<f64>; 9] = std::array::from_fn(|k| {
        (0..=64)
            .map(|i| f64::from(i) * 1e-3 + k as f64 * 1e-6)
            .collect()
    });
    let kv_save = (0..=64).map(|i| f64::from(i) * 1e-4).collect();
    let (rows, cols) = (9usize, 5usize);
    let decode = (0..rows * cols).map(|i| 1.0 + i as f64).collect();
    let prefill = (0..2 * 65).map(|i| 100.0 + f64::from(i)).collect();
    VidurTables {
        ops,
        kv_save,
        decode,
        decode_cols: cols,
        prefill,
        prefill_cols: 65,
        num_layers: 2,
        post_attn_norm: true,
        dec_overhead: 0.1,
        pre_overhead: 0.1,
        kv_gran: 4,
    }
}

#[test]
fn vidur_step_time_reads_the_quantised_keys_in_vidur_order() {
    let t = vidur_tables();
    t.check().unwrap();
    let o = &t.ops;
    // Decode of 3 requests with contexts 5, 6, 9: n = 3, r = 8; mean 20/3 → 6 → ceil4 8 → column 2.
    let b = Batch {
        decode_reqs: 3,
        decode_ctx: 20,
        ctx: 20,
        ..Batch::default()
    };
    let dec = t.decode[3 * 5 + 2] * (1.0 + 0.1);
    let attn = o[0][8] + o[1][8] + o[2][8] + t.kv_save[3] + dec + 0.0 + o[6][8];
    let mlp = o[3][8] + o[4][8] + o[5][8] + o[7][8];
    let want = (attn + mlp + o[8][8]) * 2.0 * 1e-3;
    assert_eq!(
        StepTime::Vidur(std::sync::Arc::new(t.clone())).duration(&b),
        want
    );
    // Two prefills of 3 and 4 tokens: n = 7, r = 8, key round(sqrt(25)) = 5, one batch.
    let b = Batch {
        prefill_tokens: 7,
        prefill_tokens_sq: 25.0,
        prefill_reqs: 2,
        ctx: 7,
        ..Batch::default()
    };
    let pre = t.prefill[5] * (1.0 + 0.1);
    let attn = o[0][8] + o[1][8] + o[2][8] + t.kv_save[7] + 0.0 + pre + o[6][8];
    let want = (attn + mlp + o[8][8]) * 2.0 * 1e-3;
    assert_eq!(StepTime::Vidur(std::sync::Arc::new(t)).duration(&b), want);
}

#[test]
fn vidur_tables_are_checked() {
    let mut t = vidur_tables();
    t.decode[7] = f64::NAN; // row 1: readable
    assert!(t.check().unwrap_err().to_string().contains("decode"));
    let mut t = vidur_tables();
    t.decode[2] = f64::NAN; // row 0 (batch size 0) is never read
    t.check().unwrap();
    t.kv_gran = 0;
    assert!(t.check().unwrap_err().to_string().contains("kv_gran"));
}

#[test]
fn vidur_scheduler_never_mixes_pads_the_budget_and_restarts_the_latest_arrival() {
    // Four requests at 0 with prompts 30, 10, 10, 10 and a padded budget of 60: the first
    // prefill step takes 30 and 10 (2·30 = 60; a third would pad to 90). 12 blocks of 4
    // tokens and no watermark: the decodes run out of blocks and requests restart, never
    // the earliest arrival (a victim is the latest arrival not yet in the batch).
    let mut cfg = ReplicaConfig::new(12, linear(0.01, 0.0));
    cfg.set_scheduler(Scheduler::Vidur);
    cfg.block_size = 4;
    cfg.max_num_batched_tokens = 60;
    cfg.prefix_caching = false;
    let w = Workload::new(vec![0.0; 4], vec![30, 10, 10, 10], vec![6, 6, 6, 6]).unwrap();
    let opts = RunOptions {
        trace: true,
        ..RunOptions::default()
    };
    let r = run_engine(&w, &cfg, &opts).unwrap();
    let tr = r.trace.unwrap();
    let steps = tr.step_start.len();
    for s in 0..steps as u32 {
        let toks: Vec<u32> = (0..tr.sched_step.len())
            .filter(|&i| tr.sched_step[i] == s)
            .map(|i| tr.sched_tokens[i])
            .collect();
        let all_decode = toks.iter().all(|&k| k == 1);
        let all_prefill = toks.iter().all(|&k| k > 1);
        assert!(all_decode || all_prefill, "step {s} mixes {toks:?}");
        let wide = *toks.iter().max().unwrap();
        assert!(toks.len() as u32 * wide <= 60);
    }
    let first: Vec<u32> = (0..tr.sched_step.len())
        .filter(|&i| tr.sched_step[i] == 0)
        .map(|i| tr.sched_request[i])
        .collect();
    assert_eq!(first, vec![0, 1]);
    assert!(r.records.status.iter().all(|&s| s == STATUS_FINISHED));
    // 8 + 3 + 3 + 3 = 17 > 12 blocks: something restarted.
    assert!(r.replicas[0].preemptions > 0);
    assert!(r.replicas[0].max_blocks_used <= 12);
    assert_eq!(r.records.preemptions[0], 0);
}

#[test]
fn kv_transfer_time_and_checks() {
    let m = model_preset("llama-3-8b").unwrap();
    let x = KvTransfer {
        bytes_per_token: m.kv_bytes_per_token(1),
        bandwidth: 25e9,
        latency: 1e-3,
    };
    assert_eq!(x.bytes_per_token, 131_072.0);
    assert!((x.time(1000) - (1e-3 + 1000.0 * 131_072.0 / 25e9)).abs() < 1e-15);
    assert!(x.check().is_ok());
    let inf = KvTransfer {
        bandwidth: f64::INFINITY,
        latency: 0.0,
        ..x
    };
    assert!(inf.check().is_ok());
    assert_eq!(inf.time(1_000_000), 0.0);
    for (bad, name) in [
        (
            KvTransfer {
                bandwidth: 0.0,
                ..x
            },
            "transfer.bandwidth",
        ),
        (
            KvTransfer {
                bandwidth: f64::NAN,
                ..x
            },
            "transfer.bandwidth",
        ),
        (KvTransfer { latency: -1.0, ..x }, "transfer.latency"),
        (
            KvTransfer {
                bytes_per_token: f64::INFINITY,
                ..x
            },
            "transfer.bytes_per_token",
        ),
    ] {
        assert!(bad.check().unwrap_err().to_string().starts_with(name));
    }
    // A run with an invalid transfer is refused.
    let mut cfg = ReplicaConfig::new(100, linear(1.0, 0.0));
    cfg.set_scheduler(Scheduler::VllmV1);
    let w = Workload::new(vec![0.0], vec![10], vec![3]).unwrap();
    let pools = Disaggregation {
        prefill_replicas: 1,
        decode_replicas: 1,
        transfer: Some(KvTransfer {
            bandwidth: 0.0,
            ..x
        }),
    };
    let e = run_disaggregated_with(
        &w,
        &cfg,
        &cfg,
        &pools,
        &RunOptions::default(),
        &mut |_, _| {},
    );
    assert!(e.is_err());
    // One request, one step a token, a 0.5 s transfer: tokens at 1, 2.5, 3.5.
    let pools = Disaggregation {
        transfer: Some(KvTransfer {
            bytes_per_token: 0.0,
            bandwidth: 1.0,
            latency: 0.5,
        }),
        ..pools
    };
    let r = run_disaggregated_with(
        &w,
        &cfg,
        &cfg,
        &pools,
        &RunOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.records.first_token, vec![1.0]);
    assert_eq!(r.records.finish, vec![3.5]);
}

fn fleet(replicas: u32, router: Router) -> FleetConfig {
    FleetConfig {
        replicas,
        router,
        staleness: 0.0,
        seed: 7,
    }
}

fn traced() -> RunOptions {
    RunOptions {
        trace: true,
        ..RunOptions::default()
    }
}

fn count(r: &RunResult, status: u8) -> u64 {
    r.records
        .status
        .iter()
        .map(|&s| u64::from(s == status))
        .sum()
}

/// The counters agree with the records, and every request ends in one status.
fn check_admission_counts(r: &RunResult, n: usize) {
    assert_eq!(count(r, STATUS_SHED), r.shed);
    assert_eq!(count(r, STATUS_TIMED_OUT), r.timed_out);
    assert_eq!(count(r, STATUS_REJECTED), r.rejected);
    assert!(r.admission_rejected <= r.rejected);
    let finished: u64 = r.replicas.iter().map(|s| s.finished).sum();
    assert_eq!(count(r, STATUS_FINISHED), finished);
    assert_eq!(
        finished + r.rejected + r.shed + r.timed_out + count(r, STATUS_UNFINISHED),
        n as u64
    );
    for k in 0..n {
        if matches!(r.records.status[k], STATUS_SHED) {
            assert_eq!(r.records.replica[k], -1);
            assert!(r.records.first_scheduled[k].is_nan());
        }
    }
}

#[test]
fn default_admission_is_the_run_without_it() {
    let w = random_workload(3, 500, 60.0, 800, 100);
    let mut cfg = ReplicaConfig::new(200, linear(0.01, 1e-5));
    cfg.max_num_batched_tokens = 512;
    let opts = RunOptions {
        trace: true,
        timeline_interval: Some(0.25),
        ..RunOptions::default()
    };
    for router in [Router::RoundRobin, Router::PowerOfTwo, Router::LeastTokens] {
        let f = fleet(3, router);
        let a = run_fleet(&w, &cfg, &f, &opts).unwrap();
        let b =
            run_fleet_admitted(&w, &cfg, &f, &Admission::default(), &opts, &mut |_, _| {}).unwrap();
        assert_eq!(a.records, b.records);
        assert_eq!(a.trace, b.trace);
        assert_eq!(a.timeline, b.timeline);
        assert_eq!(a.replicas, b.replicas);
        assert_eq!(
            (a.ttft.clone(), a.itl.clone(), a.e2e.clone()),
            (b.ttft.clone(), b.itl.clone(), b.e2e.clone())
        );
        assert_eq!((a.rejected, a.t_end), (b.rejected, b.t_end));
        assert_eq!(
            (b.shed, b.timed_out, b.admission_rejected, b.wasted_tokens),
            (0, 0, 0, 0)
        );
    }
}

#[test]
fn token_bucket_on_prompt_tokens_matches_a_reference() {
    let w = random_workload(9, 2000, 50.0, 1000, 50);
    let cfg = ReplicaConfig::new(100_000, linear(0.01, 1e-5));
    let (rate, burst) = (10_000.0, 4000.0);
    let adm = Admission {
        token_rate: Some(rate),
        token_burst: Some(burst),
        ..Admission::default()
    };
    let r = run_fleet_admitted(
        &w,
        &cfg,
        &fleet(2, Router::Random),
        &adm,
        &traced(),
        &mut |_, _| {},
    )
    .unwrap();
    // The bucket, written out: full at the first arrival, refilled continuously.
    let (mut level, mut last) = (burst, w.arrival[0]);
    let mut want = Vec::new();
    for k in 0..w.len() {
        level = (level + rate * (w.arrival[k] - last)).min(burst);
        last = w.arrival[k];
        let p = f64::from(w.prompt[k]);
        want.push(level < p);
        if level >= p {
            level -= p;
        }
    }
    let got: Vec<bool> = r.records.status.iter().map(|&s| s == STATUS_SHED).collect();
    assert_eq!(got, want);
    assert!(r.shed > 100 && r.shed < 1900, "{}", r.shed);
    check_admission_counts(&r, w.len());
    // A burst no request can exhaust admits everything.
    let all = Admission {
        token_rate: Some(1.0),
        token_burst: Some(1e12),
        ..Admission::default()
    };
    let r = run_fleet_admitted(
        &w,
        &cfg,
        &fleet(2, Router::Random),
        &all,
        &traced(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.shed, 0);
    assert_eq!(count(&r, STATUS_FINISHED), w.len() as u64);
}

#[test]
fn the_waiting_cap_bounds_waiting() {
    // Overloaded, KV ample (no preemption): a replica's waiting never exceeds the cap.
    let w = random_workload(4, 1500, 400.0, 1500, 50);
    let mut cfg = ReplicaConfig::new(1_000_000, linear(0.01, 1e-5));
    cfg.max_num_seqs = 8;
    for cap in [1, 5] {
        let adm = Admission {
            max_waiting: Some(cap),
            ..Admission::default()
        };
        let r = run_fleet_admitted(
            &w,
            &cfg,
            &fleet(2, Router::LeastRequests),
            &adm,
            &traced(),
            &mut |_, _| {},
        )
        .unwrap();
        assert!(r.shed > 0);
        assert_eq!(r.replicas.iter().map(|s| s.preemptions).sum::<u64>(), 0);
        let tr = r.trace.as_ref().unwrap();
        assert!(tr.step_waiting.iter().all(|&x| x <= cap));
        check_admission_counts(&r, w.len());
    }
}

#[test]
fn the_deadline_drops_late_requests_and_counts_their_tokens() {
    // KV-tight and overloaded: preemptions before a first token happen, and the deadline
    // drops both never-scheduled and preempted requests.
    let w = random_workload(6, 1500, 120.0, 1500, 300);
    let mut cfg = ReplicaConfig::new(400, linear(0.01, 1e-5));
    cfg.max_num_batched_tokens = 1024;
    let mut wasted_any = false;
    for max_wait in [0.0, 0.5, 2.0] {
        let adm = Admission {
            max_wait: Some(max_wait),
            ..Admission::default()
        };
        let r = run_fleet_admitted(
            &w,
            &cfg,
            &fleet(2, Router::RoundRobin),
            &adm,
            &traced(),
            &mut |_, _| {},
        )
        .unwrap();
        assert!(r.timed_out > 0, "{max_wait}");
        check_admission_counts(&r, w.len());
        for k in 0..w.len() {
            let q = r.records.first_scheduled[k] - w.arrival[k];
            // Exact: the deadline is applied at the start of the step that schedules.
            assert!(q.is_nan() || q <= max_wait, "{k}: {q}");
            if r.records.status[k] == STATUS_TIMED_OUT {
                assert!(r.records.first_token[k].is_nan());
            }
        }
        let tr = r.trace.as_ref().unwrap();
        let wasted: u64 = tr
            .sched_request
            .iter()
            .zip(&tr.sched_tokens)
            .filter(|(&q, _)| r.records.status[q as usize] == STATUS_TIMED_OUT)
            .map(|(_, &n)| u64::from(n))
            .sum();
        assert_eq!(r.wasted_tokens, wasted);
        wasted_any |= wasted > 0;
    }
    assert!(
        wasted_any,
        "no request was preempted before its first token, then dropped"
    );
}

#[test]
fn the_predicted_ttft_bound_cuts_the_tail() {
    let w = random_workload(8, 3000, 200.0, 2000, 100);
    let mut cfg = ReplicaConfig::new(1_000_000, linear(0.01, 1e-5));
    cfg.max_num_batched_tokens = 2048;
    let f = fleet(2, Router::LeastTokens);
    let none = run_fleet(&w, &cfg, &f, &RunOptions::default()).unwrap();
    let adm = Admission {
        max_predicted_ttft: Some(1.0),
        ..Admission::default()
    };
    let r = run_fleet_admitted(&w, &cfg, &f, &adm, &RunOptions::default(), &mut |_, _| {}).unwrap();
    check_admission_counts(&r, w.len());
    assert!(r.admission_rejected > 0);
    assert_eq!(r.admission_rejected, r.rejected);
    let p99 = |x: &RunResult| x.ttft.quantile(0.99).unwrap().unwrap();
    assert!(p99(&none) > 5.0, "{}", p99(&none));
    assert!(p99(&r) < 2.0, "{}", p99(&r));
}

#[test]
fn admission_checks_name_the_field() {
    let bad = [
        (
            Admission {
                token_rate: Some(1.0),
                ..Admission::default()
            },
            "admission.token_burst",
        ),
        (
            Admission {
                token_rate: Some(0.0),
                token_burst: Some(10.0),
                ..Admission::default()
            },
            "admission.token_rate",
        ),
        (
            Admission {
                token_rate: Some(1.0),
                token_burst: Some(0.5),
                ..Admission::default()
            },
            "admission.token_burst",
        ),
        (
            Admission {
                max_waiting: Some(0),
                ..Admission::default()
            },
            "admission.max_waiting",
        ),
        (
            Admission {
                max_wait: Some(f64::NAN),
                ..Admission::default()
            },
            "admission.max_wait",
        ),
        (
            Admission {
                max_predicted_ttft: Some(0.0),
                ..Admission::default()
            },
            "admission.max_predicted_ttft",
        ),
    ];
    for (a, name) in bad {
        let e = a.check().unwrap_err();
        assert!(
            matches!(e, crate::error::QcoreError::InvalidArgument { .. }),
            "{e}"
        );
        assert!(e.to_string().contains(name), "{e}");
    }
    assert!(Admission {
        max_wait: Some(0.0),
        ..Admission::default()
    }
    .check()
    .is_ok());
}

/// The ceilings with a constant step time are the closed forms of §9.
#[test]
fn ceilings_are_the_closed_forms_with_a_constant_step() {
    let mut cfg = ReplicaConfig::new(
        1000,
        StepTime::Linear {
            c0: 0.05,
            c_tok: 0.0,
            c_seq: 0.0,
            c_ctx: 0.0,
        },
    );
    cfg.max_num_batched_tokens = 2048;
    cfg.max_num_seqs = 64;
    let (p, o) = (vec![300u32, 500, 700], vec![40u32, 60, 80]);
    let c = ceilings(&p, &o, &cfg).unwrap();
    let (ep, eo) = (500.0, 60.0);
    let g = (300.0 * 40.0 + 800.0 + 500.0 * 60.0 + 1800.0 + 700.0 * 80.0 + 3200.0) / 3.0;
    assert!((c.token_budget - 2048.0 / (0.05 * (ep + eo - 1.0))).abs() < 1e-9);
    assert!((c.kv - f64::from(1000 * cfg.block_size) / (0.05 * g)).abs() < 1e-9);
    assert!((c.max_num_seqs - 64.0 / (0.05 * eo)).abs() < 1e-9);
    assert_eq!(c.steps, [0.05; 3]);
    assert_eq!(c.binding().1, c.token_budget.min(c.kv).min(c.max_num_seqs));
    assert!(ceilings(&[], &[], &cfg).is_err());
    assert!(ceilings(&[1], &[0], &cfg).is_err());
}

fn same_records(a: &Records, b: &Records) {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(a.replica, b.replica);
    assert_eq!(a.status, b.status);
    assert_eq!(bits(&a.first_scheduled), bits(&b.first_scheduled));
    assert_eq!(bits(&a.first_token), bits(&b.first_token));
    assert_eq!(bits(&a.finish), bits(&b.finish));
    assert_eq!(a.output_tokens, b.output_tokens);
    assert_eq!(a.preemptions, b.preemptions);
    assert_eq!(a.cached_tokens, b.cached_tokens);
}

#[test]
fn lazy_decode_steps_equal_the_eager_ones() {
    // The unmixed batch formations with counted (watermark) or no blocks run a decode-only
    // step over every running request lazily. A traced run lists every scheduled request,
    // so it runs every step eagerly: the two agree on every request, counter and sketch.
    let st = StepTime::Linear {
        c0: 0.01,
        c_tok: 2e-5,
        c_seq: 1e-4,
        c_ctx: 1e-7,
    };
    let mut preemptions = 0;
    for seed in 0..16u64 {
        let mut w = random_workload(seed, 150, 40.0, 600, 200);
        let burst = (seed as usize * 10).min(w.arrival.len());
        let t0 = w.arrival[0];
        w.arrival[..burst].fill(t0);
        for (sched, memory) in [
            (Scheduler::Vidur, MemoryAdmission::Watermark),
            (Scheduler::Vidur, MemoryAdmission::Unlimited),
            (
                Scheduler::DistServe {
                    decode_tokens: 2_000,
                },
                MemoryAdmission::Unlimited,
            ),
            (
                Scheduler::DistServe {
                    decode_tokens: 50_000,
                },
                MemoryAdmission::Watermark,
            ),
        ] {
            let mut cfg = ReplicaConfig::new(200 + 60 * seed as u32, st.clone());
            cfg.set_scheduler(sched);
            cfg.memory_admission = memory;
            if memory == MemoryAdmission::Watermark {
                cfg.preemption = Preemption::RecomputeLatestArrival;
            }
            cfg.block_size = 8;
            cfg.max_num_batched_tokens = 2048;
            cfg.max_num_seqs = 64;
            let lazy = run_engine(&w, &cfg, &RunOptions::default()).unwrap();
            let eager = run_engine(&w, &cfg, &traced()).unwrap();
            same_records(&lazy.records, &eager.records);
            assert_eq!(lazy.replicas, eager.replicas);
            assert_eq!(lazy.t_end.to_bits(), eager.t_end.to_bits());
            for (a, b) in [
                (&lazy.itl, &eager.itl),
                (&lazy.ttft, &eager.ttft),
                (&lazy.tpot, &eager.tpot),
                (&lazy.e2e, &eager.e2e),
            ] {
                assert_eq!(a.count(), b.count());
                assert_eq!(a.sum().to_bits(), b.sum().to_bits());
                assert_eq!(a.positive_buckets(), b.positive_buckets());
                assert_eq!((a.min(), a.max()), (b.min(), b.max()));
            }
            preemptions += lazy.replicas[0].preemptions;
        }
    }
    // The small pools preempt: lazy sets are flushed and rebuilt around preemptions.
    assert!(preemptions > 0);
}
