//! The thread pool every parallel kernel runs in, and the size threshold below which kernels stay serial.
//!
//! Layer: kernels. The pool size comes from `set_num_threads`, else `FERRITE_NUM_THREADS`, else the
//! number of cores. We keep our own rayon pool (not rayon's global one) so the count can change at run time.
//! Work too short for the pool (a few µs) goes to a team of spinning helpers instead ([`split`], `team`).

use crate::team::{PoolBusy, Team};
use crate::Float;
use rayon::prelude::*;
use rayon::ThreadPool;
use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock, RwLock};

/// Elementwise work below this many elements runs on the calling thread: spawning costs more than it saves.
pub const PAR_MIN_ELEMS: usize = 1 << 15;

struct PoolState {
    threads: usize,
    pool: Option<Arc<ThreadPool>>,
    team: Option<Arc<Team>>,
}

fn state() -> &'static RwLock<PoolState> {
    static STATE: OnceLock<RwLock<PoolState>> = OnceLock::new();
    STATE.get_or_init(|| {
        let threads = std::env::var("FERRITE_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .map(|n| n.min(MAX_THREADS))
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        RwLock::new(PoolState {
            threads,
            pool: None,
            team: None,
        })
    })
}

/// The number of threads kernels may use.
pub fn num_threads() -> usize {
    state().read().map(|s| s.threads).unwrap_or(1)
}

/// The most threads kernels will use: more only thrash (each pool thread and spinning helper is an
/// OS thread), and 100,000 fail to start. Callers that take a count from users refuse larger ones.
pub const MAX_THREADS: usize = 1024;

/// Sets the number of threads kernels may use, clamped to 1..=[`MAX_THREADS`]. Takes effect for
/// the next kernel call.
pub fn set_num_threads(n: usize) {
    if let Ok(mut s) = state().write() {
        let n = n.clamp(1, MAX_THREADS);
        if s.threads != n {
            s.threads = n;
            s.pool = None;
            s.team = None;
        }
    }
}

fn pool() -> Option<Arc<ThreadPool>> {
    {
        let s = state().read().ok()?;
        if s.threads <= 1 {
            return None;
        }
        if let Some(p) = &s.pool {
            return Some(p.clone());
        }
    }
    let mut s = state().write().ok()?;
    if s.pool.is_none() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(s.threads)
            .thread_name(|i| format!("ferrite-{i}"))
            .build()
            .ok()?;
        s.pool = Some(Arc::new(pool));
    }
    s.pool.clone()
}

/// Runs `f` inside ferrite's pool when more than one thread is allowed, else directly.
/// Returns the number of threads `f` may use.
pub fn install<R: Send>(f: impl FnOnce(usize) -> R + Send) -> R {
    match pool() {
        Some(p) if rayon::current_thread_index().is_none() => {
            let n = p.current_num_threads();
            let _busy = PoolBusy::enter();
            p.install(|| f(n))
        }
        // Already inside a pool (nested parallelism) or single-threaded.
        Some(_) => f(rayon::current_num_threads()),
        None => f(1),
    }
}

fn team() -> Option<Arc<Team>> {
    {
        let s = state().read().ok()?;
        if s.threads <= 1 {
            return None;
        }
        if let Some(t) = &s.team {
            return Some(t.clone());
        }
    }
    let mut s = state().write().ok()?;
    let helpers = s.threads - 1;
    Some(s.team.get_or_insert_with(|| Arc::new(Team::new(helpers))).clone())
}

/// Runs `f(i)` for every `i < parts`, for work too short to pay the pool's hand-off (10–20 µs):
/// on the calling thread and a team of spinning helpers when more than one thread is allowed, else
/// (single-threaded, inside the pool already, or another split running) on the calling thread alone.
/// At most 65 535 parts are spread; more run serially.
pub fn split(parts: usize, f: impl Fn(usize) + Sync) {
    match team() {
        Some(t) if rayon::current_thread_index().is_none() => t.run(parts, &f),
        _ => (0..parts).for_each(f),
    }
}

/// True when a kernel over `elems` elements should split its work across threads.
#[inline]
pub fn should_parallelize(elems: usize) -> bool {
    elems >= PAR_MIN_ELEMS && num_threads() > 1
}

/// Zeroes a piece of a fresh buffer's spare capacity and hands it back as initialized elements.
pub fn zero_init<T: Float>(piece: &mut [MaybeUninit<T>]) -> &mut [T] {
    for v in piece.iter_mut() {
        *v = MaybeUninit::new(T::ZERO);
    }
    // SAFETY: every element was written just above, and `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(piece as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// A fresh `len`-element buffer filled piece by piece: each `chunk`-element piece (the last may be
/// shorter) is zeroed and then handed to `f(state, index, piece)`, in parallel when `parallel`
/// (`state` comes from `init`, once per task split, as rayon's `for_each_init`).
///
/// Why not `vec![0; len]` then a parallel loop: for large outputs that zero-fill is one serial
/// memset on the calling thread while the pool waits (8% of a Fashion-MNIST CNN epoch); here each
/// piece is zeroed by the thread that writes it next, while its cache lines are already there.
pub fn zeroed_chunks_with<T: Float, S>(
    len: usize,
    chunk: usize,
    parallel: bool,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    let chunk = chunk.max(1);
    let buf = &mut out.spare_capacity_mut()[..len];
    if parallel {
        install(|_| {
            buf.par_chunks_mut(chunk)
                .enumerate()
                .for_each_init(&init, |s, (i, piece)| f(s, i, zero_init(piece)))
        });
    } else {
        let mut s = init();
        for (i, piece) in buf.chunks_mut(chunk).enumerate() {
            f(&mut s, i, zero_init(piece));
        }
    }
    // SAFETY: the pieces cover all `len` elements and `zero_init` wrote each one.
    unsafe { out.set_len(len) };
    out
}

/// [`zeroed_chunks_with`] without per-task state.
pub fn zeroed_chunks<T: Float>(
    len: usize,
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) -> Vec<T> {
    zeroed_chunks_with(len, chunk, parallel, || (), |_, i, piece| f(i, piece))
}
