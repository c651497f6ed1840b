//! Reverse-mode autodiff: topological sort of the recorded graph, then one pass from the output
//! back to the leaves, accumulating gradients where a tensor is used more than once.
//!
//! Layer: core. The per-op rules are in `backward.rs`. Backward runs with recording off, so it
//! builds no graph of its own (no higher-order gradients).

use crate::backward::input_grads;
use crate::error::{Error, Result};
use crate::grad_mode::no_grad;
use crate::tensor::{Tensor, TensorId};
use std::collections::{HashMap, HashSet};

/// Gradients of the leaves, keyed by tensor id (what optimizers consume).
#[derive(Default, Debug, Clone)]
pub struct GradStore(HashMap<TensorId, Tensor>);

impl GradStore {
    /// An empty store.
    pub fn new() -> Self {
        GradStore::default()
    }
    /// The gradient of `t`, if `t` was a leaf reached by backward.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.0.get(&t.id())
    }
    /// The gradient for a tensor id.
    pub fn get_id(&self, id: TensorId) -> Option<&Tensor> {
        self.0.get(&id)
    }
    /// Takes the gradient of `t` out of the store.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.0.remove(&t.id())
    }
    /// Sets the gradient of `t`.
    pub fn insert(&mut self, t: &Tensor, g: Tensor) {
        self.0.insert(t.id(), g);
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Iterates over (id, gradient).
    pub fn iter(&self) -> impl Iterator<Item = (&TensorId, &Tensor)> {
        self.0.iter()
    }
}

/// Tensors reachable from `root` through recorded ops, inputs before the ops that used them.
fn sorted_nodes(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        let children: Vec<Tensor> = t
            .op()
            .map(|op| {
                op.inputs()
                    .into_iter()
                    .filter(|i| i.requires_grad() && !visited.contains(&i.id()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        stack.push((t, true));
        stack.extend(children.into_iter().map(|c| (c, false)));
    }
    order
}

impl Tensor {
    /// Gradients of this scalar with respect to every leaf created with `requires_grad_(true)`.
    ///
    /// # Errors
    /// A non-scalar output (use [`Tensor::backward_with`]), or an output that does not require grad.
    ///
    /// ```
    /// use ferrite_core::Tensor;
    /// let x = Tensor::new(&[3.0f32]).requires_grad_(true);
    /// let y = x.mul(&x).unwrap().sum_all().unwrap(); // x², used twice
    /// let grads = y.backward().unwrap();
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![6.0]);
    /// ```
    pub fn backward(&self) -> Result<GradStore> {
        if self.numel() != 1 {
            return Err(Error::Backward(format!(
                "backward() needs a one-element output, got shape {:?}; use backward_with(grad)",
                self.shape()
            )));
        }
        self.backward_with(&self.ones_like())
    }

    /// Backward from this tensor with an explicit upstream gradient `grad` of the same shape.
    pub fn backward_with(&self, grad: &Tensor) -> Result<GradStore> {
        if grad.shape() != self.shape() {
            return Err(Error::shape(
                "backward",
                self.shape(),
                grad.shape(),
                "gradient must match the output shape",
            ));
        }
        if !self.requires_grad() {
            return Err(Error::Backward(
                "the output does not require grad: no input was created with requires_grad_(true), or it was computed under no_grad".into(),
            ));
        }
        let _guard = no_grad();
        let nodes = sorted_nodes(self);
        let mut pending: HashMap<TensorId, Tensor> = HashMap::with_capacity(nodes.len());
        pending.insert(self.id(), grad.clone());
        let mut store = GradStore::new();
        for node in nodes.iter().rev() {
            let Some(g) = pending.remove(&node.id()) else {
                continue;
            };
            let Some(op) = node.op() else {
                store.0.insert(node.id(), g);
                continue;
            };
            let inputs = op.inputs();
            let grads = input_grads(op, node, &g)?;
            for (input, ig) in inputs.into_iter().zip(grads) {
                let Some(ig) = ig else { continue };
                if !input.requires_grad() {
                    continue;
                }
                debug_assert_eq!(ig.shape(), input.shape(), "ferrite bug: gradient shape for {op:?}");
                let acc = match pending.remove(&input.id()) {
                    Some(prev) => prev.add(&ig)?,
                    None => ig,
                };
                pending.insert(input.id(), acc);
            }
        }
        Ok(store)
    }
}
