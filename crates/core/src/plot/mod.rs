//! Charts as PNG or SVG (by the file's extension) with an embedded font, so no system font is
//! needed: average-rank bars, RFE curves, importance shares, confusion matrices, ROC curves,
//! fine-tuning curves, critical-difference diagrams and image grids. Each returns a [`Figure`]: the
//! PNG bytes (and the SVG text when an `.svg` path was asked), written to the path when one is
//! given, so a prompt prints the path and a notebook shows the picture. Slide maps (thumbnail, tissue
//! outline, tile grid, per-tile heatmap) are written as PNG and return the path.

use crate::error::{Error, Result};
use crate::eval::results::Ranks;
use crate::eval::Evaluation;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A rendered chart: PNG always, SVG when the path asked for it, and the file written if any.
#[derive(Clone, Debug)]
pub struct Figure {
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
    pub svg: Option<String>,
    pub path: Option<PathBuf>,
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}", p.display()),
            None => write!(
                f,
                "figure {}×{} (not written to a file)",
                self.width, self.height
            ),
        }
    }
}

/// Encodes an RGB buffer as PNG.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| crate::error::Error::Invalid(format!("plot: PNG encoding failed: {e}")))?;
    Ok(out)
}

/// Checks the extension of `path` and creates its folder; true when SVG was asked.
fn prepare(path: Option<&Path>) -> Result<bool> {
    font();
    let Some(path) = path else { return Ok(false) };
    let svg = match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => true,
        Some("png") => false,
        _ => return Err(Error::file(path, "plots are written as .png or .svg")),
    };
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| Error::file(d, e))?;
    }
    Ok(svg)
}

/// Runs `$body` with `$root` bound to an in-memory PNG drawing area (and an SVG one when `$path`
/// ends in `.svg`), writes the file when a path is given and returns the [`Figure`].
macro_rules! render {
    ($path:expr, $size:expr, |$root:ident| $body:block) => {{
        let path: Option<&Path> = $path;
        let want_svg = prepare(path)?;
        let (w, h): (u32, u32) = $size;
        let fail = |e: &dyn std::fmt::Display| match path {
            Some(p) => Error::file(p, format!("plot: {e}")),
            None => crate::error::Error::Invalid(format!("plot: {e}")),
        };
        let mut rgb = vec![255u8; (w * h * 3) as usize];
        {
            let $root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            let r: std::result::Result<(), Box<dyn std::error::Error>> = (|| $body)();
            r.map_err(|e| fail(&e))?;
        }
        let png = encode_png(&rgb, w, h)?;
        let mut svg = None;
        if want_svg {
            let mut text = String::new();
            {
                let $root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
                let r: std::result::Result<(), Box<dyn std::error::Error>> = (|| $body)();
                r.map_err(|e| fail(&e))?;
            }
            svg = Some(text);
        }
        if let Some(p) = path {
            let bytes = svg.as_ref().map_or(&png[..], |s| s.as_bytes());
            std::fs::write(p, bytes).map_err(|e| Error::file(p, e))?;
        }
        Ok(Figure {
            width: w,
            height: h,
            png,
            svg,
            path: path.map(Path::to_path_buf),
        })
    }};
}

type Res = std::result::Result<(), Box<dyn std::error::Error>>;

fn hbars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    labels: &[String],
    values: &[f64],
    colours: &[RGBColor],
    x_label: &str,
) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let max = values.iter().cloned().fold(0.0, f64::max).max(1e-9) * 1.1;
    let n = labels.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(
            labels
                .iter()
                .map(|l| l.len())
                .max()
                .unwrap_or(8)
                .clamp(8, 60) as u32
                * 7
                + 10,
        )
        .build_cartesian_2d(0.0..max, (0..n.saturating_sub(1)).into_segmented())?;
    let labels_rev: Vec<String> = labels.to_vec();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x_label)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels_rev.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        let c = colours[i % colours.len()];
        Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (*v, SegmentValue::Exact(i + 1)),
            ],
            c.mix(0.85).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

/// Average ranks, best at the top, bars coloured by classifier (the paper's Figures 3, 4, 6–9).
pub fn ranks(r: &Ranks, path: Option<&Path>) -> Result<Figure> {
    let mut sorted = r.sorted();
    sorted.reverse();
    let labels: Vec<String> = sorted.iter().map(|s| s.0.clone()).collect();
    let values: Vec<f64> = sorted.iter().map(|s| s.1).collect();
    let mut kinds: Vec<String> = Vec::new();
    let colours: Vec<RGBColor> = labels
        .iter()
        .map(|l| {
            let clf = l.rsplit(" / ").next().unwrap_or("").to_string();
            if !kinds.contains(&clf) {
                kinds.push(clf.clone());
            }
            PALETTE[kinds.iter().position(|k| *k == clf).unwrap() % PALETTE.len()]
        })
        .collect();
    let h = 120 + 28 * labels.len() as u32;
    render!(path, (900, h), |root| {
        hbars(
            &root,
            &format!(
                "average rank over {} dataset(s) (higher is better)",
                r.datasets.len()
            ),
            &labels,
            &values,
            &colours,
            "average rank",
        )
    })
}

/// A bar per label (importance shares and the like).
pub fn bars(title: &str, labels: &[String], values: &[f64], path: Option<&Path>) -> Result<Figure> {
    let h = 120 + 28 * labels.len() as u32;
    render!(path, (800, h), |root| {
        hbars(&root, title, labels, values, &PALETTE, "share")
    })
}

fn lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    mark: Option<f64>,
) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.clone()).collect();
    let (x0, x1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(p.0), a.1.max(p.0))
    });
    let (y0, y1) = all
        .iter()
        .filter(|p| p.1.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
            (a.0.min(p.1), a.1.max(p.1))
        });
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1.max(x0 + 1e-9), (y0 - pad)..(y1 + pad))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    if let Some(m) = mark {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(m, y0 - pad), (m, y1 + pad)],
                BLACK.stroke_width(1),
            )))?
            .label(format!("k_min = {m}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The RFE curve (CV score against the number of features) with k_min marked.
pub fn rfe(curve: &[(usize, f64, f64)], k_min: usize, path: Option<&Path>) -> Result<Figure> {
    let s = vec![(
        "CV score".to_string(),
        curve.iter().map(|c| (c.0 as f64, c.1)).collect(),
    )];
    render!(path, (800, 500), |root| {
        lines(
            &root,
            "recursive feature elimination",
            "number of features",
            "score",
            &s,
            Some(k_min as f64),
        )
    })
}

/// Fine-tuning curves: training and validation loss, validation score, per epoch.
pub fn training(epochs: &[crate::finetune::Epoch], path: Option<&Path>) -> Result<Figure> {
    let s = vec![
        (
            "train loss".to_string(),
            epochs
                .iter()
                .map(|e| (e.epoch as f64, e.train_loss))
                .collect(),
        ),
        (
            "val loss".to_string(),
            epochs
                .iter()
                .map(|e| (e.epoch as f64, e.val_loss))
                .collect(),
        ),
        (
            "val score".to_string(),
            epochs
                .iter()
                .map(|e| (e.epoch as f64, e.val_score))
                .collect(),
        ),
    ];
    render!(path, (800, 500), |root| {
        lines(&root, "fine-tuning", "epoch", "", &s, None)
    })
}

/// ROC curves: one for a binary problem, one per class (one-vs-rest) otherwise.
pub fn roc(e: &Evaluation, path: Option<&Path>) -> Result<Figure> {
    let k = e.classes.len();
    let mut series = Vec::new();
    let classes: Vec<usize> = if k == 2 { vec![1] } else { (0..k).collect() };
    for c in classes {
        let s: Vec<f64> = e
            .scores
            .chunks(k)
            .map(|r| if k == 2 { r[1] - r[0] } else { r[c] })
            .collect();
        let pos: Vec<bool> = e.y.iter().map(|y| *y == c).collect();
        if pos.iter().all(|p| *p) || !pos.contains(&true) {
            continue; // a class absent from (or alone in) the test part has no curve
        }
        let pts = crate::learn::metrics::roc_curve(&pos, &s)?;
        series.push((e.classes[c].clone(), pts));
    }
    render!(path, (700, 600), |root| {
        lines(
            &root,
            "ROC",
            "false positive rate",
            "true positive rate",
            &series,
            None,
        )
    })
}

/// The confusion matrix as a heat map with counts.
pub fn confusion(e: &Evaluation, path: Option<&Path>) -> Result<Figure> {
    let k = e.classes.len();
    let max = e
        .confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let size = (160 + 70 * k as u32, 120 + 60 * k as u32);
    render!(path, size, |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "confusion matrix (rows: true, columns: predicted)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(120)
            .build_cartesian_2d(
                (0..k.saturating_sub(1)).into_segmented(),
                (0..k.saturating_sub(1)).into_segmented(),
            )?;
        let names = e.classes.clone();
        let fmt = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let fmt_rows = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < k => names[k - 1 - *i].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt_rows)
            .draw()?;
        for (t, row) in e.confusion.iter().enumerate() {
            for (p, v) in row.iter().enumerate() {
                let y = k - 1 - t;
                let shade = 1.0 - 0.8 * (*v as f64 / max);
                let c = RGBColor((255.0 * shade) as u8, (255.0 * shade) as u8, 255);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                    ],
                    c.filled(),
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    v.to_string(),
                    (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y)),
                    ("sans-serif", 16),
                )))?;
            }
        }
        root.present()?;
        Ok(())
    })
}

/// A critical-difference diagram: methods on the average-rank axis, with the Nemenyi CD bar.
pub fn critical_difference(r: &Ranks, cd: f64, path: Option<&Path>) -> Result<Figure> {
    let sorted = r.sorted();
    let k = r.methods.len() as f64;
    let h = 140 + 24 * sorted.len() as u32;
    render!(path, (900, h), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("average ranks, Nemenyi CD = {cd:.2} (α = 0.05)"),
                ("sans-serif", 18),
            )
            .margin(20)
            .x_label_area_size(30)
            .build_cartesian_2d(1.0..k.max(2.0), 0.0..(sorted.len() as f64 + 2.0))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("average rank (higher is better)")
            .draw()?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![
                (k - cd, sorted.len() as f64 + 1.2),
                (k, sorted.len() as f64 + 1.2),
            ],
            RED.stroke_width(3),
        )))?;
        for (i, (m, v)) in sorted.iter().enumerate() {
            let y = sorted.len() as f64 - i as f64;
            chart.draw_series(std::iter::once(Circle::new(
                (*v, y),
                4,
                PALETTE[0].filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{m} ({v:.2})"),
                (1.0, y),
                ("sans-serif", 13),
            )))?;
        }
        root.present()?;
        Ok(())
    })
}

/// A grid of `n` images of a dataset with their labels.
pub fn image_grid(ds: &crate::data::Dataset, n: usize, path: Option<&Path>) -> Result<Figure> {
    let n = n.min(ds.len()).max(1);
    // Spread the picks over the dataset so every class shows.
    let picks: Vec<usize> = (0..n).map(|i| i * ds.len() / n).collect();
    let captions = picks
        .iter()
        .map(|i| ds.classes[ds.items[*i].label].clone())
        .collect::<Vec<_>>();
    images_of(ds, &picks, &captions, path)
}

/// The `k` tiles of bag `bag` with the most attention (the mean over heads), read from `ds` (the
/// dataset whose features filled the bags), each captioned with its attention and label, most
/// attended first.
pub fn top_tiles(
    m: &crate::learn::mil::MilModel,
    bags: &crate::learn::mil::bags::Bags,
    bag: &str,
    ds: &crate::data::Dataset,
    k: usize,
    path: Option<&Path>,
) -> Result<Figure> {
    let b = bags.get(bag)?;
    let mut scored = m.attention_by_tile(b)?;
    scored.sort_by(|x, y| y.1.total_cmp(&x.1));
    scored.truncate(k.clamp(1, 64));
    let rows: std::collections::HashMap<String, usize> = ds
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.name(), i))
        .collect();
    let mut picks = Vec::with_capacity(scored.len());
    let mut captions = Vec::with_capacity(scored.len());
    for (tile, a) in &scored {
        let i = *rows.get(tile).ok_or_else(|| {
            Error::Invalid(format!(
                "tile {tile:?} of bag {bag:?} is not in the dataset given: pass the dataset whose \
                 features made the bags"
            ))
        })?;
        picks.push(i);
        captions.push(format!("{a:.3} {}", ds.classes[ds.items[i].label]));
    }
    images_of(ds, &picks, &captions, path)
}

/// The images at `picks` of `ds` in a grid, each with its caption.
fn images_of(
    ds: &crate::data::Dataset,
    picks: &[usize],
    captions: &[String],
    path: Option<&Path>,
) -> Result<Figure> {
    let n = picks.len().max(1);
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let tile = 128u32;
    let pre = crate::input::Preprocess {
        size: tile,
        interpolation: crate::input::Interpolation::Bilinear,
        normalization: crate::input::Normalization::Inception,
    };
    let images: Vec<Vec<u8>> = picks
        .iter()
        .map(|i| {
            ds.image(*i)
                .map(|img| crate::data::transform::square_resize(&img, &pre, None))
        })
        .collect::<Result<_>>()?;
    let size = (cols as u32 * (tile + 8) + 8, rows as u32 * (tile + 28) + 8);
    render!(path, size, |root| {
        root.fill(&WHITE)?;
        for (j, px) in images.iter().enumerate() {
            let (x0, y0) = (
                8 + (j % cols) as i32 * (tile as i32 + 8),
                8 + (j / cols) as i32 * (tile as i32 + 28),
            );
            for y in 0..tile as i32 {
                for x in 0..tile as i32 {
                    let o = ((y as u32 * tile + x as u32) * 3) as usize;
                    root.draw_pixel((x0 + x, y0 + y), &RGBColor(px[o], px[o + 1], px[o + 2]))?;
                }
            }
            root.draw(&Text::new(
                captions[j].clone(),
                (x0, y0 + tile as i32 + 4),
                ("sans-serif", 14),
            ))?;
        }
        root.present()?;
        Ok(())
    })
}

/// One tile on a slide map: its level-0 rectangle and, optionally, its score.
#[derive(Clone, Copy, Debug)]
pub struct SlideTile {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub score: Option<f64>,
}

crate::options! {
    /// The plain options of `plot_slide(s, #{ ... }, path)` (its objects are [`SlideLayers`]).
    pub struct SlidePlotOptions for "plot_slide" {
        /// Longest side of the thumbnail drawn, in pixels (16 to 8192).
        max_side: u32 = 1024,
    }
    check(o) {
        if !(16..=8192).contains(&o.max_side) {
            return Err(Error::Invalid(format!(
                "plot_slide: max_side is 16 to 8192, got {}",
                o.max_side
            )));
        }
        Ok(())
    }
}

/// What a slide plot draws over the thumbnail: a tissue outline and the tiles of a tile dataset
/// that lie on the slide, each coloured by its score (by tile name) when it has one.
#[derive(Default)]
pub struct SlideLayers<'a> {
    pub mask: Option<&'a crate::slide::tissue::Mask>,
    pub tiles: Option<&'a crate::data::Dataset>,
    pub scores: Option<&'a std::collections::HashMap<String, f64>>,
}

/// The slide map of `slide` ([`slide_map`]): its thumbnail at `o.max_side`, with `layers`.
pub fn slide_plot(
    slide: &crate::slide::Slide,
    o: &SlidePlotOptions,
    layers: &SlideLayers,
    path: Option<&Path>,
) -> Result<Figure> {
    crate::options::Options::check(o)?;
    let thumb = slide.thumbnail(o.max_side)?;
    let (w0, h0) = slide.dimensions();
    let scale = (
        w0 as f64 / thumb.width as f64,
        h0 as f64 / thumb.height as f64,
    );
    let mut cells = Vec::new();
    let items = layers.tiles.map_or(&[][..], |d| &d.items[..]);
    for it in items.iter().filter(|it| it.path == slide.path) {
        let Some(t) = &it.tile else { continue };
        let (w, h) = t.tile.extent(slide);
        cells.push(SlideTile {
            x: t.tile.x as f64,
            y: t.tile.y as f64,
            w,
            h,
            score: layers.scores.and_then(|sc| sc.get(&it.name())).copied(),
        });
    }
    slide_map(&thumb, scale, layers.mask, &cells, path)
}

/// A slide map as PNG: the thumbnail (`scale` = level-0 pixels per thumbnail pixel), the tissue
/// outline in green, the tile grid in grey and scored tiles blended with a blue→red heat scale
/// (scores scaled to their own min..max); written to `path` (a .png) when given.
pub fn slide_map(
    thumb: &crate::slide::Pixels,
    scale: (f64, f64),
    mask: Option<&crate::slide::tissue::Mask>,
    tiles: &[SlideTile],
    path: Option<&Path>,
) -> Result<Figure> {
    if prepare(path)? {
        return Err(Error::file(path.unwrap(), "slide maps are written as .png"));
    }
    let rgb = thumb.to_rgb();
    let (w, h) = (rgb.width as usize, rgb.height as usize);
    let mut px = rgb.data;
    let scores: Vec<f64> = tiles
        .iter()
        .filter_map(|t| t.score)
        .filter(|s| s.is_finite())
        .collect();
    let lo = scores.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let heat = |v: f64| -> [f64; 3] {
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        [
            255.0 * t,
            64.0 * (1.0 - (2.0 * t - 1.0).abs()),
            255.0 * (1.0 - t),
        ]
    };
    let rect = |t: &SlideTile| {
        let x0 = (t.x / scale.0).floor().max(0.0) as usize;
        let y0 = (t.y / scale.1).floor().max(0.0) as usize;
        let x1 = (((t.x + t.w) / scale.0).ceil() as usize).min(w);
        let y1 = (((t.y + t.h) / scale.1).ceil() as usize).min(h);
        (x0, y0, x1, y1)
    };
    for t in tiles {
        let (x0, y0, x1, y1) = rect(t);
        if let Some(s) = t.score.filter(|s| s.is_finite()) {
            let c = heat(s);
            for y in y0..y1 {
                for x in x0..x1 {
                    let q = &mut px[(y * w + x) * 3..][..3];
                    for k in 0..3 {
                        q[k] = (0.45 * q[k] as f64 + 0.55 * c[k]).round() as u8;
                    }
                }
            }
        }
    }
    for t in tiles {
        let (x0, y0, x1, y1) = rect(t);
        for x in x0..x1 {
            for y in [y0, y1.saturating_sub(1)] {
                if y < h {
                    px[(y * w + x) * 3..][..3].copy_from_slice(&[90, 90, 90]);
                }
            }
        }
        for y in y0..y1 {
            for x in [x0, x1.saturating_sub(1)] {
                if x < w {
                    px[(y * w + x) * 3..][..3].copy_from_slice(&[90, 90, 90]);
                }
            }
        }
    }
    if let Some(m) = mask {
        let at = |x: usize, y: usize| -> bool {
            let mx = ((x as f64 + 0.5) * scale.0 / m.scale.0) as usize;
            let my = ((y as f64 + 0.5) * scale.1 / m.scale.1) as usize;
            mx < m.width as usize && my < m.height as usize && m.data[my * m.width as usize + mx]
        };
        for y in 0..h {
            for x in 0..w {
                let v = at(x, y);
                let edge = (x + 1 < w && at(x + 1, y) != v) || (y + 1 < h && at(x, y + 1) != v);
                if edge {
                    px[(y * w + x) * 3..][..3].copy_from_slice(&[0, 200, 0]);
                }
            }
        }
    }
    let png = encode_png(&px, w as u32, h as u32)?;
    if let Some(p) = path {
        std::fs::write(p, &png).map_err(|e| Error::file(p, e))?;
    }
    Ok(Figure {
        width: w as u32,
        height: h as u32,
        png,
        svg: None,
        path: path.map(Path::to_path_buf),
    })
}

/// The kernel logo, `size` pixels square: a stained tissue disc with the letters "pl".
pub fn logo(size: u32) -> Result<Vec<u8>> {
    font();
    let mut rgb = vec![255u8; (size * size * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (size, size)).into_drawing_area();
        let r: Res = (|| {
            let c = size as i32 / 2;
            // Eosin pink cytoplasm, haematoxylin purple nuclei.
            root.draw(&Circle::new(
                (c, c),
                c - 1,
                RGBColor(231, 84, 128).mix(0.9).filled(),
            ))?;
            for (dx, dy, r) in [(-5, -6, 5), (6, -4, 4), (-2, 7, 4)] {
                let s = size as i32;
                root.draw(&Circle::new(
                    (c + dx * s / 32, c + dy * s / 32),
                    (r * s / 32).max(1),
                    RGBColor(88, 44, 131).filled(),
                ))?;
            }
            let style = ("sans-serif", size as f64 * 0.42)
                .into_font()
                .color(&WHITE)
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ));
            root.draw(&Text::new("pl", (c, c), style))?;
            root.present()?;
            Ok(())
        })();
        r.map_err(|e| crate::error::Error::Invalid(format!("logo: {e}")))?;
    }
    encode_png(&rgb, size, size)
}
