//! ferrite-text's integration tests, one binary (one link, one process for shared fixtures).

mod gettext;
mod metrics_reference;
mod split_batch;
mod tokenizer;
