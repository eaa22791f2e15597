//! Script bindings of the `plot` room: every chart returns a `Figure` (PNG bytes, SVG text when an
//! `.svg` path was asked). Given a path, the file is written and the prompt prints the path; a
//! notebook shows the picture inline either way.

use super::data::DatasetRef;
use super::evaluation::{importance_share, ResultsRef};
use super::networks::Net;
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::eval::Evaluation;
use patholab_core::learn::rfe::RfeResult;
use patholab_core::learn::Model;
use patholab_core::plot::Figure;
use std::path::Path;

pub fn drawn(r: patholab_core::Result<Figure>) -> RResult<Figure> {
    r.map_err(to_rhai)
}

fn ranks(r: &ResultsRef, p: Option<&Path>) -> RResult<Figure> {
    let ranks = r.borrow().ranks().map_err(to_rhai)?;
    drawn(patholab_core::plot::ranks(&ranks, p))
}

fn cd(r: &ResultsRef, p: Option<&Path>) -> RResult<Figure> {
    let ranks = r.borrow().ranks().map_err(to_rhai)?;
    let cd = ranks.friedman().map_err(to_rhai)?.critical_difference;
    drawn(patholab_core::plot::critical_difference(&ranks, cd, p))
}

fn importance(m: &Model, by: &str, p: Option<&Path>) -> RResult<Figure> {
    let (labels, values): (Vec<String>, Vec<f64>) = importance_share(m, by)?
        .into_iter()
        .map(|s| (s.key, s.importance))
        .unzip();
    drawn(patholab_core::plot::bars(
        &format!("importance by {by}"),
        &labels,
        &values,
        p,
    ))
}

/// Registers the plots: each with a path (written, .png or .svg) and without (shown only).
pub fn register(api: &mut Api) {
    api.engine().register_type_with_name::<Figure>("Figure");
    api.func(
        "plot_ranks(r: Results, path: String) -> Figure",
        "Average-rank bars coloured by classifier (.png or .svg).",
        r#"plot_ranks(r, "ranks.png")"#,
        |r: ResultsRef, p: &str| ranks(&r, Some(p.as_ref())),
    );
    api.func(
        "plot_ranks(r: Results) -> Figure",
        "Average-rank bars, shown (in a notebook) and not written.",
        "plot_ranks(r)",
        |r: ResultsRef| ranks(&r, None),
    );
    api.func(
        "plot_cd(r: Results, path: String) -> Figure",
        "Critical-difference diagram (Friedman + Nemenyi).",
        r#"plot_cd(r, "cd.svg")"#,
        |r: ResultsRef, p: &str| cd(&r, Some(p.as_ref())),
    );
    api.func(
        "plot_cd(r: Results) -> Figure",
        "Critical-difference diagram, shown and not written.",
        "plot_cd(r)",
        |r: ResultsRef| cd(&r, None),
    );
    api.func(
        "plot_rfe(sel: RfeResult, path: String) -> Figure",
        "The RFE curve with k_min marked.",
        r#"plot_rfe(sel, "rfe.png")"#,
        |r: RfeResult, p: &str| {
            drawn(patholab_core::plot::rfe(
                &r.curve,
                r.k_min,
                Some(p.as_ref()),
            ))
        },
    );
    api.func(
        "plot_rfe(sel: RfeResult) -> Figure",
        "The RFE curve, shown and not written.",
        "plot_rfe(sel)",
        |r: RfeResult| drawn(patholab_core::plot::rfe(&r.curve, r.k_min, None)),
    );
    api.func(
        "plot_confusion(e: Evaluation, path: String) -> Figure",
        "The confusion matrix as a heat map.",
        r#"plot_confusion(evaluate(m, test), "confusion.png")"#,
        |ev: Evaluation, p: &str| drawn(patholab_core::plot::confusion(&ev, Some(p.as_ref()))),
    );
    api.func(
        "plot_confusion(e: Evaluation) -> Figure",
        "The confusion matrix, shown and not written.",
        "plot_confusion(evaluate(m, test))",
        |ev: Evaluation| drawn(patholab_core::plot::confusion(&ev, None)),
    );
    api.func(
        "plot_roc(e: Evaluation, path: String) -> Figure",
        "ROC curve(s): binary, or one per class.",
        r#"plot_roc(evaluate(m, test), "roc.png")"#,
        |ev: Evaluation, p: &str| drawn(patholab_core::plot::roc(&ev, Some(p.as_ref()))),
    );
    api.func(
        "plot_roc(e: Evaluation) -> Figure",
        "ROC curve(s), shown and not written.",
        "plot_roc(evaluate(m, test))",
        |ev: Evaluation| drawn(patholab_core::plot::roc(&ev, None)),
    );
    api.func(
        "plot_curve(ft: Network, path: String) -> Figure",
        "Fine-tuning curves per epoch.",
        r#"plot_curve(ft, "curve.png")"#,
        |n: Net, p: &str| drawn(patholab_core::plot::training(&n.curve, Some(p.as_ref()))),
    );
    api.func(
        "plot_curve(ft: Network) -> Figure",
        "Fine-tuning curves, shown and not written.",
        "plot_curve(ft)",
        |n: Net| drawn(patholab_core::plot::training(&n.curve, None)),
    );
    api.func(
        "plot_importance(m: Model, by: String, path: String) -> Figure",
        "Importance share by \"network\" or \"tap\" (the paper's Figure 5).",
        r#"plot_importance(fit(extra_trees(#{ n_trees: 10 }), train), "tap", "importance.png")"#,
        |m: Model, by: &str, p: &str| importance(&m, by, Some(p.as_ref())),
    );
    api.func(
        "plot_importance(m: Model, by: String) -> Figure",
        "Importance share by \"network\" or \"tap\", shown and not written.",
        r#"plot_importance(fit(extra_trees(#{ n_trees: 10 }), train), "network")"#,
        |m: Model, by: &str| importance(&m, by, None),
    );
    api.method(
        "Dataset",
        "data.show(n: int, path: String) -> Figure",
        "A grid of n images with their labels.",
        r#"data.show(8, "grid.png")"#,
        |d: &mut DatasetRef, n: i64, p: &str| {
            drawn(patholab_core::plot::image_grid(
                d,
                n.max(1) as usize,
                Some(p.as_ref()),
            ))
        },
    );
    api.method(
        "Dataset",
        "data.show(n: int) -> Figure",
        "A grid of n images with their labels, shown and not written.",
        "data.show(4)",
        |d: &mut DatasetRef, n: i64| {
            drawn(patholab_core::plot::image_grid(d, n.max(1) as usize, None))
        },
    );
    api.getter(
        "Figure",
        "fig.path -> String",
        "The file the figure was written to (unit when none).",
        r#"plot_rfe(sel, "rfe.svg").path // => "rfe.svg""#,
        |f: &mut Figure| {
            f.path
                .as_ref()
                .map_or(rhai::Dynamic::UNIT, |p| p.display().to_string().into())
        },
    );
}
