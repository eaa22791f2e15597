//! Tile datasets: the tiles of whole-slide images as a [`Dataset`] whose items are read lazily
//! from the slides (never written out), so features, the cache, splits and every strategy work on
//! them unchanged. A slide's tiles share its slide id (the slide, or its patient column), so
//! every split and fold keeps them together. Labels come from the slide (manifest column or
//! class folder) or from GeoJSON polygons (the label of the polygon holding the tile centre).

use super::decode::Rgb;
use super::{Dataset, Item, OnError};
use crate::error::{Context, Error, Result};
use crate::slide::annotations::Annotations;
use crate::slide::grid::{grid, GridOptions, Tile};
use crate::slide::tissue::{detect, TissueOptions};
use crate::slide::{Slide, SLIDE_EXTENSIONS};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A tile of a slide as a dataset item: the slide's content id and the region.
#[derive(Clone, Debug, PartialEq)]
pub struct SlideTile {
    pub slide_id: Arc<str>,
    pub tile: Tile,
}

impl SlideTile {
    /// Reads the tile from the slide at `path` (the slide handle is shared by the process).
    pub fn read(&self, path: &Path) -> Result<Rgb> {
        let slide = crate::slide::shared(path)?;
        let px = self.tile.read(&slide)?;
        Ok(Rgb {
            width: px.width,
            height: px.height,
            pixels: px.data,
        })
    }

    /// The cache key: slide content, level, coordinates, size and resampling.
    pub fn key(&self) -> String {
        format!("tile|{}|{}", self.slide_id, self.tile.key())
    }
}

crate::choice! {
    /// What happens to tiles whose centre lies outside every annotation polygon.
    pub enum Outside {
        /// Leave them out.
        Drop = "drop",
        /// Keep them with the label "background".
        Background = "background",
    }
}

crate::options! {
    /// The options map of `tiles(slides, #{ ... })`.
    pub struct TilesOptions for "tiles" {
        /// Tile side in output pixels.
        size: u32 = 224,
        /// Resolution in µm per pixel; () with no magnification and no level means 0.5.
        mpp: Option<f64> = None,
        /// Resolution as an objective magnification (µm/px = 10 / magnification).
        magnification: Option<f64> = None,
        /// Tiles at this level's own resolution (for slides without µm/px).
        level: Option<u32> = None,
        /// Pixels shared by neighbouring tiles, at the output resolution.
        overlap: u32 = 0,
        /// Least share of tissue (by the tissue mask) a tile needs; 0 keeps every tile.
        min_tissue: f64 = 0.5,
        /// Level-0 pixels per tissue-mask pixel.
        tissue_downsample: f64 = 16.0,
        /// GeoJSON annotations (QuPath export): a file for one slide, or a folder of <slide name>.geojson.
        labels: Option<PathBuf> = None,
        /// Tiles outside every polygon: "drop" or "background".
        outside: Outside = Outside::Drop,
        /// Manifest column holding the slide path.
        path_column: String = "path".into(),
        /// Manifest column holding the slide label.
        label_column: String = "label".into(),
        /// Manifest column holding the patient (the slide id for splits); () uses the slide.
        patient_column: String = "patient".into(),
        /// What to do with slides that cannot be read.
        on_error: OnError = OnError::Fail,
    }
    check(o) {
        crate::options::Options::check(&o.grid())?;
        if !(0.0..=1.0).contains(&o.min_tissue) {
            return Err(crate::error::Error::Invalid(format!(
                "tiles: min_tissue must be within 0..1, got {}",
                o.min_tissue
            )));
        }
        if !(o.tissue_downsample.is_finite() && o.tissue_downsample >= 1.0) {
            return Err(crate::error::Error::Invalid(format!(
                "tiles: tissue_downsample must be ≥ 1, got {}",
                o.tissue_downsample
            )));
        }
        Ok(())
    }
}

impl TilesOptions {
    /// Where the tiles are cut.
    pub fn grid(&self) -> GridOptions {
        GridOptions {
            size: self.size,
            mpp: self.mpp,
            magnification: self.magnification,
            level: self.level,
            overlap: self.overlap,
        }
    }
}

/// One slide to tile: its file, label and patient (when known).
#[derive(Clone, Debug)]
pub struct SlideEntry {
    pub path: PathBuf,
    pub label: Option<String>,
    pub patient: Option<String>,
}

/// The slides named by `source`: a slide file, a folder (flat, or `<class>/<slide>`), or a CSV
/// manifest (path, label, patient).
pub fn slide_entries(source: &Path, o: &TilesOptions) -> Result<Vec<SlideEntry>> {
    let is_slide = |p: &Path| {
        p.extension()
            .map(|e| SLIDE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
            .unwrap_or(false)
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    };
    let listed = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .at(dir)?
            .flatten()
            .map(|e| e.path())
            .collect();
        v.sort();
        Ok(v)
    };
    if source.is_dir() {
        let mut out = Vec::new();
        for p in listed(source)? {
            if p.is_dir() {
                let class = p.file_name().unwrap().to_string_lossy().into_owned();
                for q in listed(&p)?.into_iter().filter(|q| is_slide(q)) {
                    out.push(SlideEntry {
                        path: q,
                        label: Some(class.clone()),
                        patient: None,
                    });
                }
            } else if is_slide(&p) {
                out.push(SlideEntry {
                    path: p,
                    label: None,
                    patient: None,
                });
            }
        }
        if out.is_empty() {
            return Err(Error::file(
                source,
                format!(
                    "no slides found (extensions: {})",
                    SLIDE_EXTENSIONS.join(", ")
                ),
            ));
        }
        return Ok(out);
    }
    let csv = source
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !csv {
        return Ok(vec![SlideEntry {
            path: source.to_path_buf(),
            label: None,
            patient: None,
        }]);
    }
    let mut rdr = csv::Reader::from_path(source).at(source)?;
    let headers = rdr.headers().at(source)?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let path_col = col(&o.path_column).ok_or_else(|| {
        Error::file(
            source,
            format!("no column {:?} (columns: {headers:?})", o.path_column),
        )
    })?;
    let (label_col, patient_col) = (col(&o.label_column), col(&o.patient_column));
    let base = source.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::file(source, format!("line {}: {e}", i + 2)))?;
        let get =
            |c: usize| Some(rec.get(c).unwrap_or("").trim().to_string()).filter(|s| !s.is_empty());
        let file = get(path_col)
            .ok_or_else(|| Error::file(source, format!("line {}: empty path", i + 2)))?;
        out.push(SlideEntry {
            path: base.join(file),
            label: label_col.and_then(get),
            patient: patient_col.and_then(get),
        });
    }
    if out.is_empty() {
        return Err(Error::file(source, "the manifest lists no slides"));
    }
    Ok(out)
}

/// The tiles of one slide with their labels (None: dropped).
fn slide_tiles(
    e: &SlideEntry,
    o: &TilesOptions,
    annotations: Option<&Annotations>,
) -> Result<(Arc<Slide>, Vec<(Tile, String)>)> {
    let slide = crate::slide::shared(&e.path)?;
    let g = o.grid();
    let mask = if o.min_tissue > 0.0 {
        Some(detect(
            &slide,
            &TissueOptions {
                downsample: o.tissue_downsample,
                ..Default::default()
            },
        )?)
    } else {
        None
    };
    let mut out = Vec::new();
    for (t, tissue) in grid(&slide, &g, mask.as_ref())? {
        if tissue < o.min_tissue {
            continue;
        }
        let label = match annotations {
            Some(a) => {
                let (w, h) = t.extent(&slide);
                match (
                    a.label_at(t.x as f64 + w / 2.0, t.y as f64 + h / 2.0),
                    o.outside,
                ) {
                    (Some(l), _) => l.to_string(),
                    (None, Outside::Background) => "background".into(),
                    (None, Outside::Drop) => continue,
                }
            }
            None => e.label.clone().unwrap_or_else(|| "unlabelled".into()),
        };
        out.push((t, label));
    }
    // Read the first and last tile now, so that an unreadable level fails here, naming it.
    for (t, _) in out.first().into_iter().chain(out.last()) {
        t.read(&slide)?;
    }
    Ok((slide, out))
}

/// The annotations for a slide, when `labels` names a file or a folder.
fn annotations_for(labels: &Path, slide: &Path, single: bool) -> Result<Option<Annotations>> {
    if labels.is_dir() {
        let stem = slide
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let p = labels.join(format!("{stem}.geojson"));
        if !p.exists() {
            return Err(Error::file(
                slide,
                format!("no annotations {} for this slide", p.display()),
            ));
        }
        return Annotations::read(&p).map(Some);
    }
    if !single {
        return Err(Error::file(
            labels,
            "one GeoJSON file for several slides: give a folder of <slide name>.geojson",
        ));
    }
    Annotations::read(labels).map(Some)
}

/// The tiles of `slides` as a dataset.
pub fn tiles(source: &Path, o: &TilesOptions) -> Result<Dataset> {
    let entries = slide_entries(source, o)?;
    tiles_of(source, &entries, o)
}

/// The tiles of the listed slides as a dataset (`root` names it).
pub fn tiles_of(root: &Path, entries: &[SlideEntry], o: &TilesOptions) -> Result<Dataset> {
    crate::options::Options::check(o)?;
    let single = entries.len() == 1;
    let results: Vec<Result<(Arc<Slide>, Vec<(Tile, String)>)>> = entries
        .par_iter()
        .map(|e| {
            let ann = match &o.labels {
                Some(l) => annotations_for(l, &e.path, single)?,
                None => None,
            };
            slide_tiles(e, o, ann.as_ref())
        })
        .collect();
    let mut kept = Vec::new();
    let mut bad = Vec::new();
    for (e, r) in entries.iter().zip(results) {
        match r {
            Ok(v) => kept.push((e, v)),
            Err(err) => bad.push((e.path.clone(), err.to_string())),
        }
    }
    if !bad.is_empty() && o.on_error == OnError::Fail {
        if bad.len() == 1 {
            return Err(Error::Invalid(bad.remove(0).1));
        }
        let list: Vec<String> = bad.iter().map(|(_, w)| format!("  {w}")).collect();
        return Err(Error::file(
            root,
            format!(
                "{} unreadable slide(s) (use on_error: \"skip\" to leave them out):\n{}",
                bad.len(),
                list.join("\n")
            ),
        ));
    }
    let classes: Vec<String> = kept
        .iter()
        .flat_map(|(_, (_, v))| v.iter().map(|(_, l)| l.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    for (e, (slide, v)) in &kept {
        if v.is_empty() {
            warnings.push(format!(
                "{}: no tile passed the tissue and label filters",
                e.path.display()
            ));
        }
        let id: Arc<str> = Arc::from(slide.id.as_str());
        let slide_name = e.patient.clone().unwrap_or_else(|| slide.name());
        for (t, label) in v {
            items.push(Item {
                path: e.path.clone(),
                label: classes.iter().position(|c| c == label).unwrap(),
                slide: slide_name.clone(),
                split: None,
                width: t.size,
                height: t.size,
                tile: Some(SlideTile {
                    slide_id: id.clone(),
                    tile: *t,
                }),
            });
        }
    }
    if items.is_empty() {
        return Err(Error::file(
            root,
            "no tiles: every tile failed the tissue or label filters (lower min_tissue?)",
        ));
    }
    let name = root
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string());
    Ok(Dataset {
        name,
        root: root.to_path_buf(),
        classes,
        items,
        slide_info: format!(
            "tiles of {} slide(s), slide id from the slide or its patient",
            kept.len()
        ),
        skipped: bad,
        warnings,
        stain: None,
    })
}

/// `dataset("demo:slide")`: 112-px tiles at 0.5 µm/px of six slides cut from six bands of the
/// real Aperio slide CMU-1-Small-Region, labelled epithelium / stroma by their GeoJSON.
pub fn demo(open: &super::OpenOptions) -> Result<Dataset> {
    let dir = super::demo_root().join("cmu-regions");
    let mut ds = tiles(
        &dir.join("manifest.csv"),
        &TilesOptions {
            size: 112,
            mpp: Some(0.5),
            labels: Some(dir.clone()),
            on_error: open.on_error,
            ..Default::default()
        },
    )?;
    ds.name = "demo:slide".into();
    Ok(ds)
}
