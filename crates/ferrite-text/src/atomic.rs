//! Atomic file writes: write a temp file in the destination's directory, then rename it over the destination.
//!
//! Layer: text. A crash or a full disk mid-write leaves the old file intact instead of a truncated one; the temp file
//! lives in the same directory because `rename` is only atomic within one filesystem.

use ferrite_core::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically; on failure the temp file is removed and the error names `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path)?;
    let result = write_and_sync(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::file(path, format!("cannot write: {e}"))
    })
}

/// `dir/.name.<pid>.<n>.tmp`: hidden, unique per process and call so two writers never share a temp file, and
/// matching `*.tmp` (git-ignored) if one is ever left behind.
fn temp_path(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "cannot write: the path has no file name"))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

fn write_and_sync(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("ferrite_text_atomic_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_directory_names_the_file() {
        let path = Path::new("/nonexistent_ferrite_dir/out.txt");
        let err = write_atomic(path, b"x").unwrap_err().to_string();
        assert!(err.contains("/nonexistent_ferrite_dir/out.txt"), "{err}");
    }
}
