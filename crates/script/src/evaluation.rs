//! Script bindings of the `eval` room: evaluation of models and fine-tuned networks, importances,
//! the results table every strategy appends to, ranks and the Friedman test.

use super::convert::{ints, strings};
use super::data::DatasetRef;
use super::networks::Net;
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::eval::results::{Results, Row};
use patholab_core::eval::table::Table;
use patholab_core::eval::{evaluate, Evaluation};
use patholab_core::features::FeatureSet;
use patholab_core::learn::{Model, Share, ShareBy};
use rhai::{Array, Dynamic, Map};
use std::cell::RefCell;
use std::rc::Rc;

/// A script handle to a results table that strategies append to.
pub type ResultsRef = Rc<RefCell<Results>>;

/// Importance summed by `by` ("network" or "tap").
pub fn importance_share(m: &Model, by: &str) -> RResult<Vec<Share>> {
    let by = ShareBy::named("by", by).map_err(to_rhai)?;
    m.importance_share(by).map_err(to_rhai)
}

/// Registers evaluation and results.
pub fn register(api: &mut Api) {
    api.engine()
        .register_type_with_name::<Evaluation>("Evaluation")
        .register_type_with_name::<ResultsRef>("Results");
    api.func(
        "evaluate(m: Model, f: FeatureSet) -> Evaluation",
        "Accuracy, balanced accuracy, ROC AUC (binary) or macro one-vs-rest AUC, confusion matrix, recalls.",
        "evaluate(m, test)",
        |m: Model, f: FeatureSet| evaluate(&m, &f).map_err(to_rhai),
    );
    api.func(
        "evaluate(net: Network, data: Dataset) -> Evaluation",
        "Evaluates a fine-tuned network on a dataset with the same classes.",
        "evaluate(ft, small)",
        |n: Net, d: DatasetRef| patholab_core::finetune::evaluate(&n, &d).map_err(to_rhai),
    );
    api.func(
        "score(m: Model, f: FeatureSet) -> float",
        "The paper's metric: ROC AUC for two classes, accuracy otherwise.",
        "score(m, test)",
        |m: Model, f: FeatureSet| evaluate(&m, &f).map(|e| e.score).map_err(to_rhai),
    );
    api.getter(
        "Evaluation",
        "e.accuracy -> float",
        "Fraction of correct predictions.",
        "evaluate(m, test).accuracy",
        |v: &mut Evaluation| v.accuracy,
    );
    api.getter(
        "Evaluation",
        "e.balanced_accuracy -> float",
        "Mean recall over the classes present.",
        "evaluate(m, test).balanced_accuracy",
        |v: &mut Evaluation| v.balanced_accuracy,
    );
    api.getter(
        "Evaluation",
        "e.metric -> String",
        "The metric of e.score: \"roc_auc\" or \"accuracy\" (a one-class test set has no AUC).",
        r#"evaluate(m, test).metric // => "accuracy""#,
        |v: &mut Evaluation| v.metric.clone(),
    );
    api.getter(
        "Evaluation",
        "e.note -> String",
        "Why the score is not the paper's metric, when it is not; empty otherwise.",
        "evaluate(m, test).note",
        |v: &mut Evaluation| v.note.clone(),
    );
    api.getter(
        "Evaluation",
        "e.score -> float",
        "The paper's metric (AUC when binary, accuracy otherwise).",
        "evaluate(m, test).score",
        |v: &mut Evaluation| v.score,
    );
    api.getter(
        "Evaluation",
        "e.auc -> float",
        "ROC AUC (binary) or macro one-vs-rest AUC; () when a class is absent.",
        "evaluate(m, test).auc",
        |v: &mut Evaluation| v.auc.map_or(Dynamic::UNIT, Dynamic::from),
    );
    api.getter(
        "Evaluation",
        "e.confusion -> Array",
        "The confusion matrix: rows are true classes, columns predictions.",
        "evaluate(m, test).confusion",
        |v: &mut Evaluation| {
            v.confusion
                .iter()
                .map(|r| Dynamic::from(ints(r)))
                .collect::<Array>()
        },
    );
    api.func(
        "importances(m: Model) -> Table",
        "Feature importances joined with provenance (network, tap, channel), largest first.",
        "importances(fit(extra_trees(#{ n_trees: 10 }), train)).head(5)",
        |m: Model| {
            let rows = m.importance_rows().map_err(to_rhai)?;
            Table::from_rows(&rows).map_err(to_rhai)
        },
    );
    api.func(
        "importance_share(m: Model, by: String) -> Table",
        "Importance summed by \"network\" or \"tap\".",
        r#"importance_share(fit(extra_trees(#{ n_trees: 10 }), train), "tap")"#,
        |m: Model, by: &str| Table::from_rows(&importance_share(&m, by)?).map_err(to_rhai),
    );
    api.func(
        "results() -> Results",
        "An empty results table that strategies append rows to.",
        "let r1 = results();",
        || -> ResultsRef { Rc::new(RefCell::new(Results::default())) },
    );
    api.func(
        "results(path: String) -> Results",
        "Loads results saved as .parquet or .csv.",
        r#"r.save("r.csv"); let r1 = results("r.csv");"#,
        |p: &str| {
            Results::load(std::path::Path::new(p))
                .map(|r| Rc::new(RefCell::new(r)))
                .map_err(to_rhai)
        },
    );
    api.method(
        "Results",
        "r.add(row: Map)",
        "Appends a row; score is required, unknown keys are errors.",
        r#"let r1 = results(); r1.add(#{ dataset: "bccd", strategy: "last layer", score: 0.8 });"#,
        |r: &mut ResultsRef, m: Map| -> RResult<()> {
            let mut object = serde_json::Map::new();
            for (k, v) in &m {
                object.insert(k.to_string(), super::convert::to_json(v, k, "results.add")?);
            }
            r.borrow_mut().add(object).map_err(to_rhai)
        },
    )
    .options::<Row>();
    api.method(
        "Results",
        "r.len() -> int",
        "Number of rows.",
        "r.len() // => 6",
        |r: &mut ResultsRef| r.borrow().rows.len() as i64,
    );
    api.method(
        "Results",
        "r.table() -> Table",
        "All rows.",
        "r.table()",
        |r: &mut ResultsRef| r.borrow().frame().map(Table).map_err(to_rhai),
    );
    api.method(
        "Results",
        "r.save(path: String)",
        "Saves as .parquet or .csv.",
        r#"r.save("results.parquet");"#,
        |r: &mut ResultsRef, p: &str| r.borrow().save(std::path::Path::new(p)).map_err(to_rhai),
    );
    api.method(
        "Results",
        "r.datasets() -> Array",
        "The datasets that have rows.",
        "r.datasets()",
        |r: &mut ResultsRef| strings(&r.borrow().datasets()),
    );
    api.method(
        "Results",
        "r.ranks() -> Table",
        "Each method's rank per dataset (best = highest, ties averaged) and the mean rank.",
        "r.ranks()",
        |r: &mut ResultsRef| {
            r.borrow()
                .ranks()
                .and_then(|k| k.frame())
                .map(Table)
                .map_err(to_rhai)
        },
    );
    api.method(
        "Results",
        "r.table2() -> String",
        "Best score per strategy and dataset, as the paper's Table 2 (markdown).",
        "print(r.table2());",
        |r: &mut ResultsRef| r.borrow().table2(),
    );
    api.method(
        "Results",
        "r.friedman() -> Map",
        "Friedman chi², p-value, Iman-Davenport F and the Nemenyi critical difference (α = 0.05).",
        "r.friedman()",
        |r: &mut ResultsRef| -> RResult<Map> {
            let f = r
                .borrow()
                .ranks()
                .and_then(|k| k.friedman())
                .map_err(to_rhai)?;
            let mut m = Map::new();
            m.insert("chi2".into(), f.chi2.into());
            m.insert("p_value".into(), f.p_value.into());
            m.insert("iman_davenport".into(), f.iman_davenport.into());
            m.insert("critical_difference".into(), f.critical_difference.into());
            Ok(m)
        },
    );
    api.func(
        "timer() -> float",
        "Seconds since an arbitrary start, to time strategies.",
        "let t0 = timer();",
        || {
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            START
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_secs_f64()
        },
    );
    api.func(
        "write_text(path: String, text: String) -> String",
        "Writes text to a file (creating its folder); returns the path.",
        r#"write_text("out/table2.md", r.table2())"#,
        |p: &str, t: &str| -> RResult<String> {
            let path = std::path::Path::new(p);
            if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d)
                    .map_err(|e| to_rhai(patholab_core::Error::file(d, e)))?;
            }
            std::fs::write(path, t)
                .map(|_| p.to_string())
                .map_err(|e| to_rhai(patholab_core::Error::file(path, e)))
        },
    );
}
