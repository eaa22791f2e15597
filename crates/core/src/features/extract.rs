//! Extraction: dataset × network × taps × reducer → feature set, one forward pass for all taps,
//! decoding overlapped with compute, and only the images the cache lacks are computed.
//! Processes sharing a cache split the missing images by claiming chunks ([`super::claims`]): a
//! chunk is a run of `chunk` images in the order of their content hashes, so every process forms
//! the same chunks from the same images.

use super::cache::{self, Hash, TapCache};
use super::claims::{Claim, Claims};
use super::{Column, FeatureSet};
use crate::data::loader::{batches, Batch, Prepare};
use crate::data::{Dataset, Item};
use crate::error::{Context, Error, Result};
use crate::input::Preprocess;
use crate::nets::precision::{autocast, Precision};
use crate::nets::Network;
use crate::options::Names;
use crossbeam_channel::Receiver;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet};
use tch::{Device, Tensor};

/// Version of the preprocessing and reduction code, in every feature cache key with the network
/// family's own version: bump it with any change that alters the numbers.
pub const VERSION: u32 = 1;

crate::choice! {
    /// How a tap's output becomes a vector: a CNN's feature map or a ViT's tokens.
    pub enum Reduce {
        /// The network's published pooling: GAP for CNNs, the class token (Virchow: cls+mean) for ViTs.
        Default = "default",
        /// Global average pooling (ViTs: over the patch grid).
        Gap = "gap",
        /// Global max pooling (ViTs: over the patch grid).
        Gmp = "gmp",
        /// Both, concatenated (average first).
        GapGmp = "gap+gmp",
        /// ViTs: the class token.
        Cls = "cls",
        /// ViTs: the mean of the patch tokens (class and register tokens excluded).
        Mean = "mean",
        /// ViTs: the class token and the mean of the patch tokens, concatenated (Virchow's embedding).
        ClsMean = "cls+mean",
    }
}

impl Reduce {
    /// The name used in column provenance and cache keys.
    pub fn name(self) -> &'static str {
        self.as_str()
    }

    /// `"default"` made concrete for `net`; a token reducer on a CNN (or a ViT without a class
    /// token asked for `cls`) is an error naming both.
    pub fn resolve(self, net: &Network) -> Result<Reduce> {
        use crate::nets::tokens::Pool;
        let tokens = net.tokens();
        let r = match (self, tokens) {
            (Reduce::Default, None) => Reduce::Gap,
            (Reduce::Default, Some(t)) => match t.pool {
                Pool::Cls => Reduce::Cls,
                Pool::ClsMean => Reduce::ClsMean,
            },
            (r, _) => r,
        };
        let token_only = matches!(r, Reduce::Cls | Reduce::Mean | Reduce::ClsMean);
        if token_only && tokens.is_none() {
            return Err(Error::Invalid(format!(
                "reduce {:?} needs a ViT's tokens; {} is a CNN (use \"gap\", \"gmp\" or \"gap+gmp\")",
                r.name(),
                net.spec.name
            )));
        }
        if matches!(r, Reduce::Cls | Reduce::ClsMean) && tokens.is_some_and(|t| !t.cls) {
            return Err(Error::Invalid(format!(
                "reduce {:?}: {} has no class token",
                r.name(),
                net.spec.name
            )));
        }
        Ok(r)
    }

    /// A tap output → `[n, c']`: `[n, c, h, w]` maps of CNNs, `[n, tokens, dim]` of ViTs (whose
    /// prefix tokens `tokens` describes). `self` is resolved (not `Default`).
    pub fn apply_tokens(self, t: &Tensor, tokens: Option<crate::nets::tokens::Tokens>) -> Tensor {
        use crate::nets::tokens::{patch_tokens, pool, Pool};
        let Some(tk) = tokens else {
            return self.apply(t);
        };
        let f = |x: Tensor| x.to_kind(tch::Kind::Float);
        match self {
            Reduce::Default | Reduce::Cls => f(pool(t, tk, Pool::Cls)),
            Reduce::ClsMean => f(pool(t, tk, Pool::ClsMean)),
            Reduce::Mean | Reduce::Gap => patch_tokens(t, tk).mean_dim(1, false, tch::Kind::Float),
            Reduce::Gmp => f(patch_tokens(t, tk).amax(1, false)),
            Reduce::GapGmp => {
                let p = patch_tokens(t, tk);
                Tensor::cat(
                    &[p.mean_dim(1, false, tch::Kind::Float), f(p.amax(1, false))],
                    1,
                )
            }
        }
    }

    /// `[n, c, h, w]` → `[n, c']`.
    pub fn apply(self, t: &Tensor) -> Tensor {
        let dims = &[-2i64, -1][..];
        match self {
            Reduce::Default | Reduce::Cls | Reduce::Mean | Reduce::ClsMean => {
                unreachable!("token reducers are resolved against the network first")
            }
            Reduce::Gap => t.mean_dim(dims, false, tch::Kind::Float),
            Reduce::Gmp => t.amax(dims, false),
            Reduce::GapGmp => Tensor::cat(
                &[
                    t.mean_dim(dims, false, tch::Kind::Float),
                    t.amax(dims, false),
                ],
                1,
            ),
        }
    }
}

crate::options! {
    /// Options of [`extract`] (`net.features(data, #{ ... })`).
    pub struct ExtractOptions for "features" {
        /// Tap names, or a preset: "last", "paper", "all".
        taps: Names = Names(vec!["last".into()]),
        /// How each tap output becomes a vector ("default": GAP for CNNs, the published pooling for ViTs).
        reduce: Reduce = Reduce::Default,
        /// Images per forward pass.
        batch: usize = 32,
        /// [i, n]: compute only the images of shard i of n (by content hash; by slide for slide tiles).
        shard: Option<(usize, usize)> = None,
        /// Images per cache chunk: what a killed run can lose at most, and what processes sharing a cache claim; () is 8 batches, at least 64 images (each chunk costs a synced write: small chunks starve a fast GPU).
        chunk: Option<usize> = None,
        /// No progress bar.
        quiet: bool = false,
        /// Must name the network's device when given (create the network there instead).
        device: Option<String> = None,
        /// "fp32", "bf16" or "fp16" (autocast, part of the cache key); () uses the network's own.
        precision: Option<Precision> = None,
    }
}

/// Top-`k` classes of one image file by the network's own head, with softmax probabilities.
pub fn classify(
    net: &Network,
    image: &std::path::Path,
    k: usize,
) -> Result<Vec<(usize, String, f64)>> {
    let prep = Prepare {
        pre: net.preprocess(),
        stain: None,
        augment: None,
        seed: 0,
    };
    let px = crate::data::loader::prepare_one(image, 0, &prep)?;
    net.classify_pixels(&px, k)
}

/// Content hashes of every image of the dataset (read in parallel).
pub fn image_hashes(ds: &Dataset) -> Result<Vec<Hash>> {
    ds.items
        .par_iter()
        .map(|it| {
            match &it.tile {
                // A tile is keyed by its slide's content id and its place, never by reading it.
                Some(t) => Ok(cache::hash_bytes(t.key().as_bytes())),
                None => std::fs::read(&it.path)
                    .at(&it.path)
                    .map(|b| cache::hash_bytes(&b)),
            }
        })
        .collect()
}

impl ExtractOptions {
    /// Images per cache chunk (see the `chunk` option).
    pub fn chunk_size(&self) -> usize {
        self.chunk.unwrap_or((8 * self.batch).max(64)).max(1)
    }
}

/// Extracts features of `ds` at the requested taps; cached rows are read, the rest computed.
pub fn extract(net: &Network, ds: &Dataset, o: &ExtractOptions) -> Result<FeatureSet> {
    let taps = net.resolve_taps(&o.taps.0)?;
    // The concrete reducer is what keys the cache and names the columns.
    let o = &ExtractOptions {
        reduce: o.reduce.resolve(net)?,
        ..o.clone()
    };
    let pre = net.preprocess();
    let precision = o.precision.unwrap_or(net.precision);
    let o = &ExtractOptions {
        precision: Some(precision),
        ..o.clone()
    };
    let mut setting = format!(
        "{}|{}|{}|{}|code {}.{}{}",
        net.spec.name,
        net.digest,
        pre.key(),
        o.reduce.name(),
        net.spec.version,
        VERSION,
        precision.key()
    );
    // A stain normaliser changes every pixel: its fitted target keys the cache (datasets without
    // one keep the keys they always had).
    if let Some(s) = &ds.stain {
        setting += &format!("|stain {}", s.key());
    }
    let dir = cache::model_dir(net.spec.name, &setting);
    std::fs::create_dir_all(&dir).at(&dir)?;
    std::fs::write(dir.join("setting.txt"), &setting).at(&dir)?;
    let mut caches: Vec<TapCache> = taps
        .iter()
        .map(|t| TapCache::open(&dir.join(t)))
        .collect::<Result<_>>()?;

    let hashes = image_hashes(ds)?;
    // Slide-tile datasets shard by slide, so a slide's tiles stay in one task.
    let by_slide = ds.items.iter().any(|it| it.tile.is_some());
    let rows: Vec<usize> = match o.shard {
        Some((i, n)) if n == 0 || i >= n => {
            return Err(Error::Invalid(format!("shard [{i}, {n}]: need 0 ≤ i < n")))
        }
        // Slide tiles are sharded by slide (one machine reads each slide), images by content.
        Some((i, n)) => (0..ds.len())
            .filter(|r| shard_of(&shard_key(&ds.items[*r], &hashes[*r], by_slide), n) == i)
            .collect(),
        None => (0..ds.len()).collect(),
    };
    // Read what the cache has of these images first (a damaged chunk's images become missing).
    let wanted: Vec<Hash> = rows.iter().map(|r| hashes[*r]).collect();
    for c in caches.iter_mut() {
        c.load(&wanted)?;
    }
    let mut missing: Vec<usize> = rows
        .iter()
        .copied()
        .filter(|r| caches.iter().any(|c| c.get(&hashes[*r]).is_none()))
        .collect();
    // The same content twice in a dataset is computed once, wherever the copies are.
    let mut seen = HashSet::new();
    missing.retain(|r| seen.insert(hashes[*r]));
    let mut counts = Counts::default();
    if !missing.is_empty() {
        let done = compute_shared(net, ds, &missing, &hashes, &taps, o, pre, &dir, &mut caches);
        crate::memory::release();
        counts = done?;
    }

    // Assemble the matrix in dataset order, taps side by side.
    let dims: Vec<usize> = caches
        .iter()
        .map(|c| {
            rows.first()
                .and_then(|r| c.get(&hashes[*r]))
                .map_or(0, |v| v.len())
        })
        .collect();
    let d: usize = dims.iter().sum();
    let mut x = Vec::with_capacity(rows.len() * d);
    for r in &rows {
        for c in &caches {
            x.extend_from_slice(c.get(&hashes[*r]).expect("computed above"));
        }
    }
    let mut columns = Vec::with_capacity(d);
    for (t, dim) in taps.iter().zip(&dims) {
        columns.extend((0..*dim).map(|ch| Column {
            network: net.spec.name.into(),
            tap: t.clone(),
            reduce: o.reduce.name().into(),
            channel: ch,
        }));
    }
    let pick = |f: &dyn Fn(&crate::data::Item) -> String| {
        rows.iter().map(|r| f(&ds.items[*r])).collect::<Vec<_>>()
    };
    let mut fs = FeatureSet::new(
        x,
        pick(&|it| it.name()),
        rows.iter().map(|r| ds.items[*r].label).collect(),
        pick(&|it| it.slide.clone()),
        ds.classes.clone(),
        columns,
    )?;
    fs.computed = counts.computed;
    fs.waited = counts.waited;
    fs.input_wait = counts.input_wait.as_secs_f64();
    if !o.quiet {
        // Other processes are named only when some shared the work.
        let others = match counts.waited {
            0 => String::new(),
            n => format!(", {n} computed by other processes"),
        };
        eprintln!(
            "features: {} images × {d} ({} computed, {} from cache{others})",
            rows.len(),
            counts.computed,
            rows.len() - counts.computed - counts.waited,
        );
    }
    Ok(fs)
}

/// The shard an image belongs to, from its shard key (the same on every machine).
pub fn shard_of(key: &Hash, n: usize) -> usize {
    (u64::from_le_bytes(key[..8].try_into().unwrap()) % n as u64) as usize
}

/// What decides an image's shard: its slide id when the dataset's items are tiles of slides (so
/// that a slide's tiles never split over tasks and a task reads each slide once), its content
/// hash otherwise.
pub fn shard_key(item: &Item, content: &Hash, slide_tiles: bool) -> Hash {
    if slide_tiles {
        cache::hash_bytes(item.slide.as_bytes())
    } else {
        *content
    }
}

/// Where the features of the images missing at the start came from.
#[derive(Default, Debug)]
struct Counts {
    /// Computed by this process.
    computed: usize,
    /// Computed by other processes sharing the cache while this one waited or worked.
    waited: usize,
    /// Time the network spent waiting for decoded images.
    input_wait: std::time::Duration,
}

/// How often a process whose remaining images are all claimed by others looks again.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// A claimed chunk, its images (dataset rows) and the loader already preparing them.
type Claimed = (Claim, Vec<usize>, Receiver<Result<Batch>>);

/// Computes the `missing` rows together with any other process working on the same cache:
/// claim a free chunk (one more is claimed and its images prepared while the first is
/// computed), compute and write it, release it; when every remaining image is claimed by a live
/// process, wait for its chunks to appear (or for its claim to go stale and take it over).
#[allow(clippy::too_many_arguments)]
fn compute_shared(
    net: &Network,
    ds: &Dataset,
    missing: &[usize],
    hashes: &[Hash],
    taps: &[String],
    o: &ExtractOptions,
    pre: Preprocess,
    dir: &std::path::Path,
    caches: &mut [TapCache],
) -> Result<Counts> {
    let claims = Claims::open(dir)?;
    // Not yet claimed by this process, in hash order: the order chunks are formed in.
    let mut todo: BTreeMap<Hash, usize> = missing.iter().map(|r| (hashes[*r], *r)).collect();
    let mut counts = Counts::default();
    let bar = crate::progress::bar(
        missing.len() as u64,
        &format!("{} features", net.spec.name),
        o.quiet,
    );
    let claim_next = |todo: &mut BTreeMap<Hash, usize>| -> Result<Option<Claimed>> {
        let (live, _) = claims.live()?;
        let taken: HashSet<Hash> = live.iter().flat_map(|s| s.info.images.clone()).collect();
        let free: Vec<Hash> = todo
            .keys()
            .filter(|h| !taken.contains(*h))
            .copied()
            .collect();
        for chunk in free.chunks(o.chunk_size()) {
            if let Some(claim) = claims.try_claim(chunk)? {
                let rows: Vec<usize> = chunk.iter().map(|h| todo.remove(h).unwrap()).collect();
                let paths = rows.iter().map(|r| ds.items[*r].clone()).collect();
                let rx = batches(
                    paths,
                    vec![0; rows.len()],
                    o.batch.max(1),
                    ds.prepare(pre),
                    2,
                );
                return Ok(Some((claim, rows, rx)));
            }
        }
        Ok(None)
    };
    let mut ahead: Option<Claimed> = None;
    loop {
        crate::cancel::check()?;
        // Images that other processes wrote meanwhile are done.
        let still: Vec<Hash> = todo.keys().copied().collect();
        for c in caches.iter_mut() {
            if c.refresh()? > 0 {
                c.load(&still)?;
            }
        }
        let before = todo.len();
        todo.retain(|h, _| caches.iter().any(|c| c.get(h).is_none()));
        counts.waited += before - todo.len();
        bar.inc((before - todo.len()) as u64);
        let current = match ahead.take() {
            Some(c) => Some(c),
            None if todo.is_empty() => break,
            None => claim_next(&mut todo)?,
        };
        let Some((claim, rows, rx)) = current else {
            std::thread::sleep(POLL);
            continue;
        };
        if !todo.is_empty() {
            ahead = claim_next(&mut todo)?;
        }
        counts.input_wait += compute_chunk(net, &rows, hashes, taps, o, rx, caches, &bar)?;
        drop(claim);
        counts.computed += rows.len();
    }
    bar.finish_and_clear();
    let still = missing
        .iter()
        .filter(|r| caches.iter().any(|c| c.get(&hashes[**r]).is_none()))
        .count();
    if still > 0 {
        return Err(Error::Invalid(format!(
            "extraction stopped early: {still} images not computed"
        )));
    }
    Ok(counts)
}

/// Runs the network over one claimed chunk and writes it to every tap's cache; returns how long
/// the network waited for the loader (≈ 0 when compute-bound).
#[allow(clippy::too_many_arguments)]
fn compute_chunk(
    net: &Network,
    rows: &[usize],
    hashes: &[Hash],
    taps: &[String],
    o: &ExtractOptions,
    rx: Receiver<Result<Batch>>,
    caches: &mut [TapCache],
    bar: &indicatif::ProgressBar,
) -> Result<std::time::Duration> {
    let device = net.device();
    let mut done: Vec<Hash> = Vec::with_capacity(rows.len());
    let mut feats: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(rows.len()); taps.len()];
    let mut input_wait = std::time::Duration::ZERO;
    // `extract` has resolved it (the option, else the network's).
    let precision = o.precision.unwrap_or(net.precision);
    // Every tap reduced to its class token: the last block need not compute the other tokens.
    let class_token_only = o.reduce == Reduce::Cls;
    loop {
        let t0 = std::time::Instant::now();
        let Ok(batch) = rx.recv() else { break };
        input_wait += t0.elapsed();
        crate::cancel::check()?;
        let batch = batch?;
        let n = batch.positions.len() as i64;
        let mut x = batch.tensor(device);
        // On CUDA every pass has the full batch size: cuDNN (benchmark mode) times its kernels
        // again for each new input shape, seconds for a DenseNet, more than a short batch costs.
        if device.is_cuda() && n < o.batch as i64 {
            let mut pad = x.size();
            pad[0] = o.batch as i64 - n;
            x = Tensor::cat(
                &[x.shallow_clone(), Tensor::zeros(&pad, (x.kind(), device))],
                0,
            );
        }
        let outs: Vec<Tensor> = tch::no_grad(|| {
            autocast(device, precision, || {
                net.forward_taps_keeping(&x, taps, false, class_token_only)
            })
        })
        .into_iter()
        .map(|t| t.narrow(0, 0, n))
        .collect();
        crate::cancel::check()?;
        for (t, out) in outs.iter().enumerate() {
            let v = o
                .reduce
                .apply_tokens(out, net.tokens())
                .to_device(Device::Cpu)
                .to_kind(tch::Kind::Float)
                .contiguous();
            let dim = v.size()[1] as usize;
            let flat: Vec<f32> = Vec::<f32>::try_from(v.flatten(0, -1))?;
            feats[t].extend(flat.chunks(dim).map(|c| c.to_vec()));
        }
        done.extend(batch.positions.iter().map(|p| hashes[rows[*p]]));
        bar.inc(batch.positions.len() as u64);
    }
    if done.len() != rows.len() {
        return Err(Error::Invalid(format!(
            "extraction stopped early: {} of a chunk's {} images computed",
            done.len(),
            rows.len()
        )));
    }
    for (c, f) in caches.iter_mut().zip(&feats) {
        c.write_chunk(&done, f)?;
    }
    Ok(input_wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(slide: &str) -> Item {
        Item {
            slide: slide.into(),
            ..Item::file(std::path::Path::new("tile.png"))
        }
    }

    #[test]
    fn tiles_of_one_slide_share_a_shard_and_other_images_go_by_content() {
        let contents: Vec<Hash> = (0..60u8).map(|i| cache::hash_bytes(&[i])).collect();
        let shard =
            |slide: &str, c: &Hash, tiles: bool| shard_of(&shard_key(&item(slide), c, tiles), 3);
        let mut used = HashSet::new();
        for s in 0..6 {
            let slide = format!("slide-{s}");
            let shards: HashSet<usize> = contents.iter().map(|c| shard(&slide, c, true)).collect();
            assert_eq!(
                shards.len(),
                1,
                "{slide}'s tiles split over shards {shards:?}"
            );
            used.extend(shards);
        }
        assert!(used.len() > 1, "slides spread over the shards");
        // Not tiles: the content decides, whatever the slide.
        let shards: HashSet<usize> = contents
            .iter()
            .map(|c| shard("slide-0", c, false))
            .collect();
        assert_eq!(shards.len(), 3);
        assert_eq!(
            shard("a", &contents[7], false),
            shard("b", &contents[7], false)
        );
    }
}
