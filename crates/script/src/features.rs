//! Script bindings of the `features` room: extraction through the cache, feature sets (merge,
//! select, subset, save, load), PCA and the cache itself.

use super::convert::{indices, options, strings};
use super::data::DatasetRef;
use super::networks::Net;
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::data::Dataset;
use patholab_core::eval::table::Table;
use patholab_core::features::extract::{extract, ExtractOptions};
use patholab_core::features::pca::Pca;
use patholab_core::features::FeatureSet;
use patholab_core::nets::Network;
use rhai::{Array, Dynamic, Map};

/// `pca(k)` before fitting.
#[derive(Clone, Debug)]
pub struct PcaSpec(pub usize);

/// `default_shard` is the run's (`patholab run --shard i/n`), used when the options give none.
fn features_of(
    net: &Network,
    ds: &Dataset,
    mut o: ExtractOptions,
    default_shard: Option<(usize, usize)>,
) -> RResult<FeatureSet> {
    if o.shard.is_none() {
        o.shard = default_shard;
    }
    if let Some(d) = &o.device {
        let want = patholab_core::parse_device(d).map_err(to_rhai)?;
        if want != net.device() {
            return Err(format!(
                "the network lives on {:?}; create it with network(name, #{{ device: {d:?} }})",
                net.device()
            )
            .into());
        }
    }
    extract(net, ds, &o).map_err(to_rhai)
}

patholab_core::options! {
    /// The filter of `f.select(#{ ... })`.
    pub struct SelectOptions for "select" {
        /// Keep the columns of this network.
        network: Option<String> = None,
        /// Keep the columns of this tap.
        tap: Option<String> = None,
    }
}

/// Registers feature extraction and feature sets.
pub fn register(api: &mut Api) {
    let shard = api.settings().shard;
    api.engine()
        .register_type_with_name::<FeatureSet>("FeatureSet")
        .register_type_with_name::<PcaSpec>("PcaSpec")
        .register_type_with_name::<Pca>("Pca");
    api.method(
        "Network",
        "net.features(data: Dataset, options: Map) -> FeatureSet",
        "Features of every image at the taps asked for, in one forward pass; cached on disk, so a second\ncall computes nothing.",
        r#"let g = net.features(small, #{ taps: ["last"], reduce: "gap" });"#,
        move |n: &mut Net, d: DatasetRef, m: Map| features_of(n, &d, options(&m)?, shard),
    )
    .options::<ExtractOptions>();
    api.method(
        "Network",
        "net.features(data: Dataset) -> FeatureSet",
        "Last-layer GAP features.",
        "let g = net.features(small);",
        move |n: &mut Net, d: DatasetRef| features_of(n, &d, ExtractOptions::default(), shard),
    );
    api.func(
        "features(path: String) -> FeatureSet",
        "Loads a feature set saved as .parquet or .safetensors.",
        r#"f.save("f.parquet"); let g = features("f.parquet");"#,
        |p: &str| patholab_core::features::io::load(std::path::Path::new(p)).map_err(to_rhai),
    );
    api.method(
        "FeatureSet",
        "f.save(path: String)",
        "Saves as .parquet (pandas/polars readable) or .safetensors.",
        r#"f.save("f.safetensors");"#,
        |f: &mut FeatureSet, p: &str| {
            patholab_core::features::io::save(f, std::path::Path::new(p)).map_err(to_rhai)
        },
    );
    api.method(
        "FeatureSet",
        "f.merge(g: FeatureSet) -> FeatureSet",
        "Columns of both sets for the same images (merge layers or networks).",
        "let both = f.select([0, 1]).merge(f.select([2, 3]));",
        |f: &mut FeatureSet, g: FeatureSet| f.merge(&g).map_err(to_rhai),
    );
    api.method(
        "FeatureSet",
        "f.select(filter: Map) -> FeatureSet",
        "Columns of a tap and/or a network.",
        r#"f.select(#{ tap: f.taps()[0] })"#,
        |f: &mut FeatureSet, m: Map| -> RResult<FeatureSet> {
            let o: SelectOptions = options(&m)?;
            f.select(o.network.as_deref(), o.tap.as_deref())
                .map_err(to_rhai)
        },
    )
    .options::<SelectOptions>();
    api.method(
        "FeatureSet",
        "f.select(columns: Array) -> FeatureSet",
        "The columns at these indices.",
        "f.select([0, 5, 9])",
        |f: &mut FeatureSet, a: Array| f.select_columns(&indices(&a, "columns")?).map_err(to_rhai),
    );
    api.method(
        "FeatureSet",
        "f.subset(rows: Array) -> FeatureSet",
        "The rows at these positions (e.g. split.train).",
        "let tr = f.subset(split.train);",
        |f: &mut FeatureSet, a: Array| f.subset(&indices(&a, "rows")?).map_err(to_rhai),
    );
    api.method(
        "FeatureSet",
        "f.dims() -> Array",
        "[rows, columns].",
        "f.dims() // => [351, 1280]",
        |f: &mut FeatureSet| vec![Dynamic::from(f.n as i64), Dynamic::from(f.d as i64)],
    );
    api.method(
        "FeatureSet",
        "f.taps() -> Array",
        "The taps the columns come from.",
        "f.taps()",
        |f: &mut FeatureSet| strings(&f.taps()),
    );
    api.method(
        "FeatureSet",
        "f.classes_count() -> int",
        "Number of classes.",
        "f.classes_count() // => 5",
        |f: &mut FeatureSet| f.classes.len() as i64,
    );
    api.method(
        "FeatureSet",
        "f.table() -> Table",
        "The set as a table: id, label, slide, then one column per feature.",
        "f.table().select([\"label\", \"slide\"]).head(3)",
        |f: &mut FeatureSet| {
            patholab_core::features::io::to_frame(f)
                .map(Table)
                .map_err(to_rhai)
        },
    );
    api.func(
        "pca(k: int) -> PcaSpec",
        "A PCA reducer to k components; fit it on training rows only.",
        "let p = pca(8).fit(f.subset(split.train)); let g = p.transform(f);",
        |k: i64| PcaSpec(k.max(0) as usize),
    );
    api.method(
        "PcaSpec",
        "pca(k).fit(train: FeatureSet) -> Pca",
        "Fits the PCA axes on these rows.",
        "let p = pca(8).fit(train);",
        |p: &mut PcaSpec, f: FeatureSet| Pca::fit(p.0, &f).map_err(to_rhai),
    );
    api.method(
        "Pca",
        "p.transform(f: FeatureSet) -> FeatureSet",
        "Projects onto the fitted axes.",
        "pca(4).fit(train).transform(f).dims()",
        |p: &mut Pca, f: FeatureSet| p.transform(&f).map_err(to_rhai),
    );
    api.func(
        "cache_info() -> String",
        "What the feature cache holds and where.",
        "print(cache_info());",
        || patholab_core::features::cache::info().map_err(to_rhai),
    );
    api.func(
        "cache_clear() -> String",
        "Deletes the feature cache.",
        "cache_clear()",
        || patholab_core::features::cache::clear().map_err(to_rhai),
    );
    api.func(
        "feature_difference(f: FeatureSet, g: FeatureSet) -> float",
        "max |f - g| / max |f| over two sets of the same shape (e.g. CPU against CUDA).",
        "feature_difference(f, f)",
        |f: FeatureSet, g: FeatureSet| -> RResult<f64> {
            if f.dims() != g.dims() {
                return Err(format!("shapes differ: {:?} vs {:?}", f.dims(), g.dims()).into());
            }
            let scale = f.x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
            let diff =
                f.x.iter()
                    .zip(g.x.iter())
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            Ok(diff as f64 / scale as f64)
        },
    );
}
