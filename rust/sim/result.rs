//! What one simulation run produces.

use crate::error::{QcoreError, Result};
use crate::sketch::QuantileSketch;

/// Buffers latencies and hands them to the [`QuantileSketch`] in batches, so that the
/// per-request cost in the hot loops is a store.
#[derive(Clone, Debug)]
pub struct Recorder {
    buf: Vec<f64>,
    sketch: QuantileSketch,
    error: Option<QcoreError>,
}

const BATCH: usize = 4096;

impl Recorder {
    /// A recorder whose sketch has the given relative accuracy (in (0, 1)).
    pub fn new(relative_accuracy: f64) -> Result<Self> {
        Ok(Recorder {
            buf: Vec::with_capacity(BATCH),
            sketch: QuantileSketch::new(relative_accuracy)?,
            error: None,
        })
    }

    #[inline(always)]
    pub fn push(&mut self, v: f64) {
        self.buf.push(v);
        if self.buf.len() == BATCH {
            self.flush();
        }
    }

    /// Add a block of values straight to the sketch.
    pub fn add_block(&mut self, xs: &[f64]) {
        if !self.buf.is_empty() {
            self.flush();
        }
        if let Err(e) = self.sketch.add_slice(xs) {
            self.error.get_or_insert(e);
        }
    }

    #[cold]
    fn flush(&mut self) {
        if let Err(e) = self.sketch.add_slice(&self.buf) {
            self.error.get_or_insert(e);
        }
        self.buf.clear();
    }

    /// Flush the buffer; reports a value the sketch refused.
    pub fn finish(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.flush();
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The sketch of everything recorded (call [`Recorder::finish`] first).
    pub fn sketch(&self) -> &QuantileSketch {
        &self.sketch
    }
}

/// Per-request outcome codes in [`Records::status`].
pub mod status {
    pub const COMPLETED: u8 = 0;
    pub const BLOCKED: u8 = 1;
    pub const TIMED_OUT: u8 = 2;
    pub const SHED: u8 = 3;
    pub const UNFINISHED: u8 = 4;
}

/// Optional per-request records (measured requests only), in arrival order. Times are
/// absolute (the arrival process's origin added back); `start` is NaN for requests that
/// never started service, `end` is NaN for unfinished ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Records {
    pub id: Vec<u64>,
    pub arrival: Vec<f64>,
    pub start: Vec<f64>,
    pub end: Vec<f64>,
    pub status: Vec<u8>,
}

impl Records {
    pub fn with_capacity(n: usize) -> Self {
        Records {
            id: Vec::with_capacity(n),
            arrival: Vec::with_capacity(n),
            start: Vec::with_capacity(n),
            end: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
        }
    }

    /// Append a request; returns its row.
    pub fn push(&mut self, id: u64, arrival: f64) -> usize {
        self.id.push(id);
        self.arrival.push(arrival);
        self.start.push(f64::NAN);
        self.end.push(f64::NAN);
        self.status.push(status::UNFINISHED);
        self.id.len() - 1
    }
}

/// The outcome of one replication. Statistics cover the measured requests (those after
/// the warm-up). Time averages, throughput and utilization cover the arrival window, from
/// the first measured arrival (`t0`) to the last arrival (`t_last`), so that the drain
/// after the last arrival (which can be long with heavy-tailed service) does not dilute
/// them; `t_end` is the time the system last emptied (or the run stopped), and the
/// `area_*`, `busy_time`, `capacity_time` and `server_time` integrals cover `[t0, t_end]`.
#[derive(Clone, Debug)]
pub struct RunStats {
    pub arrived: u64,
    pub completed: u64,
    pub blocked: u64,
    pub timed_out: u64,
    pub shed: u64,
    /// Measured requests still in the system when the run stopped.
    pub unfinished: u64,
    /// Measured requests that started service, and how many of them waited (> 0).
    pub served: u64,
    pub waited: u64,
    pub sum_wait: f64,
    pub sum_response: f64,
    /// Window start and end (simulation clock, origin 0).
    pub t0: f64,
    pub t_end: f64,
    /// ∫ number in system dt, ∫ number waiting dt, ∫ busy servers dt, ∫ ready servers dt,
    /// ∫ provisioned servers (starting, ready or draining) dt over the window.
    pub area_system: f64,
    pub area_queue: f64,
    pub busy_time: f64,
    pub capacity_time: f64,
    pub server_time: f64,
    /// Time of the last arrival (simulation clock): the arrival window is `[t0, t_last]`.
    pub t_last: f64,
    /// Departures (warm-up requests included) in `(t0, t_last]`.
    pub win_completed: u64,
    /// The integrals of `area_system`, `area_queue`, `busy_time` and `capacity_time`
    /// over the arrival window.
    pub win_area_system: f64,
    pub win_area_queue: f64,
    pub win_busy_time: f64,
    pub win_capacity_time: f64,
    pub response: Recorder,
    pub wait: Recorder,
    pub records: Option<Records>,
    /// True when the fast (customer recursion) path produced this run.
    pub fast_path: bool,
}

impl RunStats {
    pub fn new(relative_accuracy: f64, records: bool) -> Result<Self> {
        Ok(RunStats {
            arrived: 0,
            completed: 0,
            blocked: 0,
            timed_out: 0,
            shed: 0,
            unfinished: 0,
            served: 0,
            waited: 0,
            sum_wait: 0.0,
            sum_response: 0.0,
            t0: 0.0,
            t_end: 0.0,
            area_system: 0.0,
            area_queue: 0.0,
            busy_time: 0.0,
            capacity_time: 0.0,
            server_time: 0.0,
            t_last: 0.0,
            win_completed: 0,
            win_area_system: 0.0,
            win_area_queue: 0.0,
            win_busy_time: 0.0,
            win_capacity_time: 0.0,
            response: Recorder::new(relative_accuracy)?,
            wait: Recorder::new(relative_accuracy)?,
            records: records.then(Records::default),
            fast_path: false,
        })
    }

    /// Flush the latency recorders.
    pub fn finish(&mut self) -> Result<()> {
        self.response.finish()?;
        self.wait.finish()
    }

    /// Length of `[t0, t_end]` (arrival window and drain).
    pub fn duration(&self) -> f64 {
        self.t_end - self.t0
    }

    /// Length of the arrival window `[t0, t_last]`.
    pub fn window(&self) -> f64 {
        self.t_last - self.t0
    }

    /// Whether the arrival window's sums keep six significant digits where they are the
    /// whole run's minus what follows the window (time in system, in queue, busy time): a
    /// window sum below 1e-6 of its whole-run sum has lost them to the subtraction.
    pub fn window_resolved(&self) -> bool {
        [
            (self.win_area_system, self.area_system),
            (self.win_area_queue, self.area_queue),
            (self.win_busy_time, self.busy_time),
        ]
        .iter()
        .all(|&(w, all)| all.is_nan() || all <= 0.0 || w >= 1e-6 * all)
    }

    /// `x / window`, or `full / duration` when the arrival window is empty (a single
    /// measured arrival).
    fn per_window(&self, x: f64, full: f64) -> f64 {
        let w = self.window();
        if w > 0.0 {
            x / w
        } else {
            let d = self.duration();
            if d > 0.0 {
                full / d
            } else {
                f64::NAN
            }
        }
    }

    /// Time-average number in system over the arrival window.
    pub fn mean_in_system(&self) -> f64 {
        self.per_window(self.win_area_system, self.area_system)
    }
    /// Time-average number waiting over the arrival window.
    pub fn mean_in_queue(&self) -> f64 {
        self.per_window(self.win_area_queue, self.area_queue)
    }
    /// Departures per unit time over the arrival window.
    pub fn throughput(&self) -> f64 {
        self.per_window(self.win_completed as f64, self.completed as f64)
    }
    /// Busy server time over ready server time, over the arrival window.
    pub fn utilization(&self) -> f64 {
        let (b, c) = if self.window() > 0.0 {
            (self.win_busy_time, self.win_capacity_time)
        } else {
            (self.busy_time, self.capacity_time)
        };
        if c > 0.0 {
            b / c
        } else {
            f64::NAN
        }
    }
    /// Mean response of completed requests.
    pub fn mean_response(&self) -> f64 {
        if self.completed > 0 {
            self.sum_response / self.completed as f64
        } else {
            f64::NAN
        }
    }
    /// Mean wait of requests that started service.
    pub fn mean_wait(&self) -> f64 {
        if self.served > 0 {
            self.sum_wait / self.served as f64
        } else {
            f64::NAN
        }
    }
    /// Fraction of served requests that waited.
    pub fn p_wait(&self) -> f64 {
        if self.served > 0 {
            self.waited as f64 / self.served as f64
        } else {
            f64::NAN
        }
    }
}
