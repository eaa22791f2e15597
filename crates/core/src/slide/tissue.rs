//! Tissue detection on a downsampled slide, the method CLAM and slideflow use by default:
//! HSV saturation, median blur, Otsu (or a fixed) threshold, morphological closing, then small
//! objects removed and small holes filled. `tests/fixtures/make_wsi.py` implements the same steps in
//! Python (numpy/scipy/scikit-image) as the reference.

use super::{Pixels, Slide};
use crate::error::Result;
use rayon::prelude::*;

crate::options! {
    /// The options map of `s.tissue(#{ ... })`.
    pub struct TissueOptions for "tissue" {
        /// The mask's scale: level-0 pixels per mask pixel (CLAM works near 64, slideflow at the lowest level).
        downsample: f64 = 16.0,
        /// Side of the square median filter on the saturation (odd; CLAM: 7).
        blur: u32 = 7,
        /// Fixed saturation threshold 0–255 (CLAM's fixed choice is 8); () uses Otsu's threshold.
        threshold: Option<f64> = None,
        /// Radius of the square structuring element of the closing (0: no closing).
        close: u32 = 2,
        /// Tissue regions smaller than this many mask pixels are removed (8-connected).
        min_object: u32 = 16,
        /// Holes smaller than this many mask pixels are filled (4-connected).
        min_hole: u32 = 16,
    }
}

/// A tissue mask: `true` where there is tissue, one value per mask pixel.
#[derive(Clone, Debug)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    /// Level-0 pixels per mask pixel along x and y.
    pub scale: (f64, f64),
    pub data: Vec<bool>,
}

impl Mask {
    /// Share of tissue in the level-0 rectangle (`x`, `y`, `w`, `h`): the mask pixels whose centres
    /// fall inside it.
    pub fn fraction(&self, x: f64, y: f64, w: f64, h: f64) -> f64 {
        let range = |a: f64, len: f64, s: f64, n: u32| {
            let lo = ((a / s) - 0.5).ceil().max(0.0) as i64;
            let hi = (((a + len) / s) - 0.5).ceil().min(n as f64) as i64;
            (lo, hi)
        };
        let (x0, x1) = range(x, w, self.scale.0, self.width);
        let (y0, y1) = range(y, h, self.scale.1, self.height);
        if x1 <= x0 || y1 <= y0 {
            // A tile smaller than a mask pixel: the pixel under its centre.
            let cx = ((x + w / 2.0) / self.scale.0) as i64;
            let cy = ((y + h / 2.0) / self.scale.1) as i64;
            if cx < 0 || cy < 0 || cx >= self.width as i64 || cy >= self.height as i64 {
                return 0.0;
            }
            return self.data[(cy * self.width as i64 + cx) as usize] as u8 as f64;
        }
        let mut n = 0usize;
        for yy in y0..y1 {
            let row = &self.data[(yy as usize * self.width as usize)..][..self.width as usize];
            n += row[x0 as usize..x1 as usize].iter().filter(|v| **v).count();
        }
        n as f64 / ((x1 - x0) * (y1 - y0)) as f64
    }

    /// Share of mask pixels that are tissue.
    pub fn coverage(&self) -> f64 {
        self.data.iter().filter(|v| **v).count() as f64 / self.data.len().max(1) as f64
    }
}

/// The tissue mask of a slide.
pub fn detect(slide: &Slide, o: &TissueOptions) -> Result<Mask> {
    if !(o.downsample.is_finite() && o.downsample >= 1.0) {
        return Err(crate::error::Error::Invalid(format!(
            "tissue: downsample must be ≥ 1, got {}",
            o.downsample
        )));
    }
    let img = slide.downsampled(o.downsample)?;
    let (w0, h0) = slide.dimensions();
    let mut m = mask_of(&img, o);
    m.scale = (w0 as f64 / img.width as f64, h0 as f64 / img.height as f64);
    Ok(m)
}

/// The mask of an RGB image (scale 1).
pub fn mask_of(img: &Pixels, o: &TissueOptions) -> Mask {
    let rgb = img.to_rgb();
    let (w, h) = (rgb.width as usize, rgb.height as usize);
    let sat: Vec<u8> = rgb.data.chunks_exact(3).map(saturation).collect();
    let blurred = if o.blur > 1 {
        median(&sat, w, h, (o.blur / 2) as usize)
    } else {
        sat
    };
    let t = o.threshold.unwrap_or_else(|| otsu(&blurred) as f64);
    let mut m: Vec<bool> = blurred.iter().map(|v| *v as f64 > t).collect();
    if o.close > 0 {
        let r = o.close as usize;
        m = erode(&dilate(&m, w, h, r), w, h, r);
    }
    m = remove_small(&m, w, h, o.min_object as usize, true);
    let inv: Vec<bool> = m.iter().map(|v| !v).collect();
    let holes = remove_small(&inv, w, h, o.min_hole as usize, false);
    m = holes.iter().map(|v| !v).collect();
    Mask {
        width: w as u32,
        height: h as u32,
        scale: (1.0, 1.0),
        data: m,
    }
}

/// HSV saturation as OpenCV computes it for 8-bit images: 255·(max−min)/max, rounded.
fn saturation(p: &[u8]) -> u8 {
    let mx = p[0].max(p[1]).max(p[2]) as u32;
    let mn = p[0].min(p[1]).min(p[2]) as u32;
    if mx == 0 {
        0
    } else {
        ((255 * (mx - mn) + mx / 2) / mx) as u8
    }
}

/// Square median filter of radius `r`, edges replicated (OpenCV's medianBlur, scipy `nearest`).
fn median(v: &[u8], w: usize, h: usize, r: usize) -> Vec<u8> {
    let mut out = vec![0u8; v.len()];
    let side = 2 * r + 1;
    let half = side * side / 2;
    let clamp = |a: isize, n: usize| a.clamp(0, n as isize - 1) as usize;
    // Rows are independent (each keeps its own running histogram): one per task.
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let mut hist = [0u32; 256];
        for dy in -(r as isize)..=(r as isize) {
            let yy = clamp(y as isize + dy, h);
            for dx in -(r as isize)..=(r as isize) {
                hist[v[yy * w + clamp(dx, w)] as usize] += 1;
            }
        }
        for (x, o) in row.iter_mut().enumerate() {
            if x > 0 {
                let out_x = clamp(x as isize - r as isize - 1, w);
                let in_x = clamp(x as isize + r as isize, w);
                for dy in -(r as isize)..=(r as isize) {
                    let yy = clamp(y as isize + dy, h);
                    hist[v[yy * w + out_x] as usize] -= 1;
                    hist[v[yy * w + in_x] as usize] += 1;
                }
            }
            let mut acc = 0usize;
            for (val, c) in hist.iter().enumerate() {
                acc += *c as usize;
                if acc > half {
                    *o = val as u8;
                    break;
                }
            }
        }
    });
    out
}

/// Otsu's threshold of 8-bit values (values above it are foreground), as scikit-image computes it.
fn otsu(v: &[u8]) -> u8 {
    let mut hist = [0f64; 256];
    for x in v {
        hist[*x as usize] += 1.0;
    }
    // scikit-image: over the bins between the smallest and largest value present.
    let lo = hist.iter().position(|c| *c > 0.0).unwrap_or(0);
    let hi = hist.iter().rposition(|c| *c > 0.0).unwrap_or(0);
    if lo == hi {
        return lo as u8;
    }
    let bins = &hist[lo..=hi];
    let n = bins.len();
    let (mut w1, mut m1) = (vec![0f64; n], vec![0f64; n]);
    let (mut cw, mut cm) = (0.0, 0.0);
    for i in 0..n {
        cw += bins[i];
        cm += bins[i] * (lo + i) as f64;
        w1[i] = cw;
        m1[i] = cm;
    }
    let (tw, tm) = (cw, cm);
    let mut best = (f64::MIN, 0usize);
    for i in 0..n - 1 {
        let (wa, wb) = (w1[i], tw - w1[i]);
        let (ma, mb) = (m1[i] / wa, (tm - m1[i]) / wb);
        let var = wa * wb * (ma - mb) * (ma - mb);
        if var > best.0 {
            best = (var, i);
        }
    }
    (lo + best.1) as u8
}

/// Binary dilation by a (2r+1)² square; outside the image counts as background.
fn dilate(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    morph(m, w, h, r, true)
}

/// Binary erosion by a (2r+1)² square; outside the image counts as foreground, so the border does
/// not eat into tissue.
fn erode(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    morph(m, w, h, r, false)
}

fn morph(m: &[bool], w: usize, h: usize, r: usize, dilation: bool) -> Vec<bool> {
    // Separable: rows then columns.
    let pass = |src: &[bool], horizontal: bool| -> Vec<bool> {
        let mut out = vec![false; src.len()];
        out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            for (x, o) in row.iter_mut().enumerate() {
                let mut any = !dilation;
                for d in -(r as isize)..=(r as isize) {
                    let (xx, yy) = if horizontal {
                        (x as isize + d, y as isize)
                    } else {
                        (x as isize, y as isize + d)
                    };
                    let v = if xx < 0 || yy < 0 || xx >= w as isize || yy >= h as isize {
                        !dilation
                    } else {
                        src[yy as usize * w + xx as usize]
                    };
                    if dilation && v {
                        any = true;
                        break;
                    }
                    if !dilation && !v {
                        any = false;
                        break;
                    }
                }
                *o = any;
            }
        });
        out
    };
    pass(&pass(m, true), false)
}

/// `m` without its `true` components smaller than `min` pixels (8- or 4-connected).
fn remove_small(m: &[bool], w: usize, h: usize, min: usize, eight: bool) -> Vec<bool> {
    let mut out = m.to_vec();
    if min <= 1 {
        return out;
    }
    let mut seen = vec![false; m.len()];
    let mut stack = Vec::new();
    let mut comp = Vec::new();
    for start in 0..m.len() {
        if !m[start] || seen[start] {
            continue;
        }
        comp.clear();
        stack.push(start);
        seen[start] = true;
        while let Some(p) = stack.pop() {
            comp.push(p);
            let (x, y) = ((p % w) as isize, (p / w) as isize);
            for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    if (dx == 0 && dy == 0) || (!eight && dx != 0 && dy != 0) {
                        continue;
                    }
                    let (xx, yy) = (x + dx, y + dy);
                    if xx < 0 || yy < 0 || xx >= w as isize || yy >= h as isize {
                        continue;
                    }
                    let q = yy as usize * w + xx as usize;
                    if m[q] && !seen[q] {
                        seen[q] = true;
                        stack.push(q);
                    }
                }
            }
        }
        if comp.len() < min {
            for p in &comp {
                out[*p] = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_groups() {
        let mut v = vec![10u8; 100];
        v.extend(vec![200u8; 100]);
        let t = otsu(&v);
        assert!((10..200).contains(&t), "{t}");
    }

    #[test]
    fn small_objects_and_holes_go() {
        let (w, h) = (10, 10);
        let mut m = vec![false; 100];
        m[0] = true; // a speck
        for y in 3..9 {
            for x in 3..9 {
                m[y * w + x] = !(x == 5 && y == 5); // a block with a one-pixel hole
            }
        }
        let r = remove_small(&m, w, h, 4, true);
        assert!(!r[0]);
        let inv: Vec<bool> = r.iter().map(|v| !v).collect();
        let filled: Vec<bool> = remove_small(&inv, w, h, 4, false)
            .iter()
            .map(|v| !v)
            .collect();
        assert!(filled[5 * w + 5]);
    }
}
