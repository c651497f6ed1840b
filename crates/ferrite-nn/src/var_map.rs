//! Named parameters: a `VarMap` owns every trainable tensor under its checkpoint name, and a
//! `VarBuilder` hands them to layers under path prefixes (`"0.weight"`, `"encoder.layer.3.…"`).
//!
//! Layer: nn. One code path for fresh init and loading: a model is always built through a
//! `VarBuilder` (which initializes), and loading then overwrites values in place with strict
//! name and shape checks, so a checkpoint can never silently skip or invent a parameter.

use crate::init::Init;
use ferrite_core::{Error, Result, Rng, Tensor};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Vars {
    order: Vec<String>,
    by_name: BTreeMap<String, Tensor>,
    /// Names of buffers: state saved with the model but not trained (batch norm's running stats).
    buffers: std::collections::HashSet<String>,
}

/// Trainable tensors (parameters) and non-trainable state (buffers) by name, in creation order.
///
/// ```
/// use ferrite_nn::{Init, VarBuilder, VarMap};
/// let vars = VarMap::new();
/// let vb = VarBuilder::new(&vars, 0).pp("encoder").pp("0");
/// let w = vb.get(&[2, 3], "weight", Init::GlorotUniform)?;
/// assert!(w.requires_grad());
/// assert_eq!(vars.vars()[0].0, "encoder.0.weight");
/// // Loading checks every name and shape.
/// let bad = std::collections::BTreeMap::from([("encoder.0.weight".to_string(), ferrite_core::Tensor::zeros([3, 2])?)]);
/// assert!(vars.load(&bad, "file.safetensors").unwrap_err().to_string().contains("[3, 2]"));
/// # Ok::<(), ferrite_core::Error>(())
/// ```
/// Cheap to clone (shared). Optimizers see [`vars`](Self::vars); checkpoints save and load
/// [`state`](Self::state), which includes the buffers, as a PyTorch `state_dict` does.
#[derive(Clone, Default)]
pub struct VarMap(Arc<Mutex<Vars>>);

impl VarMap {
    pub fn new() -> Self {
        VarMap::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vars> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `t` as a trainable leaf under `name` (replacing any previous tensor of that name).
    pub fn insert(&self, name: &str, t: Tensor) -> Tensor {
        let t = t.detach().requires_grad_(true);
        let mut v = self.lock();
        if v.by_name.insert(name.to_string(), t.clone()).is_none() {
            v.order.push(name.to_string());
        }
        t
    }

    /// Registers `t` as a buffer under `name`: saved and loaded with the model, never trained.
    pub fn insert_buffer(&self, name: &str, t: Tensor) -> Tensor {
        let t = t.detach();
        let mut v = self.lock();
        if v.by_name.insert(name.to_string(), t.clone()).is_none() {
            v.order.push(name.to_string());
        }
        v.buffers.insert(name.to_string());
        t
    }

    /// The tensor (parameter or buffer) registered under `name`.
    pub fn get(&self, name: &str) -> Option<Tensor> {
        self.lock().by_name.get(name).cloned()
    }

    /// The trainable (name, tensor) pairs in creation order: what optimizers update.
    pub fn vars(&self) -> Vec<(String, Tensor)> {
        let v = self.lock();
        v.order
            .iter()
            .filter(|n| !v.buffers.contains(*n))
            .map(|n| (n.clone(), v.by_name[n].clone()))
            .collect()
    }

    /// Every (name, tensor) pair, parameters and buffers, in creation order: what checkpoints hold.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let v = self.lock();
        v.order.iter().map(|n| (n.clone(), v.by_name[n].clone())).collect()
    }

    /// Total number of scalar trainable parameters (buffers excluded, as PyTorch counts).
    pub fn num_params(&self) -> usize {
        self.vars().iter().map(|(_, t)| t.numel()).sum()
    }

    /// Overwrites every parameter and buffer with the same-named tensor from `tensors`, in place.
    ///
    /// # Errors
    /// Lists missing and unexpected names, or names the first parameter whose shape differs.
    pub fn load(&self, tensors: &BTreeMap<String, Tensor>, source: &str) -> Result<()> {
        self.load_partial(tensors, source, |_| false).map(|_| ())
    }

    /// Like [`load`](Self::load), but parameters for which `may_be_missing(name)` holds keep their
    /// initial values when the file lacks them (a fresh classification head on a pretrained
    /// encoder). Returns the names that kept their initial values.
    ///
    /// # Errors
    /// Lists the other missing names and all unexpected names, or names the first parameter whose
    /// shape differs.
    pub fn load_partial(
        &self,
        tensors: &BTreeMap<String, Tensor>,
        source: &str,
        may_be_missing: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let vars = self.state();
        let (fresh, missing): (Vec<&str>, Vec<&str>) = vars
            .iter()
            .filter(|(n, _)| !tensors.contains_key(n))
            .map(|(n, _)| n.as_str())
            .partition(|n| may_be_missing(n));
        let known: std::collections::HashSet<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        let unexpected: Vec<&str> = tensors
            .keys()
            .filter(|k| !known.contains(k.as_str()))
            .map(|k| k.as_str())
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(Error::file(
                source,
                format!("parameter names do not match the model: missing {missing:?}, unexpected {unexpected:?}"),
            ));
        }
        for (name, p) in &vars {
            let Some(src) = tensors.get(name) else { continue };
            if src.shape() != p.shape() {
                return Err(Error::file(
                    source,
                    format!(
                        "parameter {name} has shape {:?} in the file but {:?} in the model",
                        src.shape(),
                        p.shape()
                    ),
                ));
            }
            if p.dtype().is_float() && !src.dtype().is_float() {
                return Err(Error::file(
                    source,
                    format!(
                        "parameter {name} is stored as {:?} in the file; the model needs floats",
                        src.dtype()
                    ),
                ));
            }
            p.assign_(&src.to_dtype(p.dtype())?)?;
        }
        Ok(fresh.into_iter().map(str::to_string).collect())
    }
}

/// Creates or fetches parameters under a path prefix; layers take one of these.
#[derive(Clone)]
pub struct VarBuilder {
    map: VarMap,
    prefix: String,
    rng: Arc<Mutex<Rng>>,
    /// Create zeros instead of running the initializers (the values are about to be loaded).
    zeros: bool,
}

impl VarBuilder {
    /// A builder that initializes new parameters from a generator seeded with `seed`.
    pub fn new(map: &VarMap, seed: u64) -> Self {
        VarBuilder {
            map: map.clone(),
            prefix: String::new(),
            rng: Arc::new(Mutex::new(Rng::new(seed))),
            zeros: false,
        }
    }

    /// A builder for a model whose weights will be loaded right after: parameters start as zeros,
    /// skipping random initialization (for a 22M-parameter BERT that is most of the load time).
    pub fn for_loading(map: &VarMap) -> Self {
        VarBuilder {
            zeros: true,
            ..VarBuilder::new(map, 0)
        }
    }

    /// A builder for the sub-path `name` (`vb.pp("0")` → names `"0.weight"`, …).
    pub fn pp(&self, name: impl AsRef<str>) -> Self {
        let prefix = self.path(name.as_ref());
        VarBuilder {
            map: self.map.clone(),
            prefix,
            rng: self.rng.clone(),
            zeros: self.zeros,
        }
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The parameter `name` under this prefix, created with `init` if it does not exist yet.
    ///
    /// # Errors
    /// An existing parameter of that name with a different shape.
    pub fn get(&self, shape: &[usize], name: &str, init: Init) -> Result<Tensor> {
        let full = self.path(name);
        if let Some(t) = self.map.get(&full) {
            if t.shape() != shape {
                return Err(Error::Invalid {
                    op: "VarBuilder::get",
                    detail: format!(
                        "parameter {full} exists with shape {:?}, requested {shape:?}",
                        t.shape()
                    ),
                });
            }
            return Ok(t);
        }
        let t = if self.zeros {
            Tensor::zeros(shape)?
        } else {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            init.tensor(shape, &mut rng)?
        };
        Ok(self.map.insert(&full, t))
    }

    /// The buffer `name` under this prefix, created filled with `value` if it does not exist yet.
    ///
    /// # Errors
    /// An existing tensor of that name with a different shape.
    pub fn buffer(&self, shape: &[usize], name: &str, value: f64, dtype: ferrite_core::DType) -> Result<Tensor> {
        let full = self.path(name);
        if let Some(t) = self.map.get(&full) {
            if t.shape() != shape {
                return Err(Error::Invalid {
                    op: "VarBuilder::buffer",
                    detail: format!("buffer {full} exists with shape {:?}, requested {shape:?}", t.shape()),
                });
            }
            return Ok(t);
        }
        Ok(self.map.insert_buffer(&full, Tensor::full_dtype(shape, value, dtype)?))
    }

    /// The map the parameters live in.
    pub fn var_map(&self) -> &VarMap {
        &self.map
    }
}
