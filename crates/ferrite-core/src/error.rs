//! The error type for everything a user can get wrong: shapes, dtypes, indices, files.
//!
//! Layer: core. Every message names the op (or file) and the offending shapes or values, so a user
//! can find the bad call from the message alone.

use crate::dtype::DType;
use std::fmt;

/// A ferrite error. Messages always name the op and the shapes/indices involved.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Two shapes that must agree do not.
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        detail: String,
    },
    /// Shapes that cannot be broadcast together.
    Broadcast {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
    },
    /// A dimension index outside `-ndim..ndim`.
    DimOutOfRange {
        op: &'static str,
        dim: isize,
        shape: Vec<usize>,
    },
    /// An index value outside the size of the indexed dimension.
    IndexOutOfRange {
        op: &'static str,
        index: i64,
        size: usize,
        dim: usize,
        shape: Vec<usize>,
    },
    /// A reshape whose element count differs.
    ElementCount {
        op: &'static str,
        from: Vec<usize>,
        to: Vec<isize>,
    },
    /// An op that does not support a dtype, or two dtypes that must match.
    DType { op: &'static str, detail: String },
    /// Backward called in a way that cannot produce gradients.
    Backward(String),
    /// A bad file: names the file and what is wrong with it.
    File { path: String, detail: String },
    /// Any other invalid argument, with a message naming the op.
    Invalid { op: &'static str, detail: String },
}

/// ferrite's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            detail: detail.into(),
        }
    }
    pub(crate) fn dtype(op: &'static str, detail: impl Into<String>) -> Self {
        Error::DType {
            op,
            detail: detail.into(),
        }
    }
    pub(crate) fn unsupported_dtype(op: &'static str, dtype: DType) -> Self {
        Error::DType {
            op,
            detail: format!("not supported for dtype {dtype:?}; convert with to_dtype(DType::F32) first"),
        }
    }
    pub(crate) fn shape(op: &'static str, lhs: &[usize], rhs: &[usize], detail: impl Into<String>) -> Self {
        Error::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            detail: detail.into(),
        }
    }
    /// An error about a file, naming it.
    pub fn file(path: impl AsRef<std::path::Path>, detail: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().display().to_string(),
            detail: detail.into(),
        }
    }

    /// This error unchanged if it already names a file; otherwise its message attributed to
    /// `path`, after `context` when given. For errors a file's contents cause deep inside (the
    /// model a config describes, a split that rounds to no rows): the user learns which file to
    /// edit, and an error about another file (a CSV line, a weight tensor) keeps its own name.
    #[must_use]
    pub fn attributed_to(self, path: impl AsRef<std::path::Path>, context: Option<&str>) -> Self {
        match self {
            Error::File { .. } => self,
            other => match context {
                Some(c) => Error::file(path, format!("{c}: {other}")),
                None => Error::file(path, other.to_string()),
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, lhs, rhs, detail } => {
                write!(f, "{op}: shape mismatch between {lhs:?} and {rhs:?}")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Error::Broadcast { op, lhs, rhs } => {
                write!(f, "{op}: shapes {lhs:?} and {rhs:?} cannot be broadcast together")
            }
            Error::DimOutOfRange { op, dim, shape } => {
                write!(
                    f,
                    "{op}: dimension {dim} is out of range for a tensor of shape {shape:?}"
                )
            }
            Error::IndexOutOfRange {
                op,
                index,
                size,
                dim,
                shape,
            } => write!(
                f,
                "{op}: index {index} is out of range for dimension {dim} of size {size} (shape {shape:?})"
            ),
            Error::ElementCount { op, from, to } => {
                let n: usize = from.iter().product();
                write!(
                    f,
                    "{op}: cannot reshape tensor of shape {from:?} ({n} elements) to {to:?}"
                )
            }
            Error::DType { op, detail } => write!(f, "{op}: {detail}"),
            Error::Backward(msg) => write!(f, "backward: {msg}"),
            Error::File { path, detail } => write!(f, "{path}: {detail}"),
            Error::Invalid { op, detail } => write!(f, "{op}: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

thread_local! {
    static CATCHING_PANICS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f`, turning a panic inside it into `Err(message)`.
///
/// For calls into dependencies that may panic on a malformed file they were handed (the
/// `tokenizers` crate trusts a deserialized `tokenizer.json`'s post-processor template, for one):
/// the caller turns the message into an error naming that file. While `f` runs,
/// [`panic_is_being_caught`] is true on this thread, so a process-wide panic hook (the CLI's)
/// can stay quiet about a panic that becomes an ordinary error.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    CATCHING_PANICS.with(|c| c.set(c.get() + 1));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING_PANICS.with(|c| c.set(c.get() - 1));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    })
}

/// Whether the current thread is inside [`catch_panic`].
pub fn panic_is_being_caught() -> bool {
    CATCHING_PANICS.with(|c| c.get() > 0)
}

#[cfg(test)]
mod catch_tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_an_error_and_the_flag_is_scoped() {
        assert!(!panic_is_being_caught());
        assert_eq!(catch_panic(|| 3), Ok(3));
        let e = catch_panic(|| {
            assert!(panic_is_being_caught());
            panic!("bad template {}", 7)
        });
        assert_eq!(e, Err("bad template 7".to_string()));
        assert!(!panic_is_being_caught());
    }
}
