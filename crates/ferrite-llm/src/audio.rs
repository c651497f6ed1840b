//! Audio for speech models: WAV reading (16-bit PCM, any rate and channel count), resampling to
//! 16 kHz, and Whisper's log-mel spectrogram.
//!
//! Layer: llm. The spectrogram follows openai/whisper's `log_mel_spectrogram`: a 400-point STFT
//! (periodic Hann window, hop 160, centred frames with reflect padding, the last frame dropped),
//! power spectrum, 80 mel filters (Slaney scale and area normalization, as librosa's defaults),
//! log10 clamped at 1e-10, floored at the maximum − 8, then (x + 4) / 4.

use ferrite_core::{Error, Result};
use rayon::prelude::*;
use std::f64::consts::PI;
use std::path::Path;

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const N_MELS: usize = 80;

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
    let (format, channels, bits) = (u16_at(0), u16_at(2) as usize, u16_at(14));
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]) as usize;
    if format != 1 || bits != 16 || channels == 0 || rate == 0 {
        return Err(Error::file(
            path,
            format!("only 16-bit PCM WAV is supported (format {format}, {bits} bits, {channels} channels, {rate} Hz)"),
        ));
    }
    let frames = data.len() / (2 * channels);
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

fn hz_to_mel(f: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    if f < min_log_hz {
        f / f_sp
    } else {
        min_log_hz / f_sp + (f / min_log_hz).ln() / (6.4f64.ln() / 27.0)
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    if m < min_log_mel {
        m * f_sp
    } else {
        min_log_hz * ((m - min_log_mel) * (6.4f64.ln() / 27.0)).exp()
    }
}

/// librosa's `filters.mel(sr=16000, n_fft=400, n_mels=80)`: `[80, 201]`, Slaney-normalized.
pub fn mel_filters() -> Vec<Vec<f64>> {
    let bins = N_FFT / 2 + 1;
    let fft_hz: Vec<f64> = (0..bins)
        .map(|k| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE as f64 / 2.0));
    let pts: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    (0..N_MELS)
        .map(|i| {
            let norm = 2.0 / (pts[i + 2] - pts[i]);
            fft_hz
                .iter()
                .map(|&f| {
                    let lower = (f - pts[i]) / (pts[i + 1] - pts[i]);
                    let upper = (pts[i + 2] - f) / (pts[i + 2] - pts[i + 1]);
                    lower.min(upper).max(0.0) * norm
                })
                .collect()
        })
        .collect()
}

/// Whisper's log-mel spectrogram of 16 kHz samples: `[80, len / 160]` row-major.
pub fn log_mel(samples: &[f32]) -> Vec<f32> {
    let n = samples.len();
    let pad = N_FFT / 2;
    // Reflect padding (numpy/torch "reflect": the edge sample is not repeated).
    let at = |i: isize| -> f32 {
        let len = n as isize;
        if len <= 1 {
            return samples.first().copied().unwrap_or(0.0);
        }
        let mut j = i;
        while j < 0 || j >= len {
            j = if j < 0 { -j } else { 2 * (len - 1) - j };
        }
        samples[j as usize]
    };
    let frames = n / HOP; // 1 + n/HOP frames, the last one dropped
    let window: Vec<f64> = (0..N_FFT)
        .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / N_FFT as f64).cos())
        .collect();
    let bins = N_FFT / 2 + 1;
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..N_FFT)
        .map(|i| {
            let a = 2.0 * PI * i as f64 / N_FFT as f64;
            (a.cos(), a.sin())
        })
        .unzip();
    let filters = mel_filters();
    // Frames are independent: computed in parallel, each into its own column. A frame whose
    // window holds only the zero padding past the end has zero power (Whisper pads short clips
    // with 30 s of silence), so its DFT is skipped.
    let last_sample = samples.iter().rposition(|&v| v != 0.0).map_or(0, |i| i + 1);
    let frame_power = |t: usize| -> Vec<f64> {
        let start = (t * HOP) as isize - pad as isize;
        if start > last_sample as isize + pad as isize {
            return vec![0.0; N_MELS];
        }
        let frame: Vec<f64> = (0..N_FFT).map(|i| at(start + i as isize) as f64 * window[i]).collect();
        let power: Vec<f64> = (0..bins)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, &f) in frame.iter().enumerate() {
                    let idx = (k * i) % N_FFT;
                    re += f * cos[idx];
                    im -= f * sin[idx];
                }
                re * re + im * im
            })
            .collect();
        filters
            .iter()
            .map(|filt| filt.iter().zip(&power).map(|(w, p)| w * p).sum())
            .collect()
    };
    let columns: Vec<Vec<f64>> =
        ferrite_kernels::threads::install(|_| (0..frames).into_par_iter().map(frame_power).collect());
    let mut mel = vec![0.0f64; N_MELS * frames];
    for (t, col) in columns.iter().enumerate() {
        for (m, &v) in col.iter().enumerate() {
            mel[m * frames + t] = v;
        }
    }
    let logs: Vec<f64> = mel.iter().map(|&v| v.max(1e-10).log10()).collect();
    let max = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    logs.iter().map(|&v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32).collect()
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
        let mut float = b.clone();
        float[20] = 3; // IEEE float format
        assert!(parse_wav(Path::new("x.wav"), &float)
            .err()
            .unwrap()
            .to_string()
            .contains("16-bit PCM"));
        // Mutated files: an error or samples, never a panic.
        let base = wav_bytes(&(0..64).map(|i| (i * 511) as i16).collect::<Vec<_>>(), 22050, 1);
        let mut rng = ferrite_core::Rng::new(7);
        for _ in 0..crate::gguf::fuzz::iterations() {
            let m = crate::gguf::fuzz::mutate(&mut rng, &base);
            if let Err(e) = parse_wav(Path::new("fuzz.wav"), &m) {
                assert!(e.to_string().contains("fuzz.wav"));
            }
        }
    }

    #[test]
    fn mel_filters_match_librosa() {
        let f = mel_filters();
        assert_eq!((f.len(), f[0].len()), (80, 201));
        // Filter 0 rises over 0–37.2 Hz and falls to 74.5 Hz: at 40 Hz, (74.48 − 40)/37.24 · 2/74.48.
        assert!((f[0][1] - 0.024_862_594).abs() < 1e-8, "{}", f[0][1]);
        // Filters overlap by half: each bin's weights come from at most two neighbours.
        assert!((0..201).all(|k| f.iter().filter(|row| row[k] > 0.0).count() <= 2));
    }

    #[test]
    fn a_tone_lands_in_its_mel_band_and_resampling_keeps_it() {
        // 1 kHz for 0.5 s at 22.05 kHz, resampled to 16 kHz.
        let x: Vec<f32> = (0..11025)
            .map(|i| (2.0 * PI * 1000.0 * i as f64 / 22050.0).sin() as f32 * 0.5)
            .collect();
        let y = resample(&x, 22050, 16000);
        assert_eq!(y.len(), 8000);
        let rms = (y[1000..7000].iter().map(|v| v * v).sum::<f32>() / 6000.0).sqrt();
        assert!((rms - 0.5 / 2f32.sqrt()).abs() < 0.01, "{rms}");
        let m = log_mel(&y);
        let frames = 8000 / HOP;
        let t = frames / 2;
        let band = (0..N_MELS)
            .max_by(|&a, &b| m[a * frames + t].total_cmp(&m[b * frames + t]))
            .unwrap();
        // The filter whose peak is nearest 1 kHz.
        let f = mel_filters();
        let want = (0..N_MELS).max_by(|&a, &b| f[a][25].total_cmp(&f[b][25])).unwrap();
        assert!((band as isize - want as isize).abs() <= 1, "{band} vs {want}");
    }
}
