//! TensorBoard logs: event files `tensorboard --logdir runs/` reads — scalars (every
//! evaluation's logs and each step's loss) and histograms of the parameters — written without
//! TensorFlow.
//!
//! Layer: train. Format: a file `events.out.tfevents.<unix time>.<host>` of TFRecords, each
//! `u64 length (LE) | u32 masked CRC32C of the length | data | u32 masked CRC32C of the data`,
//! the mask being `((crc >> 15) | (crc << 17)) + 0xa282ead8`; each record an `Event` protobuf
//! (`wall_time` = 1 double, `step` = 2 int64, `file_version` = 3 string, `summary` = 5), the first
//! one `file_version: "brain.Event:2"`. A `Summary` holds `Value`s (`tag` = 1, `simple_value` =
//! 2 float, `histo` = 5 `HistogramProto`: min 1, max 2, num 3, sum 4, sum_squares 5,
//! bucket_limit 6 and bucket 7 packed doubles). The protobuf encoding is written by hand: these
//! few fields do not need a code generator.

use crate::callbacks::{Callback, Context};
use crate::history::Logs;
use ferrite_core::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// CRC32C of `data`, masked as TFRecord stores it (so a CRC of CRCs stays well distributed).
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Protobuf wire encoding of the few fields an event needs.
#[derive(Default)]
struct Proto(Vec<u8>);

impl Proto {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }
    fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend(v.to_le_bytes());
    }
    fn float(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.0.extend(v.to_le_bytes());
    }
    fn int(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(v as u64);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend(b);
    }
    fn packed_doubles(&mut self, field: u32, vs: &[f64]) {
        let mut p = Vec::with_capacity(vs.len() * 8);
        vs.iter().for_each(|v| p.extend(v.to_le_bytes()));
        self.bytes(field, &p);
    }
}

/// Counts of `values` in `buckets` equal-width buckets from their minimum to their maximum, as
/// a `HistogramProto`.
fn histogram_proto(values: &[f32], buckets: usize) -> Vec<u8> {
    let finite: Vec<f64> = values.iter().filter(|v| v.is_finite()).map(|&v| v as f64).collect();
    let (min, max) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let (min, max) = if finite.is_empty() { (0.0, 0.0) } else { (min, max) };
    let width = (max - min) / buckets as f64;
    let mut counts = vec![0.0; buckets];
    for &v in &finite {
        let i = if width > 0.0 { ((v - min) / width) as usize } else { 0 };
        counts[i.min(buckets - 1)] += 1.0;
    }
    let limits: Vec<f64> = (1..=buckets).map(|i| min + width * i as f64).collect();
    let mut h = Proto::default();
    h.double(1, min);
    h.double(2, max);
    h.double(3, finite.len() as f64);
    h.double(4, finite.iter().sum());
    h.double(5, finite.iter().map(|v| v * v).sum());
    h.packed_doubles(6, &limits);
    h.packed_doubles(7, &counts);
    h.0
}

/// An open event file.
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<unix time>.<host>` and writes its version record.
    ///
    /// # Errors
    /// An uncreatable directory or file (named).
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
            .unwrap_or_else(|| "localhost".into());
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut path = dir.join(format!("events.out.tfevents.{secs}.{host}"));
        let mut n = 1;
        while path.exists() {
            path = dir.join(format!("events.out.tfevents.{secs}.{host}.{n}"));
            n += 1;
        }
        let file = File::create(&path).map_err(|e| Error::file(&path, format!("cannot create: {e}")))?;
        let mut w = EventWriter {
            path,
            file: BufWriter::new(file),
        };
        let mut e = Proto::default();
        e.double(1, wall_time());
        e.bytes(3, b"brain.Event:2");
        w.record(&e.0)?;
        w.flush()?;
        Ok(w)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut framed = Vec::with_capacity(data.len() + 16);
        framed.extend(len);
        framed.extend(masked_crc(&len).to_le_bytes());
        framed.extend(data);
        framed.extend(masked_crc(data).to_le_bytes());
        self.file
            .write_all(&framed)
            .map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))
    }

    /// One summary value at `step`.
    fn summary(&mut self, step: u64, tag: &str, value: impl FnOnce(&mut Proto)) -> Result<()> {
        let mut v = Proto::default();
        v.bytes(1, tag.as_bytes());
        value(&mut v);
        let mut s = Proto::default();
        s.bytes(1, &v.0);
        let mut e = Proto::default();
        e.double(1, wall_time());
        e.int(2, step as i64);
        e.bytes(5, &s.0);
        self.record(&e.0)
    }

    /// A scalar (`simple_value`) under `tag` at `step`.
    ///
    /// # Errors
    /// A failed write (named).
    pub fn scalar(&mut self, tag: &str, step: u64, value: f32) -> Result<()> {
        self.summary(step, tag, |v| v.float(2, value))
    }

    /// A histogram of `values` (30 equal-width buckets) under `tag` at `step`.
    ///
    /// # Errors
    /// A failed write (named).
    pub fn histogram(&mut self, tag: &str, step: u64, values: &[f32]) -> Result<()> {
        let h = histogram_proto(values, 30);
        self.summary(step, tag, |v| v.bytes(5, &h))
    }

    /// Pushes buffered records to the file.
    ///
    /// # Errors
    /// A failed write (named).
    pub fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))
    }
}

/// The callback: each step's loss as `batch_loss`, every evaluation's logs under their own
/// names (`loss`, `val_loss`, `lr`, `val_accuracy`, …) at the global step, and with
/// `histograms` a histogram of every parameter at each evaluation.
pub struct TensorBoard {
    pub dir: PathBuf,
    pub histograms: bool,
    writer: Option<EventWriter>,
}

impl TensorBoard {
    /// Event files go to `dir` (a run directory; `tensorboard --logdir` its parent).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TensorBoard {
            dir: dir.into(),
            histograms: true,
            writer: None,
        }
    }

    /// The event file, once training has begun.
    pub fn path(&self) -> Option<&Path> {
        self.writer.as_ref().map(EventWriter::path)
    }
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, _ctx: &mut Context) -> Result<()> {
        self.writer = Some(EventWriter::create(&self.dir)?);
        Ok(())
    }

    fn on_batch_end(&mut self, loss: f64, ctx: &mut Context) -> Result<()> {
        if let Some(w) = &mut self.writer {
            w.scalar("batch_loss", ctx.step.state.step, loss as f32)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, logs: &Logs, ctx: &mut Context) -> Result<bool> {
        let Some(w) = &mut self.writer else { return Ok(false) };
        let step = ctx.step.state.step;
        for (k, v) in logs {
            if !matches!(k.as_str(), "step" | "epoch" | "seconds") {
                w.scalar(k, step, *v as f32)?;
            }
        }
        if self.histograms {
            for (name, p) in ctx.step.parameters() {
                w.histogram(&name, step, &p.to_vec::<f32>()?)?;
            }
        }
        w.flush()?;
        Ok(false)
    }

    fn on_train_end(&mut self, _ctx: &mut Context) -> Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads an event file back, checking both CRCs of every record: (step, tag, value) of its
    /// scalars, the tags of its histograms, and its version string.
    pub(crate) fn read_events(path: &Path) -> (String, Vec<(u64, String, f32)>, Vec<String>) {
        let b = std::fs::read(path).unwrap();
        let (mut pos, mut version, mut scalars, mut histos) = (0, String::new(), Vec::new(), Vec::new());
        while pos < b.len() {
            let len_bytes = &b[pos..pos + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            assert_eq!(
                u32::from_le_bytes(b[pos + 8..pos + 12].try_into().unwrap()),
                masked_crc(len_bytes)
            );
            let data = &b[pos + 12..pos + 12 + len];
            let crc = u32::from_le_bytes(b[pos + 12 + len..pos + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc(data));
            pos += 16 + len;
            let fields = parse(data);
            let step = fields.iter().find(|f| f.0 == 2).map_or(0, |f| f.1);
            if let Some(f) = fields.iter().find(|f| f.0 == 3) {
                version = String::from_utf8(f.2.clone()).unwrap();
            }
            if let Some(f) = fields.iter().find(|f| f.0 == 5) {
                let value = &parse(&f.2)[0].2;
                let v = parse(value);
                let tag = String::from_utf8(v[0].2.clone()).unwrap();
                match v[1].0 {
                    2 => scalars.push((step, tag, f32::from_le_bytes(v[1].2[..4].try_into().unwrap()))),
                    5 => histos.push(tag),
                    other => panic!("unexpected field {other}"),
                }
            }
        }
        (version, scalars, histos)
    }

    /// (field, varint value, bytes) of each field of a message.
    fn parse(b: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
        let varint = |pos: &mut usize| {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let byte = b[*pos];
                *pos += 1;
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        };
        let (mut pos, mut out) = (0, Vec::new());
        while pos < b.len() {
            let key = varint(&mut pos);
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => out.push((field, varint(&mut pos), Vec::new())),
                1 => {
                    out.push((field, 0, b[pos..pos + 8].to_vec()));
                    pos += 8;
                }
                5 => {
                    out.push((field, 0, b[pos..pos + 4].to_vec()));
                    pos += 4;
                }
                2 => {
                    let n = varint(&mut pos) as usize;
                    out.push((field, 0, b[pos..pos + n].to_vec()));
                    pos += n;
                }
                w => panic!("wire type {w}"),
            }
        }
        out
    }

    #[test]
    fn crc32c_and_records_read_back() {
        // The check value of CRC-32C.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let dir = std::env::temp_dir().join(format!("ferrite-tb-{}", std::process::id()));
        let mut w = EventWriter::create(&dir).unwrap();
        w.scalar("loss", 3, 0.25).unwrap();
        w.scalar("val_loss", 300, -1.5).unwrap();
        w.histogram("0.weight", 3, &[0.0, 1.0, 1.0, 2.0, f32::NAN]).unwrap();
        w.flush().unwrap();
        let (version, scalars, histos) = read_events(w.path());
        assert_eq!(version, "brain.Event:2");
        assert_eq!(
            scalars,
            vec![(3, "loss".to_string(), 0.25), (300, "val_loss".to_string(), -1.5)]
        );
        assert_eq!(histos, vec!["0.weight".to_string()]);
        std::fs::remove_dir_all(dir).ok();
    }
}
