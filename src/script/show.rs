//! How values look at the prompt: each type prints its library summary, tables print as polars
//! prints them.

use super::baseline::EtFlFitted;
use super::data::{DatasetRef, Image};
use super::evaluation::ResultsRef;
use super::features::PcaSpec;
use super::learning::ClassifierRef;
use super::networks::Net;
use crate::data::split::{Cv, Split};
use crate::data::stain::StainNormalizer;
use crate::eval::table::{Grouped, Table};
use crate::eval::Evaluation;
use crate::features::pca::Pca;
use crate::features::FeatureSet;
use crate::learn::rfe::{Rfe, RfeResult};
use crate::learn::Model;
use rhai::{Dynamic, Engine, Scope};

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
