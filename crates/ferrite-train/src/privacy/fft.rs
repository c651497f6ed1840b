//! An iterative radix-2 FFT over `f64` complex numbers, for the PRV accountant's convolutions
//! (a million-point density raised to the thousands-th convolution power). Lengths are powers
//! of two: the accountant pads its grid to one, which only widens the circular buffer.

use std::f64::consts::PI;

/// A complex number as `(re, im)`.
pub type Complex = (f64, f64);

fn mul(a: Complex, b: Complex) -> Complex {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

/// In-place FFT of `data` (length a power of two). `inverse` computes the unscaled inverse
/// transform (the caller divides by the length).
pub fn fft(data: &mut [Complex], inverse: bool) {
    let n = data.len();
    debug_assert!(n.is_power_of_two(), "fft length {n} is not a power of two");
    if n < 2 {
        return;
    }
    // Bit-reversal permutation.
    let bits = n.trailing_zeros();
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if j > i {
            data.swap(i, j);
        }
    }
    // Twiddles for the largest stage, each from its own sin/cos so they carry no accumulated
    // rounding; smaller stages stride through them.
    let sign = if inverse { 1.0 } else { -1.0 };
    let twiddles: Vec<Complex> = (0..n / 2)
        .map(|k| {
            let angle = sign * 2.0 * PI * k as f64 / n as f64;
            (angle.cos(), angle.sin())
        })
        .collect();
    let mut len = 2;
    while len <= n {
        let half = len / 2;
        let stride = n / len;
        for start in (0..n).step_by(len) {
            for k in 0..half {
                let w = twiddles[k * stride];
                let u = data[start + k];
                let v = mul(data[start + k + half], w);
                data[start + k] = (u.0 + v.0, u.1 + v.1);
                data[start + k + half] = (u.0 - v.0, u.1 - v.1);
            }
        }
        len *= 2;
    }
}

/// Circular self-convolution power: the `power`-fold circular convolution of `values` with
/// itself (length a power of two), through `ifft(fft(values)^power)`. Powers are taken in polar
/// form so large `power`s cost one `powf` per frequency.
pub fn circular_power(values: &[f64], power: u64) -> Vec<f64> {
    let n = values.len();
    let mut spectrum: Vec<Complex> = values.iter().map(|&v| (v, 0.0)).collect();
    fft(&mut spectrum, false);
    for z in &mut spectrum {
        let (r, theta) = (z.0.hypot(z.1), z.1.atan2(z.0));
        let (rn, angle) = (r.powf(power as f64), theta * power as f64);
        *z = (rn * angle.cos(), rn * angle.sin());
    }
    fft(&mut spectrum, true);
    spectrum.iter().map(|z| z.0 / n as f64).collect()
}

/// Linear convolution of `a` and `b` (full length `a.len() + b.len() − 1`) by FFT.
pub fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let full = a.len() + b.len() - 1;
    let n = full.next_power_of_two();
    let mut fa: Vec<Complex> = (0..n).map(|i| (a.get(i).copied().unwrap_or(0.0), 0.0)).collect();
    let mut fb: Vec<Complex> = (0..n).map(|i| (b.get(i).copied().unwrap_or(0.0), 0.0)).collect();
    fft(&mut fa, false);
    fft(&mut fb, false);
    for (x, y) in fa.iter_mut().zip(&fb) {
        *x = mul(*x, *y);
    }
    fft(&mut fa, true);
    fa.iter().take(full).map(|z| z.0 / n as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convolution_matches_the_direct_sum() {
        let a = [0.5, 0.25, 0.25];
        let b = [0.1, 0.2, 0.3, 0.4];
        let got = convolve(&a, &b);
        let mut want = vec![0.0; a.len() + b.len() - 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                want[i + j] += x * y;
            }
        }
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-15, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn circular_power_of_a_point_mass_wraps_around() {
        // δ at index 3 of 8, convolved 5 times with itself: δ at 15 mod 8 = 7.
        let mut v = vec![0.0; 8];
        v[3] = 1.0;
        let got = circular_power(&v, 5);
        for (i, g) in got.iter().enumerate() {
            let want = if i == 7 { 1.0 } else { 0.0 };
            assert!((g - want).abs() < 1e-12, "index {i}: {g}");
        }
    }
}
