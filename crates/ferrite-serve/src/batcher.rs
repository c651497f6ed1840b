//! Triton's dynamic batcher: concurrent requests for one model wait in a bounded queue, and a
//! worker thread that owns the model takes them as one batch — as many as arrive until the batch
//! holds `max_batch` rows or `max_wait` has passed since the first one arrived — runs one forward
//! pass, and hands each request its rows back.
//!
//! Why a thread and not a task: a forward pass is seconds of CPU on ferrite's own thread pool;
//! on the async runtime it would stall every connection. The handler awaits a oneshot reply.
//!
//! A request whose client has gone (timed out, disconnected) is dropped before the pass. When a
//! batch fails, each request is rerun alone, so one bad request cannot fail its neighbours; a
//! panic in the model becomes a 500 for that batch and the worker lives on.
//!
//! Layer: serving.

use crate::error::{ApiError, ApiResult};
use crate::metrics::{Metrics, BATCH_BUCKETS};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How a model's requests are batched and queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Rows per forward pass at most (1 turns batching off).
    pub max_batch: usize,
    /// How long the first request of a batch waits for company.
    pub max_wait: Duration,
    /// Requests waiting at most; one more is refused with 503 and `Retry-After`.
    pub queue_bound: usize,
}

impl Default for BatchPolicy {
    /// Triton's defaults: no waiting (a batch is whatever queued while the model was busy, so a
    /// lone request runs at once and a busy model batches by itself), batches of up to 32 rows,
    /// 256 queued requests.
    fn default() -> Self {
        BatchPolicy {
            max_batch: 32,
            max_wait: Duration::ZERO,
            queue_bound: 256,
        }
    }
}

struct Job<I, O> {
    input: I,
    rows: usize,
    arrived: Instant,
    reply: oneshot::Sender<ApiResult<O>>,
}

/// The sending side of a model's queue; cloned into every handler.
pub struct Batcher<I, O> {
    model: String,
    tx: SyncSender<Job<I, O>>,
    depth: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher {
            model: self.model.clone(),
            tx: self.tx.clone(),
            depth: self.depth.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The model side: runs a batch of inputs, one output per input, in order.
pub type RunBatch<I, O> = Box<dyn FnMut(&[I]) -> ferrite_core::Result<Vec<O>>>;

/// Text of a caught panic's payload.
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Starts a model's worker thread: `load` builds the model there (models need not be `Send`),
/// then `serve` runs with it until its queue closes. Returns once loading has finished, with its
/// error, so a bad model fails start-up. The batcher and the generation scheduler both start so.
///
/// # Errors
/// The model's load error, or a thread that could not start or panicked while loading.
pub(crate) fn spawn_worker<M>(
    model: &str,
    load: impl FnOnce() -> ferrite_core::Result<M> + Send + 'static,
    serve: impl FnOnce(M) + Send + 'static,
) -> ferrite_core::Result<()> {
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("model-{model}"))
        .spawn(move || match load() {
            Ok(m) => {
                let _ = ready_tx.send(Ok(()));
                serve(m);
            }
            Err(e) => drop(ready_tx.send(Err(e))),
        })
        .map_err(|e| ferrite_core::Error::Invalid {
            op: "serve",
            detail: format!("cannot start a worker thread for model '{model}': {e}"),
        })?;
    match ready_rx.recv() {
        Ok(result) => result,
        Err(_) => Err(ferrite_core::Error::Invalid {
            op: "serve",
            detail: format!("loading model '{model}' panicked"),
        }),
    }
}

/// A model that panicked on a request: logged, and a 500 for the requests it was serving.
pub(crate) fn model_panicked(model: &str, p: &(dyn std::any::Any + Send)) -> ApiError {
    let text = panic_text(p);
    eprintln!(
        "{}",
        serde_json::json!({"level": "error", "model": model, "msg": "model panicked", "panic": text})
    );
    ApiError::internal(format!(
        "model '{model}' failed on this request (internal error: {text})"
    ))
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the worker thread: `load` builds the model there (models need not be `Send`) and
    /// returns its batch function; its error is returned here, so a bad model fails start-up.
    ///
    /// # Errors
    /// The model's load error.
    pub fn spawn(
        model: &str,
        policy: BatchPolicy,
        metrics: Arc<Metrics>,
        load: impl FnOnce() -> ferrite_core::Result<RunBatch<I, O>> + Send + 'static,
    ) -> ferrite_core::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job<I, O>>(policy.queue_bound.max(1));
        let depth = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            name: model.to_string(),
            policy,
            depth: depth.clone(),
            metrics: metrics.clone(),
        };
        spawn_worker(model, load, move |mut run| {
            while let Ok(first) = rx.recv() {
                let jobs = worker.gather(first, &rx);
                worker.run(jobs, &mut run);
            }
        })?;
        Ok(Batcher {
            model: model.to_string(),
            tx,
            depth,
            metrics,
        })
    }

    /// Queues `input` (`rows` rows of a batch) and waits for its output.
    ///
    /// # Errors
    /// 503 when the queue is full; the model's error for this input.
    pub async fn submit(&self, input: I, rows: usize) -> ApiResult<O> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            input,
            rows,
            arrived: Instant::now(),
            reply,
        };
        let depth = self.depth.fetch_add(1, Ordering::SeqCst) + 1;
        self.publish_depth(depth);
        if let Err(e) = self.tx.try_send(job) {
            let depth = self.depth.fetch_sub(1, Ordering::SeqCst) - 1;
            self.publish_depth(depth);
            return Err(match e {
                TrySendError::Full(_) => {
                    ApiError::unavailable(format!("model '{}' has a full queue; retry shortly", self.model), 1)
                }
                TrySendError::Disconnected(_) => ApiError::internal(format!("model '{}' has stopped", self.model)),
            });
        }
        answer
            .await
            .map_err(|_| ApiError::internal(format!("model '{}' dropped the request", self.model)))?
    }

    fn publish_depth(&self, depth: usize) {
        self.metrics.set(
            "ferrite_queue_depth",
            "Requests waiting in a model's queue.",
            &[("model", &self.model)],
            depth as f64,
        );
    }
}

struct Worker {
    name: String,
    policy: BatchPolicy,
    depth: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl Worker {
    /// `first` and whatever joins it before the batch is full or the wait is over (the last
    /// one may overfill it: [`run`](Self::run) splits by `max_batch`).
    fn gather<I, O>(&self, first: Job<I, O>, rx: &mpsc::Receiver<Job<I, O>>) -> Vec<Job<I, O>> {
        let deadline = first.arrived + self.policy.max_wait;
        let mut rows = first.rows;
        let mut jobs = vec![first];
        while rows < self.policy.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            // Requests already queued join even when the wait is over.
            let next = if left.is_zero() {
                rx.try_recv().map_err(|_| RecvTimeoutError::Timeout)
            } else {
                rx.recv_timeout(left)
            };
            match next {
                Ok(job) => {
                    rows += job.rows;
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        self.take(jobs.len());
        jobs
    }

    fn take(&self, n: usize) {
        let depth = self.depth.fetch_sub(n, Ordering::SeqCst).saturating_sub(n);
        self.metrics.set(
            "ferrite_queue_depth",
            "Requests waiting in a model's queue.",
            &[("model", &self.name)],
            depth as f64,
        );
    }

    /// Runs the live jobs as batches of at most `max_batch` rows (one pass each), answering each.
    fn run<I, O>(&self, jobs: Vec<Job<I, O>>, run: &mut RunBatch<I, O>) {
        let live: Vec<Job<I, O>> = jobs.into_iter().filter(|j| !j.reply.is_closed()).collect();
        let mut batch: Vec<Job<I, O>> = Vec::new();
        let mut rows = 0;
        for job in live {
            if !batch.is_empty() && rows + job.rows > self.policy.max_batch {
                self.pass(std::mem::take(&mut batch), run);
                rows = 0;
            }
            rows += job.rows;
            batch.push(job);
        }
        if !batch.is_empty() {
            self.pass(batch, run);
        }
    }

    /// One forward pass over `batch`; on failure each job alone, so errors land where they belong.
    fn pass<I, O>(&self, batch: Vec<Job<I, O>>, run: &mut RunBatch<I, O>) {
        let rows: usize = batch.iter().map(|j| j.rows).sum();
        let (inputs, replies): (Vec<I>, Vec<oneshot::Sender<ApiResult<O>>>) =
            batch.into_iter().map(|j| (j.input, j.reply)).unzip();
        let labels = [("model", self.name.as_str())];
        self.metrics.observe(
            "ferrite_batch_size",
            "Rows per forward pass (dynamic batching).",
            &labels,
            &BATCH_BUCKETS,
            rows as f64,
        );
        match catch_unwind(AssertUnwindSafe(|| run(&inputs))) {
            Ok(Ok(outputs)) if outputs.len() == replies.len() => {
                for (reply, out) in replies.into_iter().zip(outputs) {
                    let _ = reply.send(Ok(out));
                }
            }
            Ok(Ok(outputs)) => {
                let e = ApiError::internal(format!(
                    "model '{}' returned {} outputs for {} requests",
                    self.name,
                    outputs.len(),
                    replies.len()
                ));
                replies.into_iter().for_each(|r| drop(r.send(Err(e.clone()))));
            }
            Ok(Err(e)) if replies.len() == 1 => {
                let _ = replies.into_iter().next().map(|r| r.send(Err(ApiError::model(e))));
            }
            Ok(Err(_)) => {
                // Rerun one by one: only the request at fault gets the error.
                for (input, reply) in inputs.into_iter().zip(replies) {
                    let one = [input];
                    let answer = match catch_unwind(AssertUnwindSafe(|| run(&one))) {
                        Ok(Ok(mut out)) if out.len() == 1 => Ok(out.remove(0)),
                        Ok(Ok(_)) => Err(ApiError::internal("the model returned no output")),
                        Ok(Err(e)) => Err(ApiError::model(e)),
                        Err(p) => Err(self.panicked(p.as_ref())),
                    };
                    let _ = reply.send(answer);
                }
            }
            Err(p) => {
                let e = self.panicked(p.as_ref());
                replies.into_iter().for_each(|r| drop(r.send(Err(e.clone()))));
            }
        }
    }

    fn panicked(&self, p: &(dyn std::any::Any + Send)) -> ApiError {
        model_panicked(&self.name, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn concurrent_requests_share_passes_and_errors_stay_with_their_request() {
        let metrics = Arc::new(Metrics::new());
        let policy = BatchPolicy {
            max_batch: 8,
            max_wait: Duration::from_millis(50),
            queue_bound: 64,
        };
        let b: Batcher<i64, i64> = Batcher::spawn("double", policy, metrics.clone(), || {
            Ok(Box::new(|xs: &[i64]| {
                if xs.contains(&-1) {
                    return Err(ferrite_core::Error::Invalid {
                        op: "double",
                        detail: "negative".into(),
                    });
                }
                if xs.contains(&-2) {
                    panic!("boom");
                }
                Ok(xs.iter().map(|x| 2 * x).collect())
            }) as RunBatch<i64, i64>)
        })
        .unwrap();
        let out = rt().block_on(async {
            let tasks: Vec<_> = (0..6i64)
                .map(|i| {
                    let b = b.clone();
                    tokio::spawn(async move { b.submit(if i == 3 { -1 } else { i }, 1).await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v, 2 * i as i64),
                Err(e) => assert!(i == 3 && e.status == 400 && e.message.contains("negative"), "{e}"),
            }
        }
        // Six requests, far fewer passes than six (plus the reruns of the failed batch).
        let passes = metrics.value("ferrite_batch_size", &[("model", "double")]);
        assert!(passes < 6.0, "{passes} passes for 6 requests");
        // A panic is a 500 and the worker lives on.
        let e = rt().block_on(b.submit(-2, 1)).unwrap_err();
        assert_eq!(e.status, 500);
        assert_eq!(rt().block_on(b.submit(5, 1)).unwrap(), 10);
    }

    #[test]
    fn a_full_queue_is_refused_with_retry_after() {
        let metrics = Arc::new(Metrics::new());
        let policy = BatchPolicy {
            max_batch: 1,
            max_wait: Duration::ZERO,
            queue_bound: 1,
        };
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate_rx);
        let b: Batcher<u8, u8> = Batcher::spawn("slow", policy, metrics, move || {
            Ok(Box::new(move |xs: &[u8]| {
                let _ = gate.lock().unwrap().recv();
                Ok(xs.to_vec())
            }) as RunBatch<u8, u8>)
        })
        .unwrap();
        let rt = rt();
        let (a, c) = (b.clone(), b.clone());
        let first = rt.spawn(async move { a.submit(1, 1).await });
        std::thread::sleep(Duration::from_millis(50)); // the worker holds the first
        let second = rt.spawn(async move { c.submit(2, 1).await });
        std::thread::sleep(Duration::from_millis(50)); // the second fills the queue
        let third = rt.block_on(b.submit(3, 1)).unwrap_err();
        assert_eq!((third.status.as_u16(), third.retry_after), (503, Some(1)));
        gate_tx.send(()).unwrap();
        gate_tx.send(()).unwrap();
        assert_eq!(rt.block_on(first).unwrap().unwrap(), 1);
        assert_eq!(rt.block_on(second).unwrap().unwrap(), 2);
    }

    #[test]
    fn a_load_error_fails_spawn() {
        let r: ferrite_core::Result<Batcher<u8, u8>> =
            Batcher::spawn("bad", BatchPolicy::default(), Arc::new(Metrics::new()), || {
                Err(ferrite_core::Error::Invalid {
                    op: "load",
                    detail: "no such file".into(),
                })
            });
        assert!(r.err().unwrap().to_string().contains("no such file"));
    }
}
