//! Batches of network inputs, decoded and transformed in parallel (rayon) on a producer thread
//! and handed over through a bounded queue: memory depends on the batch size, not the dataset.

use super::decode::Rgb;
use super::stain::StainNormalizer;
use super::transform::{normalize_into, square_resize, Augment};
use super::Item;
use crate::error::{Error, Result};
use crate::input::Preprocess;
use crate::rng::Rng;
use crossbeam_channel::{bounded, Receiver};
use rayon::prelude::*;
use std::sync::Arc;

/// One batch: the positions (in the order given) of its images and their pixels, `[n, 3, s, s]`.
pub struct Batch {
    pub positions: Vec<usize>,
    pub pixels: Vec<f32>,
    pub size: usize,
}

impl Batch {
    /// The batch as a tensor on `device`.
    pub fn tensor(&self, device: tch::Device) -> tch::Tensor {
        let s = self.size as i64;
        tch::Tensor::from_slice(&self.pixels)
            .reshape([self.positions.len() as i64, 3, s, s])
            .to_device(device)
    }
}

/// How to prepare images.
#[derive(Clone, Debug)]
pub struct Prepare {
    pub pre: Preprocess,
    /// The dataset's stain normaliser, applied to the decoded image first.
    pub stain: Option<Arc<StainNormalizer>>,
    pub augment: Option<Augment>,
    /// Seed of the augmentation; each image gets its own stream from it and its path position.
    pub seed: u64,
}

/// One image (a file or a slide tile) read, then stain-normalised by `stain` when given; errors
/// name the file or the tile.
pub fn load(item: &Item, stain: Option<&StainNormalizer>) -> Result<Rgb> {
    let img = item.read()?;
    match stain {
        Some(s) => s.normalize(&img).map_err(|e| {
            Error::Invalid(format!(
                "{}: stain normalization ({}): {e}",
                item.name(),
                s.method()
            ))
        }),
        None => Ok(img),
    }
}

/// One image file, preprocessed, as CHW floats.
pub fn prepare_one(path: &std::path::Path, stream: u64, p: &Prepare) -> Result<Vec<f32>> {
    let item = Item::file(path);
    Ok(prepare_rgb(load(&item, p.stain.as_deref())?, stream, p))
}

/// Read pixels (stain-normalised already), preprocessed, as CHW floats.
pub fn prepare_rgb(img: Rgb, stream: u64, p: &Prepare) -> Vec<f32> {
    let n = p.pre.size as usize;
    let mut out = vec![0f32; 3 * n * n];
    prepare_rgb_into(img, stream, p, &mut out);
    out
}

/// [`prepare_rgb`] into `out` (`3 × size × size` floats, a batch's slot).
pub fn prepare_rgb_into(mut img: Rgb, stream: u64, p: &Prepare, out: &mut [f32]) {
    let n = p.pre.size as usize;
    let px = match &p.augment {
        Some(a) => {
            let mut rng = Rng::fork(p.seed, stream);
            if let Some(sa) = &a.stain {
                img = sa.augment(&img, &mut rng);
            }
            square_resize(&img, &p.pre, Some((a, &mut rng)))
        }
        None => square_resize(&img, &p.pre, None),
    };
    normalize_into(&px, n, p.pre.normalization, out);
}

/// Starts preparing `items` (files or slide tiles) in batches of `batch`; at most `prefetch`
/// batches wait in the queue. `streams[i]` seeds the augmentation of `items[i]`.
pub fn batches(
    paths: Vec<Item>,
    streams: Vec<u64>,
    batch: usize,
    prep: Prepare,
    prefetch: usize,
) -> Receiver<Result<Batch>> {
    let (tx, rx) = bounded(prefetch.max(1));
    std::thread::spawn(move || {
        let n = prep.pre.size as usize;
        let positions: Vec<usize> = (0..paths.len()).collect();
        for chunk in positions.chunks(batch.max(1)) {
            if crate::cancel::requested() {
                let _ = tx.send(Err(Error::Cancelled));
                return;
            }
            let mut pixels = vec![0f32; chunk.len() * 3 * n * n];
            let res: Result<()> = pixels
                .par_chunks_mut(3 * n * n)
                .zip(chunk.par_iter())
                .try_for_each(|(out, &i)| {
                    let img = load(&paths[i], prep.stain.as_deref())?;
                    prepare_rgb_into(img, streams[i], &prep, out);
                    Ok(())
                });
            let msg = res.map(|_| Batch {
                positions: chunk.to_vec(),
                pixels,
                size: n,
            });
            let failed = msg.is_err();
            if tx.send(msg).is_err() || failed {
                return;
            }
        }
    });
    rx
}
