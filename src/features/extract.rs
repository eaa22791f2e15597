//! Extraction: dataset × network × taps × reducer → feature set, one forward pass for all taps,
//! decoding overlapped with compute, and only the images the cache lacks are computed.

use super::cache::{self, Hash, TapCache};
use super::{Column, FeatureSet};
use crate::data::loader::{batches, Prepare};
use crate::data::transform::Preprocess;
use crate::data::Dataset;
use crate::error::{Context, Error, Result};
use crate::nets::Network;
use crate::options::Names;
use rayon::prelude::*;
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
        use crate::nets::vit::Pool;
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
    pub fn apply_tokens(self, t: &Tensor, tokens: Option<crate::nets::vit::Tokens>) -> Tensor {
        use crate::nets::vit::{patch_tokens, pool, Pool};
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
        /// [i, n]: compute only the images whose content hash falls in shard i of n.
        shard: Option<(usize, usize)> = None,
        /// Images per cache chunk (what a killed run can lose at most).
        chunk: usize = 64,
        /// No progress bar.
        quiet: bool = false,
        /// Must name the network's device when given (create the network there instead).
        device: Option<String> = None,
    }
}

/// The preprocessing a network's weights expect.
pub fn preprocess_for(net: &Network) -> Preprocess {
    Preprocess {
        size: net.spec.input_size as u32,
        interpolation: net.spec.interpolation,
        normalisation: net.spec.normalisation,
    }
}

/// Top-`k` classes of one image file by the network's own head, with softmax probabilities.
pub fn classify(
    net: &Network,
    image: &std::path::Path,
    k: usize,
) -> Result<Vec<(usize, String, f64)>> {
    let prep = Prepare {
        pre: preprocess_for(net),
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
            std::fs::read(&it.path)
                .at(&it.path)
                .map(|b| cache::hash_bytes(&b))
        })
        .collect()
}

/// Extracts features of `ds` at the requested taps; cached rows are read, the rest computed.
pub fn extract(net: &Network, ds: &Dataset, o: &ExtractOptions) -> Result<FeatureSet> {
    let taps = net.resolve_taps(&o.taps.0)?;
    // The concrete reducer is what keys the cache and names the columns.
    let o = &ExtractOptions {
        reduce: o.reduce.resolve(net)?,
        ..o.clone()
    };
    let pre = preprocess_for(net);
    let setting = format!(
        "{}|{}|{}|{}|code {}.{}",
        net.spec.name,
        net.digest,
        pre.key(),
        o.reduce.name(),
        net.spec.version,
        VERSION
    );
    let dir = cache::model_dir(net.spec.name, &setting);
    std::fs::create_dir_all(&dir).at(&dir)?;
    std::fs::write(dir.join("setting.txt"), &setting).at(&dir)?;
    let mut caches: Vec<TapCache> = taps
        .iter()
        .map(|t| TapCache::open(&dir.join(t)))
        .collect::<Result<_>>()?;

    let hashes = image_hashes(ds)?;
    let rows: Vec<usize> = match o.shard {
        Some((i, n)) if n == 0 || i >= n => {
            return Err(Error::Invalid(format!("shard [{i}, {n}]: need 0 ≤ i < n")))
        }
        Some((i, n)) => (0..ds.len())
            .filter(|r| shard_of(&hashes[*r], n) == i)
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
    let mut seen = std::collections::HashSet::new();
    missing.retain(|r| seen.insert(hashes[*r]));
    let computed = missing.len();
    if !missing.is_empty() {
        let done = compute(net, ds, &missing, &hashes, &taps, o, pre, &mut caches);
        crate::memory::release();
        done?;
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
        pick(&|it| it.path.display().to_string()),
        rows.iter().map(|r| ds.items[*r].label).collect(),
        pick(&|it| it.slide.clone()),
        ds.classes.clone(),
        columns,
    )?;
    fs.computed = computed;
    if !o.quiet {
        eprintln!(
            "features: {} images × {d} ({} computed, {} from cache)",
            rows.len(),
            computed,
            rows.len() - computed
        );
    }
    Ok(fs)
}

/// The shard an image belongs to, from its content hash (the same on every machine).
pub fn shard_of(h: &Hash, n: usize) -> usize {
    (u64::from_le_bytes(h[..8].try_into().unwrap()) % n as u64) as usize
}

#[allow(clippy::too_many_arguments)]
fn compute(
    net: &Network,
    ds: &Dataset,
    missing: &[usize],
    hashes: &[Hash],
    taps: &[String],
    o: &ExtractOptions,
    pre: Preprocess,
    caches: &mut [TapCache],
) -> Result<()> {
    let paths = missing.iter().map(|r| ds.items[*r].path.clone()).collect();
    let streams = vec![0; missing.len()];
    let rx = batches(
        paths,
        streams,
        o.batch.max(1),
        Prepare {
            pre,
            augment: None,
            seed: 0,
        },
        2,
    );
    let bar = crate::progress::bar(
        missing.len() as u64,
        &format!("{} features", net.spec.name),
        o.quiet,
    );
    let device = net.device();
    let mut pending_hashes: Vec<Hash> = Vec::new();
    let mut pending: Vec<Vec<Vec<f32>>> = vec![Vec::new(); taps.len()];
    let flush = |ph: &mut Vec<Hash>,
                 pend: &mut Vec<Vec<Vec<f32>>>,
                 caches: &mut [TapCache]|
     -> Result<()> {
        for (c, rows) in caches.iter_mut().zip(pend.iter_mut()) {
            c.write_chunk(ph, rows)?;
            rows.clear();
        }
        ph.clear();
        Ok(())
    };
    for batch in rx {
        crate::cancel::check()?;
        let batch = batch?;
        let x = batch.tensor(device);
        let outs = tch::no_grad(|| net.forward_taps(&x, taps, false));
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
            pending[t].extend(flat.chunks(dim).map(|c| c.to_vec()));
        }
        pending_hashes.extend(batch.positions.iter().map(|p| hashes[missing[*p]]));
        bar.inc(batch.positions.len() as u64);
        if pending_hashes.len() >= o.chunk.max(1) {
            flush(&mut pending_hashes, &mut pending, caches)?;
        }
    }
    flush(&mut pending_hashes, &mut pending, caches)?;
    bar.finish_and_clear();
    let still: usize = missing
        .iter()
        .filter(|r| caches.iter().any(|c| c.get(&hashes[**r]).is_none()))
        .count();
    if still > 0 {
        return Err(Error::Invalid(format!(
            "extraction stopped early: {still} images not computed"
        )));
    }
    Ok(())
}
