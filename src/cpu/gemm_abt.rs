//! c `[M, N]` += a `[M, K]` . b `[N, K]`^T with both operands' rows contiguous in the
//! reduction: every output is a dot product of two rows, so nothing needs packing. For the
//! conv weight gradient (dout `[Co, HW]` times im2col `[CKK, HW]`^T), whose outer sides are
//! small and whose reduction is long: there matrixmultiply copied about as many floats as it
//! multiplied (PERFORMANCE.md).
//!
//! 4 x 4 outputs at a time, each with a vector of lane accumulators over the reduction. The
//! crate is built for baseline x86-64, so the body is compiled again with AVX-512 and with
//! AVX2 + FMA and picked at run time.

/// Lanes of each accumulator: one AVX-512 register (two AVX2 ones).
const LANES: usize = 16;

/// c `[m, n]` (row stride `ldc`) += a `[m, k]` . b `[n, k]`^T, rows of a and b contiguous.
pub fn gemm_abt_acc(
    c: &mut [f32],
    ldc: usize,
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
) {
    assert!(a.len() >= m * k && b.len() >= n * k);
    assert!(m == 0 || n == 0 || c.len() >= (m - 1) * ldc + n);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { avx512(c, ldc, a, b, (m, n, k)) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { avx2(c, ldc, a, b, (m, n, k)) };
        }
    }
    body(c, ldc, a, b, (m, n, k), |x, y, s| x * y + s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512(c: &mut [f32], ldc: usize, a: &[f32], b: &[f32], mnk: (usize, usize, usize)) {
    body(c, ldc, a, b, mnk, f32::mul_add)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2(c: &mut [f32], ldc: usize, a: &[f32], b: &[f32], mnk: (usize, usize, usize)) {
    body(c, ldc, a, b, mnk, f32::mul_add)
}

/// The kernel; `fma(x, y, s)` = x * y + s (fused where the caller's features allow).
#[inline(always)]
fn body(
    c: &mut [f32],
    ldc: usize,
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
    fma: impl Fn(f32, f32, f32) -> f32 + Copy,
) {
    let kv = k / LANES * LANES;
    for i0 in (0..m).step_by(4) {
        for j0 in (0..n).step_by(4) {
            let (mi, nj) = ((m - i0).min(4), (n - j0).min(4));
            // Rows past the edge repeat the last one; their sums are not written.
            let ar: [&[f32]; 4] = std::array::from_fn(|r| {
                let i = i0 + r.min(mi - 1);
                &a[i * k..i * k + k]
            });
            let br: [&[f32]; 4] = std::array::from_fn(|r| {
                let j = j0 + r.min(nj - 1);
                &b[j * k..j * k + k]
            });
            let mut s = [[0.0f32; LANES]; 16];
            let mut p = 0;
            while p < kv {
                // Fixed-size copies: the lane loop below then has no bounds to check and
                // becomes one vector multiply-add per accumulator.
                let av: [[f32; LANES]; 4] =
                    std::array::from_fn(|r| ar[r][p..p + LANES].try_into().expect("LANES"));
                let bv: [[f32; LANES]; 4] =
                    std::array::from_fn(|r| br[r][p..p + LANES].try_into().expect("LANES"));
                for r in 0..4 {
                    for q in 0..4 {
                        let acc = &mut s[r * 4 + q];
                        for l in 0..LANES {
                            acc[l] = fma(av[r][l], bv[q][l], acc[l]);
                        }
                    }
                }
                p += LANES;
            }
            for r in 0..mi {
                for q in 0..nj {
                    let tail: f32 = (kv..k).map(|t| ar[r][t] * br[q][t]).sum();
                    c[(i0 + r) * ldc + j0 + q] += s[r * 4 + q].iter().sum::<f32>() + tail;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against plain dot products in f64, on odd sizes: edges in both outer sides, a
    /// reduction with a remainder, one shorter than a vector, and an empty one.
    #[test]
    fn matches_row_dot_products_on_odd_shapes() {
        for (m, n, k) in [
            (5, 7, 37),
            (16, 25, 196),
            (1, 1, 3),
            (4, 4, 16),
            (3, 9, 0),
            (6, 2, 50),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let b: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
                .collect();
            let ldc = n + 3;
            let mut c: Vec<f32> = (0..m * ldc).map(|i| (i % 5) as f32 * 0.25 - 0.5).collect();
            let before = c.clone();
            gemm_abt_acc(&mut c, ldc, &a, &b, (m, n, k));
            for i in 0..m {
                for j in 0..ldc {
                    let want = if j < n {
                        before[i * ldc + j] as f64
                            + (0..k)
                                .map(|t| a[i * k + t] as f64 * b[j * k + t] as f64)
                                .sum::<f64>()
                    } else {
                        before[i * ldc + j] as f64
                    };
                    let got = c[i * ldc + j] as f64;
                    assert!(
                        (got - want).abs()
                            <= 1e-5 * (1.0 + want.abs()) * (k as f64).sqrt().max(1.0),
                        "{m}x{n}x{k} at ({i}, {j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
