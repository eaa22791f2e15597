//! Script bindings of stain: Macenko and Reinhard stain normalisers fitted on a target image and
//! applied to images or to a whole dataset, and a preview of the stain augmentation fine-tuning uses.

use super::data::{DatasetRef, Image};
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::data::stain::{MacenkoOptions, StainAugment, StainMethod, StainNormalizer};
use patholab_core::error::Error;
use patholab_core::rng::Rng;
use rhai::{Array, Dynamic, Map};
use std::sync::Arc;

fn normalizer(method: &str, m: Option<&Map>) -> RResult<StainNormalizer> {
    let method: StainMethod = serde_json::from_value(serde_json::Value::String(method.into()))
        .map_err(|_| {
            format!("unknown stain normaliser {method:?}; valid: \"macenko\", \"reinhard\"")
        })?;
    let params: MacenkoOptions = match m {
        Some(m) => super::convert::options(m)?,
        None => MacenkoOptions::default(),
    };
    if method == StainMethod::Reinhard && m.is_some_and(|m| !m.is_empty()) {
        return Err(
            "the Reinhard normaliser has no options (io, alpha, beta are Macenko's)".into(),
        );
    }
    Ok(StainNormalizer::new(method, params))
}

fn stain_error(img: &Image, what: &str, e: String) -> Box<rhai::EvalAltResult> {
    to_rhai(Error::file(&img.name, format!("{what}: {e}")))
}

fn floats(v: &[f64]) -> Array {
    v.iter().map(|x| Dynamic::from_float(*x)).collect()
}

/// What a normaliser was fitted to, as a map.
fn target(n: &StainNormalizer) -> Map {
    let mut m = Map::new();
    m.insert("method".into(), n.method().as_str().into());
    match n {
        StainNormalizer::Macenko { target, fitted, .. } => {
            let rows: Array = target.he.iter().map(|r| floats(r).into()).collect();
            m.insert("stain_matrix".into(), rows.into());
            m.insert("max_c".into(), floats(&target.max_c).into());
            m.insert("fitted".into(), (*fitted).into());
        }
        StainNormalizer::Reinhard { target } => {
            m.insert("fitted".into(), target.is_some().into());
            if let Some(t) = target {
                let f = |v: &[f32; 3]| floats(&v.map(|x| x as f64));
                m.insert("means".into(), f(&t.means).into());
                m.insert("stds".into(), f(&t.stds).into());
            }
        }
    }
    m
}

/// Registers stain normalisers and the stain augmentation preview.
pub fn register(api: &mut Api) {
    api.engine()
        .register_type_with_name::<StainNormalizer>("StainNormalizer");

    api.func(
        "stain_normalizer(method: String) -> StainNormalizer",
        "A stain normaliser, \"macenko\" or \"reinhard\", as torchstain 1.4.1 computes them; fit it on a\ntarget image with .fit(img). An unfitted Macenko normaliser uses torchstain's reference H&E matrix.",
        r#"let norm = stain_normalizer("macenko").fit(data.image(0));"#,
        |m: &str| normalizer(m, None),
    );
    api.func(
        "stain_normalizer(method: String, options: Map) -> StainNormalizer",
        "A Macenko normaliser with its parameters: light intensity io, angle percentile alpha, tissue\noptical density beta.",
        r#"let norm = stain_normalizer("macenko", #{ beta: 0.2 });"#,
        |m: &str, o: Map| normalizer(m, Some(&o)),
    )
    .options::<MacenkoOptions>();
    api.method(
        "StainNormalizer",
        "norm.fit(target: Image) -> StainNormalizer",
        "Fits the normaliser to a target image (Macenko: its stain matrix and 99th-percentile\nconcentrations; Reinhard: its LAB means and deviations) and returns it.",
        r#"let norm = stain_normalizer("reinhard").fit(data.image(0));"#,
        |n: &mut StainNormalizer, img: Image| -> RResult<StainNormalizer> {
            n.fit(&img.rgb)
                .map_err(|e| stain_error(&img, "fitting the stain normaliser", e))?;
            Ok(n.clone())
        },
    );
    api.method(
        "StainNormalizer",
        "norm.normalize(img: Image) -> Image",
        "The image with its stain moved to the target's.",
        r#"stain_normalizer("macenko").fit(data.image(0)).normalize(data.image(1))"#,
        |n: &mut StainNormalizer, img: Image| -> RResult<Image> {
            let out = n.normalize(&img.rgb).map_err(|e| {
                stain_error(&img, &format!("stain normalization ({})", n.method()), e)
            })?;
            Ok(Image {
                name: format!("{}, {}-normalised", img.name, n.method()),
                rgb: Arc::new(out),
            })
        },
    );
    api.method(
        "StainNormalizer",
        "norm.target() -> Map",
        "What the normaliser was fitted to: Macenko's stain_matrix (rows R, G, B; columns H, E) and\nmax_c, or Reinhard's LAB means and stds.",
        r#"stain_normalizer("macenko").fit(data.image(0)).target().stain_matrix"#,
        |n: &mut StainNormalizer| target(n),
    );
    api.method(
        "Dataset",
        "data.with_stain(norm: StainNormalizer) -> Dataset",
        "The same images, each stain-normalised as it is read: features (the fitted target is part of\nthe cache key), fine-tuning, prediction and data.show see the normalised pixels.",
        r#"let d = small.with_stain(stain_normalizer("macenko").fit(data.image(0)));"#,
        |d: &mut DatasetRef, n: StainNormalizer| -> RResult<DatasetRef> {
            if let StainNormalizer::Reinhard { target: None } = n {
                return Err("the Reinhard normaliser is not fitted: call .fit(target_image) first".into());
            }
            Ok(Arc::new(d.with_stain(n)))
        },
    );
    api.func(
        "stain_augment(img: Image, seed: int) -> Image",
        "One Macenko stain augmentation of the image, as fine-tuning applies it with\n#{ stain_augment: true } (torchstain's MacenkoAugmentor: each stain's concentrations scaled by\nU(0.8, 1.2) and shifted by U(-0.2, 0.2)).",
        r#"stain_augment(data.image(0), 1).save("augmented.png")"#,
        |img: Image, seed: i64| -> RResult<Image> {
            let a = StainAugment::default();
            let f = a.draw(&mut Rng::new(seed as u64));
            let out = a
                .apply(&img.rgb, f)
                .map_err(|e| stain_error(&img, "stain augmentation", e))?;
            Ok(Image {
                name: format!("{}, stain-augmented", img.name),
                rgb: Arc::new(out),
            })
        },
    );
}
