//! Serving a language model: continuous batching over generation slots, as llama.cpp's server
//! and vLLM do. One worker thread owns the model; each request becomes a slot with its own KV
//! cache, sampler and stop rules. The worker admits queued requests into free slots (feeding
//! each prompt once), then advances every live slot by one token in one batched decode step
//! ([`Llama::forward_sequences`]: the matrix products run once over all rows). A slot leaves when
//! it stops, reaches its limit, or its client has gone — a disconnected client stops its
//! generation at the next step.
//!
//! Events go to the request's handler over an unbounded channel: the pieces of text as they
//! decode, then the finish (or an error). Handlers wait for the first event before answering, so
//! a bad request still gets its 4xx rather than a broken stream.
//!
//! Layer: serving.

use crate::batcher::{model_panicked, spawn_worker};
use crate::error::{ApiError, ApiResult};
use crate::metrics::{Metrics, LATENCY_BUCKETS};
use crate::tensor::{Data, NamedTensor};
use ferrite_core::Result;
use ferrite_models::generation::{chatml_prompt, Message};
use ferrite_models::{argmax, LanguageModel, Sampler, SamplingOptions, TextStream};
use ferrite_nn::KvCache;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Server-wide limits on generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationLimits {
    /// `max_tokens` above this is refused (400 naming the field).
    pub max_tokens_cap: usize,
    /// `max_tokens` when a request gives none.
    pub default_max_tokens: usize,
    /// Sequences decoded together at most (llama.cpp's `--parallel`).
    pub slots: usize,
}

impl Default for GenerationLimits {
    fn default() -> Self {
        GenerationLimits {
            max_tokens_cap: 4096,
            default_max_tokens: 256,
            slots: 8,
        }
    }
}

/// What a request asks of a generation.
#[derive(Clone, Debug, PartialEq)]
pub struct GenParams {
    pub max_tokens: Option<usize>,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: Option<u64>,
    /// Text that ends the generation (not included in the output), as OpenAI's `stop`.
    pub stop: Vec<String>,
}

impl Default for GenParams {
    /// Greedy decoding (`ferrite generate`'s default) and no stop strings.
    fn default() -> Self {
        GenParams {
            max_tokens: None,
            temperature: 0.0,
            top_p: 1.0,
            seed: None,
            stop: Vec::new(),
        }
    }
}

impl GenParams {
    /// Reads the optional v2 inputs `max_tokens` (INT32 `[1]`) and `temperature`
    /// (FP32 `[1]`) next to `text_input`.
    ///
    /// # Errors
    /// 400 for a value of the wrong type or count.
    pub fn from_v2(inputs: &[NamedTensor]) -> ApiResult<GenParams> {
        let mut p = GenParams::default();
        for t in inputs {
            match (t.name.as_str(), &t.data) {
                ("max_tokens", Data::Int32(v)) if v.len() == 1 => {
                    p.max_tokens = Some(
                        usize::try_from(v[0])
                            .map_err(|_| ApiError::bad_field("max_tokens", "input 'max_tokens' must be ≥ 0"))?,
                    );
                }
                ("temperature", Data::Fp32(v)) if v.len() == 1 => p.temperature = v[0],
                ("max_tokens" | "temperature", _) => {
                    return Err(ApiError::bad(format!(
                        "input '{}' must be one {} value",
                        t.name,
                        if t.name == "temperature" { "FP32" } else { "INT32" }
                    )));
                }
                _ => {}
            }
        }
        Ok(p)
    }
}

/// A prompt: plain text, or a conversation rendered with the model's chat template.
#[derive(Clone, Debug)]
pub enum Prompt {
    Text(String),
    Chat(Vec<Message>),
}

/// Why a generation ended, in OpenAI's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop,
    /// `max_tokens`, or the context is full.
    Length,
}

impl FinishReason {
    pub fn name(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// The end of a generation.
#[derive(Clone, Debug)]
pub struct Finished {
    pub text: String,
    pub reason: FinishReason,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

/// What a generation tells its handler.
#[derive(Debug)]
pub enum Event {
    Text(String),
    Done(Finished),
    Failed(ApiError),
}

struct Job {
    prompt: Prompt,
    params: GenParams,
    events: UnboundedSender<Event>,
    arrived: Instant,
}

/// The handlers' side of a language model.
pub struct Generator {
    name: String,
    tx: SyncSender<Job>,
    limits: GenerationLimits,
}

impl Generator {
    /// Opens the GGUF file at `path` on a new worker thread.
    ///
    /// # Errors
    /// The model's load error.
    pub fn spawn(
        name: &str,
        path: &Path,
        queue_bound: usize,
        limits: GenerationLimits,
        metrics: Arc<Metrics>,
    ) -> Result<Generator> {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue_bound.max(1));
        let (path, worker_name, slots) = (path.to_path_buf(), name.to_string(), limits.slots.max(1));
        spawn_worker(
            name,
            move || LanguageModel::open(&path),
            move |model| {
                Scheduler {
                    name: worker_name,
                    model,
                    metrics,
                    slots,
                }
                .run(rx)
            },
        )?;
        Ok(Generator {
            name: name.to_string(),
            tx,
            limits,
        })
    }

    /// Starts a generation; returns its first event (a 4xx arrives here) and the rest.
    ///
    /// # Errors
    /// 400 for `max_tokens` above the cap or bad sampling values (named), 503 for a full queue.
    pub async fn start(&self, prompt: Prompt, mut params: GenParams) -> ApiResult<(Event, UnboundedReceiver<Event>)> {
        let max_tokens = params
            .max_tokens
            .unwrap_or(self.limits.default_max_tokens.min(self.limits.max_tokens_cap));
        if max_tokens > self.limits.max_tokens_cap {
            return Err(ApiError::bad_field(
                "max_tokens",
                format!(
                    "max_tokens {max_tokens} is above this server's cap of {}",
                    self.limits.max_tokens_cap
                ),
            ));
        }
        params.max_tokens = Some(max_tokens);
        if !(params.temperature.is_finite() && (0.0..=2.0).contains(&params.temperature)) {
            return Err(ApiError::bad_field(
                "temperature",
                format!("temperature must be between 0 and 2, got {}", params.temperature),
            ));
        }
        if !(params.top_p > 0.0 && params.top_p <= 1.0) {
            return Err(ApiError::bad_field(
                "top_p",
                format!("top_p must be in (0, 1], got {}", params.top_p),
            ));
        }
        if params.stop.iter().any(String::is_empty) || params.stop.len() > 4 {
            return Err(ApiError::bad_field("stop", "stop takes up to 4 non-empty strings"));
        }
        let (events, mut rx) = unbounded_channel();
        let job = Job {
            prompt,
            params,
            events,
            arrived: Instant::now(),
        };
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                ApiError::unavailable(format!("model '{}' has a full queue; retry shortly", self.name), 1)
            }
            TrySendError::Disconnected(_) => ApiError::internal(format!("model '{}' has stopped", self.name)),
        })?;
        let first = rx
            .recv()
            .await
            .ok_or_else(|| ApiError::internal(format!("model '{}' dropped the request", self.name)))?;
        if let Event::Failed(e) = first {
            return Err(e);
        }
        Ok((first, rx))
    }

    /// Runs a generation to its end.
    ///
    /// # Errors
    /// As [`start`](Self::start), and failures during generation.
    pub async fn complete(&self, prompt: Prompt, params: GenParams) -> ApiResult<Finished> {
        let (mut event, mut rx) = self.start(prompt, params).await?;
        loop {
            match event {
                Event::Done(f) => return Ok(f),
                Event::Failed(e) => return Err(e),
                Event::Text(_) => {}
            }
            event = rx
                .recv()
                .await
                .ok_or_else(|| ApiError::internal(format!("model '{}' dropped the request", self.name)))?;
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One sequence being generated.
struct Slot {
    cache: KvCache,
    /// Prompt and generated ids (the repetition penalty's history).
    history: Vec<u32>,
    stream: TextStream,
    /// Text decoded but held back: it could be the start of a stop string.
    sent: usize,
    sampler: Option<Sampler>,
    params: GenParams,
    max_tokens: usize,
    prompt_tokens: usize,
    /// The token to feed at the next step.
    next: u32,
    events: UnboundedSender<Event>,
    arrived: Instant,
    first_token: bool,
}

struct Scheduler {
    name: String,
    model: LanguageModel,
    metrics: Arc<Metrics>,
    slots: usize,
}

impl Scheduler {
    fn run(self, rx: Receiver<Job>) {
        let mut live: Vec<Slot> = Vec::new();
        loop {
            // Wait for work when idle; otherwise take whatever is queued, up to the free slots.
            if live.is_empty() {
                match rx.recv() {
                    Ok(job) => self.admit(job, &mut live),
                    Err(_) => return,
                }
            }
            while live.len() < self.slots {
                match rx.try_recv() {
                    Ok(job) => self.admit(job, &mut live),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if live.is_empty() {
                            return;
                        }
                        break;
                    }
                }
            }
            let before = live.len();
            live.retain(|s| !s.events.is_closed());
            let gone = before - live.len();
            if gone > 0 {
                self.metrics.add(
                    "ferrite_generations_cancelled_total",
                    "Generations stopped because their client went away.",
                    &[("model", &self.name)],
                    gone as f64,
                );
            }
            if live.is_empty() {
                continue;
            }
            self.step(&mut live);
        }
    }

    /// Feeds a new request's prompt and chooses its first token.
    fn admit(&self, job: Job, live: &mut Vec<Slot>) {
        let events = job.events.clone();
        let result = catch_unwind(AssertUnwindSafe(|| self.prefill(job)));
        match result {
            Ok(Ok(Some(slot))) => live.push(slot),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => drop(events.send(Event::Failed(e))),
            Err(p) => drop(events.send(Event::Failed(self.panicked(p.as_ref())))),
        }
    }

    fn prefill(&self, job: Job) -> ApiResult<Option<Slot>> {
        let m = &self.model;
        let text = match &job.prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(messages) => {
                let system = m.default_system().map_err(ApiError::model)?;
                chatml_prompt(messages, system.as_deref())
            }
        };
        let ids = m.encode(&text).map_err(ApiError::model)?;
        let context = m.llama.config.context;
        if ids.is_empty() {
            return Err(ApiError::bad("the prompt is empty"));
        }
        if ids.len() >= context {
            return Err(ApiError::bad(format!(
                "the prompt has {} tokens; the model's context holds {context}",
                ids.len()
            )));
        }
        let max_tokens = job.params.max_tokens.unwrap_or(0);
        let sampler = if job.params.temperature > 0.0 {
            let seed = job.params.seed.unwrap_or_else(|| {
                let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                t.map_or(0, |d| d.as_nanos() as u64)
            });
            Some(
                Sampler::new(SamplingOptions {
                    temperature: job.params.temperature,
                    top_k: 0,
                    top_p: job.params.top_p,
                    repeat_penalty: 1.0,
                    repeat_last_n: 0,
                    seed,
                })
                .map_err(ApiError::model)?,
            )
        } else {
            None
        };
        let mut cache = m.llama.new_cache();
        let logits = m.llama.forward(&ids, &mut cache).map_err(ApiError::model)?;
        let mut slot = Slot {
            cache,
            prompt_tokens: ids.len(),
            history: ids,
            stream: TextStream::default(),
            sent: 0,
            sampler,
            params: job.params,
            max_tokens,
            next: 0,
            events: job.events,
            arrived: job.arrived,
            first_token: true,
        };
        if max_tokens == 0 {
            self.finish(&mut slot, FinishReason::Length);
            return Ok(None);
        }
        Ok(self.choose(slot, &logits))
    }

    /// One decode step for every live slot, then each slot's next token.
    fn step(&self, live: &mut Vec<Slot>) {
        let tokens: Vec<u32> = live.iter().map(|s| s.next).collect();
        let mut caches: Vec<&mut KvCache> = live.iter_mut().map(|s| &mut s.cache).collect();
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.model.llama.forward_sequences(&tokens, &mut caches)
        }));
        let logits = match result {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                let e = ApiError::internal(format!("model '{}' failed: {e}", self.name));
                live.drain(..)
                    .for_each(|s| drop(s.events.send(Event::Failed(e.clone()))));
                return;
            }
            Err(p) => {
                let e = self.panicked(p.as_ref());
                live.drain(..)
                    .for_each(|s| drop(s.events.send(Event::Failed(e.clone()))));
                return;
            }
        };
        let slots = std::mem::take(live);
        *live = slots
            .into_iter()
            .zip(logits)
            .filter_map(|(slot, l)| self.choose(slot, &l))
            .collect();
    }

    /// Picks the slot's next token from `logits`, sends the text it completes, and keeps the
    /// slot (returned) unless it finished.
    fn choose(&self, mut slot: Slot, logits: &[f32]) -> Option<Slot> {
        let m = &self.model;
        let tok = match &mut slot.sampler {
            Some(s) => s.sample(logits, &slot.history),
            None => argmax(logits),
        };
        let labels = [("model", self.name.as_str())];
        if slot.first_token {
            slot.first_token = false;
            self.metrics.observe(
                "ferrite_time_to_first_token_seconds",
                "Seconds from a generation's arrival to its first token.",
                &labels,
                &LATENCY_BUCKETS,
                slot.arrived.elapsed().as_secs_f64(),
            );
        }
        if m.stop_ids.contains(&tok) {
            self.finish(&mut slot, FinishReason::Stop);
            return None;
        }
        self.metrics
            .add("ferrite_generated_tokens_total", "Tokens generated.", &labels, 1.0);
        slot.history.push(tok);
        if let Err(e) = slot.stream.push(m, tok) {
            let _ = slot.events.send(Event::Failed(ApiError::internal(e.to_string())));
            return None;
        }
        if let Some(at) = stop_at(&slot.stream.text, &slot.params.stop) {
            slot.stream.text.truncate(at);
            self.finish(&mut slot, FinishReason::Stop);
            return None;
        }
        self.send_safe(&mut slot);
        let full = slot.cache.len() + 1 > m.llama.config.context;
        if slot.stream.ids.len() >= slot.max_tokens || full {
            self.finish(&mut slot, FinishReason::Length);
            return None;
        }
        slot.next = tok;
        Some(slot)
    }

    /// Sends the decoded text that cannot be the start of a stop string.
    fn send_safe(&self, slot: &mut Slot) {
        let text = &slot.stream.text;
        let held = held_back(text, &slot.params.stop);
        let upto = text.len() - held;
        if upto > slot.sent {
            let _ = slot.events.send(Event::Text(text[slot.sent..upto].to_string()));
            slot.sent = upto;
        }
    }

    fn finish(&self, slot: &mut Slot, reason: FinishReason) {
        if reason == FinishReason::Length {
            // An incomplete last character is still text the client should see; a tokenizer
            // failure here only loses that character.
            let _ = slot.stream.finish(&self.model);
        }
        let text = slot.stream.text.clone();
        if text.len() > slot.sent && text.is_char_boundary(slot.sent) {
            let _ = slot.events.send(Event::Text(text[slot.sent..].to_string()));
        }
        let _ = slot.events.send(Event::Done(Finished {
            text,
            reason,
            prompt_tokens: slot.prompt_tokens,
            completion_tokens: slot.stream.ids.len(),
        }));
    }

    fn panicked(&self, p: &(dyn std::any::Any + Send)) -> ApiError {
        model_panicked(&self.name, p)
    }
}

/// Where the earliest stop string starts in `text`, if one occurs.
fn stop_at(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter().filter_map(|s| text.find(s.as_str())).min()
}

/// Bytes at the end of `text` that could begin a stop string (held back until decided).
fn held_back(text: &str, stop: &[String]) -> usize {
    stop.iter()
        .flat_map(|s| {
            (1..s.len())
                .rev()
                .filter(|&k| s.is_char_boundary(k))
                .map(move |k| &s[..k])
        })
        .filter(|prefix| text.ends_with(prefix))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_found_and_their_starts_held_back() {
        let stop = vec!["\n\n".to_string(), "END".to_string()];
        assert_eq!(stop_at("ab\n\ncd", &stop), Some(2));
        assert_eq!(stop_at("abEN", &stop), None);
        assert_eq!(held_back("abEN", &stop), 2);
        assert_eq!(held_back("ab\n", &stop), 1);
        assert_eq!(held_back("abc", &stop), 0);
        assert_eq!(held_back("é", &["éa".to_string()]), 2);
    }
}
