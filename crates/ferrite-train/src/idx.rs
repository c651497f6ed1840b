//! IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed: a big-endian header
//! (two zero bytes, a type code, the number of dims, each dim as u32) followed by the values.
//!
//! Layer: train. Only unsigned-byte data (type 0x08) is needed for image datasets. Every problem
//! names the file: a bad magic number, an unsupported type, or a payload shorter or longer than
//! the header promises (a truncated download).

use ferrite_core::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file; a `.gz` name (or gzip magic bytes) means gzip-compressed.
///
/// # Errors
/// Unreadable or corrupt gzip, bad header, unsupported element type, or a payload whose length
/// differs from the product of the dims — each naming the file.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::file(path, format!("corrupt or truncated gzip data: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(path, &bytes)
}

/// Parses IDX bytes; `path` is used in error messages.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::file(path, "not an IDX file (the first two bytes must be zero)"));
    }
    if bytes[2] != 0x08 {
        return Err(Error::file(
            path,
            format!(
                "IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                bytes[2]
            ),
        ));
    }
    let nd = bytes[3] as usize;
    let header = 4 + 4 * nd;
    if nd == 0 || bytes.len() < header {
        return Err(Error::file(path, format!("IDX header for {nd} dims is truncated")));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let have = bytes.len() - header;
    if want != Some(have) {
        return Err(Error::file(
            path,
            format!(
                "IDX header declares dims {dims:?} ({} bytes of data) but the file holds {have} bytes{}",
                want.map_or("too many".to_string(), |w| w.to_string()),
                if want.is_some_and(|w| have < w) {
                    " (truncated?)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// The IDX file `stem` in `dir`, compressed (`stem.gz`) or not.
///
/// # Errors
/// Neither file exists (both names are given).
pub fn find_idx(dir: &Path, stem: &str) -> Result<PathBuf> {
    let plain = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    [gz, plain]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| Error::file(dir, format!("no {stem} or {stem}.gz in this directory")))
}

/// Images `[N, rows, cols]` and labels `[N]` of one split (`train` or `t10k`), checked to agree.
///
/// # Errors
/// Missing or bad files, or image and label counts that differ.
pub fn read_idx_split(dir: &Path, split: &str) -> Result<(IdxArray, IdxArray)> {
    let ip = find_idx(dir, &format!("{split}-images-idx3-ubyte"))?;
    let lp = find_idx(dir, &format!("{split}-labels-idx1-ubyte"))?;
    let (images, labels) = (read_idx(&ip)?, read_idx(&lp)?);
    if images.dims.len() != 3 {
        return Err(Error::file(
            &ip,
            format!("expected [N, rows, cols] images, got dims {:?}", images.dims),
        ));
    }
    if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
        return Err(Error::file(
            &lp,
            format!(
                "{:?} labels do not match {} images in {}",
                labels.dims,
                images.dims[0],
                ip.display()
            ),
        ));
    }
    Ok((images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
        b.extend(data);
        b
    }

    #[test]
    fn parses_header_and_payload() {
        let a = parse_idx(Path::new("x"), &idx(&[2, 1, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.dims, vec![2, 1, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn bad_files_name_the_file_and_problem() {
        let e = parse_idx(Path::new("imgs.idx"), &idx(&[2, 2, 2], &[0; 5]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("imgs.idx") && e.contains("[2, 2, 2]") && e.contains("truncated"),
            "{e}"
        );
        let e = parse_idx(Path::new("a"), b"PK\x03\x04").unwrap_err().to_string();
        assert!(e.contains("not an IDX file"), "{e}");
        let mut f = idx(&[1], &[0; 4]);
        f[2] = 0x0d;
        assert!(parse_idx(Path::new("a"), &f).unwrap_err().to_string().contains("0x0d"));
        let dir = std::env::temp_dir().join(format!("ferrite-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = read_idx_split(&dir, "train").unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte"), "{e}");
        // A gzip file cut short.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &idx(&[100, 28, 28], &vec![7u8; 78400])).unwrap();
        let bytes = gz.finish().unwrap();
        let p = dir.join("cut.gz");
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_idx(&p).unwrap_err().to_string();
        assert!(e.contains("cut.gz"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
