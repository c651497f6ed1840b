//! ferrite-explain: why a model gave its answer. Gradient attributions (saliency, input ×
//! gradient, SmoothGrad, integrated gradients with a completeness check), occlusion, and
//! pictures of them, with Captum's semantics so results can be compared number for number.
//!
//! Layer: explain (`cli → explain → {train, models} → nn → core`). Methods take the model as a
//! function from inputs to outputs ([`Forward`]) and a [`Target`] output per sample.

#![forbid(unsafe_code)]

mod adaptive;
pub mod gradient_methods;
pub mod html;
pub mod integrated;
pub mod llm;
pub mod occlusion;
pub mod pictures;
pub mod run;
pub mod seq2seq;
pub mod speech;
pub mod target;
pub mod text;
pub mod text_run;

pub use gradient_methods::{input_x_gradient, saliency, smooth_grad, SmoothGradOptions};
pub use integrated::{integrated_gradients, IgOptions, IgResult, Quadrature};
pub use occlusion::{occlusion, OcclusionOptions};
pub use run::{explain_run, Baseline, ExplainOptions, Explanation, Method};
pub use seq2seq::{translation_attention, AttentionPart, TranslationAttention};
pub use speech::{explain_audio_run, is_whisper_model, whisper_attention};
pub use target::{gradients, target_values, Forward, Target};
pub use text::{attention_maps, explain_text, AttentionMaps, TokenExplanation};
pub use text_run::{explain_text_run, is_sequential_run, TextRequest};
