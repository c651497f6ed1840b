//! ferrite-core's integration tests, one binary (one link, one process for shared fixtures).

mod errors;
mod gradcheck;
mod reference;
mod vision;
mod zero_size;
