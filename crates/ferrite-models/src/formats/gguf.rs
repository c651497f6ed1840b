//! GGUF files (llama.cpp's model format, version 2 and 3): metadata key/values, tensor
//! descriptions and the aligned tensor data, read from one in-memory copy of the file.
//!
//! Layer: models (formats). Layout (little-endian): magic `GGUF`, u32 version, u64 tensor count, u64
//! metadata count; each metadata entry a string key, a u32 value type and the value (arrays: u32
//! element type, u64 length, elements); each tensor a string name, u32 rank, u64 dims (innermost
//! first), u32 ggml type, u64 offset into the data section; the data section starts at the next
//! multiple of `general.alignment` (default 32). Strings are a u64 length and UTF-8 bytes. Every
//! length, offset and size is checked against the file, so a truncated or corrupt file is an
//! error naming the file and what is wrong, never a panic or an out-of-bounds read.

use ferrite_core::{Error, Result};
use ferrite_kernels::quant::QuantKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// ggml tensor element types this reader knows: the block formats the quantized kernels
/// multiply (`ferrite_kernels::quant::QuantKind`), so tensors go to them without a mapping.
pub type GgmlType = QuantKind;

/// The element type of a ggml type code (0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 8 Q8_0).
fn ggml_type(code: u32) -> Option<GgmlType> {
    Some(match code {
        0 => QuantKind::F32,
        1 => QuantKind::F16,
        2 => QuantKind::Q4_0,
        3 => QuantKind::Q4_1,
        8 => QuantKind::Q8_0,
        _ => return None,
    })
}

/// A tensor's description and where its bytes are.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dims innermost first, as GGUF stores them (`[columns, rows]` for a matrix).
    pub dims: Vec<usize>,
    pub dtype: GgmlType,
    /// Byte range in the file.
    pub start: usize,
    pub len: usize,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A parsed GGUF file, holding its bytes.
pub struct Gguf {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: BTreeMap<String, TensorInfo>,
    data: Vec<u8>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                Error::file(
                    self.path,
                    format!(
                        "truncated: {what} needs {n} bytes at offset {}, the file has {}",
                        self.pos,
                        self.bytes.len()
                    ),
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    /// A count or length that must fit in what remains of the file (each item ≥ `min_item` bytes).
    fn count(&mut self, what: &str, min_item: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_item as u64) > left {
            return Err(Error::file(
                self.path,
                format!("corrupt: {what} is {n}, more than the {left} bytes left could hold"),
            ));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.count(what, 1)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| {
            Error::file(
                self.path,
                format!("corrupt: {what} at offset {} is not UTF-8", self.pos - n),
            )
        })
    }
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>(key)?[0]),
            1 => Value::I8(self.array::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => Value::Bool(self.array::<1>(key)?[0] != 0),
            8 => Value::String(self.string(key)?),
            9 if depth == 0 => {
                let elem = self.u32(key)?;
                let n = self.count(key, 1)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value(elem, key, depth + 1)?);
                }
                Value::Array(v)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => {
                return Err(Error::file(
                    self.path,
                    format!("corrupt: metadata '{key}' has unknown value type {other}"),
                ));
            }
        })
    }
}

impl Gguf {
    /// Reads and parses a GGUF file.
    ///
    /// # Errors
    /// Unreadable file, wrong magic, unsupported version, truncated or inconsistent header,
    /// unknown tensor types, tensors outside the file — each naming the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Gguf> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        Gguf::parse(path, data)
    }

    /// Parses GGUF bytes; `path` names them in errors.
    pub fn parse(path: &Path, data: Vec<u8>) -> Result<Gguf> {
        let mut r = Reader {
            bytes: &data,
            pos: 0,
            path,
        };
        if r.take(4, "magic")? != b"GGUF" {
            return Err(Error::file(
                path,
                "not a GGUF file (the first 4 bytes must be \"GGUF\")",
            ));
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(Error::file(
                path,
                format!("GGUF version {version} is not supported (2 and 3 are)"),
            ));
        }
        let n_tensors = r.count("tensor count", 24)?;
        let n_meta = r.count("metadata count", 12)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_meta {
            let key = r.string("metadata key")?;
            let ty = r.u32(&key)?;
            let v = r.value(ty, &key, 0)?;
            metadata.insert(key, v);
        }
        let mut infos = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = r.string("tensor name")?;
            let rank = r.u32(&name)? as usize;
            if rank == 0 || rank > 4 {
                return Err(Error::file(path, format!("corrupt: tensor '{name}' has rank {rank}")));
            }
            let mut dims = Vec::with_capacity(rank);
            for _ in 0..rank {
                dims.push(usize::try_from(r.u64(&name)?).unwrap_or(usize::MAX));
            }
            let code = r.u32(&name)?;
            let dtype = ggml_type(code).ok_or_else(|| {
                Error::file(
                    path,
                    format!(
                        "tensor '{name}' has ggml type {code}, which ferrite does not read (F32, F16, Q4_0, Q4_1, Q8_0)"
                    ),
                )
            })?;
            let offset = r.u64(&name)?;
            infos.push((name, dims, dtype, offset));
        }
        let align = metadata
            .get("general.alignment")
            .and_then(Value::as_u64)
            .unwrap_or(32)
            .max(1) as usize;
        let base = r.pos.div_ceil(align) * align;
        let mut tensors = BTreeMap::new();
        for (name, dims, dtype, offset) in infos {
            // Blocks never straddle rows: the innermost dimension is a whole number of blocks
            // (as ggml requires), so each row decodes on its own.
            let (row, outer) = dims.split_first().map_or((1, &[][..]), |(r, o)| (*r, o));
            let len = dtype
                .row_bytes(row)
                .and_then(|rb| outer.iter().try_fold(rb, |a, &d| a.checked_mul(d)))
                .ok_or_else(|| {
                    Error::file(
                        path,
                        format!("corrupt: tensor '{name}' {dims:?} rows are not a whole number of {dtype:?} blocks"),
                    )
                })?;
            // ggml aligns every tensor; a misaligned offset is a damaged table, not a layout.
            if offset % align as u64 != 0 {
                return Err(Error::file(
                    path,
                    format!("corrupt: tensor '{name}' offset {offset} is not a multiple of the alignment {align}"),
                ));
            }
            let start = usize::try_from(offset).ok().and_then(|o| base.checked_add(o));
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(start), Some(end)) if end <= data.len() => {
                    tensors.insert(
                        name.clone(),
                        TensorInfo {
                            name,
                            dims,
                            dtype,
                            start,
                            len,
                        },
                    );
                }
                _ => {
                    return Err(Error::file(
                        path,
                        format!(
                            "truncated: tensor '{name}' ({len} bytes at data offset {offset}) runs past the end of the file ({} bytes)",
                            data.len()
                        ),
                    ));
                }
            }
        }
        Ok(Gguf {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            data,
        })
    }

    /// A metadata value, or an error naming the missing key.
    pub fn get(&self, key: &str) -> Result<&Value> {
        self.metadata
            .get(key)
            .ok_or_else(|| Error::file(&self.path, format!("metadata key '{key}' is missing")))
    }

    /// A non-negative integer metadata value.
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        self.get(key)?
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| Error::file(&self.path, format!("metadata '{key}' is not an unsigned integer")))
    }

    /// A float metadata value.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.get(key)?
            .as_f64()
            .ok_or_else(|| Error::file(&self.path, format!("metadata '{key}' is not a number")))
    }

    /// A string-array metadata value.
    pub fn get_strings(&self, key: &str) -> Result<Vec<&str>> {
        let bad = || Error::file(&self.path, format!("metadata '{key}' is not an array of strings"));
        self.get(key)?
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|v| v.as_str().ok_or_else(bad))
            .collect()
    }

    /// `len` bytes of the file from `start` (a range a `TensorInfo` of this file gave).
    pub fn bytes(&self, start: usize, len: usize) -> &[u8] {
        &self.data[start..start + len]
    }

    /// A tensor's description and bytes.
    ///
    /// # Errors
    /// A tensor the file does not have (named).
    pub fn tensor(&self, name: &str) -> Result<(&TensorInfo, &[u8])> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::file(&self.path, format!("tensor '{name}' is missing")))?;
        Ok((info, &self.data[info.start..info.start + info.len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small GGUF v3 file: two metadata entries and one F32 tensor `[3, 2]`.
    fn tiny_file() -> Vec<u8> {
        let mut b = Vec::new();
        let s = |b: &mut Vec<u8>, t: &str| {
            b.extend((t.len() as u64).to_le_bytes());
            b.extend(t.as_bytes());
        };
        b.extend(b"GGUF");
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        s(&mut b, "general.architecture");
        b.extend(8u32.to_le_bytes());
        s(&mut b, "llama");
        s(&mut b, "tokenizer.ggml.tokens");
        b.extend(9u32.to_le_bytes());
        b.extend(8u32.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        s(&mut b, "a");
        s(&mut b, "b");
        s(&mut b, "w");
        b.extend(2u32.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        while b.len() % 32 != 0 {
            b.push(0);
        }
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            b.extend(v.to_le_bytes());
        }
        b
    }

    #[test]
    fn parses_metadata_and_tensors_and_rejects_damage() {
        let bytes = tiny_file();
        let g = Gguf::parse(Path::new("t.gguf"), bytes.clone()).unwrap();
        assert_eq!(g.get("general.architecture").unwrap().as_str(), Some("llama"));
        assert_eq!(g.get_strings("tokenizer.ggml.tokens").unwrap(), ["a", "b"]);
        let (info, data) = g.tensor("w").unwrap();
        assert_eq!(
            (info.dims.clone(), info.dtype, data.len()),
            (vec![3, 2], GgmlType::F32, 24)
        );
        assert_eq!(f32::from_le_bytes(data[20..24].try_into().unwrap()), 6.0);
        assert!(g.get("nope").unwrap_err().to_string().contains("'nope' is missing"));
        // Every truncation is an error naming the file, never a panic.
        for cut in [3, 10, 30, 60, 100, bytes.len() - 1] {
            let e = Gguf::parse(Path::new("t.gguf"), bytes[..cut].to_vec())
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains("t.gguf") && (e.contains("truncated") || e.contains("corrupt")),
                "{cut}: {e}"
            );
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(Gguf::parse(Path::new("t.gguf"), bad)
            .err()
            .unwrap()
            .to_string()
            .contains("not a GGUF file"));
        let mut huge = bytes;
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // metadata count
        assert!(Gguf::parse(Path::new("t.gguf"), huge)
            .err()
            .unwrap()
            .to_string()
            .contains("corrupt"));
    }
}
