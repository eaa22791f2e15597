//! Script bindings of the `slide` room and of tile datasets: slides, their properties, regions,
//! thumbnails and tissue masks; tiles as datasets; slide-level pooling, tile scores and slide maps.

use super::convert::{options, options_with_objects, strings, take_object};
use super::data::DatasetRef;
use super::data::Image;
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::data::tiles::{tiles, tiles_of, SlideEntry, TilesOptions};
use patholab_core::features::FeatureSet;
use patholab_core::learn::Model;
use patholab_core::plot::{slide_plot, SlideLayers, SlidePlotOptions};
use patholab_core::slide::tissue::{detect, Mask, TissueOptions};
use patholab_core::slide::{Pixels, Slide};
use rhai::{Array, Dynamic, Map};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A script handle to an open slide.
pub type SlideRef = Arc<Slide>;
/// A script handle to a tissue mask.
pub type MaskRef = Arc<Mask>;

/// Opens a slide; `"demo"` is one of the demo slides (a band of the real CMU-1-Small-Region).
fn open(path: &str) -> RResult<SlideRef> {
    let p = match path {
        "demo" => patholab_core::data::demo_root().join("cmu-regions/cmu-band3.tif"),
        _ => PathBuf::from(path),
    };
    patholab_core::slide::shared(&p).map_err(to_rhai)
}

fn opt_f64(v: Option<f64>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Dynamic::from_float)
}

fn tiles_of_slide(s: &SlideRef, o: &TilesOptions) -> RResult<DatasetRef> {
    let e = SlideEntry {
        path: s.path.clone(),
        label: None,
        patient: None,
    };
    tiles_of(&s.path, &[e], o).map(Arc::new).map_err(to_rhai)
}

fn tiles_at(p: &str, o: &TilesOptions) -> RResult<DatasetRef> {
    let ds = tiles(Path::new(p), o).map_err(to_rhai)?;
    for w in &ds.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Arc::new(ds))
}

/// `plot_slide`'s map: the objects (`mask`: a TissueMask or true to detect one, `tiles`, `scores`)
/// and [`SlidePlotOptions`].
fn plot_slide(s: &SlideRef, m: &Map, path: &str) -> RResult<patholab_core::plot::Figure> {
    let (o, mut m) = options_with_objects::<SlidePlotOptions>(m, &["mask", "tiles", "scores"])?;
    let mask = match m.get("mask").map(|v| v.as_bool()) {
        Some(Ok(true)) => Some(Arc::new(
            detect(s, &TissueOptions::default()).map_err(to_rhai)?,
        )),
        Some(Ok(false)) => None,
        _ => take_object::<MaskRef>(&mut m, "mask", "TissueMask or true", "plot_slide")?,
    };
    let tiles = take_object::<DatasetRef>(&mut m, "tiles", "tile Dataset", "plot_slide")?;
    let scores =
        take_object::<Map>(&mut m, "scores", "map of tile → score", "plot_slide")?.map(|sc| {
            sc.iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.as_float().ok()?)))
                .collect::<HashMap<String, f64>>()
        });
    let layers = SlideLayers {
        mask: mask.as_deref(),
        tiles: tiles.as_deref(),
        scores: scores.as_ref(),
    };
    slide_plot(s, &o, &layers, Some(Path::new(path))).map_err(to_rhai)
}

/// Slide pixels as the script's one image type (RGB; transparent areas over white).
fn image_of(px: patholab_core::error::Result<Pixels>, name: String) -> RResult<Image> {
    Ok(Image::from_pixels(&px.map_err(to_rhai)?, name))
}

/// Registers slides, tissue masks, tile datasets and slide-level results.
pub fn register(api: &mut Api) {
    api.engine()
        .register_type_with_name::<SlideRef>("Slide")
        .register_type_with_name::<MaskRef>("TissueMask");

    api.func(
        "slide(path: String) -> Slide",
        "Opens a whole-slide image (any format OpenSlide 4.0.1 reads: SVS, NDPI, MRXS, tiled TIFF …);\n\"demo\" opens a demo slide cut from the real Aperio slide CMU-1-Small-Region.",
        r#"let s = slide("demo");"#,
        open,
    );
    api.method(
        "Slide",
        "s.name() -> String",
        "The slide's file name without extension.",
        r#"slide("demo").name()"#,
        |s: &mut SlideRef| s.name(),
    );
    api.method(
        "Slide",
        "s.id() -> String",
        "The slide's content id (size, first MiB and last 64 KiB hashed): the feature cache's key.",
        r#"slide("demo").id()"#,
        |s: &mut SlideRef| s.id.clone(),
    );
    api.method(
        "Slide",
        "s.dimensions() -> Array",
        "Level-0 width and height in pixels.",
        r#"slide("demo").dimensions() // => [2220, 494]"#,
        |s: &mut SlideRef| {
            let (w, h) = s.dimensions();
            vec![Dynamic::from_int(w as i64), Dynamic::from_int(h as i64)]
        },
    );
    api.method(
        "Slide",
        "s.levels() -> Array",
        "Every pyramid level: #{ width, height, downsample }.",
        r#"slide("demo").levels()"#,
        |s: &mut SlideRef| -> Array {
            s.levels
                .iter()
                .map(|l| {
                    let mut m = Map::new();
                    m.insert("width".into(), Dynamic::from_int(l.width as i64));
                    m.insert("height".into(), Dynamic::from_int(l.height as i64));
                    m.insert("downsample".into(), Dynamic::from_float(l.downsample));
                    Dynamic::from_map(m)
                })
                .collect()
        },
    );
    api.method(
        "Slide",
        "s.mpp() -> float",
        "µm per level-0 pixel (x), or () when the slide does not record it.",
        r#"slide("demo").mpp()"#,
        |s: &mut SlideRef| opt_f64(s.mpp().map(|m| m.0)),
    );
    api.method(
        "Slide",
        "s.objective_power() -> float",
        "The scanner's objective magnification, or () when not recorded.",
        r#"slide("demo").objective_power()"#,
        |s: &mut SlideRef| opt_f64(s.objective_power()),
    );
    api.method(
        "Slide",
        "s.vendor() -> String",
        "The format OpenSlide detected (aperio, hamamatsu, generic-tiff …).",
        r#"slide("demo").vendor()"#,
        |s: &mut SlideRef| s.vendor().unwrap_or("unknown").to_string(),
    );
    api.method(
        "Slide",
        "s.properties() -> Map",
        "Every property OpenSlide reports (openslide.*, tiff.*, vendor keys).",
        r#"slide("demo").properties()["openslide.vendor"]"#,
        |s: &mut SlideRef| -> Map {
            s.properties
                .iter()
                .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
                .collect()
        },
    );
    api.method(
        "Slide",
        "s.associated() -> Array",
        "Names of the associated images (label, macro, thumbnail …).",
        r#"slide("demo").associated()"#,
        |s: &mut SlideRef| strings(&s.associated.iter().map(|a| a.0.clone()).collect::<Vec<_>>()),
    );
    api.method(
        "Slide",
        "s.associated_image(name: String) -> Image",
        "One associated image.",
        r#"let s = slide("demo"); if s.associated().len() > 0 { s.associated_image(s.associated()[0]) }"#,
        |s: &mut SlideRef, n: &str| {
            image_of(s.associated_image(n), format!("{} {n}", s.path.display()))
        },
    );
    api.method(
        "Slide",
        "s.read(x: int, y: int, level: int, w: int, h: int) -> Image",
        "The region at level-0 position (x, y), w × h pixels of `level` (openslide-python's read_region; transparent areas over white).",
        r#"slide("demo").read(0, 0, 1, 64, 64)"#,
        |s: &mut SlideRef, x: i64, y: i64, l: i64, w: i64, h: i64| -> RResult<Image> {
            if l < 0 || w < 0 || h < 0 || w > 1 << 20 || h > 1 << 20 {
                return Err(format!("read: level, w and h must be ≥ 0 (and w, h ≤ 2^20), got {l}, {w}, {h}").into());
            }
            let name = format!("{} level {l} at ({x}, {y})", s.path.display());
            image_of(s.read(x, y, l as usize, w as u32, h as u32), name)
        },
    );
    api.method(
        "Slide",
        "s.thumbnail(max_side: int) -> Image",
        "The whole slide, its longer side `max_side` pixels (RGB over white).",
        r#"slide("demo").thumbnail(256)"#,
        |s: &mut SlideRef, m: i64| {
            let name = format!("{} thumbnail", s.path.display());
            image_of(s.thumbnail(m.clamp(1, 16384) as u32), name)
        },
    );
    api.method(
        "Slide",
        "s.tissue() -> TissueMask",
        "The tissue mask with the default method (HSV saturation, median 7, Otsu, closing, small objects and holes removed) at 1/16.",
        r#"slide("demo").tissue()"#,
        |s: &mut SlideRef| detect(s, &TissueOptions::default()).map(Arc::new).map_err(to_rhai),
    );
    api.method(
        "Slide",
        "s.tissue(options: Map) -> TissueMask",
        "The tissue mask with other settings.",
        r#"slide("demo").tissue(#{ downsample: 8, threshold: 20 })"#,
        |s: &mut SlideRef, m: Map| detect(s, &options(&m)?).map(Arc::new).map_err(to_rhai),
    )
    .options::<TissueOptions>();
    api.method(
        "TissueMask",
        "mask.coverage() -> float",
        "Share of the slide that is tissue.",
        r#"slide("demo").tissue().coverage()"#,
        |m: &mut MaskRef| m.coverage(),
    );
    api.method(
        "TissueMask",
        "mask.save(path: String) -> String",
        "Writes the mask as a black-and-white PNG.",
        r#"slide("demo").tissue().save("mask.png")"#,
        |m: &mut MaskRef, p: &str| -> RResult<String> {
            let img = Pixels {
                width: m.width,
                height: m.height,
                channels: 3,
                data: m
                    .data
                    .iter()
                    .flat_map(|v| [if *v { 255 } else { 0 }; 3])
                    .collect(),
            };
            img.save(Path::new(p)).map_err(to_rhai)?;
            Ok(p.to_string())
        },
    );
    api.func(
        "tiles(s: Slide) -> Dataset",
        "The tissue tiles of one slide: 224 px at 0.5 µm/px, at least half tissue.",
        r#"let t = tiles(slide("demo"));"#,
        |s: SlideRef| tiles_of_slide(&s, &TilesOptions::default()),
    );
    api.func(
        "tiles(s: Slide, options: Map) -> Dataset",
        "The tiles of one slide with a size, resolution (mpp, magnification or level), overlap, tissue share\nand GeoJSON labels; read lazily, never written out.",
        r#"let t = tiles(slide("demo"), #{ size: 112, mpp: 1.0, min_tissue: 0.25 });"#,
        |s: SlideRef, m: Map| tiles_of_slide(&s, &options(&m)?),
    )
    .options::<TilesOptions>();
    api.func(
        "tiles(slides: String, options: Map) -> Dataset",
        "The tiles of a slide file, a folder of slides (flat, or <class>/<slide>) or a CSV manifest\n(path, label, patient): slide id = the patient or the slide, so splits and folds keep a slide's tiles together.",
        r#"let t = tiles(`${demo_dir()}/cmu-regions/manifest.csv`, #{ size: 112, labels: `${demo_dir()}/cmu-regions` });"#,
        |p: &str, m: Map| tiles_at(p, &options(&m)?),
    )
    .options::<TilesOptions>();
    api.func(
        "demo_dir() -> String",
        "The folder of the built-in demo data (BCCD, Kather tiles, the CMU slide bands and their GeoJSON).",
        r#"demo_dir()"#,
        || patholab_core::data::demo_root().display().to_string(),
    );
    api.method(
        "FeatureSet",
        "f.pool_by_slide(how: String) -> FeatureSet",
        "One row per slide, the \"mean\" or \"max\" of its tiles' features; the slide's label is its most frequent tile label.",
        r#"f.pool_by_slide("mean")"#,
        |f: &mut FeatureSet, how: &str| f.pool_by_slide(how).map_err(to_rhai),
    );
    api.method(
        "Model",
        "m.predict_tiles(f: FeatureSet, class: String) -> Map",
        "Each row's decision score for `class`, keyed by its id (for tiles: slide#Level@x,y), for plot_slide's heatmap.",
        r#"m.predict_tiles(test, data.classes()[0])"#,
        |m: &mut Model, f: FeatureSet, class: &str| -> RResult<Map> {
            let k = m.classes.iter().position(|c| c == class).ok_or_else(|| {
                format!("predict_tiles: no class {class:?} (classes: {:?})", m.classes)
            })?;
            let d = m.decision(&f).map_err(to_rhai)?;
            let nk = m.classes.len();
            Ok(f.ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str().into(), Dynamic::from_float(d[i * nk + k])))
                .collect())
        },
    );
    api.func(
        "plot_slide(s: Slide, options: Map, path: String) -> Figure",
        "A PNG map of the slide: thumbnail (max_side, default 1024), tissue outline (mask: a TissueMask or true),\nthe tiles of a tile Dataset that lie on this slide (tiles) and a heatmap of their scores (scores: m.predict_tiles).",
        r#"let s = slide("demo"); plot_slide(s, #{ mask: true, tiles: tiles(s, #{ size: 112 }) }, "slide.png")"#,
        |s: SlideRef, m: Map, p: &str| plot_slide(&s, &m, p),
    )
    .options::<SlidePlotOptions>()
    .extra_option("mask", "TissueMask or bool", "false", "The tissue outline: a TissueMask, or true to detect one.")
    .extra_option("tiles", "Dataset", "()", "A tile dataset: its tiles on this slide are drawn as a grid.")
    .extra_option("scores", "Map", "()", "Tile name → score (m.predict_tiles): the tiles are coloured by it.");
}
