//! ET-FL: random subwindows of random size and position, resized to 16×16 and converted to a
//! colour space, an ensemble of extremely randomized trees grown on their raw pixels, each image
//! described by the normalised counts of its subwindows in every leaf (a sparse vector), and a
//! linear SVM on those vectors. No pretrained network; tells whether deep features are worth it.

use crate::data::decode::Rgb;
use crate::data::split::Cv;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::learn::extra_trees::{ExtraTrees, Forest, MaxFeatures};
use crate::learn::linear_svm::{train_sparse, LinearModel};
use crate::learn::tune::{expand, search, CvTable};
use crate::learn::Param;
use crate::options::Options;
use crate::rng::Rng;
use rayon::prelude::*;

/// The largest side subwindows may be resized to (the paper uses 16; 4096² pixels per subwindow is
/// already far more than any forest can use).
const MAX_RESIZE: usize = 4096;

crate::choice! {
    /// Colour space of the subwindow pixels.
    pub enum ColourSpace {
        /// RGB with each channel normalised to zero mean, unit variance within the subwindow.
        Trgb = "trgb",
        /// Hue, saturation, value.
        Hsv = "hsv",
        /// Raw RGB.
        Rgb = "rgb",
        /// Luma (one channel).
        Gray = "gray",
    }
}

impl ColourSpace {
    fn channels(self) -> usize {
        if self == ColourSpace::Gray {
            1
        } else {
            3
        }
    }
}

// `C` is the name every SVM user knows (and the grid's key), so the field keeps it.
#[allow(non_snake_case)]
mod params {
    use super::ColourSpace;

    crate::options! {
        /// ET-FL's hyper-parameters: `et_fl(#{ n_subwindows, min_size, max_size, resize, colorspace, n_trees, min_samples_leaf, C, seed })`.
        pub struct EtFl for "et_fl" {
            /// Subwindows per image; 0 = about one million per dataset (at most 1000 per image).
            n_subwindows: usize = 0,
            /// Smallest subwindow side, as a fraction of the image's shorter side.
            min_size: f64 = 0.0,
            /// Largest subwindow side, as a fraction of the image's shorter side.
            max_size: f64 = 1.0,
            /// Side the subwindows are resized to (pixels).
            resize: usize = 16,
            /// Colour space of the subwindow pixels.
            colorspace: ColourSpace = ColourSpace::Trgb,
            /// Trees of the extra-trees ensemble.
            n_trees: usize = 20,
            /// Minimum leaf size; 0 = scaled to the number of subwindows (a thousandth, between 1 and 1000).
            min_samples_leaf: usize = 0,
            /// Cost of the linear SVM on the leaf features.
            C: f64 = 10.0,
            /// Seed of the subwindows and the trees.
            seed: u64 = 0,
        }
        check(o) { o.validate() }
    }
}
pub use params::EtFl;

/// A fitted ET-FL model.
pub struct EtFlModel {
    pub params: EtFl,
    pub forest: Forest,
    /// First global leaf index of each tree.
    offsets: Vec<usize>,
    pub svm: LinearModel,
    pub classes: Vec<String>,
    n_sub: usize,
}

impl EtFl {
    /// Sets one parameter by name (a grid point's value), checked like an options map.
    pub fn set_param(&mut self, key: &str, v: &Param) -> Result<()> {
        Options::set(self, key, v.to_json())?;
        self.validate()
    }

    /// Errors on values no ET-FL can use, naming the option.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.min_size)
            || !(0.0..=1.0).contains(&self.max_size)
            || self.min_size > self.max_size
        {
            return Err(Error::Invalid(format!(
                "et_fl needs 0 ≤ min_size ≤ max_size ≤ 1 (got {}, {})",
                self.min_size, self.max_size
            )));
        }
        if !(1..=MAX_RESIZE).contains(&self.resize) {
            return Err(Error::Invalid(format!(
                "et_fl: resize is the side subwindows are resized to, 1..={MAX_RESIZE}, got {}",
                self.resize
            )));
        }
        if self.resize == 0 || self.n_trees == 0 {
            return Err(Error::Invalid(format!(
                "et_fl needs resize ≥ 1 and n_trees ≥ 1 (got {}, {})",
                self.resize, self.n_trees
            )));
        }
        if !(self.C > 0.0) {
            return Err(Error::Invalid(format!(
                "et_fl needs C > 0 (got {})",
                self.C
            )));
        }
        Ok(())
    }

    /// The parameters, for tables.
    pub fn params(&self) -> Vec<(String, Param)> {
        vec![
            ("min_size".into(), Param::Float(self.min_size)),
            ("max_size".into(), Param::Float(self.max_size)),
            (
                "colorspace".into(),
                Param::Str(self.colorspace.as_str().into()),
            ),
            ("n_subwindows".into(), Param::Int(self.n_subwindows as i64)),
            ("n_trees".into(), Param::Int(self.n_trees as i64)),
            ("C".into(), Param::Float(self.C)),
        ]
    }

    /// The paper's tuning grid.
    pub fn paper_grid() -> Vec<(String, Vec<Param>)> {
        vec![
            (
                "min_size".into(),
                [0.0, 0.25, 0.5, 0.75]
                    .iter()
                    .map(|v| Param::Float(*v))
                    .collect(),
            ),
            (
                "max_size".into(),
                [0.25, 0.5, 0.75, 1.0]
                    .iter()
                    .map(|v| Param::Float(*v))
                    .collect(),
            ),
            (
                "colorspace".into(),
                ["trgb", "hsv"]
                    .iter()
                    .map(|v| Param::Str(v.to_string()))
                    .collect(),
            ),
        ]
    }

    fn per_image(&self, n_images: usize) -> usize {
        if self.n_subwindows > 0 {
            self.n_subwindows
        } else {
            (1_000_000 / n_images.max(1)).clamp(10, 1000)
        }
    }

    fn dim(&self) -> usize {
        self.resize * self.resize * self.colorspace.channels()
    }

    /// Writes the `n` subwindows of `img` (stream `stream`) as rows of `out` (`n × dim`).
    fn subwindows(&self, img: &Rgb, n: usize, stream: u64, out: &mut [f32]) {
        let mut rng = Rng::fork(self.seed, stream);
        let side_max = img.width.min(img.height) as f64;
        let d = self.dim();
        let r = self.resize;
        let mut px = vec![0f32; r * r * 3];
        for s in 0..n {
            let frac = self.min_size + rng.uniform() * (self.max_size - self.min_size);
            let side = (frac * side_max).round().max(1.0).min(side_max) as usize;
            let x0 = rng.below(img.width as usize - side + 1);
            let y0 = rng.below(img.height as usize - side + 1);
            sample(img, x0, y0, side, r, &mut px);
            convert(&px, self.colorspace, r * r, &mut out[s * d..(s + 1) * d]);
        }
    }

    /// Fits on the images `idx` of `ds`.
    pub fn fit(&self, ds: &Dataset, idx: &[usize]) -> Result<EtFlModel> {
        if idx.is_empty() {
            return Err(Error::Invalid("et_fl needs training images".into()));
        }
        let n_sub = self.per_image(idx.len());
        let d = self.dim();
        let total = idx.len().saturating_mul(n_sub);
        let bar = crate::progress::bar(idx.len() as u64 * 2, "ET-FL", false);
        // Column-major pixels of every training subwindow, filled a block of images at a time.
        let what = "ET-FL's training subwindows (lower n_subwindows or resize)";
        let mut xt: Vec<f32> = crate::memory::zeroed(&[idx.len(), n_sub, d], what)?;
        let mut y: Vec<usize> = crate::memory::zeroed(&[total], what)?;
        for (b, block) in idx.chunks(64).enumerate() {
            crate::cancel::check()?;
            let rows: Vec<Vec<f32>> = block
                .par_iter()
                .map(|i| {
                    let img = ds.image(*i)?;
                    let mut out = vec![0f32; n_sub * d];
                    self.subwindows(&img, n_sub, *i as u64, &mut out);
                    Ok(out)
                })
                .collect::<Result<_>>()?;
            for (j, r) in rows.iter().enumerate() {
                let base = (b * 64 + j) * n_sub;
                for s in 0..n_sub {
                    for f in 0..d {
                        xt[f * total + base + s] = r[s * d + f];
                    }
                    y[base + s] = ds.items[block[j]].label;
                }
            }
            bar.inc(block.len() as u64);
        }
        let min_leaf = if self.min_samples_leaf > 0 {
            self.min_samples_leaf
        } else {
            (total / 1000).clamp(1, 1000)
        };
        let et = ExtraTrees {
            n_trees: self.n_trees,
            max_features: MaxFeatures::Sqrt,
            min_samples_split: 2 * min_leaf,
            min_samples_leaf: min_leaf,
            seed: self.seed,
        };
        et.validate()?;
        let forest = Forest::fit_columns(&xt, total, d, &y, ds.classes.len(), &et);
        drop(xt);
        crate::memory::release();
        let mut offsets = Vec::with_capacity(forest.trees.len());
        let mut acc = 0;
        for t in &forest.trees {
            offsets.push(acc);
            acc += t.n_leaves;
        }
        let mut model = EtFlModel {
            params: self.clone(),
            forest,
            offsets,
            svm: LinearModel {
                w: vec![],
                b: vec![],
                k: 0,
                d: 0,
            },
            classes: ds.classes.clone(),
            n_sub,
        };
        let rows = model.descriptors(ds, idx)?;
        bar.inc(idx.len() as u64);
        bar.finish_and_clear();
        let labels: Vec<usize> = idx.iter().map(|i| ds.items[*i].label).collect();
        model.svm = train_sparse(rows, &labels, acc, ds.classes.len(), self.C, false, 1e-4)?;
        Ok(model)
    }
}

/// Bilinear samples of the `side`-square at (x0, y0) on an `r`×`r` grid, RGB in [0, 255].
fn sample(img: &Rgb, x0: usize, y0: usize, side: usize, r: usize, out: &mut [f32]) {
    let scale = side as f64 / r as f64;
    let (w, h) = (img.width as usize, img.height as usize);
    for i in 0..r {
        let sy = (y0 as f64 + (i as f64 + 0.5) * scale - 0.5).clamp(0.0, (h - 1) as f64);
        let (yi, fy) = (sy.floor() as usize, (sy - sy.floor()) as f32);
        let yj = (yi + 1).min(h - 1);
        for j in 0..r {
            let sx = (x0 as f64 + (j as f64 + 0.5) * scale - 0.5).clamp(0.0, (w - 1) as f64);
            let (xi, fx) = (sx.floor() as usize, (sx - sx.floor()) as f32);
            let xj = (xi + 1).min(w - 1);
            for c in 0..3 {
                let p = |x: usize, y: usize| img.pixels[(y * w + x) * 3 + c] as f32;
                let top = p(xi, yi) * (1.0 - fx) + p(xj, yi) * fx;
                let bottom = p(xi, yj) * (1.0 - fx) + p(xj, yj) * fx;
                out[(i * r + j) * 3 + c] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
}

/// Converts `n` RGB pixels to the colour space, channel-planar.
fn convert(px: &[f32], cs: ColourSpace, n: usize, out: &mut [f32]) {
    match cs {
        ColourSpace::Rgb => {
            for i in 0..n {
                for c in 0..3 {
                    out[c * n + i] = px[i * 3 + c];
                }
            }
        }
        ColourSpace::Gray => {
            for i in 0..n {
                out[i] = 0.299 * px[i * 3] + 0.587 * px[i * 3 + 1] + 0.114 * px[i * 3 + 2];
            }
        }
        ColourSpace::Hsv => {
            for i in 0..n {
                let (r, g, b) = (
                    px[i * 3] / 255.0,
                    px[i * 3 + 1] / 255.0,
                    px[i * 3 + 2] / 255.0,
                );
                let max = r.max(g).max(b);
                let min = r.min(g).min(b);
                let delta = max - min;
                let h = if delta <= 0.0 {
                    0.0
                } else if max == r {
                    ((g - b) / delta).rem_euclid(6.0) / 6.0
                } else if max == g {
                    ((b - r) / delta + 2.0) / 6.0
                } else {
                    ((r - g) / delta + 4.0) / 6.0
                };
                let s = if max > 0.0 { delta / max } else { 0.0 };
                out[i] = h * 255.0;
                out[n + i] = s * 255.0;
                out[2 * n + i] = max * 255.0;
            }
        }
        ColourSpace::Trgb => {
            for c in 0..3 {
                let mean = (0..n).map(|i| px[i * 3 + c]).sum::<f32>() / n as f32;
                let var = (0..n).map(|i| (px[i * 3 + c] - mean).powi(2)).sum::<f32>() / n as f32;
                let sd = var.sqrt();
                for i in 0..n {
                    out[c * n + i] = if sd > 1e-6 {
                        (px[i * 3 + c] - mean) / sd
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

impl EtFlModel {
    /// Total number of leaves (columns of the sparse descriptors).
    pub fn n_leaves(&self) -> usize {
        self.forest.n_leaves()
    }

    /// Sparse leaf-count descriptors (liblinear indices from 1) of the images `idx`, in parallel,
    /// one image at a time per thread: nothing dense of size images × leaves is ever built.
    pub fn descriptors(&self, ds: &Dataset, idx: &[usize]) -> Result<Vec<Vec<(u32, f64)>>> {
        let d = self.params.dim();
        idx.par_iter()
            .map(|i| {
                crate::cancel::check()?;
                let img = ds.image(*i)?;
                let mut sw = vec![0f32; self.n_sub * d];
                self.params.subwindows(&img, self.n_sub, *i as u64, &mut sw);
                let mut counts: std::collections::BTreeMap<u32, f64> =
                    std::collections::BTreeMap::new();
                for s in 0..self.n_sub {
                    let row = &sw[s * d..(s + 1) * d];
                    for (t, tree) in self.forest.trees.iter().enumerate() {
                        *counts
                            .entry((self.offsets[t] + tree.leaf(row)) as u32 + 1)
                            .or_default() += 1.0;
                    }
                }
                Ok(counts
                    .into_iter()
                    .map(|(k, v)| (k, v / self.n_sub as f64))
                    .collect())
            })
            .collect()
    }

    /// Decision scores `n × k` of the images `idx`.
    pub fn decision(&self, ds: &Dataset, idx: &[usize]) -> Result<Vec<f64>> {
        let rows = self.descriptors(ds, idx)?;
        let k = self.svm.k;
        let mut out = vec![0.0; rows.len() * k];
        for (r, row) in rows.iter().enumerate() {
            for c in 0..k {
                let w = &self.svm.w[c * self.svm.d..(c + 1) * self.svm.d];
                out[r * k + c] =
                    row.iter().map(|(j, v)| w[*j as usize - 1] * v).sum::<f64>() + self.svm.b[c];
            }
        }
        Ok(out)
    }
}

/// Scores every grid point on slide-grouped folds of the images `idx` (through the grid search
/// every learner shares; one fold at a time, since an ET-FL fit is parallel and memory-bound).
fn search_points(
    p: &EtFl,
    ds: &Dataset,
    idx: &[usize],
    points: Vec<Vec<(String, Param)>>,
    cv: &Cv,
) -> Result<CvTable> {
    let slides: Vec<String> = idx.iter().map(|i| ds.items[*i].slide.clone()).collect();
    let labels: Vec<usize> = idx.iter().map(|i| ds.items[*i].label).collect();
    let folds = cv.plan(&slides, &labels, &ds.classes)?;
    search(points, &folds, &labels, false, |point, fold| {
        let mut q = p.clone();
        for (k, v) in point {
            q.set_param(k, v)?;
        }
        let tr: Vec<usize> = fold.train.iter().map(|j| idx[*j]).collect();
        let te: Vec<usize> = fold.test.iter().map(|j| idx[*j]).collect();
        q.fit(ds, &tr)?.decision(ds, &te)
    })
}

/// Scores of ET-FL (as it is, no grid) on slide-grouped folds of the images `idx`: a one-row table.
pub fn cross_val(p: &EtFl, ds: &Dataset, idx: &[usize], cv: &Cv) -> Result<CvTable> {
    let mut table = search_points(p, ds, idx, vec![Vec::new()], cv)?;
    table.params = vec![p.params()];
    Ok(table)
}

/// Grid search over slide-grouped folds (the paper's grid when `grid` is empty; points that are
/// not valid together, such as min_size > max_size, are left out), then a refit of the best on
/// all of `idx`.
pub fn tune(
    p: &EtFl,
    ds: &Dataset,
    idx: &[usize],
    grid: &[(String, Vec<Param>)],
    cv: &Cv,
) -> Result<(EtFlModel, CvTable)> {
    let grid = if grid.is_empty() {
        EtFl::paper_grid()
    } else {
        grid.to_vec()
    };
    let points: Vec<Vec<(String, Param)>> = expand(&grid)
        .into_iter()
        .filter(|point| {
            let mut q = p.clone();
            point.iter().all(|(k, v)| q.set_param(k, v).is_ok())
        })
        .collect();
    if points.is_empty() {
        return Err(Error::Invalid("no valid point in the et_fl grid".into()));
    }
    let table = search_points(p, ds, idx, points, cv)?;
    let mut best = p.clone();
    for (k, v) in &table.params[table.best()] {
        best.set_param(k, v)?;
    }
    Ok((best.fit(ds, idx)?, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_typed_and_checked() {
        let o = EtFl::from_object(
            serde_json::json!({ "C": 1, "colorspace": "hsv", "n_subwindows": 10 })
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap();
        assert_eq!(
            (o.C, o.colorspace, o.n_subwindows),
            (1.0, ColourSpace::Hsv, 10)
        );
        let e = EtFl::from_object(
            serde_json::json!({ "n_subwindow": 10 })
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("did you mean `n_subwindows`"), "{e}");
        let mut q = EtFl::default();
        q.set_param("max_size", &Param::Float(0.5)).unwrap();
        assert!(q
            .set_param("min_size", &Param::Float(0.75))
            .unwrap_err()
            .to_string()
            .contains("min_size ≤ max_size"));
        assert!(q
            .set_param("colorspace", &Param::Str("lab".into()))
            .is_err());
        let names: Vec<&str> = EtFl::fields().iter().map(|f| f.name).collect();
        assert!(names.contains(&"C") && names.contains(&"colorspace"));
    }
}
