//! CTranslate2 model files (`model.bin`, format version 6): named variables with their dims
//! and raw data, and aliases (e.g. Whisper's output projection tied to the embeddings).
//!
//! Layer: models (formats). Layout (little-endian): u32 version, string spec name, u32 spec revision, u32
//! variable count; each variable a string name, u8 rank, u32 dims, u8 dtype, u32 byte count and
//! the bytes; then u32 alias count and (alias, target) string pairs. Strings are a u16 length
//! (trailing NUL included) and bytes. Float variables are returned as f32 whatever their
//! storage (f32 or f16); every length is checked against the file.

use ferrite_core::{Error, Result, Tensor};
use ferrite_kernels::quant::f16_to_f32;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One stored variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    pub dims: Vec<usize>,
    /// CTranslate2 dtype code: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16.
    pub dtype: u8,
    pub data: Vec<u8>,
}

/// A parsed `model.bin`.
pub struct Ct2Model {
    pub path: PathBuf,
    pub spec: String,
    pub variables: BTreeMap<String, Variable>,
    pub aliases: BTreeMap<String, String>,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| {
            Error::file(
                self.path,
                format!("truncated: {what} needs {n} bytes at offset {}", self.pos),
            )
        })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u16(what)? as usize;
        let s = self.take(n, what)?;
        let s = s.strip_suffix(&[0]).unwrap_or(s);
        String::from_utf8(s.to_vec()).map_err(|_| Error::file(self.path, format!("corrupt: {what} is not UTF-8")))
    }
}

impl Ct2Model {
    /// Reads a CTranslate2 `model.bin`.
    ///
    /// # Errors
    /// Unreadable, truncated or inconsistent files (named), unsupported versions.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let mut c = Cursor {
            b: &bytes,
            pos: 0,
            path,
        };
        let version = c.u32("version")?;
        if !(5..=6).contains(&version) {
            return Err(Error::file(
                path,
                format!("CTranslate2 model version {version} is not supported (5, 6 are)"),
            ));
        }
        let spec = c.string("spec name")?;
        let _revision = c.u32("spec revision")?;
        let n = c.u32("variable count")? as usize;
        let mut variables = BTreeMap::new();
        for _ in 0..n {
            let name = c.string("variable name")?;
            let rank = c.u8(&name)? as usize;
            let dims = (0..rank)
                .map(|_| c.u32(&name).map(|d| d as usize))
                .collect::<Result<Vec<_>>>()?;
            let dtype = c.u8(&name)?;
            let len = c.u32(&name)? as usize;
            let width = match dtype {
                0 | 3 => 4,
                1 => 1,
                2 | 4 | 5 => 2,
                other => {
                    return Err(Error::file(
                        path,
                        format!("variable '{name}' has unknown dtype {other}"),
                    ));
                }
            };
            let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if count.and_then(|c| c.checked_mul(width)) != Some(len) {
                let count = count.map_or("too many".to_string(), |c| c.to_string());
                return Err(Error::file(
                    path,
                    format!("corrupt: variable '{name}' {dims:?} holds {len} bytes, not {count} × {width}"),
                ));
            }
            let data = c.take(len, &name)?.to_vec();
            variables.insert(name, Variable { dims, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        if c.pos < bytes.len() {
            let n = c.u32("alias count")? as usize;
            for _ in 0..n {
                let alias = c.string("alias")?;
                let target = c.string("alias target")?;
                aliases.insert(alias, target);
            }
        }
        Ok(Ct2Model {
            path: path.to_path_buf(),
            spec,
            variables,
            aliases,
        })
    }

    fn variable(&self, name: &str) -> Result<&Variable> {
        let name = self.aliases.get(name).map_or(name, String::as_str);
        self.variables
            .get(name)
            .ok_or_else(|| Error::file(&self.path, format!("variable '{name}' is missing")))
    }

    /// A float variable as an f32 tensor of its dims.
    ///
    /// # Errors
    /// A missing or non-float variable (named).
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let v = self.variable(name)?;
        let vals: Vec<f32> = match v.dtype {
            0 => v
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            4 => v
                .data
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            5 => v
                .data
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            d => {
                return Err(Error::file(
                    &self.path,
                    format!("variable '{name}' has dtype {d}, not a float"),
                ));
            }
        };
        Tensor::from_vec(vals, v.dims.clone())
    }

    /// An integer scalar variable (e.g. `encoder/num_heads`).
    ///
    /// # Errors
    /// A missing or non-scalar variable.
    pub fn scalar(&self, name: &str) -> Result<i64> {
        let v = self.variable(name)?;
        Ok(match (v.dtype, v.data.len()) {
            (1, 1) => v.data[0] as i8 as i64,
            (2, 2) => i16::from_le_bytes([v.data[0], v.data[1]]) as i64,
            (3, 4) | (0, 4) if v.dtype == 3 => i32::from_le_bytes([v.data[0], v.data[1], v.data[2], v.data[3]]) as i64,
            _ => {
                return Err(Error::file(
                    &self.path,
                    format!("variable '{name}' is not an integer scalar"),
                ));
            }
        })
    }
}
