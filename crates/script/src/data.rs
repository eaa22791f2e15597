//! Script bindings of the `data` room: datasets, images, splits and slide-wise cross-validation.

use super::convert::{indices, ints, options, strings};
use super::registry::Api;
use super::{to_rhai, RResult};
pub use patholab_core::data::image::Image;
use patholab_core::data::split::{Cv, CvOptions, Split, SplitOptions};
use patholab_core::data::{Dataset, DatasetOptions};
use patholab_core::eval::table::Table;
use rhai::{Array, Map};
use std::sync::Arc;

/// A script handle to a dataset.
pub type DatasetRef = Arc<Dataset>;

/// Opens a dataset and prints its warnings.
pub fn open(path: &str, o: &DatasetOptions) -> RResult<DatasetRef> {
    let ds = Dataset::open(path, &o.resolve()).map_err(to_rhai)?;
    for w in &ds.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Arc::new(ds))
}

fn split(ds: &Dataset, o: &SplitOptions) -> RResult<Split> {
    let split = Split::new(ds, o).map_err(to_rhai)?;
    for w in &split.warnings {
        patholab_core::progress::warn_once(w);
    }
    Ok(split)
}

/// Registers datasets, splits and folds.
pub fn register(api: &mut Api) {
    api.engine()
        .register_type_with_name::<DatasetRef>("Dataset")
        .register_type_with_name::<Split>("Split")
        .register_type_with_name::<Cv>("Cv")
        .register_type_with_name::<Image>("Image");

    api.func(
        "dataset(path: String) -> Dataset",
        "Opens an ImageFolder tree (<root>/<class>/<image>), a CSV manifest (path,label,slide[,split]),\n\"demo\" (BCCD white blood cells, built in) or \"demo:kather\" (Kather 2016 tiles).",
        r#"let d = dataset("demo");"#,
        |p: &str| open(p, &DatasetOptions::default()),
    );
    api.func(
        "dataset(path: String, options: Map) -> Dataset",
        "Opens a dataset with options: where slide ids come from, manifest columns, bad files.",
        r#"let d = dataset("demo:kather", #{ slide: "CRC-Prim-HE-\\d+", on_error: "skip" });"#,
        |p: &str, m: Map| open(p, &options(&m)?),
    )
    .options::<DatasetOptions>();
    api.func(
        "dataset(spec: Map) -> Dataset",
        "Opens the dataset a map describes: its path, an optional name (for results) and any dataset option,
so a study script takes a folder with its slide rule as one value.",
        r#"let d = dataset(#{ path: "demo:kather", name: "kather", slide: "CRC-Prim-HE-\\d+" });"#,
        |m: Map| -> RResult<DatasetRef> {
            let mut m = m;
            let path = m.remove("path").ok_or("a dataset spec needs a path: #{ path: \"...\", ... }")?;
            let path = path.into_string().map_err(|t| format!("the path of a dataset spec is a string, got {t}"))?;
            m.remove("name");
            open(&path, &options(&m)?)
        },
    )
    .options::<DatasetOptions>()
    .extra_option("path", "string", "(required)", "The folder, manifest or demo name.")
    .extra_option("name", "string", "the path", "The name results use for this dataset.");
    api.method(
        "Dataset",
        "data.len() -> int",
        "Number of images.",
        "data.len() // => 351",
        |d: &mut DatasetRef| d.len() as i64,
    );
    api.method(
        "Dataset",
        "data.classes() -> Array",
        "Class names, in label order.",
        r#"data.classes() // => ["Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"]"#,
        |d: &mut DatasetRef| strings(&d.classes),
    );
    api.method(
        "Dataset",
        "data.summary() -> String",
        "Images and slides per class, images per slide, warnings and skipped files.",
        "print(data.summary());",
        |d: &mut DatasetRef| d.summary(),
    );
    api.method(
        "Dataset",
        "data.table() -> Table",
        "One row per image: path, label, slide, split, width, height.",
        "data.table().head(3)",
        |d: &mut DatasetRef| Table::from_rows(&d.rows()).map_err(to_rhai),
    );
    api.method(
        "Dataset",
        "data.subset(rows: Array) -> Dataset",
        "The images at these positions.",
        "data.subset(split.test)",
        |d: &mut DatasetRef, a: Array| -> RResult<DatasetRef> {
            d.subset(&indices(&a, "rows")?)
                .map(Arc::new)
                .map_err(to_rhai)
        },
    );
    api.func(
        "image(path: String) -> Image",
        "Reads one image file (JPEG, PNG, TIFF, BMP, WebP) as 8-bit RGB.",
        r#"let img = image(data.table().column("path")[0]);"#,
        |p: &str| Image::open(p).map_err(to_rhai),
    );
    api.method(
        "Dataset",
        "data.image(i: int) -> Image",
        "Image i of the dataset, decoded (and stain-normalised when the dataset has a normaliser).",
        "let img = data.image(0);",
        |d: &mut DatasetRef, i: i64| -> RResult<Image> {
            let i = usize::try_from(i).map_err(|_| format!("image {i}: need an index ≥ 0"))?;
            let rgb = d.image(i).map_err(to_rhai)?;
            Ok(Image {
                name: d.items[i].path.display().to_string(),
                rgb: Arc::new(rgb),
            })
        },
    );
    api.getter(
        "Image",
        "img.width -> int",
        "Width in pixels.",
        "data.image(0).width",
        |i: &mut Image| i.rgb.width as i64,
    );
    api.getter(
        "Image",
        "img.height -> int",
        "Height in pixels.",
        "data.image(0).height",
        |i: &mut Image| i.rgb.height as i64,
    );
    api.method(
        "Image",
        "img.save(path: String) -> String",
        "Writes the image (format by extension: .png, .jpg, .tif, .bmp) and returns the path.",
        r#"data.image(0).save("first.png")"#,
        |i: &mut Image, p: &str| -> RResult<String> {
            i.save(p).map_err(to_rhai)?;
            Ok(p.into())
        },
    );

    api.method(
        "Dataset",
        "data.split(options: Map) -> Split",
        "Train/val/test parts by slide, stratified: every part holds every class when the slides allow, else a\nwarning says which cannot. A manifest's split column is used when every image has one.",
        "let s = data.split(#{ train: 0.6, val: 0.2, test: 0.2, seed: 1 });",
        |d: &mut DatasetRef, m: Map| split(d, &options(&m)?),
    )
    .options::<SplitOptions>();
    api.method(
        "Dataset",
        "data.split() -> Split",
        "The default 60/20/20 slide-wise split, seed 0.",
        "let s = data.split();",
        |d: &mut DatasetRef| split(d, &SplitOptions::default()),
    );
    api.getter(
        "Split",
        "split.train -> Array",
        "Positions of the training images.",
        "split.train.len()",
        |s: &mut Split| ints(&s.train),
    );
    api.getter(
        "Split",
        "split.val -> Array",
        "Positions of the validation images.",
        "split.val.len()",
        |s: &mut Split| ints(&s.val),
    );
    api.getter(
        "Split",
        "split.test -> Array",
        "Positions of the test images.",
        "split.test.len()",
        |s: &mut Split| ints(&s.test),
    );
    api.getter(
        "Split",
        "split.train_val -> Array",
        "Positions of the training and validation images together (what the paper tunes on).",
        "split.train_val.len()",
        |s: &mut Split| ints(&s.train_val()),
    );
    api.method(
        "Split",
        "split.audit() -> String",
        "Images, slides and classes per part, and whether any slide is shared.",
        "print(split.audit());",
        |s: &mut Split| s.audit(),
    );
    api.func(
        "slide_kfold(k: int) -> Cv",
        "k folds of whole slides, stratified: every fold's test part holds every class when the slides allow.",
        "let cv = slide_kfold(5);",
        |k: i64| Cv::slide_kfold(k.max(0) as usize),
    );
    api.func(
        "slide_kfold(k: int, seed: int) -> Cv",
        "Like slide_kfold(k) with another assignment of slides.",
        "let cv = slide_kfold(5, 42);",
        |k: i64, s: i64| {
            Cv::slide_kfold_with(
                k.max(0) as usize,
                CvOptions {
                    seed: s.max(0) as u64,
                    ..Default::default()
                },
            )
        },
    );
    api.func(
        "slide_kfold(k: int, options: Map) -> Cv",
        "k slide folds with a seed and a scoring: \"auto\" scores per fold when every fold's score exists, else\npools the out-of-fold predictions (with a warning); \"pooled\" or \"per_fold\" choose.",
        r#"let cv = slide_kfold(5, #{ scoring: "pooled" });"#,
        |k: i64, m: Map| -> RResult<Cv> { Ok(Cv::slide_kfold_with(k.max(0) as usize, options(&m)?)) },
    )
    .options::<CvOptions>();
    api.func(
        "leave_one_slide_out() -> Cv",
        "One fold per slide.",
        "let cv = leave_one_slide_out();",
        || Cv::leave_one_slide_out(CvOptions::default()),
    );
    api.func(
        "leave_one_slide_out(options: Map) -> Cv",
        "One fold per slide, with a scoring (a one-class slide makes \"auto\" pool).",
        r#"let cv = leave_one_slide_out(#{ scoring: "pooled" });"#,
        |m: Map| -> RResult<Cv> { Ok(Cv::leave_one_slide_out(options(&m)?)) },
    )
    .options::<CvOptions>();
}
