//! Tile grids: square tiles of `size` pixels at a requested resolution (µm/px, magnification or a
//! level), each read from the level whose resolution is closest above the request and resampled.

use super::tissue::Mask;
use super::{Pixels, Slide};
use crate::error::{Error, Result};
use fast_image_resize::FilterType;

/// Version of the tile reading code, in every tile's cache key: bump it with any change that
/// alters the pixels.
pub const VERSION: u32 = 1;

/// One tile: a region of a level, resampled to `size` × `size`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tile {
    pub level: u32,
    /// Top-left corner in level-0 pixels.
    pub x: i64,
    pub y: i64,
    /// The region's size in pixels of `level`.
    pub w: u32,
    pub h: u32,
    /// Output side in pixels.
    pub size: u32,
}

impl Tile {
    /// Reads the tile as RGB (over white where the slide is transparent), bilinear-resampled
    /// (Pillow's convolution filter) when the level's region is not already `size` pixels.
    pub fn read(&self, slide: &Slide) -> Result<Pixels> {
        let region = slide
            .read_rgb(self.x, self.y, self.level as usize, self.w, self.h)
            .map_err(|e| match e {
                Error::File { path, msg } => Error::File {
                    path,
                    msg: format!("tile at ({}, {}): {msg}", self.x, self.y),
                },
                e => e,
            })?;
        Ok(region.into_resized(self.size, self.size, FilterType::Bilinear))
    }

    /// A stable text for cache keys: everything that decides the tile's pixels but the slide.
    pub fn key(&self) -> String {
        format!(
            "L{}@{},{}:{}x{}->{}:bilinear:v{VERSION}",
            self.level, self.x, self.y, self.w, self.h, self.size
        )
    }

    /// The tile's extent in level-0 pixels on `slide`.
    pub fn extent(&self, slide: &Slide) -> (f64, f64) {
        let d = slide.levels[self.level as usize].downsample;
        (self.w as f64 * d, self.h as f64 * d)
    }
}

crate::options! {
    /// Where tiles are cut: their size, resolution and overlap.
    pub struct GridOptions for "tiles" {
        /// Tile side in output pixels.
        size: u32 = 224,
        /// Resolution in µm per pixel (TRIDENT: µm/px = 10 / magnification).
        mpp: Option<f64> = None,
        /// Resolution as an objective magnification (20 → 0.5 µm/px); mpp wins when both are given.
        magnification: Option<f64> = None,
        /// Tiles at this level's own resolution, for slides without µm/px.
        level: Option<u32> = None,
        /// Pixels (at the output resolution) shared by neighbouring tiles.
        overlap: u32 = 0,
    }
    check(o) {
        if o.size == 0 || o.overlap >= o.size {
            return Err(Error::Invalid(format!(
                "tiles: need size > 0 and overlap < size (size {}, overlap {})",
                o.size, o.overlap
            )));
        }
        if let Some(mpp) = o.mpp.filter(|m| !(m.is_finite() && *m > 0.0)) {
            return Err(Error::Invalid(format!("tiles: mpp {mpp} must be > 0")));
        }
        if let Some(mag) = o.magnification.filter(|m| !(m.is_finite() && *m > 0.0)) {
            return Err(Error::Invalid(format!("tiles: magnification {mag} must be > 0")));
        }
        Ok(())
    }
}

/// Level-0 pixels per output pixel that the options ask for on `slide`.
pub fn downsample_for(slide: &Slide, o: &GridOptions) -> Result<f64> {
    if let Some(l) = o.level {
        return slide
            .levels
            .get(l as usize)
            .map(|lv| lv.downsample)
            .ok_or_else(|| {
                Error::file(
                    &slide.path,
                    format!(
                        "level {l} does not exist (the slide has {} level(s))",
                        slide.levels.len()
                    ),
                )
            });
    }
    let mpp = match (o.mpp, o.magnification) {
        (Some(m), _) => m,
        (None, Some(mag)) if mag > 0.0 => 10.0 / mag,
        (None, Some(mag)) => {
            return Err(crate::error::Error::Invalid(format!(
                "tiles: magnification {mag} must be > 0"
            )))
        }
        (None, None) => 0.5,
    };
    if !(mpp.is_finite() && mpp > 0.0) {
        return Err(crate::error::Error::Invalid(format!(
            "tiles: mpp {mpp} must be > 0"
        )));
    }
    let (sx, _) = slide.mpp().ok_or_else(|| {
        Error::file(
            &slide.path,
            "the slide records no µm per pixel (openslide.mpp-x): ask for tiles by level: n",
        )
    })?;
    Ok(mpp / sx)
}

/// Every tile of the grid over the slide (row by row), with its tissue share when a mask is given.
pub fn grid(slide: &Slide, o: &GridOptions, mask: Option<&Mask>) -> Result<Vec<(Tile, f64)>> {
    crate::options::Options::check(o)?;
    let ds = downsample_for(slide, o)?;
    let level = slide.level_for(ds);
    let d = slide.levels[level].downsample;
    let extent = o.size as f64 * ds;
    let stride = (o.size - o.overlap) as f64 * ds;
    let side = ((extent / d).round() as u32).max(1);
    let (w0, h0) = slide.dimensions();
    let mut out = Vec::new();
    let mut j = 0u64;
    loop {
        let y = (j as f64 * stride).round();
        if y + extent > h0 as f64 + 1e-6 {
            break;
        }
        let mut i = 0u64;
        loop {
            let x = (i as f64 * stride).round();
            if x + extent > w0 as f64 + 1e-6 {
                break;
            }
            let t = Tile {
                level: level as u32,
                x: x as i64,
                y: y as i64,
                w: side,
                h: side,
                size: o.size,
            };
            let tissue = mask.map_or(1.0, |m| m.fraction(x, y, extent, extent));
            out.push((t, tissue));
            i += 1;
        }
        j += 1;
    }
    Ok(out)
}
