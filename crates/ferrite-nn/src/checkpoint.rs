//! safetensors reading and writing, with atomic writes (temp file + rename) so a crash mid-save
//! never leaves a truncated checkpoint where a good one was.
//!
//! Layer: nn. Reads f32/f64/f16/bf16/i64 tensors; errors name the file and what is wrong.

use ferrite_core::{DType, Error, Result, Tensor};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ferrite_core::fs::write_atomic;

fn to_bytes(t: &Tensor) -> Result<(StDtype, Vec<u8>)> {
    Ok(match t.dtype() {
        DType::F64 => (
            StDtype::F64,
            t.to_vec::<f64>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        DType::I64 => (
            StDtype::I64,
            t.to_vec::<i64>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        DType::F16 => (
            StDtype::F16,
            t.to_vec::<half::f16>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        DType::BF16 => (
            StDtype::BF16,
            t.to_vec::<half::bf16>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        DType::U8 => (StDtype::U8, t.to_vec::<u8>()?),
        DType::F32 => (
            StDtype::F32,
            t.to_vec::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
    })
}

/// Serializes named tensors (and string metadata) to safetensors bytes.
pub fn to_safetensors_bytes(
    tensors: &BTreeMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let owned: Vec<(String, StDtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| to_bytes(t).map(|(d, b)| (n.clone(), d, t.shape().to_vec(), b)))
        .collect::<Result<_>>()?;
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Invalid {
                    op: "safetensors",
                    detail: format!("tensor {n}: {e}"),
                })
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, metadata).map_err(|e| Error::Invalid {
        op: "safetensors",
        detail: e.to_string(),
    })
}

/// Saves named tensors to a safetensors file, atomically.
pub fn save_safetensors(
    path: impl AsRef<Path>,
    tensors: &BTreeMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    write_atomic(path.as_ref(), &to_safetensors_bytes(tensors, metadata)?)
}

fn view_to_tensor(path: &Path, name: &str, v: &TensorView<'_>) -> Result<Tensor> {
    let data = v.data();
    let shape = v.shape().to_vec();
    fn le<const N: usize, T>(data: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        data.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
            .collect()
    }
    let bad = |e: Error| Error::file(path, format!("tensor {name}: {e}"));
    let t = match v.dtype() {
        StDtype::F32 => Tensor::from_vec(le(data, f32::from_le_bytes), shape),
        StDtype::F64 => Tensor::from_vec(le(data, f64::from_le_bytes), shape),
        StDtype::F16 => Tensor::from_vec(le(data, half::f16::from_le_bytes), shape),
        StDtype::BF16 => Tensor::from_vec(le(data, half::bf16::from_le_bytes), shape),
        StDtype::I64 => Tensor::from_vec(le(data, i64::from_le_bytes), shape),
        StDtype::U8 => Tensor::from_vec(data.to_vec(), shape),
        // Other integers (buffers such as position_ids stored as I32) are read as i64, so a name
        // is never silently dropped: a parameter stored with one is refused by name at load.
        StDtype::I32 => Tensor::from_vec(le(data, |b| i32::from_le_bytes(b) as i64), shape),
        StDtype::I16 => Tensor::from_vec(le(data, |b| i16::from_le_bytes(b) as i64), shape),
        StDtype::I8 => Tensor::from_vec(le(data, |b: [u8; 1]| b[0] as i8 as i64), shape),
        StDtype::U16 => Tensor::from_vec(le(data, |b| u16::from_le_bytes(b) as i64), shape),
        StDtype::U32 => Tensor::from_vec(le(data, |b| u32::from_le_bytes(b) as i64), shape),
        StDtype::BOOL => Tensor::from_vec(data.to_vec(), shape),
        other => {
            return Err(Error::file(
                path,
                format!(
                    "tensor {name} has dtype {other:?}, which ferrite does not read (F32, F64, F16, BF16 and integers)"
                ),
            ));
        }
    };
    t.map_err(bad)
}

/// Parses safetensors bytes; `path` is only used in error messages.
pub fn from_safetensors_bytes(
    path: &Path,
    bytes: &[u8],
) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let t = view_to_tensor(path, &name, &view)?;
        out.insert(name, t);
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Loads all tensors and the string metadata of a safetensors file.
///
/// # Errors
/// A missing, unreadable, truncated or malformed file: the message names the file.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    from_safetensors_bytes(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation_error() {
        let dir = std::env::temp_dir().join(format!("ferrite-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        let mut m = BTreeMap::new();
        m.insert(
            "a.weight".to_string(),
            Tensor::from_vec(vec![1.0f32, -2.0, 3.5, 4.0], [2, 2]).unwrap(),
        );
        m.insert("ids".to_string(), Tensor::from_vec(vec![7i64, 8], [2]).unwrap());
        let meta = HashMap::from([("step".to_string(), "12".to_string())]);
        save_safetensors(&path, &m, Some(meta)).unwrap();
        let (back, meta) = load_safetensors(&path).unwrap();
        assert_eq!(back["a.weight"].to_vec::<f32>().unwrap(), vec![1.0, -2.0, 3.5, 4.0]);
        assert_eq!(back["ids"].to_vec::<i64>().unwrap(), vec![7, 8]);
        assert_eq!(meta["step"], "12");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let e = load_safetensors(&path).unwrap_err().to_string();
        assert!(
            e.contains("m.safetensors") && e.contains("not a valid safetensors"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A parameter whose dtype was changed in the header (F32 → I32, same byte length) is refused
    /// by name and dtype, not reported as missing.
    #[test]
    fn a_parameter_stored_as_integers_is_named_not_missing() {
        let dir = std::env::temp_dir().join(format!("ferrite-ckpt-dtype-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        let mut m = BTreeMap::new();
        m.insert("w".to_string(), Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap());
        save_safetensors(&path, &m, None).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(5).position(|w| w == b"\"F32\"").unwrap();
        let mut patched = bytes.clone();
        patched[at + 1] = b'I';
        std::fs::write(&path, &patched).unwrap();
        let (tensors, _) = load_safetensors(&path).unwrap();
        let vars = crate::VarMap::new();
        vars.insert("w", Tensor::zeros([2]).unwrap());
        let e = vars.load(&tensors, "m.safetensors").unwrap_err().to_string();
        assert!(
            e.contains("m.safetensors") && e.contains("parameter w is stored as I64"),
            "{e}"
        );
        assert!(!e.contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
