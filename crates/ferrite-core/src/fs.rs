//! Atomic file writes: every file ferrite saves (checkpoints, configs, tokenizers, run summaries)
//! goes through [`write_atomic`], so a crash, `kill -9` or a full disk mid-write leaves the old file
//! intact instead of a truncated one.
//!
//! Layer: core (a utility below every crate that writes files; no formats here).

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically: a hidden temp file in the same directory (`rename` is only
/// atomic within one filesystem), fsync of the file, rename over `path`, fsync of the directory
/// (so the rename itself survives a power loss).
///
/// # Errors
/// Any I/O failure, naming `path`; the temp file is removed.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let tmp = temp_path(path)?;
    let result = write_and_sync(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::file(path, format!("cannot write: {e}")));
    }
    sync_dir(path);
    Ok(())
}

/// `dir/.name.<pid>.<n>.tmp`: unique per process and call, so two writers of one path (threads or
/// processes) never share a temp file, and matching `*.tmp` (git-ignored) if one is ever left
/// behind by a crash.
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

/// Removes temp files that [`write_atomic`] left in `dir` when its process was killed mid-write
/// (`kill -9` during a checkpoint): `.name.<pid>.<n>.tmp` files whose process is gone. A temp file
/// of a live process (a concurrent writer) is kept; where liveness cannot be checked (no `/proc`),
/// only files older than an hour go. Returns how many were removed; unreadable entries are skipped.
pub fn remove_stale_temps(dir: impl AsRef<Path>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.as_ref()) else {
        return 0;
    };
    let proc_fs = Path::new("/proc/self").exists();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        let stale = if proc_fs {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600)
        };
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The pid in a `write_atomic` temp name `.name.<pid>.<n>.tmp`, if `name` is one.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let (_n, pid, base) = (parts.next()?.parse::<u64>().ok()?, parts.next()?, parts.next()?);
    (!base.is_empty()).then_some(())?;
    pid.parse().ok()
}

fn write_and_sync(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Flushes the directory entry of `path` (best effort: some filesystems refuse to open or sync a
/// directory, and the data itself is already synced).
fn sync_dir(path: &Path) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_of_dead_writers_are_removed() {
        let dir = std::env::temp_dir().join(format!("ferrite_stale_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // pid 4294967 never exists (above Linux's pid_max limit of 2^22).
        let dead = dir.join(".checkpoint.safetensors.4294967.3.tmp");
        let mine = dir.join(format!(".checkpoint.safetensors.{}.0.tmp", std::process::id()));
        let other = dir.join("notes.4294967.1.tmp.txt");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        if Path::new("/proc/self").exists() {
            assert_eq!(remove_stale_temps(&dir), 1);
            assert!(!dead.exists() && mine.exists() && other.exists());
        }
        assert_eq!(temp_owner(".a.b.12.7.tmp"), Some(12));
        assert_eq!(temp_owner(".12.7.tmp"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_replaces_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("ferrite_atomic_{}", std::process::id()));
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
    fn concurrent_writers_of_one_path_never_mix() {
        let dir = std::env::temp_dir().join(format!("ferrite_atomic_mt_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shared.bin");
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, &vec![t; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|&b| b == bytes[0]), "a file mixes two writers");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_directory_names_the_file() {
        let path = Path::new("/nonexistent_ferrite_dir/out.txt");
        let err = write_atomic(path, b"x").unwrap_err().to_string();
        assert!(err.contains("/nonexistent_ferrite_dir/out.txt"), "{err}");
    }
}
