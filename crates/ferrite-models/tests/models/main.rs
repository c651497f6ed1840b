//! ferrite-models's integration tests, one binary (one link, one process for shared fixtures).

mod hf_reference;
mod minilm;
mod smollm2;
mod whisper;
