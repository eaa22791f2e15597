//! Stain normalization (Macenko, Reinhard) and Macenko stain augmentation, step for step as
//! torchstain 1.4.1's numpy backend computes them, so that a fitted stain matrix agrees to 1e-5 and
//! pixels to within 1 of 255 (tests/compute/stain.rs checks both against torchstain on Kather tiles).
//! An image without tissue (no pixel whose optical density reaches `beta` in every channel) is an
//! error naming why, never NaNs.
//!
//! Macenko (Macenko et al., ISBI 2009; torchstain after HEnorm_python): optical density
//! `-ln((I + 1) / Io)`, the pixels at or above `beta` in every channel, the two principal directions
//! of their covariance, the `alpha` and `100 - alpha` percentiles of the angle in that plane give the
//! hematoxylin and eosin vectors (the one with the larger red component first), concentrations by
//! least squares, and their 99th percentiles as `maxC`. Normalising rescales the source's
//! concentrations by `maxC_target / maxC_source` and recomposes them with the target's stain matrix.
//! Reinhard (Reinhard et al. 2001; torchstain after HistomicsTK): per-channel mean and standard
//! deviation in torchstain's float32 LAB, moved to the target's.

use super::decode::Rgb;
use crate::error::Error;
use crate::rng::Rng;

/// The reference stain matrix an unfitted Macenko normaliser uses (torchstain's `HERef`): columns
/// hematoxylin and eosin, rows R, G, B optical density.
pub const HE_REF: [[f64; 2]; 3] = [[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]];
/// The reference 99th-percentile concentrations of an unfitted Macenko normaliser (`maxCRef`).
pub const MAX_C_REF: [f64; 2] = [1.9705, 1.0308];

crate::choice! {
    /// A stain normalization method.
    pub enum StainMethod {
        /// Macenko's stain vectors from optical density (torchstain's `MacenkoNormalizer`).
        Macenko = "macenko",
        /// Reinhard's colour statistics in LAB (torchstain's `ReinhardNormalizer`).
        Reinhard = "reinhard",
    }
}

crate::options! {
    /// Parameters of Macenko's method (`stain_normalizer("macenko", #{ ... })`), torchstain's defaults.
    pub struct MacenkoOptions for "stain_normalizer" {
        /// Transmitted light intensity Io.
        io: f64 = 240.0,
        /// Percentile (and 100 − alpha) of the angle that picks the two stain vectors.
        alpha: f64 = 1.0,
        /// Optical density a pixel must reach in every channel to count as tissue.
        beta: f64 = 0.15,
    }
    check(o) {
        if !(o.io > 0.0) || !(0.0..50.0).contains(&o.alpha) {
            return Err(Error::Invalid(format!(
                "stain_normalizer: need io > 0 and 0 ≤ alpha < 50 (got io {}, alpha {})",
                o.io, o.alpha
            )));
        }
        Ok(())
    }
}

/// A Macenko stain description of one image: stain matrix and 99th-percentile concentrations.
#[derive(Clone, Debug, PartialEq)]
pub struct Stains {
    /// Columns hematoxylin and eosin, rows R, G, B optical density.
    pub he: [[f64; 2]; 3],
    pub max_c: [f64; 2],
}

/// Target statistics of Reinhard's method: per LAB channel mean and standard deviation.
#[derive(Clone, Debug, PartialEq)]
pub struct LabStats {
    pub means: [f32; 3],
    pub stds: [f32; 3],
}

/// A stain normaliser: a method, its parameters and what it was fitted to.
#[derive(Clone, Debug, PartialEq)]
pub enum StainNormalizer {
    /// Macenko: before `fit`, torchstain's reference `HE_REF`, `MAX_C_REF`.
    Macenko {
        params: MacenkoOptions,
        target: Stains,
        fitted: bool,
    },
    /// Reinhard: must be fitted before it normalises.
    Reinhard { target: Option<LabStats> },
}

/// Why an image cannot be normalised; the caller adds which image.
pub type Why = String;

impl StainNormalizer {
    /// An unfitted normaliser of `method` (Macenko with `params`).
    pub fn new(method: StainMethod, params: MacenkoOptions) -> StainNormalizer {
        match method {
            StainMethod::Macenko => StainNormalizer::Macenko {
                params,
                target: Stains {
                    he: HE_REF,
                    max_c: MAX_C_REF,
                },
                fitted: false,
            },
            StainMethod::Reinhard => StainNormalizer::Reinhard { target: None },
        }
    }

    /// The method's name.
    pub fn method(&self) -> StainMethod {
        match self {
            StainNormalizer::Macenko { .. } => StainMethod::Macenko,
            StainNormalizer::Reinhard { .. } => StainMethod::Reinhard,
        }
    }

    /// Fits the normaliser to a target image.
    pub fn fit(&mut self, img: &Rgb) -> Result<(), Why> {
        match self {
            StainNormalizer::Macenko {
                params,
                target,
                fitted,
            } => {
                *target = macenko_stains(img, params)?.0;
                *fitted = true;
            }
            StainNormalizer::Reinhard { target } => *target = Some(lab_stats(&rgb2lab(img))),
        }
        Ok(())
    }

    /// The image with its stain moved to the target's.
    pub fn normalize(&self, img: &Rgb) -> Result<Rgb, Why> {
        match self {
            StainNormalizer::Macenko { params, target, .. } => {
                let (source, c) = macenko_stains(img, params)?;
                let scale = [
                    source.max_c[0] / target.max_c[0],
                    source.max_c[1] / target.max_c[1],
                ];
                let pixels = recompose(&c, &target.he, params.io, |k, v| v / scale[k]);
                Ok(Rgb { pixels, ..*img })
            }
            StainNormalizer::Reinhard { target } => {
                let t = target.as_ref().ok_or(
                    "the Reinhard normaliser is not fitted: call .fit(target_image) first",
                )?;
                reinhard(img, t)
            }
        }
    }

    /// A stable text of the method, its parameters and its fitted target, exact to the last bit:
    /// two normalisers with the same key give the same pixels (part of feature cache keys).
    pub fn key(&self) -> String {
        match self {
            StainNormalizer::Macenko { params, target, .. } => format!(
                "macenko-v1 io={:?} alpha={:?} beta={:?} he={:?} maxc={:?}",
                params.io, params.alpha, params.beta, target.he, target.max_c
            ),
            StainNormalizer::Reinhard { target } => match target {
                Some(t) => format!("reinhard-v1 means={:?} stds={:?}", t.means, t.stds),
                None => "reinhard-v1 unfitted".into(),
            },
        }
    }

    /// One line, as the prompt shows it.
    pub fn describe(&self) -> String {
        match self {
            StainNormalizer::Macenko { target, fitted, .. } => {
                let he = &target.he;
                format!(
                    "StainNormalizer macenko ({}): H = [{:.4}, {:.4}, {:.4}], E = [{:.4}, {:.4}, {:.4}], maxC = [{:.4}, {:.4}]",
                    if *fitted { "fitted" } else { "torchstain's reference, not fitted" },
                    he[0][0], he[1][0], he[2][0], he[0][1], he[1][1], he[2][1],
                    target.max_c[0], target.max_c[1]
                )
            }
            StainNormalizer::Reinhard { target: Some(t) } => format!(
                "StainNormalizer reinhard (fitted): LAB means [{:.3}, {:.3}, {:.3}], stds [{:.3}, {:.3}, {:.3}]",
                t.means[0], t.means[1], t.means[2], t.stds[0], t.stds[1], t.stds[2]
            ),
            StainNormalizer::Reinhard { target: None } => {
                "StainNormalizer reinhard (not fitted)".into()
            }
        }
    }
}

/// Macenko stain augmentation of training images (torchstain's `MacenkoAugmentor`, whose defaults
/// these are): each image's own stain matrix and concentrations, each stain's concentrations
/// multiplied by U(1 − sigma1, 1 + sigma1) and shifted by U(−sigma2, sigma2), recomposed.
#[derive(Clone, Debug, PartialEq)]
pub struct StainAugment {
    /// Multiplicative spread of each stain's concentrations.
    pub sigma1: f64,
    /// Additive spread of each stain's concentrations.
    pub sigma2: f64,
    /// Macenko's parameters used to find each image's stains.
    pub macenko: MacenkoOptions,
}

impl Default for StainAugment {
    fn default() -> Self {
        StainAugment {
            sigma1: 0.2,
            sigma2: 0.2,
            macenko: MacenkoOptions::default(),
        }
    }
}

impl StainAugment {
    /// Draws the four factors torchstain draws, in its order: H scale, H shift, E scale, E shift.
    pub fn draw(&self, rng: &mut Rng) -> [f64; 4] {
        let mut u = |lo: f64, hi: f64| lo + (hi - lo) * rng.uniform();
        let (s1, s2) = (self.sigma1, self.sigma2);
        [
            u(1.0 - s1, 1.0 + s1),
            u(-s2, s2),
            u(1.0 - s1, 1.0 + s1),
            u(-s2, s2),
        ]
    }

    /// The image with its stain concentrations perturbed by `factors` (from [`StainAugment::draw`]).
    pub fn apply(&self, img: &Rgb, factors: [f64; 4]) -> Result<Rgb, Why> {
        let (stains, c) = macenko_stains(img, &self.macenko)?;
        let pixels = recompose(&c, &stains.he, self.macenko.io, |k, v| {
            v * factors[2 * k] + factors[2 * k + 1]
        });
        Ok(Rgb { pixels, ..*img })
    }

    /// A random augmentation of `img`; an image without tissue is returned unchanged (there is
    /// no stain to perturb, and training should not stop on an empty tile).
    pub fn augment(&self, img: &Rgb, rng: &mut Rng) -> Rgb {
        let f = self.draw(rng);
        self.apply(img, f).unwrap_or_else(|_| img.clone())
    }
}

/// Optical density of every pixel, `[n][3]`.
fn optical_density(img: &Rgb, io: f64) -> Vec<[f64; 3]> {
    img.pixels
        .chunks_exact(3)
        .map(|p| std::array::from_fn(|c| -((p[c] as f64 + 1.0) / io).ln()))
        .collect()
}

/// The stains of one image and every pixel's concentrations `[2][n]`.
pub fn macenko_stains(img: &Rgb, p: &MacenkoOptions) -> Result<(Stains, [Vec<f64>; 2]), Why> {
    let od = optical_density(img, p.io);
    let tissue: Vec<[f64; 3]> = od
        .iter()
        .filter(|v| v.iter().all(|x| *x >= p.beta))
        .copied()
        .collect();
    if tissue.len() < 2 {
        return Err(format!(
            "no tissue pixels above beta {} (optical density in every channel): {} of {} pixels qualify, Macenko needs at least 2",
            p.beta,
            tissue.len(),
            od.len()
        ));
    }
    let (_, vecs) = eigh3(&covariance(&tissue));
    // The plane of the two largest eigenvectors: x along the second, y along the largest (eigh's
    // ascending order, columns 1 and 2). The stain vectors do not depend on their signs.
    let (v1, v2) = (vecs[1], vecs[2]);
    let mut phi: Vec<f64> = tissue
        .iter()
        .map(|o| dot3(o, &v2).atan2(dot3(o, &v1)))
        .collect();
    let min_phi = percentile(&mut phi, p.alpha);
    let max_phi = percentile(&mut phi, 100.0 - p.alpha);
    let at = |a: f64| -> [f64; 3] { std::array::from_fn(|c| v1[c] * a.cos() + v2[c] * a.sin()) };
    let (v_min, v_max) = (at(min_phi), at(max_phi));
    let (h, e) = if v_min[0] > v_max[0] {
        (v_min, v_max)
    } else {
        (v_max, v_min)
    };
    let he: [[f64; 2]; 3] = std::array::from_fn(|c| [h[c], e[c]]);
    let pinv = pseudo_inverse(&he).ok_or_else(|| {
        "the two stain vectors found coincide (the tissue has a single colour); Macenko cannot separate H and E"
            .to_string()
    })?;
    let mut c = [Vec::with_capacity(od.len()), Vec::with_capacity(od.len())];
    for o in &od {
        for k in 0..2 {
            c[k].push(dot3(&pinv[k], o));
        }
    }
    let max_c = [
        percentile(&mut c[0].clone(), 99.0),
        percentile(&mut c[1].clone(), 99.0),
    ];
    Ok((Stains { he, max_c }, c))
}

/// `Io · exp(−HE · f(C))` per pixel, clipped at 255 and truncated to 8 bits as numpy's
/// `astype(uint8)` does.
fn recompose(
    c: &[Vec<f64>; 2],
    he: &[[f64; 2]; 3],
    io: f64,
    f: impl Fn(usize, f64) -> f64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(c[0].len() * 3);
    for i in 0..c[0].len() {
        let (c0, c1) = (f(0, c[0][i]), f(1, c[1][i]));
        for row in he {
            let v = io * (-(row[0] * c0 + row[1] * c1)).exp();
            out.push(v.min(255.0) as u8);
        }
    }
    out
}

fn dot3(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Sample covariance (divided by n − 1), as `np.cov(x.T)`.
fn covariance(x: &[[f64; 3]]) -> [[f64; 3]; 3] {
    let n = x.len() as f64;
    let mut mean = [0.0; 3];
    for v in x {
        for c in 0..3 {
            mean[c] += v[c];
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut cov = [[0.0; 3]; 3];
    for v in x {
        let d = [v[0] - mean[0], v[1] - mean[1], v[2] - mean[2]];
        for i in 0..3 {
            for j in 0..3 {
                cov[i][j] += d[i] * d[j];
            }
        }
    }
    cov.iter_mut().flatten().for_each(|c| *c /= n - 1.0);
    cov
}

/// Eigenvalues in ascending order and their unit eigenvectors (cyclic Jacobi, to machine
/// precision), as `np.linalg.eigh` orders them.
fn eigh3(m: &[[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut a = *m;
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _ in 0..64 {
        let off = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        if off <= 1e-300 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q] == 0.0 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for row in v.iter_mut() {
                let (vp, vq) = (row[p], row[q]);
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    let mut order = [0usize, 1, 2];
    order.sort_by(|i, j| a[*i][*i].total_cmp(&a[*j][*j]));
    let values = order.map(|i| a[i][i]);
    // Column i of `v` is the eigenvector of a[i][i]; return them as rows, each with a negative
    // sum (numpy's LAPACK leaves H&E's largest one so; the stains found do not depend on it).
    let vectors = order.map(|i| {
        let mut e = [v[0][i], v[1][i], v[2][i]];
        if e.iter().sum::<f64>() > 0.0 {
            e.iter_mut().for_each(|x| *x = -*x);
        }
        e
    });
    (values, vectors)
}

/// `(HEᵀ HE)⁻¹ HEᵀ`, rows H and E: the least-squares concentrations of an optical density.
fn pseudo_inverse(he: &[[f64; 2]; 3]) -> Option<[[f64; 3]; 2]> {
    let col = |k: usize| [he[0][k], he[1][k], he[2][k]];
    let (h, e) = (col(0), col(1));
    let (a, b, d) = (dot3(&h, &h), dot3(&h, &e), dot3(&e, &e));
    let det = a * d - b * b;
    if !(det.abs() > 1e-12 * a * d) {
        return None;
    }
    let inv = [[d / det, -b / det], [-b / det, a / det]];
    Some(std::array::from_fn(|k| {
        std::array::from_fn(|c| inv[k][0] * h[c] + inv[k][1] * e[c])
    }))
}

/// `np.percentile(x, q)` with its default linear method, numpy's interpolation formula included.
/// Reorders `x`.
pub fn percentile(x: &mut [f64], q: f64) -> f64 {
    let n = x.len();
    let virtual_index = (q / 100.0) * (n as f64 - 1.0);
    let lo = (virtual_index.floor() as usize).min(n - 1);
    let gamma = virtual_index - virtual_index.floor();
    let (_, a, rest) = x.select_nth_unstable_by(lo, |a, b| a.total_cmp(b));
    let a = *a;
    let b = rest
        .iter()
        .copied()
        .min_by(|a, b| a.total_cmp(b))
        .unwrap_or(a);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

// --- Reinhard, in torchstain's float32 LAB ("OpenCV" scaling: L·2.55, a + 128, b + 128) ---

const RGB2XYZ: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];
const WHITE: [f32; 3] = [0.95047, 1.0, 1.08883];

/// torchstain's `rgb2lab` followed by `lab_split`: per pixel L (0–100), a, b, as float32.
fn rgb2lab(img: &Rgb) -> Vec<[f32; 3]> {
    let m: [[f32; 3]; 3] = RGB2XYZ.map(|r| r.map(|v| v as f32));
    img.pixels
        .chunks_exact(3)
        .map(|p| {
            let lin: [f32; 3] = std::array::from_fn(|c| {
                let x = p[c] as f32 / 255.0;
                if x > 0.04045 {
                    ((x + 0.055) / 1.055).powf(2.4)
                } else {
                    x / 12.92
                }
            });
            let f: [f32; 3] = std::array::from_fn(|j| {
                let xyz = lin[0] * m[j][0] + lin[1] * m[j][1] + lin[2] * m[j][2];
                let t = xyz / WHITE[j];
                if t > 0.008856 {
                    t.cbrt()
                } else {
                    7.787 * t + 16.0 / 116.0
                }
            });
            let l = (116.0 * f[1] - 16.0) * 2.55;
            let a = 500.0 * (f[0] - f[1]) + 128.0;
            let b = 200.0 * (f[1] - f[2]) + 128.0;
            [l / 2.55, a - 128.0, b - 128.0]
        })
        .collect()
}

/// Mean and (population) standard deviation of each LAB channel.
fn lab_stats(lab: &[[f32; 3]]) -> LabStats {
    let n = lab.len() as f64;
    let mut means = [0f32; 3];
    let mut stds = [0f32; 3];
    for c in 0..3 {
        let mean = lab.iter().map(|v| v[c] as f64).sum::<f64>() / n;
        let var = lab
            .iter()
            .map(|v| (v[c] as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        means[c] = mean as f32;
        stds[c] = var.sqrt() as f32;
    }
    LabStats { means, stds }
}

/// Reinhard's normalization of `img` to the target statistics, then torchstain's `lab2rgb` (its
/// last matrix product in float64) and `(rgb · 255).astype(uint8)`.
fn reinhard(img: &Rgb, target: &LabStats) -> Result<Rgb, Why> {
    let lab = rgb2lab(img);
    let s = lab_stats(&lab);
    if let Some(c) = (0..3).find(|c| !(s.stds[*c] > 0.0)) {
        return Err(format!(
            "LAB channel {} is constant in this image; Reinhard cannot rescale it",
            ["L", "a", "b"][c]
        ));
    }
    let xyz2rgb = invert3(&RGB2XYZ);
    let mut pixels = Vec::with_capacity(img.pixels.len());
    for v in &lab {
        let n: [f32; 3] = std::array::from_fn(|c| {
            (v[c] - s.means[c]) / s.stds[c] * target.stds[c] + target.means[c]
        });
        // lab_merge, then lab2rgb's rescaling back from the OpenCV form.
        let l = n[0] * 2.55 / 2.55;
        let a = (n[1] + 128.0) - 128.0;
        let b = (n[2] + 128.0) - 128.0;
        let y = (l + 16.0) / 116.0;
        let x = a / 500.0 + y;
        let z = y - b / 200.0;
        let xyz: [f32; 3] = std::array::from_fn(|j| {
            let t = [x, y, z][j];
            let t = if t > 0.2068966 {
                t.powf(3.0)
            } else {
                (t - 16.0 / 116.0) / 7.787
            };
            t * WHITE[j]
        });
        for row in &xyz2rgb {
            let r = xyz[0] as f64 * row[0] + xyz[1] as f64 * row[1] + xyz[2] as f64 * row[2];
            let r = if r > 0.0031308 {
                1.055 * r.powf(1.0 / 2.4) - 0.055
            } else {
                r * 12.92
            };
            pixels.push((r.clamp(0.0, 1.0) * 255.0) as u8);
        }
    }
    Ok(Rgb { pixels, ..*img })
}

/// The inverse of a 3×3 matrix (adjugate over determinant).
fn invert3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c = |r: usize, k: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (k1, k2) = ((k + 1) % 3, (k + 2) % 3);
        m[r1][k1] * m[r2][k2] - m[r1][k2] * m[r2][k1]
    };
    let det = m[0][0] * c(0, 0) + m[0][1] * c(0, 1) + m[0][2] * c(0, 2);
    std::array::from_fn(|i| std::array::from_fn(|j| c(j, i) / det))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> Rgb {
        Rgb {
            width: w,
            height: h,
            pixels: (0..w * h).flat_map(|_| rgb).collect(),
        }
    }

    /// A synthetic H&E-like image: pixels mixing two stain vectors in varying amounts.
    fn mixed() -> Rgb {
        let (w, h) = (40u32, 30u32);
        let mut rng = Rng::new(7);
        let mut pixels = Vec::new();
        for _ in 0..w * h {
            let (ch, ce) = (rng.uniform() * 1.5, rng.uniform() * 1.0);
            for c in 0..3 {
                let od = HE_REF[c][0] * ch + HE_REF[c][1] * ce + 0.05;
                pixels.push((240.0 * (-od).exp()).min(255.0) as u8);
            }
        }
        Rgb {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn background_only_is_a_clear_error() {
        let white = solid(8, 8, [250, 250, 250]);
        let mut m = StainNormalizer::new(StainMethod::Macenko, MacenkoOptions::default());
        let err = m.fit(&white).unwrap_err();
        assert!(err.contains("no tissue pixels above beta 0.15"), "{err}");
        let err = m.normalize(&white).unwrap_err();
        assert!(err.contains("no tissue pixels"), "{err}");
        // Augmentation leaves such an image as it is instead.
        let a = StainAugment::default();
        assert_eq!(a.augment(&white, &mut Rng::new(1)).pixels, white.pixels);
        // Reinhard on a flat image: a constant channel is named, not divided by zero.
        let mut r = StainNormalizer::new(StainMethod::Reinhard, MacenkoOptions::default());
        assert!(r.normalize(&white).unwrap_err().contains("not fitted"));
        r.fit(&mixed()).unwrap();
        assert!(r.normalize(&white).unwrap_err().contains("constant"));
    }

    #[test]
    fn eigh3_matches_a_known_decomposition() {
        let m = [[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]];
        let (w, v) = eigh3(&m);
        assert!((w[0] - 1.0).abs() < 1e-12 && (w[1] - 3.0).abs() < 1e-12);
        assert!((w[2] - 5.0).abs() < 1e-12);
        for (k, e) in v.iter().enumerate() {
            let mv: [f64; 3] = std::array::from_fn(|i| dot3(&m[i], e));
            for i in 0..3 {
                assert!((mv[i] - w[k] * e[i]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn percentile_is_numpys_linear() {
        let mut x = vec![4.0, 1.0, 3.0, 2.0, 10.0];
        // np.percentile([4,1,3,2,10], [1, 50, 99]) = [1.04, 3.0, 9.76]
        assert!((percentile(&mut x, 1.0) - 1.04).abs() < 1e-12);
        assert_eq!(percentile(&mut x, 50.0), 3.0);
        assert!((percentile(&mut x, 99.0) - 9.76).abs() < 1e-12);
    }

    #[test]
    fn macenko_recovers_the_stains_an_image_was_made_of() {
        let mut m = StainNormalizer::new(StainMethod::Macenko, MacenkoOptions::default());
        let before = m.key();
        m.fit(&mixed()).unwrap();
        assert_ne!(m.key(), before, "fitting changes the key");
        let StainNormalizer::Macenko { target, .. } = &m else {
            unreachable!()
        };
        // The directions found are close to the ones mixed in (8-bit rounding blurs them).
        for k in 0..2 {
            let cos: f64 = (0..3).map(|c| target.he[c][k] * HE_REF[c][k]).sum::<f64>()
                / (0..3).map(|c| HE_REF[c][k].powi(2)).sum::<f64>().sqrt();
            assert!(cos > 0.97, "stain {k}: cos {cos}");
        }
        // Normalising an image to its own stains changes it little.
        let img = mixed();
        let out = m.normalize(&img).unwrap();
        let mad = img
            .pixels
            .iter()
            .zip(&out.pixels)
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .sum::<f64>()
            / img.pixels.len() as f64;
        assert!(mad < 2.0, "mean abs difference {mad}");
    }

    #[test]
    fn augmentation_is_seeded_and_changes_the_image() {
        let a = StainAugment::default();
        let img = mixed();
        let x = a.augment(&img, &mut Rng::new(3));
        let y = a.augment(&img, &mut Rng::new(3));
        let z = a.augment(&img, &mut Rng::new(4));
        assert_eq!(x.pixels, y.pixels);
        assert_ne!(x.pixels, z.pixels);
        assert_ne!(x.pixels, img.pixels);
        // Factors of identity recompose the image from its own stains.
        let same = a.apply(&img, [1.0, 0.0, 1.0, 0.0]).unwrap();
        let worst = img
            .pixels
            .iter()
            .zip(&same.pixels)
            .map(|(p, q)| (*p as i32 - *q as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 20, "worst {worst}");
    }
}
