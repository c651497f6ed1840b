//! Test helpers shared by every crate: finite-difference gradient checks, closeness assertions and
//! loading of stored PyTorch reference values.
//!
//! Layer: core. The gradient check converts inputs to f64 and compares the autodiff gradient of
//! ⟨f(x), r⟩ (r a fixed random direction, so non-scalar outputs work) with central differences.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::grad_mode::no_grad;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Tolerances and step for [`gradcheck`].
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Allowed absolute error.
    pub atol: f64,
    /// Allowed error relative to the numeric gradient.
    pub rtol: f64,
    /// Inputs with more elements than this are checked along random directions instead of per element.
    pub max_elementwise: usize,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-6,
            rtol: 1e-4,
            max_elementwise: 512,
        }
    }
}

/// Checks autodiff gradients of `f` against central finite differences, in f64.
///
/// Float inputs are converted to f64 leaves; non-float inputs (indices, masks) are passed through
/// unchanged. `f` may build views (transposes, slices) of its inputs and reuse them, which is how
/// non-contiguous and accumulated cases are exercised.
pub fn gradcheck(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) -> Result<()> {
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradcheck`] with explicit options.
pub fn gradcheck_with(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor], o: GradcheckOptions) -> Result<()> {
    let base: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            if t.dtype().is_float() {
                t.to_dtype(DType::F64).map(|t| t.detach())
            } else {
                Ok(t.clone())
            }
        })
        .collect::<Result<_>>()?;
    let leaves: Vec<Tensor> = base
        .iter()
        .map(|t| {
            if t.dtype().is_float() {
                t.clone().requires_grad_(true)
            } else {
                t.clone()
            }
        })
        .collect();
    let y = f(&leaves)?;
    let mut rng = Rng::new(0xC0FFEE);
    let r = Tensor::randn_with(&mut rng, y.shape())?.to_dtype(DType::F64)?;
    let loss = |xs: &[Tensor]| -> Result<f64> {
        let _g = no_grad();
        f(xs)?.to_dtype(DType::F64)?.mul(&r)?.sum_all()?.item()
    };
    let grads = y.to_dtype(DType::F64)?.mul(&r)?.sum_all()?.backward()?;
    for (i, leaf) in leaves.iter().enumerate() {
        if !leaf.dtype().is_float() {
            continue;
        }
        let analytic = match grads.get(leaf) {
            Some(g) => g.to_vec::<f64>()?,
            None => vec![0.0; leaf.numel()],
        };
        let x0 = base[i].to_vec::<f64>()?;
        let eval_shifted = |dir: &[f64], h: f64| -> Result<f64> {
            let xs: Vec<f64> = x0.iter().zip(dir).map(|(x, d)| x + h * d).collect();
            let mut ins = base.clone();
            ins[i] = Tensor::from_vec(xs, base[i].shape())?;
            loss(&ins)
        };
        let check = |what: String, num: f64, ana: f64| -> Result<()> {
            if (num - ana).abs() > o.atol + o.rtol * num.abs() {
                return Err(Error::Backward(format!(
                    "gradcheck failed for input {i} (shape {:?}) at {what}: numeric {num:.8e}, autodiff {ana:.8e}",
                    base[i].shape()
                )));
            }
            Ok(())
        };
        if x0.len() <= o.max_elementwise {
            for j in 0..x0.len() {
                let mut dir = vec![0.0; x0.len()];
                dir[j] = 1.0;
                let num = (eval_shifted(&dir, o.eps)? - eval_shifted(&dir, -o.eps)?) / (2.0 * o.eps);
                check(format!("element {j}"), num, analytic[j])?;
            }
        } else {
            for k in 0..3 {
                let dir: Vec<f64> = (0..x0.len()).map(|_| rng.normal()).collect();
                let num = (eval_shifted(&dir, o.eps)? - eval_shifted(&dir, -o.eps)?) / (2.0 * o.eps);
                let ana: f64 = analytic.iter().zip(&dir).map(|(a, d)| a * d).sum();
                check(format!("random direction {k}"), num, ana)?;
            }
        }
    }
    Ok(())
}

/// Asserts `|a − b| ≤ atol + rtol·|b|` elementwise, with a message naming the first bad element.
pub fn assert_close(actual: &[f64], expected: &[f64], atol: f64, rtol: f64, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: length {} vs {}",
        actual.len(),
        expected.len()
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= atol + rtol * e.abs(),
            "{what}: element {i}: got {a}, expected {e} (atol {atol}, rtol {rtol})"
        );
    }
}

/// One stored reference tensor: shape and flat row-major values.
#[derive(Clone, Debug)]
pub struct RefTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl RefTensor {
    /// As an f32 tensor.
    pub fn to_f32(&self) -> Result<Tensor> {
        Tensor::from_vec(self.data.iter().map(|&v| v as f32).collect::<Vec<f32>>(), &self.shape)
    }
    /// As an i64 tensor.
    pub fn to_i64(&self) -> Result<Tensor> {
        Tensor::from_vec(self.data.iter().map(|&v| v as i64).collect::<Vec<i64>>(), &self.shape)
    }
}

/// Reads `{"shape": [...], "data": [...]}` from a JSON value.
pub fn ref_tensor(v: &serde_json::Value) -> Result<RefTensor> {
    let bad = |what: &str| Error::invalid("reference", format!("malformed reference tensor: {what}"));
    let shape = v["shape"].as_array().ok_or_else(|| bad("no shape"))?;
    let shape = shape
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(|| bad("shape")))
        .collect::<Result<Vec<_>>>()?;
    let data = v["data"].as_array().ok_or_else(|| bad("no data"))?;
    let data = data
        .iter()
        .map(|d| d.as_f64().ok_or_else(|| bad("data")))
        .collect::<Result<Vec<_>>>()?;
    Ok(RefTensor { shape, data })
}

/// Loads a reference JSON file written by a `tools/` script.
pub fn load_reference(path: impl AsRef<std::path::Path>) -> Result<serde_json::Value> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("invalid JSON: {e}")))
}

/// The directory of a downloaded asset (`scripts/fetch-assets.sh`): `$FERRITE_ASSETS/NAME`, else
/// `REPO/.cache/assets/NAME`. Panics with the command to run when it is missing — tests that need
/// a real model or dataset should fail loudly, not skip.
pub fn cached_asset(repo: &std::path::Path, name: &str, key_file: &str) -> std::path::PathBuf {
    let cache = std::env::var_os("FERRITE_ASSETS").map_or_else(|| repo.join(".cache/assets"), std::path::PathBuf::from);
    let dir = cache.join(name);
    assert!(
        dir.join(key_file).is_file(),
        "{} is missing: run `bash scripts/fetch-assets.sh` first (the README's test command does)",
        dir.display()
    );
    dir
}
