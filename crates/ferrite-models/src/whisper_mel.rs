//! Whisper's log-mel spectrogram, as openai/whisper's `log_mel_spectrogram` computes it: a
//! 400-point STFT (periodic Hann window, hop 160, centred frames with reflect padding, the last
//! frame dropped), power spectrum, 80 mel filters (Slaney scale and area normalization, as
//! librosa's defaults), log10 clamped at 1e-10, floored at the maximum − 8, then (x + 4) / 4.
//!
//! Layer: models (Whisper's feature extraction).

use rayon::prelude::*;
use std::f64::consts::PI;

/// Whisper's sample rate: audio is resampled to it (`formats::wav::resample`).
pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const N_MELS: usize = 80;

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
    use crate::formats::wav::resample;
    use std::f64::consts::PI;

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
