//! ferrite-train's integration tests, one binary (one link, one process for shared fixtures).

mod bad_input;
mod dp_sgd;
mod fairness;
mod finetune;
mod optimizers;
mod privacy;
mod resume;
mod reversal;
mod seed_mlp;
mod translate_run;
mod vision;
