//! What an attribution explains: one output of the model per sample (a class logit, or the value
//! of a regression output), and the forward function every method calls.
//!
//! Layer: explain. Models are plain functions `x [N, ...] → outputs [N, K]` (or `[N]`), so the same
//! code explains a `Sequential`, a CNN or a closure around any module; inference mode (no dropout,
//! batch-norm running statistics) is the caller's choice, as in Captum.

use ferrite_core::{Error, Result, Tensor};

/// A model as the attribution methods see it: inputs `[N, ...]` to outputs `[N, K]` or `[N]`.
pub type Forward<'a> = dyn Fn(&Tensor) -> Result<Tensor> + 'a;

/// The explained output per sample: one class/output index for all samples, or one each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    All(usize),
    PerSample(Vec<usize>),
}

impl Target {
    /// The output index of each of `n` samples, unchecked (a per-sample list as given).
    pub fn ids(&self, n: usize) -> Vec<usize> {
        match self {
            Target::All(t) => vec![*t; n],
            Target::PerSample(v) => v.clone(),
        }
    }

    /// The output index of each of `n` samples, checked against `k` outputs.
    ///
    /// # Errors
    /// An index `≥ k` (named, with the valid range), or a per-sample list of the wrong length.
    pub fn resolve(&self, n: usize, k: usize) -> Result<Vec<usize>> {
        let ids = self.ids(n);
        if ids.len() != n {
            return Err(Error::Invalid {
                op: "explain",
                detail: format!("{} targets given for {n} samples", ids.len()),
            });
        }
        if let Some(&bad) = ids.iter().find(|&&t| t >= k) {
            return Err(Error::Invalid {
                op: "explain",
                detail: format!(
                    "target {bad} is out of range: the model has {k} output{} (0..={})",
                    if k == 1 { "" } else { "s" },
                    k.saturating_sub(1)
                ),
            });
        }
        Ok(ids)
    }
}

/// The model's outputs as `[N, K]` (a `[N]` output is one column).
pub(crate) fn outputs_2d(y: Tensor, n: usize) -> Result<Tensor> {
    let y = match y.ndim() {
        1 => y.unsqueeze(1)?,
        2 => y,
        _ => {
            return Err(Error::Invalid {
                op: "explain",
                detail: format!(
                    "the model must return [N, K] or [N] outputs, got {:?}; explain one output position at a time",
                    y.shape()
                ),
            });
        }
    };
    if y.shape()[0] != n {
        return Err(Error::ShapeMismatch {
            op: "explain",
            lhs: vec![n],
            rhs: y.shape().to_vec(),
            detail: "the model must return one output row per input sample".into(),
        });
    }
    Ok(y)
}

/// `f(x)[i, targets[i]]` for each sample: `[N]`, differentiable.
pub(crate) fn selected(model: &Forward, x: &Tensor, target: &Target) -> Result<Tensor> {
    let n = x.shape().first().copied().unwrap_or(0);
    let y = outputs_2d(model(x)?, n)?;
    let ids = target.resolve(n, y.shape()[1])?;
    let idx = Tensor::from_vec(ids.iter().map(|&t| t as i64).collect::<Vec<_>>(), [n, 1])?;
    y.gather(1, &idx)?.reshape([n])
}

/// `f(x)[i, targets[i]]` as numbers, without recording gradients.
pub fn target_values(model: &Forward, x: &Tensor, target: &Target) -> Result<Vec<f64>> {
    let _g = ferrite_core::no_grad();
    Ok(selected(model, x, target)?.to_f64_vec())
}

/// ∂ f(x)[i, targets[i]] / ∂ x[i] for every sample at once (samples must not interact, as in
/// inference mode). An output that does not depend on x has a zero gradient.
pub fn gradients(model: &Forward, x: &Tensor, target: &Target) -> Result<Tensor> {
    let leaf = x.detach().contiguous()?.requires_grad_(true);
    let total = selected(model, &leaf, target)?.sum_all()?;
    let grads = total.backward()?;
    match grads.get(&leaf) {
        Some(g) => Ok(g.clone()),
        None => Tensor::zeros(x.shape()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_targets_are_named() {
        let e = Target::All(3).resolve(2, 3).unwrap_err().to_string();
        assert!(
            e.contains("target 3") && e.contains("3 outputs") && e.contains("0..=2"),
            "{e}"
        );
        let e = Target::PerSample(vec![0]).resolve(2, 3).unwrap_err().to_string();
        assert!(e.contains("1 targets given for 2 samples"), "{e}");
        assert_eq!(Target::PerSample(vec![2, 0]).resolve(2, 3).unwrap(), [2, 0]);
    }

    #[test]
    fn gradient_of_a_selected_output() {
        // f(x) = [x0·x1, 3·x0] per row: target 0 → (x1, x0), target 1 → (3, 0).
        let model = |x: &Tensor| {
            let a = x.narrow(1, 0, 1)?;
            let b = x.narrow(1, 1, 1)?;
            Tensor::cat(&[a.mul(&b)?, a.mul_scalar(3.0)?], 1)
        };
        let x = Tensor::from_vec(vec![2.0f32, 5.0, -1.0, 4.0], [2, 2]).unwrap();
        let g = gradients(&model, &x, &Target::PerSample(vec![0, 1])).unwrap();
        assert_eq!(g.to_vec::<f32>().unwrap(), [5.0, 2.0, 3.0, 0.0]);
        assert_eq!(target_values(&model, &x, &Target::All(1)).unwrap(), [6.0, -3.0]);
    }
}
