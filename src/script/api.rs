//! Registration of every scriptable object and function, with its help text beside it.

use super::convert::{self, get_bool, get_f64, get_str, get_usize};
use super::help::Entry;
use super::{to_rhai, RResult};
use crate::baseline::et_fl::EtFl;
use crate::data::split::{Cv, CvOptions, Split, SplitOptions};
use crate::data::{Dataset, OnError, OpenOptions, SlideSource};
use crate::eval::results::Results;
use crate::eval::{evaluate, Evaluation};
use crate::features::extract::{extract, ExtractOptions, Reduce};
use crate::features::pca::Pca;
use crate::features::FeatureSet;
use crate::learn::rfe::{Rfe, RfeResult};
use crate::learn::{self, Classifier, Model};
use crate::nets::{NetOptions, Network, Weights};
use polars::prelude::DataFrame;
use rhai::{Array, Dynamic, Engine, Map};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// A script handle to a network.
pub type Net = Rc<Network>;
/// A script handle to a results table that strategies append to.
pub type ResultsRef = Rc<RefCell<Results>>;

/// A polars table, printed as polars prints it.
#[derive(Clone, Debug)]
pub struct Table(pub DataFrame);

/// A fitted ET-FL model with its CV table when tuned.
#[derive(Clone)]
pub struct EtFlFitted {
    pub model: Rc<crate::baseline::et_fl::EtFlModel>,
    pub cv: Option<learn::tune::CvTable>,
}

/// `pca(k)` before fitting.
#[derive(Clone, Debug)]
pub struct PcaSpec(pub usize);

macro_rules! f {
    ($e:expr, $h:expr, $name:literal, $topic:literal, $recv:expr, $sig:literal, $doc:literal, $ex:literal, $func:expr) => {{
        $e.register_fn($name, $func);
        $h.push(Entry {
            name: $name,
            topic: $topic,
            receiver: $recv,
            signature: $sig,
            doc: $doc,
            example: $ex,
        });
    }};
}

/// Registers everything on `engine`.
pub fn register(engine: &mut Engine) {
    register_with_help(engine);
}

fn table(df: crate::Result<DataFrame>) -> RResult<Table> {
    df.map(Table).map_err(to_rhai)
}

fn ints(v: &[usize]) -> Array {
    v.iter().map(|i| Dynamic::from(*i as i64)).collect()
}

fn open_dataset(path: &str, m: &Map) -> RResult<Arc<Dataset>> {
    let mut o = OpenOptions::default();
    if let Some(s) = get_str(m, "slide")? {
        o.slide = Some(match s.as_str() {
            "parent" => SlideSource::Parent,
            "image" | "none" => SlideSource::PerImage,
            col if m.get("slide_column").is_some() => SlideSource::Column(col.into()),
            re => SlideSource::Regex(re.into()),
        });
    }
    if let Some(c) = get_str(m, "slide_column")? {
        o.slide = Some(SlideSource::Column(c.clone()));
        o.columns[2] = c;
    }
    for (i, key) in [
        "path_column",
        "label_column",
        "slide_column",
        "split_column",
    ]
    .iter()
    .enumerate()
    {
        if let Some(c) = get_str(m, key)? {
            o.columns[i] = c;
        }
    }
    o.on_error = match get_str(m, "on_error")?.as_deref() {
        None | Some("fail") => OnError::Fail,
        Some("skip") => OnError::Skip,
        Some(x) => return Err(format!("on_error is \"fail\" or \"skip\", got {x:?}").into()),
    };
    let ds = Dataset::open(path, &o).map_err(to_rhai)?;
    for w in &ds.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Arc::new(ds))
}

fn split_dataset(ds: &Dataset, m: &Map) -> RResult<Split> {
    let mut o = SplitOptions::default();
    if let Some(v) = get_f64(m, "train")? {
        o.train = v;
    }
    if let Some(v) = get_f64(m, "val")? {
        o.val = v;
    }
    if let Some(v) = get_f64(m, "test")? {
        o.test = v;
    }
    if let Some(v) = get_str(m, "by")? {
        o.by_slide = match v.as_str() {
            "slide" => true,
            "image" => false,
            _ => return Err(format!("by is \"slide\" or \"image\", got {v:?}").into()),
        };
    }
    if let Some(v) = get_bool(m, "stratify")? {
        o.stratify = v;
    }
    if let Some(v) = get_usize(m, "seed")? {
        o.seed = v as u64;
    }
    if let Some(v) = get_bool(m, "allow_slide_leakage")? {
        o.allow_slide_leakage = v;
    }
    if !o.by_slide && !o.allow_slide_leakage {
        return Err("by: \"image\" can put a slide on both sides; add allow_slide_leakage: true to accept that".into());
    }
    let split = Split::new(ds, &o).map_err(to_rhai)?;
    for w in &split.warnings {
        crate::progress::warn_once(w);
    }
    Ok(split)
}

fn cv_options(m: &Map) -> RResult<CvOptions> {
    use crate::options::Options;
    CvOptions::from_object(convert::json(m)?).map_err(to_rhai)
}

/// What `cross_val` returns: the score that counts, how it was made, and each fold's score.
fn cv_result(t: &learn::tune::CvTable) -> Map {
    let mut m = Map::new();
    m.insert("score".into(), t.score(0).into());
    m.insert("scoring".into(), t.scoring.as_str().into());
    m.insert("metric".into(), t.metric.clone().into());
    m.insert("pooled".into(), t.pooled[0].into());
    m.insert("folds".into(), t.folds[0].iter().map(|v| Dynamic::from(*v)).collect::<Array>().into());
    m.insert("note".into(), t.note.clone().into());
    m
}

/// The scoring and note of a tuned model's CV table.
fn cv_field(cv: &Option<learn::tune::CvTable>, note: bool) -> RResult<String> {
    match cv {
        Some(t) if note => Ok(t.note.clone()),
        Some(t) => Ok(t.scoring.as_str().to_string()),
        None => Err("this model was not tuned (use tune)".into()),
    }
}

fn open_network(name: &str, m: &Map) -> RResult<Net> {
    let mut o = NetOptions::default();
    if let Some(d) = get_str(m, "device")? {
        o.device = crate::parse_device(&d).map_err(to_rhai)?;
    }
    if let Some(s) = get_bool(m, "strict")? {
        o.strict = s;
    }
    let seed = get_usize(m, "seed")?.unwrap_or(0) as u64;
    o.weights = match get_str(m, "weights")?.as_deref() {
        None | Some("imagenet") => Weights::ImageNet,
        Some("random") => Weights::Random(seed),
        Some(p) => Weights::File(p.into()),
    };
    let path = std::path::Path::new(name);
    let net = if path.extension().is_some_and(|e| e == "safetensors")
        && path.with_extension("json").exists()
    {
        Network::load(path, o.device)
    } else {
        Network::new(name, o)
    };
    net.map(Rc::new).map_err(to_rhai)
}

thread_local! {
    static DEFAULT_SHARD: std::cell::Cell<Option<(usize, usize)>> = const { std::cell::Cell::new(None) };
}

/// Sets the shard `features` uses when a script does not give one (`patholab run --shard i/n`).
pub fn set_default_shard(s: Option<(usize, usize)>) {
    DEFAULT_SHARD.with(|c| c.set(s));
}

fn features_of(net: &Network, ds: &Dataset, m: &Map) -> RResult<FeatureSet> {
    let mut o = ExtractOptions::default();
    if let Some(t) = m.get("taps") {
        o.taps = convert::strings(t, "taps")?;
    }
    if let Some(r) = get_str(m, "reduce")? {
        o.reduce = Reduce::parse(&r).map_err(to_rhai)?;
    }
    if let Some(b) = get_usize(m, "batch")? {
        o.batch = b.max(1);
    }
    if let Some(c) = get_usize(m, "chunk")? {
        o.chunk = c.max(1);
    }
    if let Some(q) = get_bool(m, "quiet")? {
        o.quiet = q;
    }
    o.shard = DEFAULT_SHARD.with(|c| c.get());
    if let Some(s) = m.get("shard") {
        let a = s.clone().try_cast::<Array>().ok_or("shard is [i, n]")?;
        let v = convert::indices(&a, "shard")?;
        if v.len() != 2 {
            return Err("shard is [i, n]".into());
        }
        o.shard = Some((v[0], v[1]));
    }
    if m.get("device").is_some() {
        let want = crate::parse_device(&get_str(m, "device")?.unwrap()).map_err(to_rhai)?;
        if want != net.device() {
            return Err(format!(
                "the network lives on {:?}; create it with network(name, #{{ device: ... }})",
                net.device()
            )
            .into());
        }
    }
    extract(net, ds, &o).map_err(to_rhai)
}

fn finetune_net(n: &Network, d: &Dataset, s: &Split, m: &Map) -> RResult<Net> {
    let mut o = crate::finetune::Options::default();
    if let Some(v) = get_usize(m, "head_epochs")? {
        o.head_epochs = v;
    }
    if let Some(v) = get_usize(m, "epochs")? {
        o.epochs = v;
    }
    if let Some(v) = get_f64(m, "head_lr")? {
        o.head_lr = v;
    }
    if let Some(v) = get_f64(m, "lr")? {
        o.lr = v;
    }
    if let Some(v) = get_f64(m, "weight_decay")? {
        o.weight_decay = v;
    }
    if let Some(v) = get_usize(m, "batch")? {
        o.batch = v.max(1);
    }
    if let Some(v) = get_bool(m, "augment")? {
        o.augment = v;
    }
    if let Some(v) = get_usize(m, "seed")? {
        o.seed = v as u64;
    }
    if let Some(v) = get_bool(m, "resume")? {
        o.resume = v;
    }
    if let Some(v) = get_bool(m, "freeze_bn")? {
        o.freeze_bn = v;
    }
    if let Some(v) = get_bool(m, "amp")? {
        o.amp = v;
    }
    if let Some(v) = get_bool(m, "quiet")? {
        o.quiet = v;
    }
    if let Some(v) = get_str(m, "checkpoints")? {
        o.checkpoints = Some(v.into());
    }
    o.device = match get_str(m, "device")? {
        Some(d) => crate::parse_device(&d).map_err(to_rhai)?,
        None => n.device(),
    };
    if let Some(b) = m.get("betas") {
        let a = b
            .clone()
            .try_cast::<Array>()
            .filter(|a| a.len() == 2)
            .ok_or("betas is [beta1, beta2]")?;
        o.betas = (
            convert::as_f64(&a[0]).ok_or("betas are numbers")?,
            convert::as_f64(&a[1]).ok_or("betas are numbers")?,
        );
    }
    crate::finetune::finetune(n, d, s, &o)
        .map(Rc::new)
        .map_err(to_rhai)
}

fn curve_table(n: &Network) -> RResult<Table> {
    use polars::prelude::*;
    let c = &n.curve;
    if c.is_empty() {
        return Err("this network was not fine-tuned (use net.finetune)".into());
    }
    table(
        DataFrame::new(
            c.len(),
            vec![
                polars::prelude::Column::new(
                    "epoch".into(),
                    c.iter().map(|e| e.epoch as i64).collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "phase".into(),
                    c.iter().map(|e| e.phase.clone()).collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "train_loss".into(),
                    c.iter().map(|e| e.train_loss).collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "val_loss".into(),
                    c.iter().map(|e| e.val_loss).collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "val_score".into(),
                    c.iter().map(|e| e.val_score).collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "images_per_second".into(),
                    c.iter().map(|e| e.images_per_second).collect::<Vec<_>>(),
                ),
            ],
        )
        .map_err(Into::into),
    )
}

fn classifier(name: &str, m: &Map) -> RResult<Box<dyn Classifier>> {
    learn::classifier(name, &convert::params(m)?).map_err(to_rhai)
}

fn cv_from(m: &Map) -> RResult<Option<Cv>> {
    Ok(m.get("cv").and_then(|v| v.clone().try_cast::<Cv>()))
}

/// The CV table of a tuned model.
fn cv_table(cv: &Option<learn::tune::CvTable>) -> RResult<Table> {
    match cv {
        Some(t) => table(t.frame()),
        None => Err("this model was not tuned (use tune)".into()),
    }
}

/// Hyper-parameters as a script map.
fn params_map(params: Vec<(String, learn::Param)>) -> Map {
    params
        .into_iter()
        .map(|(k, v)| {
            let v: Dynamic = match v {
                learn::Param::Float(x) => x.into(),
                learn::Param::Int(x) => x.into(),
                learn::Param::Str(s) => s.into(),
            };
            (k.into(), v)
        })
        .collect()
}

fn importances_table(m: &Model) -> RResult<Table> {
    use polars::prelude::*;
    let imp = m
        .importances()
        .ok_or_else(|| format!("{} has no importances", m.classifier.name()))?;
    let mut order: Vec<usize> = (0..imp.len()).collect();
    order.sort_by(|a, b| imp[*b].total_cmp(&imp[*a]));
    let c = &m.columns;
    table(
        DataFrame::new(
            order.len(),
            vec![
                polars::prelude::Column::new(
                    "network".into(),
                    order
                        .iter()
                        .map(|i| c[*i].network.clone())
                        .collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "tap".into(),
                    order.iter().map(|i| c[*i].tap.clone()).collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "channel".into(),
                    order
                        .iter()
                        .map(|i| c[*i].channel as i64)
                        .collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "importance".into(),
                    order.iter().map(|i| imp[*i]).collect::<Vec<_>>(),
                ),
            ],
        )
        .map_err(Into::into),
    )
}

fn importance_share(m: &Model, by: &str) -> RResult<Table> {
    let imp = m
        .importances()
        .ok_or_else(|| format!("{} has no importances", m.classifier.name()))?;
    let mut share: Vec<(String, f64)> = Vec::new();
    for (c, v) in m.columns.iter().zip(&imp) {
        let key = match by {
            "network" => c.network.clone(),
            "tap" => format!("{}/{}", c.network, c.tap),
            _ => return Err("by is \"network\" or \"tap\"".into()),
        };
        match share.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 += v,
            None => share.push((key, *v)),
        }
    }
    table(
        DataFrame::new(
            share.len(),
            vec![
                polars::prelude::Column::new(
                    by.into(),
                    share.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
                ),
                polars::prelude::Column::new(
                    "importance".into(),
                    share.iter().map(|s| s.1).collect::<Vec<_>>(),
                ),
            ],
        )
        .map_err(Into::into),
    )
}

fn add_row(r: &ResultsRef, m: &Map) -> RResult<()> {
    r.borrow_mut().add(convert::json(m)?).map_err(to_rhai)
}

fn ranks_table(r: &Results) -> RResult<Table> {
    use polars::prelude::*;
    let ranks = r.ranks().map_err(to_rhai)?;
    let sorted = ranks.sorted();
    let mut cols = vec![
        polars::prelude::Column::new(
            "method".into(),
            sorted.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
        ),
        polars::prelude::Column::new(
            "mean_rank".into(),
            sorted.iter().map(|s| s.1).collect::<Vec<_>>(),
        ),
    ];
    for (d, name) in ranks.datasets.iter().enumerate() {
        let v: Vec<f64> = sorted
            .iter()
            .map(|(m, _)| ranks.ranks[d][ranks.methods.iter().position(|x| x == m).unwrap()])
            .collect();
        cols.push(polars::prelude::Column::new(name.as_str().into(), v));
    }
    table(DataFrame::new(sorted.len(), cols).map_err(Into::into))
}

/// Registers everything and returns the help entries.
pub fn register_with_help(e: &mut Engine) -> Vec<Entry> {
    let mut h: Vec<Entry> = Vec::new();
    e.register_type_with_name::<Arc<Dataset>>("Dataset")
        .register_type_with_name::<Split>("Split")
        .register_type_with_name::<Cv>("Cv")
        .register_type_with_name::<Net>("Network")
        .register_type_with_name::<FeatureSet>("FeatureSet")
        .register_type_with_name::<Box<dyn Classifier>>("Classifier")
        .register_type_with_name::<Model>("Model")
        .register_type_with_name::<Evaluation>("Evaluation")
        .register_type_with_name::<Table>("Table")
        .register_type_with_name::<ResultsRef>("Results")
        .register_type_with_name::<Rfe>("Rfe")
        .register_type_with_name::<RfeResult>("RfeResult")
        .register_type_with_name::<PcaSpec>("PcaSpec")
        .register_type_with_name::<Pca>("Pca");

    // ---- help and printing
    e.register_fn("help", || println!("{}", super::help::help(None)));
    e.register_fn("help", |s: &str| println!("{}", super::help::help(Some(s))));
    for_each_printable(e);

    // ---- data
    f!(e, h, "dataset", "data", None, "dataset(path: String) -> Dataset",
        "Opens an ImageFolder tree (<root>/<class>/<image>), a CSV manifest (path,label,slide[,split]),\n\"demo\" (BCCD white blood cells, built in) or \"demo:kather\" (Kather 2016 tiles).",
        r#"let data = dataset("demo");"#, |p: &str| open_dataset(p, &Map::new()));
    f!(e, h, "dataset", "data", None, "dataset(path: String, options: Map) -> Dataset",
        "Options: slide (a file-name regex, \"parent\" or \"image\"), slide_column, path_column, label_column,\nsplit_column, on_error (\"fail\" lists every bad file; \"skip\" leaves them out).",
        r#"let data = dataset("tiles/", #{ slide: "CRC-Prim-HE-\\d+", on_error: "skip" });"#, |p: &str, m: Map| open_dataset(p, &m));
    f!(
        e,
        h,
        "len",
        "data",
        Some("Dataset"),
        "data.len() -> int",
        "Number of images.",
        "data.len()",
        |d: &mut Arc<Dataset>| d.len() as i64
    );
    f!(
        e,
        h,
        "classes",
        "data",
        Some("Dataset"),
        "data.classes() -> Array",
        "Class names, in label order.",
        "data.classes()",
        |d: &mut Arc<Dataset>| d
            .classes
            .iter()
            .map(|c| Dynamic::from(c.clone()))
            .collect::<Array>()
    );
    f!(
        e,
        h,
        "summary",
        "data",
        Some("Dataset"),
        "data.summary() -> String",
        "Images and slides per class, images per slide, warnings and skipped files.",
        "print(data.summary());",
        |d: &mut Arc<Dataset>| d.summary()
    );
    f!(
        e,
        h,
        "table",
        "data",
        Some("Dataset"),
        "data.table() -> Table",
        "One row per image: path, label, slide, split, width, height.",
        "data.table()",
        |d: &mut Arc<Dataset>| {
            use polars::prelude::*;
            let it = &d.items;
            table(
                DataFrame::new(
                    it.len(),
                    vec![
                        polars::prelude::Column::new(
                            "path".into(),
                            it.iter()
                                .map(|i| i.path.display().to_string())
                                .collect::<Vec<_>>(),
                        ),
                        polars::prelude::Column::new(
                            "label".into(),
                            it.iter()
                                .map(|i| d.classes[i.label].clone())
                                .collect::<Vec<_>>(),
                        ),
                        polars::prelude::Column::new(
                            "slide".into(),
                            it.iter().map(|i| i.slide.clone()).collect::<Vec<_>>(),
                        ),
                        polars::prelude::Column::new(
                            "split".into(),
                            it.iter()
                                .map(|i| i.split.clone().unwrap_or_default())
                                .collect::<Vec<_>>(),
                        ),
                        polars::prelude::Column::new(
                            "width".into(),
                            it.iter().map(|i| i.width as i64).collect::<Vec<_>>(),
                        ),
                        polars::prelude::Column::new(
                            "height".into(),
                            it.iter().map(|i| i.height as i64).collect::<Vec<_>>(),
                        ),
                    ],
                )
                .map_err(Into::into),
            )
        }
    );
    f!(
        e,
        h,
        "subset",
        "data",
        Some("Dataset"),
        "data.subset(rows: Array) -> Dataset",
        "The images at these positions.",
        "data.subset(split.test)",
        |d: &mut Arc<Dataset>, a: Array| Ok::<_, Box<rhai::EvalAltResult>>(Arc::new(
            d.subset(&convert::indices(&a, "rows")?)
        ))
    );
    f!(e, h, "split", "data", Some("Dataset"), "data.split(options: Map) -> Split",
        "Train/val/test by slide: train, val, test (fractions), by (\"slide\"), stratify (true: every part holds\nevery class when the slides allow, else a warning says which cannot), seed, allow_slide_leakage (false).\nA manifest's split column is used when every image has one.",
        "let split = data.split(#{ train: 0.6, val: 0.2, test: 0.2, seed: 1 });", |d: &mut Arc<Dataset>, m: Map| split_dataset(d, &m));
    f!(
        e,
        h,
        "split",
        "data",
        Some("Dataset"),
        "data.split() -> Split",
        "The default 60/20/20 slide-wise split, seed 0.",
        "let split = data.split();",
        |d: &mut Arc<Dataset>| split_dataset(d, &Map::new())
    );
    e.register_get("train", |s: &mut Split| ints(&s.train));
    e.register_get("val", |s: &mut Split| ints(&s.val));
    e.register_get("test", |s: &mut Split| ints(&s.test));
    e.register_get("train_val", |s: &mut Split| ints(&s.train_val()));
    f!(
        e,
        h,
        "audit",
        "data",
        Some("Split"),
        "split.audit() -> String",
        "Images, slides and classes per part, and whether any slide is shared.",
        "print(split.audit());",
        |s: &mut Split| s.audit()
    );
    f!(
        e,
        h,
        "slide_kfold",
        "data",
        None,
        "slide_kfold(k: int) -> Cv",
        "k folds of whole slides, stratified by class as far as slides allow.",
        "let cv = slide_kfold(5);",
        |k: i64| Cv::slide_kfold(k.max(0) as usize)
    );
    f!(e, h, "slide_kfold", "data", None, "slide_kfold(k: int, options: Map) -> Cv",
        "Options: seed (0), scoring (\"auto\": per fold when every fold's score exists, else pooled over the\nout-of-fold predictions with a warning; \"pooled\"; \"per_fold\").",
        r#"let cv = slide_kfold(5, #{ scoring: "pooled" });"#,
        |k: i64, m: Map| cv_options(&m).map(|o| Cv::slide_kfold_with(k.max(0) as usize, o)));
    f!(
        e,
        h,
        "slide_kfold",
        "data",
        None,
        "slide_kfold(k: int, seed: int) -> Cv",
        "Like slide_kfold(k) with another assignment of slides.",
        "let cv = slide_kfold(5, 42);",
        |k: i64, s: i64| Cv::slide_kfold_with(
            k.max(0) as usize,
            CvOptions {
                seed: s as u64,
                ..Default::default()
            }
        )
    );
    f!(
        e,
        h,
        "leave_one_slide_out",
        "data",
        None,
        "leave_one_slide_out() -> Cv",
        "One fold per slide.",
        "let cv = leave_one_slide_out();",
        || Cv::leave_one_slide_out(CvOptions::default())
    );
    f!(e, h, "leave_one_slide_out", "data", None, "leave_one_slide_out(options: Map) -> Cv",
        "Options: scoring (\"auto\", \"pooled\", \"per_fold\"); a one-class slide makes auto pool.",
        r#"let cv = leave_one_slide_out(#{ scoring: "pooled" });"#,
        |m: Map| cv_options(&m).map(Cv::leave_one_slide_out));

    // ---- networks
    f!(e, h, "network", "networks", None, "network(name: String) -> Network",
        "A network with its ImageNet weights (found locally; never downloaded silently), or a network saved\nwith net.save(PATH). Names: efficientnet_lite0..4, resnet18..152, densenet121/169/201, vgg16/19,\nmobilenet_v1, mobilenet_v2.",
        r#"let net = network("efficientnet_lite0");"#, |n: &str| open_network(n, &Map::new()));
    f!(e, h, "network", "networks", None, "network(name: String, options: Map) -> Network",
        "Options: weights (\"imagenet\", \"random\" or a weight file), device (\"cpu\", \"cuda\", \"cuda:N\"), seed, strict.",
        r#"let net = network("resnet50", #{ weights: "random", seed: 1 });"#, |n: &str, m: Map| open_network(n, &m));
    f!(
        e,
        h,
        "taps",
        "networks",
        Some("Network"),
        "net.taps() -> Array",
        "Every tap (block boundary), in forward order.",
        "net.taps()",
        |n: &mut Net| n.taps().into_iter().map(Dynamic::from).collect::<Array>()
    );
    f!(
        e,
        h,
        "preset",
        "networks",
        Some("Network"),
        "net.preset(name: String) -> Array",
        "The taps of a preset: \"last\" or \"paper\" (PAPER.md's cut points).",
        r#"net.preset("paper")"#,
        |n: &mut Net, p: &str| n
            .resolve_taps(&[p.to_string()])
            .map(|v| v.into_iter().map(Dynamic::from).collect::<Array>())
            .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "input_size",
        "networks",
        Some("Network"),
        "net.input_size() -> int",
        "Side of the square input image.",
        "net.input_size()",
        |n: &mut Net| n.spec.input_size
    );
    f!(
        e,
        h,
        "summary",
        "networks",
        Some("Network"),
        "net.summary() -> Table",
        "Each tap with its output shape for one image.",
        "net.summary()",
        |n: &mut Net| {
            use polars::prelude::*;
            let s = n.spec.input_size;
            let x = tch::Tensor::zeros([1, 3, s, s], (tch::Kind::Float, n.device()));
            let taps = n.taps();
            let outs = tch::no_grad(|| n.forward_taps(&x, &taps, false));
            println!(
                "{} ({}), {} parameters, weights: {}",
                n.spec.name,
                format!("{:?}", n.spec.family),
                n.parameter_count(),
                n.weights_label
            );
            table(
                DataFrame::new(
                    taps.len(),
                    vec![
                        polars::prelude::Column::new("tap".into(), taps.clone()),
                        polars::prelude::Column::new(
                            "shape".into(),
                            outs.iter()
                                .map(|o| format!("{:?}", &o.size()[1..]))
                                .collect::<Vec<_>>(),
                        ),
                        polars::prelude::Column::new(
                            "channels".into(),
                            outs.iter().map(|o| o.size()[1]).collect::<Vec<_>>(),
                        ),
                    ],
                )
                .map_err(Into::into),
            )
        }
    );
    f!(
        e,
        h,
        "classify",
        "networks",
        Some("Network"),
        "net.classify(image: String, k: int) -> Array",
        "Top-k classes of an image with probabilities, as #{ class, name, p } maps.",
        r#"net.classify("cat.png", 5)"#,
        |n: &mut Net, p: &str, k: i64| n
            .classify(std::path::Path::new(p), k.max(1) as usize)
            .map(|v| v
                .into_iter()
                .map(|(c, name, p)| {
                    let mut m = Map::new();
                    m.insert("class".into(), (c as i64).into());
                    m.insert("name".into(), name.into());
                    m.insert("p".into(), p.into());
                    Dynamic::from(m)
                })
                .collect::<Array>())
            .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "save",
        "networks",
        Some("Network"),
        "net.save(path: String)",
        "Saves the weights (.safetensors, PyTorch-loadable) and a .json beside them.",
        r#"net.save("runs/ft/model.safetensors");"#,
        |n: &mut Net, p: &str| n.save(std::path::Path::new(p)).map_err(to_rhai)
    );

    // ---- features
    f!(e, h, "features", "features", Some("Network"), "net.features(data: Dataset, options: Map) -> FeatureSet",
        "Features of every image at the taps asked for, in one forward pass; cached on disk, so a second call\ncomputes nothing. Options: taps (names, \"last\", \"paper\"), reduce (\"gap\", \"gmp\", \"gap+gmp\"), batch, shard ([i, n]), quiet.",
        r#"let f = net.features(data, #{ taps: ["last"], reduce: "gap" });"#, |n: &mut Net, d: Arc<Dataset>, m: Map| features_of(n, &d, &m));
    f!(
        e,
        h,
        "features",
        "features",
        Some("Network"),
        "net.features(data: Dataset) -> FeatureSet",
        "Last-layer GAP features.",
        "let f = net.features(data);",
        |n: &mut Net, d: Arc<Dataset>| features_of(n, &d, &Map::new())
    );
    f!(
        e,
        h,
        "features",
        "features",
        None,
        "features(path: String) -> FeatureSet",
        "Loads a feature set saved as .parquet or .safetensors.",
        r#"let f = features("runs/f.parquet");"#,
        |p: &str| crate::features::io::load(std::path::Path::new(p)).map_err(to_rhai)
    );
    f!(
        e,
        h,
        "save",
        "features",
        Some("FeatureSet"),
        "f.save(path: String)",
        "Saves as .parquet (pandas/polars readable) or .safetensors.",
        r#"f.save("runs/f.parquet");"#,
        |f: &mut FeatureSet, p: &str| crate::features::io::save(f, std::path::Path::new(p))
            .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "merge",
        "features",
        Some("FeatureSet"),
        "f.merge(g: FeatureSet) -> FeatureSet",
        "Columns of both sets for the same images (merge layers or networks).",
        "let both = f.merge(g);",
        |f: &mut FeatureSet, g: FeatureSet| f.merge(&g).map_err(to_rhai)
    );
    f!(
        e,
        h,
        "select",
        "features",
        Some("FeatureSet"),
        "f.select(filter: Map) -> FeatureSet",
        "Columns of a tap and/or network: #{ tap: ..., network: ... }.",
        r#"f.select(#{ tap: "layer3.5" })"#,
        |f: &mut FeatureSet, m: Map| f
            .select(
                get_str(&m, "network")?.as_deref(),
                get_str(&m, "tap")?.as_deref()
            )
            .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "select",
        "features",
        Some("FeatureSet"),
        "f.select(columns: Array) -> FeatureSet",
        "The columns at these indices.",
        "f.select([0, 5, 9])",
        |f: &mut FeatureSet, a: Array| f
            .select_columns(&convert::indices(&a, "columns")?)
            .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "subset",
        "features",
        Some("FeatureSet"),
        "f.subset(rows: Array) -> FeatureSet",
        "The rows at these positions (e.g. split.train).",
        "let train = f.subset(split.train);",
        |f: &mut FeatureSet, a: Array| f.subset(&convert::indices(&a, "rows")?).map_err(to_rhai)
    );
    f!(
        e,
        h,
        "dims",
        "features",
        Some("FeatureSet"),
        "f.dims() -> Array",
        "[rows, columns].",
        "f.dims()",
        |f: &mut FeatureSet| vec![Dynamic::from(f.n as i64), Dynamic::from(f.d as i64)]
    );
    f!(
        e,
        h,
        "taps",
        "features",
        Some("FeatureSet"),
        "f.taps() -> Array",
        "The taps the columns come from.",
        "f.taps()",
        |f: &mut FeatureSet| f.taps().into_iter().map(Dynamic::from).collect::<Array>()
    );
    f!(
        e,
        h,
        "table",
        "features",
        Some("FeatureSet"),
        "f.table() -> Table",
        "The set as a table: id, label, slide, then one column per feature.",
        "f.table()",
        |f: &mut FeatureSet| table(crate::features::io::to_frame(f))
    );
    f!(
        e,
        h,
        "pca",
        "features",
        None,
        "pca(k: int) -> PcaSpec",
        "A PCA reducer to k components; fit it on training rows only.",
        "let p = pca(64).fit(f.subset(split.train)); let g = p.transform(f);",
        |k: i64| PcaSpec(k.max(0) as usize)
    );
    f!(
        e,
        h,
        "fit",
        "features",
        Some("PcaSpec"),
        "pca(k).fit(train: FeatureSet) -> Pca",
        "Fits the PCA axes on these rows.",
        "let p = pca(64).fit(train);",
        |p: &mut PcaSpec, f: FeatureSet| Pca::fit(p.0, &f).map_err(to_rhai)
    );
    f!(
        e,
        h,
        "transform",
        "features",
        Some("Pca"),
        "p.transform(f: FeatureSet) -> FeatureSet",
        "Projects onto the fitted axes.",
        "let g = p.transform(f);",
        |p: &mut Pca, f: FeatureSet| p.transform(&f).map_err(to_rhai)
    );
    f!(
        e,
        h,
        "cache_info",
        "features",
        None,
        "cache_info() -> String",
        "What the feature cache holds and where.",
        "print(cache_info());",
        || crate::features::cache::info().map_err(to_rhai)
    );
    f!(
        e,
        h,
        "cache_clear",
        "features",
        None,
        "cache_clear() -> String",
        "Deletes the feature cache.",
        "cache_clear()",
        || crate::features::cache::clear().map_err(to_rhai)
    );

    // ---- learning
    f!(
        e,
        h,
        "linear_svm",
        "learning",
        None,
        "linear_svm() -> Classifier",
        "Linear SVM, one-vs-rest, squared hinge (liblinear), on standardised features.",
        "let svm = linear_svm();",
        || classifier("linear_svm", &Map::new())
    );
    f!(
        e,
        h,
        "linear_svm",
        "learning",
        None,
        "linear_svm(options: Map) -> Classifier",
        "Options: C, class_weight (\"balanced\"), tol.",
        "let svm = linear_svm(#{ C: 0.01 });",
        |m: Map| classifier("linear_svm", &m)
    );
    f!(
        e,
        h,
        "extra_trees",
        "learning",
        None,
        "extra_trees() -> Classifier",
        "Extremely randomized trees (100, fully grown, max_features sqrt).",
        "let et = extra_trees();",
        || classifier("extra_trees", &Map::new())
    );
    f!(e, h, "extra_trees", "learning", None, "extra_trees(options: Map) -> Classifier",
        "Options: n_trees, max_features (1, \"sqrt\", \"half\", \"all\" or N), min_samples_split, min_samples_leaf, seed.",
        r#"let et = extra_trees(#{ n_trees: 500, seed: 1 });"#, |m: Map| classifier("extra_trees", &m));
    f!(
        e,
        h,
        "perceptron",
        "learning",
        None,
        "perceptron() -> Classifier",
        "Single-layer perceptron (softmax regression, Adam, libtorch).",
        "let slp = perceptron();",
        || classifier("perceptron", &Map::new())
    );
    f!(
        e,
        h,
        "perceptron",
        "learning",
        None,
        "perceptron(options: Map) -> Classifier",
        "Options: lr, iterations, alpha, batch, seed, device.",
        "let slp = perceptron(#{ lr: 1e-3, iterations: 1000 });",
        |m: Map| classifier("perceptron", &m)
    );
    f!(
        e,
        h,
        "fit",
        "learning",
        None,
        "fit(clf: Classifier, f: FeatureSet) -> Model",
        "Fits on all rows of f.",
        "let m = fit(linear_svm(), train);",
        |c: Box<dyn Classifier>, f: FeatureSet| learn::fit(c.as_ref(), &f).map_err(to_rhai)
    );
    f!(e, h, "tune", "learning", None, "tune(clf: Classifier, f: FeatureSet, grid: Map, cv: Cv) -> Model",
        "Grid search over slide-grouped folds (in parallel), refit of the best on all rows of f; m.cv_scores() has the table.",
        "let m = tune(linear_svm(), f, #{ C: [1e-3, 1e-2, 1e-1, 1.0] }, slide_kfold(5));",
        |c: Box<dyn Classifier>, f: FeatureSet, g: Map, cv: Cv| learn::tune::tune(c.as_ref(), &f, &convert::grid(&g)?, &cv).map_err(to_rhai));
    f!(
        e,
        h,
        "tune",
        "learning",
        None,
        "tune(clf: Classifier, f: FeatureSet, cv: Cv) -> Model",
        "tune with the paper's grid for this classifier.",
        "let m = tune(extra_trees(), f, slide_kfold(5));",
        |c: Box<dyn Classifier>, f: FeatureSet, cv: Cv| learn::tune::tune(c.as_ref(), &f, &[], &cv)
            .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "cross_val",
        "learning",
        None,
        "cross_val(clf: Classifier, f: FeatureSet, cv: Cv) -> Map",
        "The paper's score of a fixed classifier: score (pooled or mean, see scoring), scoring, metric, pooled,\nfolds (each fold's score, NaN where it does not exist), note.",
        "cross_val(linear_svm(#{ C: 0.01 }), f, slide_kfold(5)).score",
        |c: Box<dyn Classifier>, f: FeatureSet, cv: Cv| learn::tune::cross_val(c.as_ref(), &f, &cv)
            .map(|t| cv_result(&t))
            .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "cv_scores",
        "learning",
        Some("Model"),
        "m.cv_scores() -> Table",
        "Cross-validation table of a tuned model: params, mean, std, per fold.",
        "m.cv_scores()",
        |m: &mut Model| cv_table(&m.cv)
    );
    f!(
        e,
        h,
        "best_params",
        "learning",
        Some("Model"),
        "m.best_params() -> Map",
        "The hyper-parameters of the model.",
        "m.best_params()",
        |m: &mut Model| params_map(m.classifier.params())
    );
    f!(
        e,
        h,
        "predict",
        "learning",
        Some("Model"),
        "m.predict(f: FeatureSet) -> Array",
        "Predicted class indices.",
        "m.predict(test)",
        |m: &mut Model, f: FeatureSet| m.predict(&f).map(|v| ints(&v)).map_err(to_rhai)
    );
    f!(e, h, "rfe", "learning", None, "rfe(clf: Classifier, options: Map) -> Rfe",
        "Recursive feature elimination ranked by the classifier's importances: step (0.1), cv (slide_kfold(3)), tolerance (0.005).",
        "let sel = rfe(extra_trees(), #{ step: 0.1, cv: slide_kfold(3) }).fit(train);",
        |c: Box<dyn Classifier>, m: Map| Ok::<_, Box<rhai::EvalAltResult>>(Rfe { estimator: c, step: get_f64(&m, "step")?.unwrap_or(0.1), cv: cv_from(&m)?.unwrap_or(Cv::slide_kfold(3)), tolerance: get_f64(&m, "tolerance")?.unwrap_or(0.005) }));
    f!(
        e,
        h,
        "fit",
        "learning",
        Some("Rfe"),
        "sel.fit(f: FeatureSet) -> RfeResult",
        "Runs RFE with cross-validation.",
        "let r = sel.fit(train);",
        |r: &mut Rfe, f: FeatureSet| r.fit(&f).map_err(to_rhai)
    );
    e.register_get("k_min", |r: &mut RfeResult| r.k_min as i64);
    f!(
        e,
        h,
        "curve",
        "learning",
        Some("RfeResult"),
        "r.curve() -> Table",
        "Number of features against CV score (mean, std).",
        "r.curve()",
        |r: &mut RfeResult| {
            use polars::prelude::*;
            table(
                DataFrame::new(
                    r.curve.len(),
                    vec![
                        polars::prelude::Column::new(
                            "n_features".into(),
                            r.curve.iter().map(|c| c.0 as i64).collect::<Vec<_>>(),
                        ),
                        polars::prelude::Column::new(
                            "mean".into(),
                            r.curve.iter().map(|c| c.1).collect::<Vec<_>>(),
                        ),
                        polars::prelude::Column::new(
                            "std".into(),
                            r.curve.iter().map(|c| c.2).collect::<Vec<_>>(),
                        ),
                    ],
                )
                .map_err(Into::into),
            )
        }
    );
    f!(
        e,
        h,
        "transform",
        "learning",
        Some("RfeResult"),
        "r.transform(f: FeatureSet) -> FeatureSet",
        "Keeps the k_min selected columns.",
        "let small = r.transform(f);",
        |r: &mut RfeResult, f: FeatureSet| r.transform(&f).map_err(to_rhai)
    );

    // ---- evaluation
    f!(e, h, "evaluate", "evaluation", None, "evaluate(m: Model, f: FeatureSet) -> Evaluation",
        "Accuracy, balanced accuracy, ROC AUC (binary) or macro one-vs-rest AUC, confusion matrix, recalls.", "evaluate(m, test)",
        |m: Model, f: FeatureSet| evaluate(&m, &f).map_err(to_rhai));
    f!(
        e,
        h,
        "score",
        "evaluation",
        None,
        "score(m: Model, f: FeatureSet) -> float",
        "The paper's metric: ROC AUC for two classes, accuracy otherwise.",
        "score(m, test)",
        |m: Model, f: FeatureSet| evaluate(&m, &f).map(|e| e.score).map_err(to_rhai)
    );
    e.register_get("accuracy", |v: &mut Evaluation| v.accuracy);
    e.register_get("balanced_accuracy", |v: &mut Evaluation| {
        v.balanced_accuracy
    });
    e.register_get("score", |v: &mut Evaluation| v.score);
    e.register_get("metric", |v: &mut Evaluation| v.metric.clone());
    e.register_get("note", |v: &mut Evaluation| v.note.clone());
    f!(e, h, "cv_scoring", "learning", Some("Model"), "m.cv_scoring() -> String",
        "How the tuning CV scored its folds: \"per_fold\" or \"pooled\".", "m.cv_scoring()",
        |m: &mut Model| cv_field(&m.cv, false));
    f!(e, h, "cv_note", "learning", Some("Model"), "m.cv_note() -> String",
        "Why the tuning CV scored as it did (empty when per fold as usual).", "m.cv_note()",
        |m: &mut Model| cv_field(&m.cv, true));
    f!(e, h, "cv_scoring", "learning", Some("EtFlModel"), "m.cv_scoring() -> String",
        "How the tuning CV scored its folds: \"per_fold\" or \"pooled\".", "m.cv_scoring()",
        |m: &mut EtFlFitted| cv_field(&m.cv, false));
    f!(e, h, "cv_note", "learning", Some("EtFlModel"), "m.cv_note() -> String",
        "Why the tuning CV scored as it did.", "m.cv_note()",
        |m: &mut EtFlFitted| cv_field(&m.cv, true));
    e.register_get("auc", |v: &mut Evaluation| {
        v.auc.map_or(Dynamic::UNIT, Dynamic::from)
    });
    e.register_get("confusion", |v: &mut Evaluation| {
        v.confusion
            .iter()
            .map(|r| Dynamic::from(ints(r)))
            .collect::<Array>()
    });
    f!(
        e,
        h,
        "importances",
        "evaluation",
        None,
        "importances(m: Model) -> Table",
        "Feature importances joined with provenance (network, tap, channel), largest first.",
        "importances(m)",
        |m: Model| importances_table(&m)
    );
    f!(
        e,
        h,
        "importance_share",
        "evaluation",
        None,
        "importance_share(m: Model, by: String) -> Table",
        "Importance summed by \"network\" or \"tap\".",
        r#"importance_share(m, "tap")"#,
        |m: Model, by: &str| importance_share(&m, by)
    );
    f!(
        e,
        h,
        "results",
        "evaluation",
        None,
        "results() -> Results",
        "An empty results table that strategies append rows to.",
        "let r = results();",
        || Rc::new(RefCell::new(Results::default()))
    );
    f!(
        e,
        h,
        "results",
        "evaluation",
        None,
        "results(path: String) -> Results",
        "Loads results saved as .parquet or .csv.",
        r#"let r = results("runs/x/results.parquet");"#,
        |p: &str| Results::load(std::path::Path::new(p))
            .map(|r| Rc::new(RefCell::new(r)))
            .map_err(to_rhai)
    );
    f!(e, h, "add", "evaluation", Some("Results"), "r.add(row: Map)",
        "Appends a row: dataset, strategy, network, taps, classifier, params, metric, score (required),\nn_features, seconds, scoring, note. Unknown keys are errors.",
        r#"r.add(#{ dataset: "bccd", strategy: "last layer", score: 0.8 });"#, |r: &mut ResultsRef, m: Map| add_row(r, &m));
    f!(
        e,
        h,
        "len",
        "evaluation",
        Some("Results"),
        "r.len() -> int",
        "Number of rows.",
        "r.len()",
        |r: &mut ResultsRef| r.borrow().rows.len() as i64
    );
    f!(
        e,
        h,
        "table",
        "evaluation",
        Some("Results"),
        "r.table() -> Table",
        "All rows.",
        "r.table()",
        |r: &mut ResultsRef| table(r.borrow().frame())
    );
    f!(
        e,
        h,
        "save",
        "evaluation",
        Some("Results"),
        "r.save(path: String)",
        "Saves as .parquet or .csv.",
        r#"r.save("runs/x/results.parquet");"#,
        |r: &mut ResultsRef, p: &str| r.borrow().save(std::path::Path::new(p)).map_err(to_rhai)
    );
    f!(
        e,
        h,
        "ranks",
        "evaluation",
        Some("Results"),
        "r.ranks() -> Table",
        "Each method's rank per dataset (best = highest, ties averaged) and the mean rank.",
        "r.ranks()",
        |r: &mut ResultsRef| ranks_table(&r.borrow())
    );
    f!(
        e,
        h,
        "table2",
        "evaluation",
        Some("Results"),
        "r.table2() -> String",
        "Best score per strategy and dataset, as the paper's Table 2 (markdown).",
        "print(r.table2());",
        |r: &mut ResultsRef| r.borrow().table2()
    );
    f!(
        e,
        h,
        "friedman",
        "evaluation",
        Some("Results"),
        "r.friedman() -> Map",
        "Friedman chi², p-value, Iman-Davenport F and the Nemenyi critical difference (α = 0.05).",
        "r.friedman()",
        |r: &mut ResultsRef| {
            let f = r
                .borrow()
                .ranks()
                .map_err(to_rhai)?
                .friedman()
                .map_err(to_rhai)?;
            let mut m = Map::new();
            m.insert("chi2".into(), f.chi2.into());
            m.insert("p_value".into(), f.p_value.into());
            m.insert("iman_davenport".into(), f.iman_davenport.into());
            m.insert("critical_difference".into(), f.critical_difference.into());
            Ok::<_, Box<rhai::EvalAltResult>>(m)
        }
    );
    f!(
        e,
        h,
        "timer",
        "evaluation",
        None,
        "timer() -> float",
        "Seconds since an arbitrary start, to time strategies.",
        "let t0 = timer();",
        || {
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            START
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_secs_f64()
        }
    );
    f!(
        e,
        h,
        "cv_best",
        "learning",
        Some("Model"),
        "m.cv_best() -> float",
        "The best CV score of a tuned model (pooled or mean over folds, see m.cv_scoring()).",
        "m.cv_best()",
        |m: &mut Model| match &m.cv {
            Some(t) => Ok(t.score(t.best())),
            None =>
                Err::<f64, Box<rhai::EvalAltResult>>("this model was not tuned (use tune)".into()),
        }
    );
    f!(
        e,
        h,
        "name",
        "learning",
        Some("Classifier"),
        "clf.name() -> String",
        "The classifier's name.",
        "linear_svm().name()",
        |c: &mut Box<dyn Classifier>| c.name().to_string()
    );
    f!(
        e,
        h,
        "classes_count",
        "features",
        Some("FeatureSet"),
        "f.classes_count() -> int",
        "Number of classes.",
        "f.classes_count()",
        |f: &mut FeatureSet| f.classes.len() as i64
    );
    f!(e, h, "finetune", "networks", Some("Network"), "net.finetune(data: Dataset, split: Split, options: Map) -> Network",
        "Fine-tunes a copy with the paper's schedule: new head, head_epochs (5) at head_lr (1e-2) with the backbone\nfrozen, then epochs (45) of the whole network at lr (1e-5); Adam betas [0.99, 0.999], weight_decay, batch,\naugment (true), device, seed, checkpoints (a folder), resume, amp (CUDA), freeze_bn (false: batch norm\nupdates its statistics in the head phase, as PyTorch does). Keeps the best validation epoch.",
        r#"let ft = net.finetune(data, split, #{ head_epochs: 1, epochs: 2, checkpoints: "runs/ft" });"#,
        |n: &mut Net, d: Arc<Dataset>, s: Split, m: Map| finetune_net(n, &d, &s, &m));
    f!(
        e,
        h,
        "curve",
        "networks",
        Some("Network"),
        "ft.curve() -> Table",
        "The fine-tuning curve: epoch, phase, losses, validation score, images/s.",
        "ft.curve()",
        |n: &mut Net| curve_table(n)
    );
    f!(
        e,
        h,
        "predict",
        "networks",
        Some("Network"),
        "net.predict(data: Dataset) -> Array",
        "Predicted class index of every image (with the network's own head).",
        "ft.predict(data.subset(split.test))",
        |n: &mut Net, d: Arc<Dataset>| {
            let s = crate::finetune::predict_scores(n, &d, 32).map_err(to_rhai)?;
            Ok::<_, Box<rhai::EvalAltResult>>(ints(&learn::argmax_rows(&s, n.classes.len())))
        }
    );
    f!(
        e,
        h,
        "evaluate",
        "evaluation",
        None,
        "evaluate(net: Network, data: Dataset) -> Evaluation",
        "Evaluates a fine-tuned network on a dataset with the same classes.",
        "evaluate(ft, data.subset(split.test))",
        |n: Net, d: Arc<Dataset>| {
            if n.classes != d.classes {
                return Err(format!(
                    "the network predicts {:?}, the data has classes {:?}",
                    n.classes, d.classes
                )
                .into());
            }
            let s = crate::finetune::predict_scores(&n, &d, 32).map_err(to_rhai)?;
            crate::eval::evaluate_scores(&d.labels(), &s, &d.classes).map_err(to_rhai)
        }
    );
    e.register_type_with_name::<EtFl>("EtFl")
        .register_type_with_name::<EtFlFitted>("EtFlModel");
    f!(e, h, "et_fl", "learning", None, "et_fl() -> EtFl", "The ET-FL baseline (random subwindows, extra-trees leaf features, linear SVM) with the paper's defaults.",
        "let b = et_fl();", || EtFl::default());
    f!(e, h, "et_fl", "learning", None, "et_fl(options: Map) -> EtFl",
        "Options: n_subwindows (per image), min_size, max_size, resize (16), colorspace (\"trgb\", \"hsv\", \"rgb\", \"gray\"),\nn_trees (20), min_samples_leaf, C (10), seed. Unknown keys are errors.",
        r#"let b = et_fl(#{ n_subwindows: 100, colorspace: "hsv" });"#, |m: Map| { use crate::options::Options; let p = EtFl::from_object(convert::json(&m)?).map_err(to_rhai)?; p.validate().map_err(to_rhai)?; Ok::<_, Box<rhai::EvalAltResult>>(p) });
    f!(
        e,
        h,
        "fit",
        "learning",
        None,
        "fit(b: EtFl, data: Dataset) -> EtFlModel",
        "Fits ET-FL on all images of data.",
        "let m = fit(et_fl(), data.subset(split.train));",
        |p: EtFl, d: Arc<Dataset>| p
            .fit(&d, &(0..d.len()).collect::<Vec<_>>())
            .map(|m| EtFlFitted {
                model: Rc::new(m),
                cv: None
            })
            .map_err(to_rhai)
    );
    f!(e, h, "tune", "learning", None, "tune(b: EtFl, data: Dataset, grid: Map, cv: Cv) -> EtFlModel", "Tunes ET-FL over slide-grouped folds (the paper's grid when empty), then refits.",
        "let m = tune(et_fl(), data.subset(split.train_val), #{ max_size: [0.5, 1.0] }, slide_kfold(5));",
        |p: EtFl, d: Arc<Dataset>, g: Map, cv: Cv| crate::baseline::et_fl::tune(&p, &d, &(0..d.len()).collect::<Vec<_>>(), &convert::grid(&g)?, &cv).map(|(m, t)| EtFlFitted { model: Rc::new(m), cv: Some(t) }).map_err(to_rhai));
    f!(
        e,
        h,
        "cross_val",
        "learning",
        None,
        "cross_val(b: EtFl, data: Dataset, cv: Cv) -> Map",
        "ET-FL scores on slide-grouped folds.",
        "cross_val(et_fl(), data, slide_kfold(5))",
        |p: EtFl, d: Arc<Dataset>, cv: Cv| crate::baseline::et_fl::cross_val(
            &p,
            &d,
            &(0..d.len()).collect::<Vec<_>>(),
            &cv
        )
        .map(|t| cv_result(&t))
        .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "evaluate",
        "evaluation",
        None,
        "evaluate(m: EtFlModel, data: Dataset) -> Evaluation",
        "Evaluates ET-FL on images.",
        "evaluate(m, data.subset(split.test))",
        |m: EtFlFitted, d: Arc<Dataset>| m
            .model
            .decision(&d, &(0..d.len()).collect::<Vec<_>>())
            .and_then(|s| crate::eval::evaluate_scores(&d.labels(), &s, &d.classes))
            .map_err(to_rhai)
    );
    f!(
        e,
        h,
        "n_leaves",
        "learning",
        Some("EtFlModel"),
        "m.n_leaves() -> int",
        "Leaves of the ET-FL forest (columns of its sparse features).",
        "m.n_leaves()",
        |m: &mut EtFlFitted| m.model.n_leaves() as i64
    );
    f!(
        e,
        h,
        "cv_scores",
        "learning",
        Some("EtFlModel"),
        "m.cv_scores() -> Table",
        "Cross-validation table of a tuned ET-FL.",
        "m.cv_scores()",
        |m: &mut EtFlFitted| cv_table(&m.cv)
    );
    f!(
        e,
        h,
        "best_params",
        "learning",
        Some("EtFlModel"),
        "m.best_params() -> Map",
        "ET-FL's parameters.",
        "m.best_params()",
        |m: &mut EtFlFitted| params_map(m.model.params.params())
    );
    // ---- plots
    let path_str =
        |r: crate::Result<std::path::PathBuf>| r.map(|p| p.display().to_string()).map_err(to_rhai);
    f!(
        e,
        h,
        "plot_ranks",
        "plots",
        None,
        "plot_ranks(r: Results, path: String) -> String",
        "Average-rank bars coloured by classifier (.png or .svg).",
        r#"plot_ranks(r, "runs/x/ranks.png")"#,
        move |r: ResultsRef, p: &str| {
            let ranks = r.borrow().ranks().map_err(to_rhai)?;
            path_str(crate::plot::ranks(&ranks, p.as_ref()))
        }
    );
    f!(
        e,
        h,
        "plot_cd",
        "plots",
        None,
        "plot_cd(r: Results, path: String) -> String",
        "Critical-difference diagram (Friedman + Nemenyi).",
        r#"plot_cd(r, "runs/x/cd.png")"#,
        move |r: ResultsRef, p: &str| {
            let ranks = r.borrow().ranks().map_err(to_rhai)?;
            let cd = ranks.friedman().map_err(to_rhai)?.critical_difference;
            path_str(crate::plot::critical_difference(&ranks, cd, p.as_ref()))
        }
    );
    f!(
        e,
        h,
        "plot_rfe",
        "plots",
        None,
        "plot_rfe(sel: RfeResult, path: String) -> String",
        "The RFE curve with k_min marked.",
        r#"plot_rfe(sel, "runs/x/rfe.png")"#,
        move |r: RfeResult, p: &str| path_str(crate::plot::rfe(&r.curve, r.k_min, p.as_ref()))
    );
    f!(
        e,
        h,
        "plot_confusion",
        "plots",
        None,
        "plot_confusion(e: Evaluation, path: String) -> String",
        "The confusion matrix as a heat map.",
        r#"plot_confusion(evaluate(m, test), "runs/x/confusion.png")"#,
        move |ev: Evaluation, p: &str| path_str(crate::plot::confusion(&ev, p.as_ref()))
    );
    f!(
        e,
        h,
        "plot_roc",
        "plots",
        None,
        "plot_roc(e: Evaluation, path: String) -> String",
        "ROC curve(s): binary, or one per class.",
        r#"plot_roc(evaluate(m, test), "runs/x/roc.png")"#,
        move |ev: Evaluation, p: &str| path_str(crate::plot::roc(&ev, p.as_ref()))
    );
    f!(
        e,
        h,
        "plot_curve",
        "plots",
        None,
        "plot_curve(ft: Network, path: String) -> String",
        "Fine-tuning curves per epoch.",
        r#"plot_curve(ft, "runs/x/curve.png")"#,
        move |n: Net, p: &str| path_str(crate::plot::training(&n.curve, p.as_ref()))
    );
    f!(
        e,
        h,
        "plot_importance",
        "plots",
        None,
        "plot_importance(m: Model, by: String, path: String) -> String",
        "Importance share by \"network\" or \"tap\" (the paper's Figure 5).",
        r#"plot_importance(m, "tap", "runs/x/importance.png")"#,
        move |m: Model, by: &str, p: &str| {
            let t = importance_share(&m, by)?;
            let labels: Vec<String> =
                t.0.column(by)
                    .unwrap()
                    .str()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or("").to_string())
                    .collect();
            let values: Vec<f64> =
                t.0.column("importance")
                    .unwrap()
                    .f64()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or(0.0))
                    .collect();
            path_str(crate::plot::bars(
                &format!("importance by {by}"),
                &labels,
                &values,
                p.as_ref(),
            ))
        }
    );
    f!(
        e,
        h,
        "show",
        "plots",
        Some("Dataset"),
        "data.show(n: int, path: String) -> String",
        "A grid of n images with their labels.",
        r#"data.show(16, "grid.png")"#,
        move |d: &mut Arc<Dataset>, n: i64, p: &str| path_str(crate::plot::image_grid(
            d,
            n.max(1) as usize,
            p.as_ref()
        ))
    );
    f!(
        e,
        h,
        "write_text",
        "evaluation",
        None,
        "write_text(path: String, text: String) -> String",
        "Writes text to a file (creating its folder); returns the path.",
        r#"write_text("runs/x/table2.md", r.table2())"#,
        |p: &str, t: &str| {
            let path = std::path::Path::new(p);
            if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d).map_err(|e| to_rhai(crate::Error::file(d, e)))?;
            }
            std::fs::write(path, t)
                .map(|_| p.to_string())
                .map_err(|e| to_rhai(crate::Error::file(path, e)))
        }
    );
    f!(
        e,
        h,
        "datasets",
        "evaluation",
        Some("Results"),
        "r.datasets() -> Array",
        "The datasets that have rows.",
        "r.datasets()",
        |r: &mut ResultsRef| r
            .borrow()
            .datasets()
            .into_iter()
            .map(Dynamic::from)
            .collect::<Array>()
    );
    f!(
        e,
        h,
        "feature_difference",
        "features",
        None,
        "feature_difference(f: FeatureSet, g: FeatureSet) -> float",
        "max |f - g| / max |f| over two sets of the same shape (e.g. CPU against CUDA).",
        "feature_difference(a, b)",
        |f: FeatureSet, g: FeatureSet| {
            if f.dims() != g.dims() {
                return Err::<f64, Box<rhai::EvalAltResult>>(
                    format!("shapes differ: {:?} vs {:?}", f.dims(), g.dims()).into(),
                );
            }
            let scale = f.x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
            Ok(f.x
                .iter()
                .zip(g.x.iter())
                .fold(0f32, |m, (a, b)| m.max((a - b).abs())) as f64
                / scale as f64)
        }
    );
    h
}

fn for_each_printable(e: &mut Engine) {
    macro_rules! show {
        ($t:ty, $f:expr) => {
            e.register_fn("to_string", $f).register_fn("to_debug", $f);
        };
    }
    show!(Arc<Dataset>, |d: &mut Arc<Dataset>| d.describe());
    show!(Split, |s: &mut Split| s.audit());
    show!(Cv, |c: &mut Cv| c.describe());
    show!(Net, |n: &mut Net| format!(
        "Network {}: {} taps, input {}x{}, weights {}",
        n.spec.name,
        n.taps().len(),
        n.spec.input_size,
        n.spec.input_size,
        n.weights_label
    ));
    show!(FeatureSet, |f: &mut FeatureSet| f.describe());
    show!(Box<dyn Classifier>, |c: &mut Box<dyn Classifier>| format!(
        "{}({})",
        c.name(),
        c.params()
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    show!(Model, |m: &mut Model| m.describe());
    show!(Evaluation, |v: &mut Evaluation| v.to_string());
    show!(Table, |t: &mut Table| format!("{}", t.0));
    show!(ResultsRef, |r: &mut ResultsRef| format!(
        "Results: {} rows\n{}",
        r.borrow().rows.len(),
        r.borrow()
            .frame()
            .map(|f| f.to_string())
            .unwrap_or_default()
    ));
    show!(Rfe, |r: &mut Rfe| format!(
        "rfe({}, step {}, {}, tolerance {})",
        r.estimator.name(),
        r.step,
        r.cv.describe(),
        r.tolerance
    ));
    show!(RfeResult, |r: &mut RfeResult| format!(
        "RFE: k_min = {} of {} features",
        r.k_min,
        r.columns.len()
    ));
    show!(PcaSpec, |p: &mut PcaSpec| format!(
        "pca({}) (not fitted)",
        p.0
    ));
    show!(Pca, |p: &mut Pca| format!(
        "PCA: {} components, {:.1}% of variance",
        p.k,
        100.0 * p.explained_variance_ratio.iter().sum::<f64>()
    ));
}
