//! Script bindings of the `plot` room: every chart is written as PNG or SVG (by the path's
//! extension) and the function returns the path.

use super::data::DatasetRef;
use super::evaluation::{importance_share, ResultsRef};
use super::networks::Net;
use super::registry::Api;
use super::{to_rhai, RResult};
use crate::eval::Evaluation;
use crate::learn::rfe::RfeResult;
use crate::learn::Model;
use std::path::PathBuf;

fn written(r: crate::Result<PathBuf>) -> RResult<String> {
    r.map(|p| p.display().to_string()).map_err(to_rhai)
}

/// Registers the plots.
pub fn register(api: &mut Api) {
    api.func(
        "plot_ranks(r: Results, path: String) -> String",
        "Average-rank bars coloured by classifier (.png or .svg).",
        r#"plot_ranks(r, "ranks.png")"#,
        |r: ResultsRef, p: &str| {
            let ranks = r.borrow().ranks().map_err(to_rhai)?;
            written(crate::plot::ranks(&ranks, p.as_ref()))
        },
    );
    api.func(
        "plot_cd(r: Results, path: String) -> String",
        "Critical-difference diagram (Friedman + Nemenyi).",
        r#"plot_cd(r, "cd.svg")"#,
        |r: ResultsRef, p: &str| {
            let ranks = r.borrow().ranks().map_err(to_rhai)?;
            let cd = ranks.friedman().map_err(to_rhai)?.critical_difference;
            written(crate::plot::critical_difference(&ranks, cd, p.as_ref()))
        },
    );
    api.func(
        "plot_rfe(sel: RfeResult, path: String) -> String",
        "The RFE curve with k_min marked.",
        r#"plot_rfe(sel, "rfe.png")"#,
        |r: RfeResult, p: &str| written(crate::plot::rfe(&r.curve, r.k_min, p.as_ref())),
    );
    api.func(
        "plot_confusion(e: Evaluation, path: String) -> String",
        "The confusion matrix as a heat map.",
        r#"plot_confusion(evaluate(m, test), "confusion.png")"#,
        |ev: Evaluation, p: &str| written(crate::plot::confusion(&ev, p.as_ref())),
    );
    api.func(
        "plot_roc(e: Evaluation, path: String) -> String",
        "ROC curve(s): binary, or one per class.",
        r#"plot_roc(evaluate(m, test), "roc.png")"#,
        |ev: Evaluation, p: &str| written(crate::plot::roc(&ev, p.as_ref())),
    );
    api.func(
        "plot_curve(ft: Network, path: String) -> String",
        "Fine-tuning curves per epoch.",
        r#"plot_curve(ft, "curve.png")"#,
        |n: Net, p: &str| written(crate::plot::training(&n.curve, p.as_ref())),
    );
    api.func(
        "plot_importance(m: Model, by: String, path: String) -> String",
        "Importance share by \"network\" or \"tap\" (the paper's Figure 5).",
        r#"plot_importance(fit(extra_trees(#{ n_trees: 10 }), train), "tap", "importance.png")"#,
        |m: Model, by: &str, p: &str| {
            let (labels, values) = importance_share(&m, by)?;
            written(crate::plot::bars(
                &format!("importance by {by}"),
                &labels,
                &values,
                p.as_ref(),
            ))
        },
    );
    api.method(
        "Dataset",
        "data.show(n: int, path: String) -> String",
        "A grid of n images with their labels.",
        r#"data.show(8, "grid.png")"#,
        |d: &mut DatasetRef, n: i64, p: &str| {
            written(crate::plot::image_grid(d, n.max(1) as usize, p.as_ref()))
        },
    );
}
