//! A team of spinning helper threads for parallel work too short for the rayon pool.
//!
//! Layer: kernels (used through `threads::split`). Handing work to the rayon pool costs 10–20 µs
//! on the 2-vCPU VMs here: its idle workers sleep on a futex, and waking one is a cross-CPU
//! interrupt through the hypervisor. That is as long as a whole 64³ product on one core, so such
//! products stayed serial. OpenMP runtimes (PyTorch's) avoid the cost by letting idle workers spin
//! for a while after each parallel region (Intel's `KMP_BLOCKTIME`: 200 ms), so back-to-back small
//! calls find them awake. The team does the same on a short leash:
//! - a helper spins for [`SPIN`] after its last part, then parks; it parks at once while the rayon
//!   pool runs (`PoolBusy`), so it never takes a core from the pool's workers;
//! - parts are claimed from one shared counter, the caller included, and the caller never waits
//!   for a helper to wake: a late helper takes fewer parts or none, so a split is never much
//!   slower than running the parts serially;
//! - one caller at a time: a second caller (another user thread, or a part that splits again)
//!   finds the team busy and runs its parts itself.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it parks. Long enough to span the gaps between the small
/// products of a training step, short enough that an idle process stops burning a core at once.
const SPIN: Duration = Duration::from_micros(200);
/// The most parts one split may have (the claim counter has 16 bits).
pub const MAX_PARTS: usize = 0xffff;

/// Rayon regions running now (see [`PoolBusy`]).
static POOL_BUSY: AtomicUsize = AtomicUsize::new(0);

/// Held while the rayon pool runs a region: spinning helpers park instead of competing with it.
pub struct PoolBusy(());

impl PoolBusy {
    pub fn enter() -> PoolBusy {
        POOL_BUSY.fetch_add(1, Relaxed);
        PoolBusy(())
    }
}

impl Drop for PoolBusy {
    fn drop(&mut self) {
        POOL_BUSY.fetch_sub(1, Relaxed);
    }
}

/// The posted job: a closure on the caller's stack, kept alive until every claimed part is done.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
}

/// What the caller and the helpers share.
struct Shared {
    /// `epoch << 32 | parts << 16 | claimed`: one word, so a claim is a single compare-exchange
    /// that fails if the job it read has since been replaced.
    state: AtomicU64,
    /// Parts finished (run or panicked) of the current job.
    done: AtomicUsize,
    job: AtomicPtr<Job<'static>>,
    /// The first panic of the current job, re-raised on the caller's thread.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    stop: AtomicBool,
}

impl Shared {
    /// Claims and runs parts of the posted job until none is left; true when it ran any.
    fn work(&self) -> bool {
        let mut ran = false;
        let mut s = self.state.load(Acquire);
        loop {
            let (parts, claimed) = ((s >> 16) & 0xffff, s & 0xffff);
            if claimed >= parts {
                return ran;
            }
            match self.state.compare_exchange_weak(s, s + 1, AcqRel, Acquire) {
                Ok(_) => {
                    // SAFETY: the job was stored before the state word this claim succeeded on,
                    // and its caller does not return (nor post another) until `done` counts this part.
                    let job = unsafe { &*self.job.load(Acquire) };
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| (job.f)(claimed as usize))) {
                        if let Ok(mut slot) = self.panic.lock() {
                            slot.get_or_insert(p);
                        }
                    }
                    self.done.fetch_add(1, Release);
                    ran = true;
                    s = self.state.load(Acquire);
                }
                Err(now) => s = now,
            }
        }
    }
}

/// The helpers of one pool size, and the flag that admits one caller at a time.
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<Thread>,
    busy: AtomicBool,
}

impl Team {
    /// A team of up to `helpers` spinning threads (fewer if the OS refuses to start some).
    pub fn new(helpers: usize) -> Team {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            panic: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let helpers = (0..helpers)
            .filter_map(|i| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name(format!("ferrite-team-{i}"))
                    .spawn(move || helper(&shared))
                    .ok()
                    .map(|h| h.thread().clone())
            })
            .collect();
        Team {
            shared,
            helpers,
            busy: AtomicBool::new(false),
        }
    }

    /// Runs `f(i)` for every `i < parts`, spread over the caller and the helpers; returns when all
    /// are done. A panic in any part is re-raised here after the others have finished.
    pub fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        if parts <= 1
            || parts > MAX_PARTS
            || self.helpers.is_empty()
            || self.busy.compare_exchange(false, true, Acquire, Relaxed).is_err()
        {
            (0..parts).for_each(f);
            return;
        }
        let shared = &*self.shared;
        let job = Job { f };
        shared.job.store((&job as *const Job<'_>).cast_mut().cast(), Relaxed);
        shared.done.store(0, Relaxed);
        let epoch = ((shared.state.load(Relaxed) >> 32) + 1) & 0xffff_ffff;
        shared.state.store(epoch << 32 | (parts as u64) << 16, Release);
        for h in &self.helpers {
            // Only a parked helper costs a system call here; a spinning one is just flagged.
            h.unpark();
        }
        shared.work();
        let mut waits = 0u32;
        while shared.done.load(Acquire) < parts {
            if waits < 1 << 14 {
                waits += 1;
                std::hint::spin_loop();
            } else {
                // A helper holding a part was descheduled: let it have this core.
                thread::yield_now();
            }
        }
        let panic = shared.panic.lock().ok().and_then(|mut p| p.take());
        self.busy.store(false, Release);
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Release);
        for h in &self.helpers {
            h.unpark();
        }
    }
}

/// A helper's life: run parts while there are any, spin for [`SPIN`] after the last, then park
/// until the next job (or at once while the rayon pool is busy); leave when the team is dropped.
fn helper(shared: &Shared) {
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    while !shared.stop.load(Acquire) {
        if shared.work() {
            idle_since = Instant::now();
            continue;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && (POOL_BUSY.load(Relaxed) > 0 || idle_since.elapsed() >= SPIN) {
            thread::park();
            idle_since = Instant::now();
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_part_runs_once_whatever_the_helpers_do() {
        let team = Team::new(3);
        for parts in [0, 1, 2, 5, 64, 1000] {
            let hits: Vec<AtomicU32> = (0..parts).map(|_| AtomicU32::new(0)).collect();
            for round in 0..50 {
                team.run(parts, &|i| {
                    hits[i].fetch_add(1, Relaxed);
                });
                // Let the helpers park now and then, so jobs also start with sleeping helpers.
                if round % 10 == 9 {
                    thread::sleep(SPIN * 2);
                }
            }
            assert!(hits.iter().all(|h| h.load(Relaxed) == 50), "{parts} parts");
        }
    }

    #[test]
    fn a_nested_split_runs_on_the_calling_thread() {
        let team = Team::new(1);
        let total = AtomicU32::new(0);
        team.run(4, &|_| {
            team.run(3, &|_| {
                total.fetch_add(1, Relaxed);
            })
        });
        assert_eq!(total.load(Relaxed), 12);
    }

    #[test]
    fn a_panicking_part_reaches_the_caller_after_the_others_finish() {
        let team = Team::new(1);
        let finished = AtomicU32::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            team.run(8, &|i| {
                if i == 3 {
                    panic!("part three");
                }
                finished.fetch_add(1, Relaxed);
            })
        }));
        let msg = caught
            .err()
            .and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        assert_eq!(msg.as_deref(), Some("part three"));
        assert_eq!(finished.load(Relaxed), 7);
        // The team is usable again.
        let n = AtomicU32::new(0);
        team.run(5, &|_| {
            n.fetch_add(1, Relaxed);
        });
        assert_eq!(n.load(Relaxed), 5);
    }
}
