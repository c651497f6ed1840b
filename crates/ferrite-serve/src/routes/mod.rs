//! The HTTP routes, one module per protocol.
//!
//! Layer: serving.

pub mod openai;
pub mod v2;
