//! WAV files: RIFF/WAVE reading (16-bit PCM, plain or `WAVE_FORMAT_EXTENSIBLE` as sox, ffmpeg and
//! Audacity write it; any channel count, averaged to mono) and band-limited resampling, for speech
//! models.
//!
//! Layer: models (formats). Every chunk length is checked against the bytes that are there, and
//! the header is not trusted: a sample rate outside [`MIN_RATE`]..=[`MAX_RATE`] (a 1 Hz header
//! would turn a short file into hours of audio) is an error; errors name the file.

use ferrite_core::{Error, Result};
use std::f64::consts::PI;
use std::path::Path;

/// The lowest sample rate accepted (narrow-band telephone speech is 8 kHz).
pub const MIN_RATE: usize = 1_000;
/// The highest sample rate accepted (studio audio goes to 384 kHz).
pub const MAX_RATE: usize = 384_000;

/// `WAVE_FORMAT_PCM` and `WAVE_FORMAT_EXTENSIBLE` (whose sub-format GUID starts with the real
/// format code).
const FORMAT_PCM: u16 = 1;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Mono samples in [−1, 1] and their rate.
pub struct Audio {
    pub samples: Vec<f32>,
    pub rate: usize,
}

/// Reads a RIFF/WAVE file of 16-bit PCM (channels averaged to mono).
///
/// # Errors
/// Not a WAV file, a format other than 16-bit PCM, or truncated chunks — naming the file.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Audio> {
    let path = path.as_ref();
    let b = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    parse_wav(path, &b)
}

/// Parses WAV bytes; `path` names them in errors.
///
/// # Errors
/// As [`read_wav`].
pub fn parse_wav(path: &Path, b: &[u8]) -> Result<Audio> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(Error::file(path, "not a WAV file (no RIFF/WAVE header)"));
    }
    let (mut pos, mut fmt, mut data) = (12, None, None);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
        let body = pos + 8;
        // espeak-ng writes 0x7fffffff as the data length when it streams; take what is there.
        let end = body.saturating_add(len).min(b.len());
        match id {
            b"fmt " if end - body >= 16 => fmt = Some(&b[body..end]),
            b"data" => data = Some(&b[body..end]),
            _ => {}
        }
        pos = end + (len & 1);
    }
    let fmt = fmt.ok_or_else(|| Error::file(path, "no fmt chunk"))?;
    let data = data.ok_or_else(|| Error::file(path, "no data chunk"))?;
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let (mut format, channels, bits) = (u16_at(0), u16_at(2) as usize, u16_at(14));
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]) as usize;
    if format == FORMAT_EXTENSIBLE {
        // cbSize (16), valid bits (18), channel mask (20), sub-format GUID (24..40).
        if fmt.len() < 40 {
            return Err(Error::file(
                path,
                format!("WAVE_FORMAT_EXTENSIBLE fmt chunk is {} bytes, needs 40", fmt.len()),
            ));
        }
        format = u16_at(24);
        let valid_bits = u16_at(18);
        if format == FORMAT_PCM && valid_bits != 0 && valid_bits != 16 {
            return Err(Error::file(
                path,
                format!("only 16-bit PCM WAV is supported (16-bit containers holding {valid_bits}-bit samples)"),
            ));
        }
    }
    if format != FORMAT_PCM || bits != 16 || channels == 0 {
        return Err(Error::file(
            path,
            format!("only 16-bit PCM WAV is supported (format {format}, {bits} bits, {channels} channels)"),
        ));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(Error::file(
            path,
            format!("sample rate {rate} Hz in the header is outside {MIN_RATE}–{MAX_RATE} Hz: a damaged or mislabelled file"),
        ));
    }
    let frames = data.len() / (2 * channels);
    if frames == 0 {
        // Whisper given silence-padding alone still "hears" a word; there is nothing to read.
        return Err(Error::file(
            path,
            "holds no audio (its data chunk has no whole sample frame)",
        ));
    }
    let samples = (0..frames)
        .map(|f| {
            let s: f32 = (0..channels)
                .map(|c| {
                    let i = 2 * (f * channels + c);
                    i16::from_le_bytes([data[i], data[i + 1]]) as f32 / 32768.0
                })
                .sum();
            s / channels as f32
        })
        .collect();
    Ok(Audio { samples, rate })
}

/// Band-limited resampling to `to` Hz: a Hann-windowed sinc low-pass at the lower Nyquist
/// frequency, 16 zero crossings each side.
pub fn resample(x: &[f32], from: usize, to: usize) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let ratio = to as f64 / from as f64;
    let cutoff = ratio.min(1.0); // of the input Nyquist
    let half = (16.0 / cutoff).ceil() as isize;
    let n_out = (x.len() as f64 * ratio).round() as usize;
    (0..n_out)
        .map(|n| {
            let t = n as f64 / ratio;
            let centre = t.floor() as isize;
            let mut acc = 0.0;
            for k in centre - half + 1..=centre + half {
                if k < 0 || k as usize >= x.len() {
                    continue;
                }
                let d = t - k as f64;
                let w = 0.5 + 0.5 * (PI * d / half as f64).cos();
                let arg = PI * d * cutoff;
                let sinc = if arg.abs() < 1e-9 { 1.0 } else { arg.sin() / arg };
                acc += x[k as usize] as f64 * cutoff * sinc * w;
            }
            acc as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(samples: &[i16], rate: u32, channels: u16) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut b = b"RIFF".to_vec();
        b.extend((36 + data.len() as u32).to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(channels.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * 2 * channels as u32).to_le_bytes());
        b.extend((2 * channels).to_le_bytes());
        b.extend(16u16.to_le_bytes());
        b.extend(b"data");
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn wav_reading_and_bad_headers() {
        let b = wav_bytes(&[0, 16384, -16384, 32767], 8000, 2);
        let a = parse_wav(Path::new("x.wav"), &b).unwrap();
        assert_eq!(a.rate, 8000);
        // Stereo frames are averaged: (0 + 0.5)/2 and (−0.5 + 32767/32768)/2.
        assert_eq!(a.samples, [0.25, (-16384.0 + 32767.0) / 32768.0 / 2.0]);
        let e = parse_wav(Path::new("x.wav"), b"RIFX....WAVE")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("x.wav") && e.contains("not a WAV file"), "{e}");
        // The same audio as WAVE_FORMAT_EXTENSIBLE (sox's and ffmpeg's layout) reads the same.
        let mut ext = b[..20].to_vec();
        ext[16..20].copy_from_slice(&40u32.to_le_bytes());
        ext.extend(0xFFFEu16.to_le_bytes());
        ext.extend(&b[22..36]); // channels, rate, byte rate, block align, bits
        ext.extend(22u16.to_le_bytes()); // cbSize
        ext.extend(16u16.to_le_bytes()); // valid bits
        ext.extend(3u32.to_le_bytes()); // channel mask: front left + right
        ext.extend([1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]); // KSDATAFORMAT_SUBTYPE_PCM
        ext.extend(&b[36..]);
        let len = (ext.len() - 8) as u32;
        ext[4..8].copy_from_slice(&len.to_le_bytes());
        let e = parse_wav(Path::new("ext.wav"), &ext).unwrap();
        assert_eq!((e.rate, &e.samples), (a.rate, &a.samples));
        // A header claiming 1 Hz (17 hours for a 1 MB file) is refused, naming the rate.
        let mut slow = b.clone();
        slow[24..28].copy_from_slice(&1u32.to_le_bytes());
        let e = parse_wav(Path::new("x.wav"), &slow).err().unwrap().to_string();
        assert!(e.contains("x.wav") && e.contains("sample rate 1 Hz"), "{e}");
        let empty = wav_bytes(&[], 8000, 1);
        let e = parse_wav(Path::new("x.wav"), &empty).err().unwrap().to_string();
        assert!(e.contains("x.wav") && e.contains("holds no audio"), "{e}");
        let mut float = b.clone();
        float[20] = 3; // IEEE float format
        assert!(parse_wav(Path::new("x.wav"), &float)
            .err()
            .unwrap()
            .to_string()
            .contains("16-bit PCM"));
    }
}
