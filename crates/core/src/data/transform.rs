//! The paper's preprocessing carried out: the largest centred square, resized to the network input
//! with the interpolation the weights expect, normalised per network (the recipe is
//! [`crate::input::Preprocess`], which a network gives); and seeded augmentation.

use super::decode::Rgb;
use super::stain::StainAugment;
use crate::input::{Interpolation, Normalization, Preprocess};
use crate::rng::Rng;
use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// Random changes applied during training: where the max square is taken, flips, 90° turns, and
/// optionally Macenko stain augmentation of the whole image before the crop.
#[derive(Clone, Debug)]
pub struct Augment {
    pub random_crop: bool,
    pub flips: bool,
    pub rotations: bool,
    pub stain: Option<StainAugment>,
}

impl Augment {
    /// The paper's augmentation: crop, flips and rotations, no stain augmentation.
    pub fn paper() -> Self {
        Augment {
            random_crop: true,
            flips: true,
            rotations: true,
            stain: None,
        }
    }
}

/// Crops the max square (centred, or at a random place with `aug`), resizes and returns the
/// resized 8-bit RGB square.
pub fn square_resize(img: &Rgb, p: &Preprocess, aug: Option<(&Augment, &mut Rng)>) -> Vec<u8> {
    let side = img.width.min(img.height);
    let (mut left, mut top) = ((img.width - side) / 2, (img.height - side) / 2);
    let mut rng_ref = None;
    if let Some((a, rng)) = aug {
        if a.random_crop {
            left = rng.below((img.width - side + 1) as usize) as u32;
            top = rng.below((img.height - side + 1) as usize) as u32;
        }
        rng_ref = Some((a, rng));
    }
    let src = Image::from_vec_u8(img.width, img.height, img.pixels.clone(), PixelType::U8x3)
        .expect("buffer size matches");
    let mut dst = Image::new(p.size, p.size, PixelType::U8x3);
    let filter = match p.interpolation {
        Interpolation::Bilinear => FilterType::Bilinear,
        Interpolation::Bicubic => FilterType::CatmullRom,
    };
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter))
        .crop(left as f64, top as f64, side as f64, side as f64);
    Resizer::new()
        .resize(&src, &mut dst, &opts)
        .expect("same pixel types");
    let mut out = dst.into_vec();
    if let Some((a, rng)) = rng_ref {
        let n = p.size as usize;
        if a.flips && rng.below(2) == 1 {
            flip_horizontal(&mut out, n);
        }
        if a.flips && rng.below(2) == 1 {
            flip_vertical(&mut out, n);
        }
        if a.rotations {
            for _ in 0..rng.below(4) {
                out = rotate90(&out, n);
            }
        }
    }
    out
}

fn flip_horizontal(px: &mut [u8], n: usize) {
    for row in px.chunks_mut(n * 3) {
        for x in 0..n / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (n - 1 - x) * 3 + c);
            }
        }
    }
}

fn flip_vertical(px: &mut [u8], n: usize) {
    for y in 0..n / 2 {
        let (a, b) = px.split_at_mut((n - 1 - y) * n * 3);
        a[y * n * 3..(y + 1) * n * 3].swap_with_slice(&mut b[..n * 3]);
    }
}

fn rotate90(px: &[u8], n: usize) -> Vec<u8> {
    let mut out = vec![0u8; px.len()];
    for y in 0..n {
        for x in 0..n {
            let (sy, sx) = (n - 1 - x, y);
            out[(y * n + x) * 3..(y * n + x) * 3 + 3]
                .copy_from_slice(&px[(sy * n + sx) * 3..(sy * n + sx) * 3 + 3]);
        }
    }
    out
}

/// Writes an RGB square into `out` as normalised CHW floats.
pub fn normalize_into(px: &[u8], size: usize, norm: Normalization, out: &mut [f32]) {
    let (mean, std) = norm.mean_std();
    let plane = size * size;
    // One channel plane at a time, without index checks (the same arithmetic, so the same bits).
    for (c, o) in out[..3 * plane].chunks_exact_mut(plane).enumerate() {
        for (v, p) in o.iter_mut().zip(px[..3 * plane].chunks_exact(3)) {
            *v = (p[c] as f32 / 255.0 - mean[c]) / std[c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_rotations_are_identity() {
        let px: Vec<u8> = (0..4 * 4 * 3).map(|i| i as u8).collect();
        let mut r = px.clone();
        for _ in 0..4 {
            r = rotate90(&r, 4);
        }
        assert_eq!(r, px);
        let mut f = px.clone();
        flip_vertical(&mut f, 4);
        flip_vertical(&mut f, 4);
        assert_eq!(f, px);
    }

    /// A 3×3 image whose pixel at (row, col) is (v, v + 100, v + 200) with v = 3·row + col + 1.
    fn grid(layout: [[u8; 3]; 3]) -> Vec<u8> {
        layout
            .iter()
            .flatten()
            .flat_map(|v| [*v, v + 100, v + 200])
            .collect()
    }

    #[test]
    fn each_transform_moves_pixels_where_it_should() {
        let px = grid([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
        // A quarter turn clockwise (np.rot90(x, -1)).
        assert_eq!(rotate90(&px, 3), grid([[7, 4, 1], [8, 5, 2], [9, 6, 3]]));
        let mut h = px.clone();
        flip_horizontal(&mut h, 3);
        assert_eq!(h, grid([[3, 2, 1], [6, 5, 4], [9, 8, 7]]));
        let mut v = px.clone();
        flip_vertical(&mut v, 3);
        assert_eq!(v, grid([[7, 8, 9], [4, 5, 6], [1, 2, 3]]));
    }

    #[test]
    fn max_square_of_a_wide_image_is_centred() {
        // 6x2 image: left third black, middle white, right third black; the centred 2x2 is white.
        let mut pixels = vec![0u8; 6 * 2 * 3];
        for y in 0..2 {
            for x in 2..4 {
                for c in 0..3 {
                    pixels[(y * 6 + x) * 3 + c] = 255;
                }
            }
        }
        let img = Rgb {
            width: 6,
            height: 2,
            pixels,
        };
        let p = Preprocess {
            size: 2,
            interpolation: Interpolation::Bilinear,
            normalization: Normalization::Inception,
        };
        assert!(square_resize(&img, &p, None).iter().all(|v| *v == 255));
    }
}
