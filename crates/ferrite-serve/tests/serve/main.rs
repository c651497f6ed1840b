//! `ferrite serve` end to end: a real server on an ephemeral loopback port, real models, and a
//! raw HTTP client that sees the bytes.

mod fuzz;
mod http;
mod llm;
mod openai;
mod robustness;
mod v2;

use ferrite_serve::{load_models, AppState, BatchPolicy, Metrics, ModelSpec, ServeOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn asset(name: &str, key: &str) -> PathBuf {
    ferrite_core::testing::cached_asset(&repo(), name, key)
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrite-serve-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The seed's MLP trained on the bundled diabetes data (once per test binary).
pub fn mlp_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = tmp("mlp").join("run");
        let opts = ferrite_train::run::RunOptions {
            out: Some(out.clone()),
            ..Default::default()
        };
        ferrite_train::run::train_from_config(&repo().join("examples/seed-mlp.toml"), &opts).unwrap();
        out
    })
}

pub fn minilm() -> PathBuf {
    asset("all-MiniLM-L6-v2", "model.safetensors")
}

pub fn smollm2() -> PathBuf {
    asset("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf").join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn whisper() -> PathBuf {
    asset("whisper-tiny-en", "model.bin")
}

pub fn spec(name: &str, path: &Path, policy: BatchPolicy) -> ModelSpec {
    ModelSpec {
        name: name.into(),
        path: path.to_path_buf(),
        kind: None,
        policy,
    }
}

/// A running server: its address, metrics, and the switch that begins its shutdown.
pub struct TestServer {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: std::sync::Mutex<std::sync::mpsc::Receiver<std::io::Result<()>>>,
}

impl TestServer {
    pub fn start(specs: &[ModelSpec], mut options: ServeOptions) -> TestServer {
        options.port = 0;
        options.log_requests = false;
        let metrics = Arc::new(Metrics::new());
        let models = load_models(specs, &metrics, &options.generation).unwrap();
        let state = Arc::new(AppState::new(models, metrics.clone(), options));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let r = rt.block_on(async move {
                let listener = ferrite_serve::bind("127.0.0.1", 0).await?;
                addr_tx.send(listener.local_addr()?).unwrap();
                ferrite_serve::run(listener, state, async move {
                    let _ = stopped.await;
                })
                .await
            });
            let _ = done_tx.send(r);
        });
        TestServer {
            addr: addr_rx.recv_timeout(Duration::from_secs(30)).unwrap(),
            metrics,
            stop: Some(stop),
            done: std::sync::Mutex::new(done),
        }
    }

    /// Begins shutdown (as SIGTERM does) and waits until the server has stopped.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().map(|s| s.send(()));
        self.done.lock().unwrap().recv_timeout(Duration::from_secs(60)).unwrap()
    }

    pub fn begin_shutdown(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }

    pub fn wait(self) -> std::io::Result<()> {
        self.done.lock().unwrap().recv_timeout(Duration::from_secs(60)).unwrap()
    }
}

/// Every kind of model behind one server, shared by the tests that need no private one.
/// Batches wait up to 50 ms so concurrent test requests meet.
pub fn shared() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let policy = BatchPolicy {
            max_batch: 32,
            max_wait: Duration::from_millis(50),
            queue_bound: 64,
        };
        let specs = [
            spec("mlp", mlp_run(), policy),
            spec("minilm", &minilm(), policy),
            spec("smol", &smollm2(), policy),
            spec("whisper", &whisper(), policy),
        ];
        let mut options = ServeOptions::default();
        options.generation.max_tokens_cap = 64;
        TestServer::start(&specs, options)
    })
}
