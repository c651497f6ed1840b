//! ferrite-explain's integration tests, one binary (one link, one process for shared fixtures).

mod captum;
mod llm;
mod sequential;
mod speech;
mod text;
mod translation;
