//! Datasets: an ImageFolder tree or a CSV manifest, every image tied to a slide, checked on load.

pub mod decode;
pub mod image;
pub mod loader;
pub mod split;
pub mod stain;
pub mod tiles;
pub mod transform;

use crate::error::{Context, Error, Result};
use rayon::prelude::*;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One image of a dataset.
#[derive(Clone, Debug)]
pub struct Item {
    pub path: PathBuf,
    pub label: usize,
    pub slide: String,
    /// The split named in the manifest, when it has a split column.
    pub split: Option<String>,
    pub width: u32,
    pub height: u32,
    /// For a tile of a whole-slide image (`path` is then the slide): which region to read.
    pub tile: Option<tiles::SlideTile>,
}

/// One image of a dataset as a table shows it (`data.table()`).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRow {
    pub path: String,
    pub label: String,
    pub slide: String,
    pub split: String,
    pub width: u32,
    pub height: u32,
}

impl Item {
    /// One image file outside any dataset (label 0, no slide), to read it as items are read.
    pub fn file(path: &Path) -> Item {
        Item {
            path: path.into(),
            label: 0,
            slide: String::new(),
            split: None,
            width: 0,
            height: 0,
            tile: None,
        }
    }

    /// The image's pixels: the decoded file, or the tile read from its slide (never written out).
    pub fn read(&self) -> Result<decode::Rgb> {
        match &self.tile {
            None => decode::decode(&self.path).map_err(|e| Error::file(&self.path, e)),
            Some(t) => t.read(&self.path),
        }
    }

    /// A name unique within a dataset: the file, or the slide with the tile's place.
    pub fn name(&self) -> String {
        match &self.tile {
            None => self.path.display().to_string(),
            Some(t) => format!(
                "{}#L{}@{},{}",
                self.path.display(),
                t.tile.level,
                t.tile.x,
                t.tile.y
            ),
        }
    }
}

/// Where slide ids come from.
#[derive(Clone, Debug)]
pub enum SlideSource {
    /// A manifest column.
    Column(String),
    /// The first match of a regex on the file name.
    Regex(String),
    /// The image's parent folder.
    Parent,
    /// Each image its own slide (no grouping information).
    PerImage,
}

crate::choice! {
    /// What to do with files that cannot be decoded.
    pub enum OnError {
        /// Stop with the list of every bad file and why.
        Fail = "fail",
        /// Leave bad files out and count them.
        Skip = "skip",
    }
}

crate::options! {
    /// The options map of `dataset(path, #{ ... })`; [`DatasetOptions::resolve`] gives [`OpenOptions`].
    pub struct DatasetOptions for "dataset" {
        /// Slide ids: a regex on the file name, "parent" (the parent folder) or "image" (one per image); () uses the manifest's slide column or a built-in rule.
        slide: Option<String> = None,
        /// Manifest column holding the image path.
        path_column: String = "path".into(),
        /// Manifest column holding the label.
        label_column: String = "label".into(),
        /// Manifest column holding the slide id.
        slide_column: String = "slide".into(),
        /// Manifest column holding train/val/test.
        split_column: String = "split".into(),
        /// What to do with files that cannot be decoded.
        on_error: OnError = OnError::Fail,
    }
}

impl DatasetOptions {
    /// The library options these stand for.
    pub fn resolve(&self) -> OpenOptions {
        OpenOptions {
            slide: self.slide.as_ref().map(|s| match s.as_str() {
                "parent" => SlideSource::Parent,
                "image" | "none" => SlideSource::PerImage,
                re => SlideSource::Regex(re.into()),
            }),
            on_error: self.on_error,
            columns: [
                self.path_column.clone(),
                self.label_column.clone(),
                self.slide_column.clone(),
                self.split_column.clone(),
            ],
        }
    }
}

/// Options of [`Dataset::open`].
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub slide: Option<SlideSource>,
    pub on_error: OnError,
    /// Manifest column names: path, label, slide, split.
    pub columns: [String; 4],
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            slide: None,
            on_error: OnError::Fail,
            columns: [
                "path".into(),
                "label".into(),
                "slide".into(),
                "split".into(),
            ],
        }
    }
}

/// A labelled image collection in which every image belongs to a slide.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub items: Vec<Item>,
    /// How slide ids were found, for summaries.
    pub slide_info: String,
    /// Files skipped under `on_error: "skip"`, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Warnings the user should see (e.g. one slide per image).
    pub warnings: Vec<String>,
    /// A stain normaliser applied to every image as it is decoded (part of feature cache keys).
    pub stain: Option<Arc<stain::StainNormalizer>>,
}

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp"];

/// Where the built-in demo images live (shipped with the source, licences beside them).
pub fn demo_root() -> PathBuf {
    std::env::var_os("PATHOLAB_DEMO_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::SOURCE_ROOT).join("data/demo"))
}

impl Dataset {
    /// Opens `path`: `"demo"` (BCCD white blood cells), `"demo:kather"`, a folder with one
    /// sub-folder per class, or a CSV manifest.
    pub fn open(path: &str, opts: &OpenOptions) -> Result<Dataset> {
        let mut opts = opts.clone();
        let p = match path {
            "demo" | "demo:bccd" => {
                opts.slide
                    .get_or_insert(SlideSource::Regex(r"BloodImage_\d+".into()));
                demo_root().join("bccd-wbc")
            }
            "demo:slide" => {
                // Tiles need a grid and labels: tiles() builds them; see tiles::demo.
                return tiles::demo(&opts);
            }
            "demo:kather" => {
                opts.slide
                    .get_or_insert(SlideSource::Regex(r"CRC-Prim-HE-\d+".into()));
                demo_root().join("kather2016-samples")
            }
            _ => PathBuf::from(path),
        };
        let meta = std::fs::metadata(&p).at(&p)?;
        let mut ds = if meta.is_dir() {
            Self::from_folder(&p, &opts)?
        } else {
            Self::from_manifest(&p, &opts)?
        };
        if path.starts_with("demo") {
            ds.name = path.to_string();
        }
        ds.check_images(opts.on_error)?;
        if ds.items.is_empty() {
            return Err(Error::file(&p, "no images found"));
        }
        Ok(ds)
    }

    fn from_folder(root: &Path, opts: &OpenOptions) -> Result<Dataset> {
        let mut classes = Vec::new();
        let mut files = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(root)
            .at(root)?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for dir in entries.into_iter().filter(|p| p.is_dir()) {
            let label = classes.len();
            classes.push(dir.file_name().unwrap().to_string_lossy().into_owned());
            let mut inner: Vec<_> = std::fs::read_dir(&dir)
                .at(&dir)?
                .flatten()
                .map(|e| e.path())
                .collect();
            inner.sort();
            for f in inner {
                let ext = f
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                let hidden = f
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if !hidden && (IMAGE_EXTENSIONS.contains(&ext.as_str()) || f.is_dir()) {
                    files.push((f, label, None));
                }
            }
        }
        if classes.is_empty() {
            return Err(Error::file(
                root,
                "no class folders (expected <root>/<class>/<image>)",
            ));
        }
        Self::assemble(root, classes, files, opts, None)
    }

    fn from_manifest(csv_path: &Path, opts: &OpenOptions) -> Result<Dataset> {
        let mut rdr = csv::Reader::from_path(csv_path).at(csv_path)?;
        let headers = rdr.headers().at(csv_path)?.clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let [pc, lc, sc, spc] = &opts.columns;
        let path_col = col(pc).ok_or_else(|| {
            Error::file(csv_path, format!("no column {pc:?} (columns: {headers:?})"))
        })?;
        let label_col = col(lc).ok_or_else(|| {
            Error::file(csv_path, format!("no column {lc:?} (columns: {headers:?})"))
        })?;
        let slide_col = col(sc);
        let split_col = col(spc);
        let base = csv_path.parent().unwrap_or(Path::new("."));
        let mut rows = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| Error::file(csv_path, format!("line {}: {e}", i + 2)))?;
            let get = |c: usize| rec.get(c).unwrap_or("").trim().to_string();
            let (file, label) = (get(path_col), get(label_col));
            if file.is_empty() || label.is_empty() {
                return Err(Error::file(
                    csv_path,
                    format!("line {}: empty path or label", i + 2),
                ));
            }
            rows.push((
                base.join(file),
                label,
                slide_col.map(get),
                split_col.map(get).filter(|s| !s.is_empty()),
            ));
        }
        let classes: Vec<String> = rows
            .iter()
            .map(|r| r.1.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut slides = Vec::new();
        let files = rows
            .into_iter()
            .map(|(p, l, s, sp)| {
                slides.push(s);
                (p, classes.iter().position(|c| *c == l).unwrap(), sp)
            })
            .collect();
        let mut opts = opts.clone();
        if opts.slide.is_none() && slide_col.is_some() {
            opts.slide = Some(SlideSource::Column(sc.clone()));
        }
        Self::assemble(csv_path, classes, files, &opts, Some(slides))
    }

    fn assemble(
        root: &Path,
        classes: Vec<String>,
        files: Vec<(PathBuf, usize, Option<String>)>,
        opts: &OpenOptions,
        column_slides: Option<Vec<Option<String>>>,
    ) -> Result<Dataset> {
        let source = opts.slide.clone().unwrap_or(SlideSource::PerImage);
        let re = match &source {
            SlideSource::Regex(r) => {
                Some(Regex::new(r).map_err(|e| Error::Invalid(format!("slide regex {r:?}: {e}")))?)
            }
            _ => None,
        };
        let mut warnings = Vec::new();
        let mut items = Vec::new();
        for (i, (path, label, split)) in files.into_iter().enumerate() {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let slide = match &source {
                SlideSource::Column(c) => match column_slides
                    .as_ref()
                    .and_then(|s| s[i].clone())
                    .filter(|s| !s.is_empty())
                {
                    Some(s) => s,
                    None => {
                        return Err(Error::file(
                            root,
                            format!("line {}: empty {c:?} value", i + 2),
                        ))
                    }
                },
                SlideSource::Regex(r) => match re.as_ref().unwrap().find(&file_name) {
                    Some(m) => m.as_str().to_string(),
                    None => {
                        return Err(Error::file(
                            &path,
                            format!("slide regex {r:?} does not match the file name"),
                        ))
                    }
                },
                SlideSource::Parent => path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                SlideSource::PerImage => file_name.clone(),
            };
            items.push(Item {
                path,
                label,
                slide,
                split,
                width: 0,
                height: 0,
                tile: None,
            });
        }
        let slide_info = match &source {
            SlideSource::Column(c) => format!("slide id from column {c:?}"),
            SlideSource::Regex(r) => format!("slide id from file name /{r}/"),
            SlideSource::Parent => "slide id from parent folder".into(),
            SlideSource::PerImage => {
                warnings.push(
                    "no slide ids given: every image is its own slide, so splits cannot keep a slide's images together \
                     (pass #{ slide: \"<regex>\" } or a manifest slide column)"
                        .into(),
                );
                "one slide per image".into()
            }
        };
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| root.display().to_string());
        Ok(Dataset {
            name,
            root: root.to_path_buf(),
            classes,
            items,
            slide_info,
            skipped: Vec::new(),
            warnings,
            stain: None,
        })
    }

    /// Decodes every image once (in parallel) to record its size and find bad files.
    fn check_images(&mut self, on_error: OnError) -> Result<()> {
        let results: Vec<std::result::Result<(u32, u32), String>> = self
            .items
            .par_iter()
            .map(|it| decode::decode(&it.path).map(|img| (img.width, img.height)))
            .collect();
        let mut bad = Vec::new();
        let mut kept = Vec::new();
        for (mut it, r) in std::mem::take(&mut self.items).into_iter().zip(results) {
            match r {
                Ok((w, h)) => {
                    it.width = w;
                    it.height = h;
                    kept.push(it);
                }
                Err(why) => bad.push((it.path, why)),
            }
        }
        self.items = kept;
        if !bad.is_empty() && on_error == OnError::Fail {
            let list: Vec<String> = bad
                .iter()
                .map(|(p, w)| format!("  {}: {w}", p.display()))
                .collect();
            return Err(Error::file(
                &self.root,
                format!(
                    "{} unreadable image(s) (use on_error: \"skip\" to leave them out):\n{}",
                    bad.len(),
                    list.join("\n")
                ),
            ));
        }
        self.skipped = bad;
        Ok(())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Labels of all images.
    pub fn labels(&self) -> Vec<usize> {
        self.items.iter().map(|i| i.label).collect()
    }

    /// Number of distinct slides.
    pub fn n_slides(&self) -> usize {
        self.items
            .iter()
            .map(|i| &i.slide)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes.len()];
        for it in &self.items {
            c[it.label] += 1;
        }
        c
    }

    /// A new dataset with only the images at `idx`; an index past the end is an error naming it.
    pub fn subset(&self, idx: &[usize]) -> Result<Dataset> {
        if let Some(bad) = idx.iter().find(|i| **i >= self.items.len()) {
            return Err(Error::Invalid(format!(
                "row {bad} out of range: the dataset has {} images",
                self.items.len()
            )));
        }
        let mut d = self.clone();
        d.items = idx.iter().map(|i| self.items[*i].clone()).collect();
        Ok(d)
    }

    /// The same images, each stain-normalised by `norm` as it is decoded (features, fine-tuning
    /// and prediction all see the normalised pixels); a fitted normaliser's target is part of the
    /// feature cache key.
    pub fn with_stain(&self, norm: stain::StainNormalizer) -> Dataset {
        let mut d = self.clone();
        d.stain = Some(Arc::new(norm));
        d
    }

    /// Image `i`, decoded and stain-normalised when the dataset has a normaliser.
    pub fn image(&self, i: usize) -> Result<decode::Rgb> {
        let it = self.items.get(i).ok_or_else(|| {
            Error::Invalid(format!(
                "image {i} out of range: the dataset has {} images",
                self.items.len()
            ))
        })?;
        loader::load(it, self.stain.as_deref())
    }

    /// How images are prepared for a network: `pre`, after this dataset's stain normaliser.
    pub fn prepare(&self, pre: crate::input::Preprocess) -> loader::Prepare {
        loader::Prepare {
            pre,
            stain: self.stain.clone(),
            augment: None,
            seed: 0,
        }
    }

    /// One row per image: path, label (its name), slide, split, width, height.
    pub fn rows(&self) -> Vec<ImageRow> {
        self.items
            .iter()
            .map(|i| ImageRow {
                path: i.path.display().to_string(),
                label: self.classes[i.label].clone(),
                slide: i.slide.clone(),
                split: i.split.clone().unwrap_or_default(),
                width: i.width,
                height: i.height,
            })
            .collect()
    }

    /// One line, as the prompt shows it.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "Dataset {}: {} images, {} classes, {} slides ({})",
            self.name,
            self.len(),
            self.classes.len(),
            self.n_slides(),
            self.slide_info
        );
        if !self.skipped.is_empty() {
            s += &format!(", {} unreadable file(s) skipped", self.skipped.len());
        }
        if let Some(n) = &self.stain {
            s += &format!(", stain-normalised ({})", n.method());
        }
        s
    }

    /// Per-class and per-slide counts as text tables.
    pub fn summary(&self) -> String {
        let mut s = self.describe() + "\n\nclass            images  slides\n";
        for (c, name) in self.classes.iter().enumerate() {
            let n = self.items.iter().filter(|i| i.label == c).count();
            let sl = self
                .items
                .iter()
                .filter(|i| i.label == c)
                .map(|i| &i.slide)
                .collect::<BTreeSet<_>>()
                .len();
            s += &format!("{name:<16} {n:>6}  {sl:>6}\n");
        }
        let mut per_slide: BTreeMap<&str, usize> = BTreeMap::new();
        for it in &self.items {
            *per_slide.entry(&it.slide).or_default() += 1;
        }
        let sizes: Vec<usize> = per_slide.values().copied().collect();
        s += &format!(
            "\nimages per slide: min {}, median {}, max {}",
            sizes.iter().min().unwrap_or(&0),
            {
                let mut v = sizes.clone();
                v.sort();
                v.get(v.len() / 2).copied().unwrap_or(0)
            },
            sizes.iter().max().unwrap_or(&0)
        );
        for w in &self.warnings {
            s += &format!("\nwarning: {w}");
        }
        for (p, why) in &self.skipped {
            s += &format!("\nskipped {}: {why}", p.display());
        }
        s
    }
}
