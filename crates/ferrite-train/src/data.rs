//! In-memory datasets, the batching `DataLoader`, the reproducible train/test split and
//! standardization fitted on the training split only.
//!
//! Layer: train.

use ferrite_core::{DType, Error, Result, Rng, Tensor};
use serde::{Deserialize, Serialize};

/// Features `x` `[N, ...]` and targets `y` `[N, ...]` (f32 values or i64 class ids).
#[derive(Clone, Debug)]
pub struct Dataset {
    pub x: Tensor,
    pub y: Tensor,
}

impl Dataset {
    /// Pairs features and targets; their first dimensions must agree.
    pub fn new(x: Tensor, y: Tensor) -> Result<Self> {
        if x.ndim() == 0 || y.ndim() == 0 || x.shape()[0] != y.shape()[0] {
            return Err(Error::ShapeMismatch {
                op: "Dataset::new",
                lhs: x.shape().to_vec(),
                rhs: y.shape().to_vec(),
                detail: "features and targets need the same number of rows".into(),
            });
        }
        Ok(Dataset { x, y })
    }

    pub fn len(&self) -> usize {
        self.x.shape()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Result<Dataset> {
        let ids = Tensor::from_vec(idx.iter().map(|&i| i as i64).collect::<Vec<_>>(), [idx.len()])?;
        Ok(Dataset {
            x: self.x.index_select(0, &ids)?,
            y: self.y.index_select(0, &ids)?,
        })
    }

    /// Splits off the last `fraction` of rows (Keras' `validation_split`, taken before shuffling).
    pub fn split_last(&self, fraction: f64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(Error::Invalid {
                op: "validation_split",
                detail: format!("must be in [0, 1), got {fraction}"),
            });
        }
        let n = self.len();
        let n_val = (n as f64 * fraction).round() as usize;
        let cut = n - n_val;
        Ok((
            Dataset {
                x: self.x.narrow(0, 0, cut)?.contiguous()?,
                y: self.y.narrow(0, 0, cut)?.contiguous()?,
            },
            Dataset {
                x: self.x.narrow(0, cut, n_val)?.contiguous()?,
                y: self.y.narrow(0, cut, n_val)?.contiguous()?,
            },
        ))
    }
}

/// splitmix64: a fixed, well-mixed hash, reproducible in any language (the PyTorch scripts in
/// `tools/` implement the same split).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic train/test split: rows sorted by `splitmix64(seed·1000003 + i)`; the first
/// `round(n·test_fraction)` of that order are the test rows, the rest (in file order) train.
/// Returns (train indices, test indices).
///
/// # Errors
/// A fraction outside [0, 1), or one that leaves either side without rows.
pub fn train_test_indices(n: usize, test_fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(Error::Invalid {
            op: "test_split",
            detail: format!("must be in [0, 1), got {test_fraction}"),
        });
    }
    let mut keyed: Vec<(u64, usize)> = (0..n)
        .map(|i| (splitmix64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64)), i))
        .collect();
    keyed.sort_unstable();
    let n_test = (n as f64 * test_fraction).round() as usize;
    if n_test == 0 || n_test == n {
        let which = if n_test == 0 { "test" } else { "training" };
        return Err(Error::Invalid {
            op: "test_split",
            detail: format!(
                "{test_fraction} of {n} rows leaves no {which} rows (the run trains on one part and \
                 reports its metrics on the other); use more data or a test_split that keeps at least \
                 one row on each side"
            ),
        });
    }
    let test: Vec<usize> = keyed[..n_test].iter().map(|&(_, i)| i).collect();
    let mut is_test = vec![false; n];
    test.iter().for_each(|&i| is_test[i] = true);
    let train = (0..n).filter(|&i| !is_test[i]).collect();
    Ok((train, test))
}

/// Per-column standardization z = (x − mean)/std, fitted on training data only.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits column means and population standard deviations of a `[N, C]` tensor.
    pub fn fit(x: &Tensor) -> Result<Self> {
        if x.ndim() != 2 || x.shape()[0] == 0 {
            return Err(Error::Invalid {
                op: "Standardizer::fit",
                detail: format!("needs a non-empty [N, C] tensor, got {:?}", x.shape()),
            });
        }
        let x64 = x.to_dtype(DType::F64)?;
        let mean = x64.mean(&[0], false)?.to_vec::<f64>()?;
        let var = x64.var(&[0], false, false)?.to_vec::<f64>()?;
        // A constant column keeps its values centred instead of dividing by zero.
        let std = var.iter().map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 }).collect();
        Ok(Standardizer { mean, std })
    }

    /// Fits one mean and population standard deviation per channel of `[N, C·H·W]` image rows
    /// (channel-major), repeated for every pixel of that channel, so `transform` applies them.
    pub fn fit_channels(x: &Tensor, channels: usize) -> Result<Self> {
        let f = x.shape().get(1).copied().unwrap_or(0);
        if x.ndim() != 2 || x.shape()[0] == 0 || channels == 0 || f % channels != 0 {
            return Err(Error::Invalid {
                op: "Standardizer::fit_channels",
                detail: format!(
                    "needs a non-empty [N, C·H·W] tensor with {channels} channels, got {:?}",
                    x.shape()
                ),
            });
        }
        let v = x.contiguous()?.to_vec::<f32>()?;
        let per = f / channels;
        let (mut mean, mut std) = (Vec::with_capacity(f), Vec::with_capacity(f));
        for c in 0..channels {
            let vals = v.chunks(f).flat_map(|row| &row[c * per..(c + 1) * per]);
            let (mut s, mut s2, mut n) = (0.0f64, 0.0f64, 0.0f64);
            for &a in vals {
                s += a as f64;
                s2 += (a as f64) * (a as f64);
                n += 1.0;
            }
            let m = s / n;
            let var = (s2 / n - m * m).max(0.0);
            let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
            mean.extend(std::iter::repeat_n(m, per));
            std.extend(std::iter::repeat_n(sd, per));
        }
        Ok(Standardizer { mean, std })
    }

    fn check(&self, x: &Tensor, op: &'static str) -> Result<()> {
        if x.ndim() != 2 || x.shape()[1] != self.mean.len() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: x.shape().to_vec(),
                rhs: vec![self.mean.len()],
                detail: "the standardizer was fitted on a different number of columns".into(),
            });
        }
        Ok(())
    }

    fn row(v: &[f64]) -> Result<Tensor> {
        Tensor::from_vec(v.iter().map(|&m| m as f32).collect::<Vec<_>>(), [1, v.len()])
    }

    /// (x − mean)/std
    pub fn transform(&self, x: &Tensor) -> Result<Tensor> {
        self.check(x, "Standardizer::transform")?;
        x.sub(&Self::row(&self.mean)?)?.div(&Self::row(&self.std)?)
    }

    /// x·std + mean
    pub fn inverse_transform(&self, x: &Tensor) -> Result<Tensor> {
        self.check(x, "Standardizer::inverse_transform")?;
        x.mul(&Self::row(&self.std)?)?.add(&Self::row(&self.mean)?)
    }
}

/// Mini-batches of a dataset: optional seeded shuffling, optional dropping of a short last batch.
pub struct DataLoader<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    pos: usize,
}

impl<'a> DataLoader<'a> {
    /// Batches of `batch_size` rows; shuffled with `rng` when given (one pass = one epoch).
    pub fn new(data: &'a Dataset, batch_size: usize, rng: Option<&mut Rng>, drop_last: bool) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Invalid {
                op: "DataLoader",
                detail: "batch_size must be positive".into(),
            });
        }
        let mut order: Vec<usize> = (0..data.len()).collect();
        if let Some(r) = rng {
            r.shuffle(&mut order);
        }
        Ok(DataLoader {
            data,
            order,
            batch_size,
            drop_last,
            pos: 0,
        })
    }

    /// Number of batches per pass.
    pub fn num_batches(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }
}

impl Iterator for DataLoader<'_> {
    type Item = Result<Dataset>;
    fn next(&mut self) -> Option<Self::Item> {
        let n = self.order.len();
        if self.pos >= n || (self.drop_last && self.pos + self.batch_size > n) {
            return None;
        }
        let end = (self.pos + self.batch_size).min(n);
        let idx = &self.order[self.pos..end];
        self.pos = end;
        Some(self.data.subset(idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_deterministic_and_disjoint() {
        let (tr, te) = train_test_indices(442, 0.2, 42).unwrap();
        assert_eq!(te.len(), 88);
        assert_eq!(tr.len(), 354);
        let (tr2, te2) = train_test_indices(442, 0.2, 42).unwrap();
        assert_eq!((tr.clone(), te.clone()), (tr2, te2));
        // The same split tools/seed_mlp_torch.py computes in Python.
        assert_eq!(te[..5], [248, 151, 218, 148, 128]);
        assert_eq!(tr[..5], [0, 3, 4, 5, 6]);
        let mut all: Vec<usize> = tr.iter().chain(&te).copied().collect();
        all.sort();
        assert_eq!(all, (0..442).collect::<Vec<_>>());
    }

    #[test]
    fn loader_covers_every_row_once() {
        let x = Tensor::arange(0.0, 10.0, 1.0).unwrap().reshape([10, 1]).unwrap();
        let ds = Dataset::new(x.clone(), x).unwrap();
        let mut rng = Rng::new(1);
        let dl = DataLoader::new(&ds, 4, Some(&mut rng), false).unwrap();
        assert_eq!(dl.num_batches(), 3);
        let mut seen: Vec<f32> = dl.flat_map(|b| b.unwrap().x.to_vec::<f32>().unwrap()).collect();
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, (0..10).map(|i| i as f32).collect::<Vec<_>>());
        let dl = DataLoader::new(&ds, 4, None, true).unwrap();
        assert_eq!(dl.count(), 2);
    }

    #[test]
    fn standardizer_round_trips() {
        let x = Tensor::from_vec(vec![1.0f32, 10.0, 3.0, 30.0, 5.0, 50.0], [3, 2]).unwrap();
        let s = Standardizer::fit(&x).unwrap();
        let z = s.transform(&x).unwrap();
        let m = z.mean(&[0], false).unwrap().to_vec::<f32>().unwrap();
        assert!(m.iter().all(|v| v.abs() < 1e-6));
        let back = s.inverse_transform(&z).unwrap().to_vec::<f32>().unwrap();
        assert!(back
            .iter()
            .zip(x.to_vec::<f32>().unwrap())
            .all(|(a, b)| (a - b).abs() < 1e-4));
    }
}
