//! How values look, in one place: at the prompt each type prints its library summary and tables
//! print as polars prints them; in a notebook ([`rich`]) tables, results, evaluations, datasets and
//! feature sets are also HTML tables and figures are pictures. `display(x)` shows a value in the
//! middle of a cell (at the prompt it prints what the prompt would).

use super::baseline::EtFlFitted;
use super::data::{DatasetRef, Image};
use super::evaluation::ResultsRef;
use super::features::PcaSpec;
use super::learning::ClassifierRef;
use super::networks::Net;
use patholab_core::data::split::{Cv, Split};
use patholab_core::data::stain::StainNormalizer;
use patholab_core::eval::table::{Grouped, Table};
use patholab_core::eval::Evaluation;
use patholab_core::features::pca::Pca;
use patholab_core::features::FeatureSet;
use patholab_core::learn::rfe::{Rfe, RfeResult};
use patholab_core::learn::Model;
use patholab_core::plot::Figure;
use rhai::{Dynamic, Engine, NativeCallContext, Scope};
use std::cell::RefCell;

/// Registers `to_string` and `to_debug` (what `print` and the prompt show) for every type.
pub fn register(e: &mut Engine) {
    macro_rules! show {
        ($t:ty, $f:expr) => {
            e.register_fn("to_string", $f).register_fn("to_debug", $f);
        };
    }
    show!(DatasetRef, |d: &mut DatasetRef| d.describe());
    show!(Split, |s: &mut Split| s.audit());
    show!(Image, |i: &mut Image| i.describe());
    show!(StainNormalizer, |n: &mut StainNormalizer| n.describe());
    show!(
        super::slides::SlideRef,
        |s: &mut super::slides::SlideRef| s.describe()
    );
    show!(
        super::slides::MaskRef,
        |m: &mut super::slides::MaskRef| format!(
            "TissueMask: {} × {} at 1/{:.1}, {:.1}% tissue",
            m.width,
            m.height,
            m.scale.0,
            100.0 * m.coverage()
        )
    );
    show!(Cv, |c: &mut Cv| c.describe());
    show!(Net, |n: &mut Net| n.describe());
    show!(FeatureSet, |f: &mut FeatureSet| f.describe());
    show!(ClassifierRef, |c: &mut ClassifierRef| {
        let p: Vec<String> = c
            .params()
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!("{}({})", c.name(), p.join(", "))
    });
    show!(Model, |m: &mut Model| m.describe());
    show!(
        patholab_core::learn::mil::bags::Bags,
        |b: &mut patholab_core::learn::mil::bags::Bags| b.describe()
    );
    show!(
        patholab_core::learn::mil::MilLearner,
        |l: &mut patholab_core::learn::mil::MilLearner| {
            let p: Vec<String> = l
                .params()
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{}({})", l.name(), p.join(", "))
        }
    );
    show!(
        patholab_core::learn::mil::MilModel,
        |m: &mut patholab_core::learn::mil::MilModel| m.describe()
    );
    show!(Evaluation, |v: &mut Evaluation| v.to_string());
    show!(Table, |t: &mut Table| t.to_string());
    show!(Grouped, |g: &mut Grouped| format!(
        "{} groups (use .mean(), .max(), .min(), .sum() or .count())",
        g.len()
    ));
    show!(ResultsRef, |r: &mut ResultsRef| {
        let r = r.borrow();
        format!(
            "Results: {} rows\n{}",
            r.rows.len(),
            r.frame().map(|f| f.to_string()).unwrap_or_default()
        )
    });
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
    show!(Figure, |f: &mut Figure| f.to_string());
    show!(EtFlFitted, |m: &mut EtFlFitted| format!(
        "ET-FL model: {} leaves",
        m.model.n_leaves()
    ));
}

/// The text the prompt prints for a value.
pub fn show(engine: &Engine, v: &Dynamic) -> String {
    if v.is_string() {
        return v.clone().into_string().unwrap_or_default();
    }
    let mut scope = Scope::new();
    scope.push("__value", v.clone());
    engine
        .eval_with_scope::<String>(&mut scope, "to_debug(__value)")
        .unwrap_or_else(|_| v.to_string())
}

/// One line per variable: name, type, summary.
pub fn vars(engine: &Engine, scope: &Scope) -> String {
    let mut lines = Vec::new();
    for (name, _, value) in scope.iter() {
        if name.starts_with("__") {
            continue;
        }
        let first = show(engine, &value)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let first: String = if first.chars().count() > 70 {
            first.chars().take(69).collect::<String>() + "…"
        } else {
            first
        };
        let ty = engine
            .map_type_name(value.type_name())
            .rsplit("::")
            .next()
            .unwrap_or("")
            .to_string();
        lines.push(format!("{name:<14} {ty:<12} {first}"));
    }
    if lines.is_empty() {
        "no variables yet".into()
    } else {
        lines.join("\n")
    }
}

/// A value as a front end can show it: always text, and HTML or a picture where the type has one.
#[derive(Clone, Debug, Default)]
pub struct Rich {
    pub plain: String,
    pub html: Option<String>,
    pub png: Option<Vec<u8>>,
    pub svg: Option<String>,
}

/// Rows of a table shown in HTML before "… n more rows".
const HTML_ROWS: usize = 50;

/// The text of `v` (what the prompt prints) and its HTML table or picture when it has one.
pub fn rich(engine: &Engine, v: &Dynamic) -> Rich {
    let mut r = Rich {
        plain: show(engine, v),
        ..Rich::default()
    };
    if let Some(f) = v.read_lock::<Figure>() {
        r.png = Some(f.png.clone());
        r.svg = f.svg.clone();
    } else if let Some(t) = v.read_lock::<Table>() {
        r.html = t.to_html(HTML_ROWS).ok();
    } else if let Some(res) = v.read_lock::<ResultsRef>() {
        let frame = res.borrow().frame().ok();
        r.html = frame.and_then(|f| {
            Table::from(f)
                .to_html(HTML_ROWS)
                .ok()
                .map(|t| format!("<p>Results: {} rows</p>\n{t}", res.borrow().rows.len()))
        });
    } else if let Some(e) = v.read_lock::<Evaluation>() {
        r.html = Some(evaluation_html(&e));
    } else if let Some(d) = v.read_lock::<DatasetRef>() {
        r.html = Some(dataset_html(&d));
    } else if let Some(f) = v.read_lock::<FeatureSet>() {
        r.html = Some(features_html(&f));
    }
    r
}

thread_local! {
    /// Where `display(x)` sends values on this thread; None: print them.
    static DISPLAY: RefCell<Option<Box<dyn Fn(Rich)>>> = const { RefCell::new(None) };
}

/// Makes `display(x)` on this thread hand its value to `sink` (a notebook kernel does this).
pub fn set_display(sink: Box<dyn Fn(Rich)>) {
    DISPLAY.with(|d| *d.borrow_mut() = Some(sink));
}

/// Registers `display`.
pub fn declare(api: &mut super::registry::Api) {
    api.func(
        "display(value: any) -> ()",
        "Shows a value now: in a notebook as a table or picture, at the prompt as its text.",
        "display(small)",
        |ctx: NativeCallContext, v: Dynamic| {
            let r = rich(ctx.engine(), &v);
            DISPLAY.with(|d| match &*d.borrow() {
                Some(sink) => sink(r),
                None => println!("{}", r.plain),
            });
        },
    );
}

use patholab_core::eval::table::escape;

fn evaluation_html(e: &Evaluation) -> String {
    let mut s = format!(
        "<p>accuracy {:.4} · balanced accuracy {:.4} · {} {}</p>\n",
        e.accuracy,
        e.balanced_accuracy,
        if e.classes.len() == 2 {
            "ROC AUC"
        } else {
            "macro OvR AUC"
        },
        e.auc.map_or("n/a".to_string(), |a| format!("{a:.4}"))
    );
    if !e.note.is_empty() {
        s += &format!("<p>note: {}</p>\n", escape(&e.note));
    }
    s += "<table class=\"patholab-confusion\">\n<thead><tr><th>true \\ predicted</th>";
    for c in &e.classes {
        s += &format!("<th>{}</th>", escape(c));
    }
    s += "<th>recall</th></tr></thead>\n<tbody>\n";
    for (i, row) in e.confusion.iter().enumerate() {
        s += &format!("<tr><th>{}</th>", escape(&e.classes[i]));
        for v in row {
            s += &format!("<td>{v}</td>");
        }
        let recall = e.recalls.get(i).copied().flatten();
        s += &format!(
            "<td>{}</td></tr>\n",
            recall.map_or("n/a".to_string(), |r| format!("{r:.3}"))
        );
    }
    s + "</tbody>\n</table>"
}

fn dataset_html(d: &patholab_core::data::Dataset) -> String {
    let mut s = format!(
        "<p>{}</p>\n<table class=\"patholab-dataset\">\n<thead><tr><th>class</th><th>images</th><th>slides</th></tr></thead>\n<tbody>\n",
        escape(&d.describe())
    );
    for (c, name) in d.classes.iter().enumerate() {
        let items = d.items.iter().filter(|i| i.label == c);
        let n = items.clone().count();
        let slides = items
            .map(|i| &i.slide)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        s += &format!(
            "<tr><td>{}</td><td>{n}</td><td>{slides}</td></tr>\n",
            escape(name)
        );
    }
    s + "</tbody>\n</table>"
}

fn features_html(f: &FeatureSet) -> String {
    let mut s = format!(
        "<p>{}</p>\n<table class=\"patholab-features\">\n<thead><tr><th>network</th><th>tap</th><th>features</th></tr></thead>\n<tbody>\n",
        escape(&f.describe())
    );
    let mut groups: Vec<(String, String, usize)> = Vec::new();
    for c in f.columns.iter() {
        match groups.last_mut() {
            Some(g) if g.0 == c.network && g.1 == c.tap => g.2 += 1,
            _ => groups.push((c.network.clone(), c.tap.clone(), 1)),
        }
    }
    for (net, tap, n) in groups {
        s += &format!(
            "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>\n",
            escape(&net),
            escape(&tap)
        );
    }
    s + "</tbody>\n</table>"
}
