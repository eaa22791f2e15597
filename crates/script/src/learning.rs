//! Script bindings of the `learn` room: classifiers with typed hyper-parameters, fitting, tuning by
//! slide-wise CV, cross-validation, RFE.

use super::convert::{grid, ints, options, options_with_objects, params_map, take_object};
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::data::split::Cv;
use patholab_core::eval::rows::cv_scores;
use patholab_core::eval::table::Table;
use patholab_core::features::FeatureSet;
use patholab_core::learn::extra_trees::ExtraTrees;
use patholab_core::learn::linear_svm::LinearSvm;
use patholab_core::learn::perceptron::Perceptron;
use patholab_core::learn::rfe::{Rfe, RfeOptions, RfeResult};
use patholab_core::learn::tune::CvTable;
use patholab_core::learn::{self, Classifier, Model, Param};
use rhai::{Array, Dynamic, Map};

/// A script handle to a classifier before fitting.
pub type ClassifierRef = Box<dyn Classifier>;

/// What `cross_val` returns: the score that counts, how it was made, and each fold's score.
pub fn cv_result(t: &CvTable) -> Map {
    let mut m = Map::new();
    m.insert("score".into(), t.score(0).into());
    m.insert("scoring".into(), t.scoring.as_str().into());
    m.insert("metric".into(), t.metric.clone().into());
    m.insert("pooled".into(), t.pooled[0].into());
    m.insert(
        "folds".into(),
        t.folds[0]
            .iter()
            .map(|v| Dynamic::from(*v))
            .collect::<Array>()
            .into(),
    );
    m.insert("note".into(), t.note.clone().into());
    m
}

/// The CV table of a tuned model, or the error that says it was not tuned.
pub fn tuned(cv: &Option<CvTable>) -> RResult<&CvTable> {
    cv.as_ref()
        .ok_or_else(|| "this model was not tuned (use tune)".into())
}

/// The scoring (or, with `note`, the note) of a tuned model's CV table.
pub fn cv_field(cv: &Option<CvTable>, note: bool) -> RResult<String> {
    let t = tuned(cv)?;
    Ok(if note {
        t.note.clone()
    } else {
        t.scoring.as_str().to_string()
    })
}

/// Checks every point of a grid against the classifier's options before any fitting starts.
pub fn check_grid(c: &dyn Classifier, g: &[(String, Vec<Param>)]) -> RResult<()> {
    for (key, values) in g {
        for v in values {
            c.box_clone().set(key, v).map_err(to_rhai)?;
        }
    }
    Ok(())
}

fn tune(c: &dyn Classifier, f: &FeatureSet, g: &Map, cv: &Cv) -> RResult<Model> {
    let g = grid(g)?;
    check_grid(c, &g)?;
    learn::tune::tune(c, f, &g, cv).map_err(to_rhai)
}

/// Registers classifiers, tuning and RFE.
pub fn register(api: &mut Api) {
    api.engine()
        .register_type_with_name::<ClassifierRef>("Classifier")
        .register_type_with_name::<Model>("Model")
        .register_type_with_name::<Rfe>("Rfe")
        .register_type_with_name::<RfeResult>("RfeResult");
    api.func(
        "linear_svm() -> Classifier",
        "Linear SVM, one-vs-rest, squared hinge (liblinear's solver), on standardised features.",
        "let svm = linear_svm();",
        || -> ClassifierRef { Box::new(LinearSvm::default()) },
    );
    api.func(
        "linear_svm(options: Map) -> Classifier",
        "A linear SVM with these hyper-parameters.",
        "let svm = linear_svm(#{ C: 0.01 });",
        |m: Map| -> RResult<ClassifierRef> { Ok(Box::new(options::<LinearSvm>(&m)?)) },
    )
    .options::<LinearSvm>();
    api.func(
        "extra_trees() -> Classifier",
        "Extremely randomized trees, fully grown, with impurity importances.",
        "let et = extra_trees();",
        || -> ClassifierRef { Box::new(ExtraTrees::default()) },
    );
    api.func(
        "extra_trees(options: Map) -> Classifier",
        "Extra trees with these hyper-parameters.",
        "let et = extra_trees(#{ n_trees: 50, seed: 1 });",
        |m: Map| -> RResult<ClassifierRef> { Ok(Box::new(options::<ExtraTrees>(&m)?)) },
    )
    .options::<ExtraTrees>();
    api.func(
        "perceptron() -> Classifier",
        "Single-layer perceptron (softmax regression, Adam, libtorch).",
        "let slp = perceptron();",
        || -> ClassifierRef { Box::new(Perceptron::default()) },
    );
    api.func(
        "perceptron(options: Map) -> Classifier",
        "A perceptron with these hyper-parameters.",
        "let slp = perceptron(#{ lr: 1e-3, iterations: 100 });",
        |m: Map| -> RResult<ClassifierRef> { Ok(Box::new(options::<Perceptron>(&m)?)) },
    )
    .options::<Perceptron>();
    api.method(
        "Classifier",
        "clf.name() -> String",
        "The classifier's name.",
        r#"linear_svm().name() // => "linear_svm""#,
        |c: &mut ClassifierRef| c.name().to_string(),
    );
    api.func(
        "fit(clf: Classifier, f: FeatureSet) -> Model",
        "Fits on all rows of f.",
        "let m1 = fit(linear_svm(), train);",
        |c: ClassifierRef, f: FeatureSet| learn::fit(c.as_ref(), &f).map_err(to_rhai),
    );
    api.func(
        "tune(clf: Classifier, f: FeatureSet, grid: Map, cv: Cv) -> Model",
        "Grid search over slide-grouped folds (in parallel), then a refit of the best point on all rows of f;\nm.cv_scores() has the table. Grid keys are the classifier's options, each with a list of values.",
        "let m1 = tune(linear_svm(), train, #{ C: [1e-3, 1e-2, 1e-1, 1.0] }, slide_kfold(3));",
        |c: ClassifierRef, f: FeatureSet, g: Map, cv: Cv| tune(c.as_ref(), &f, &g, &cv),
    );
    api.func(
        "tune(clf: Classifier, f: FeatureSet, cv: Cv) -> Model",
        "tune with the paper's grid for this classifier.",
        "let m1 = tune(extra_trees(#{ n_trees: 20 }), train, slide_kfold(3));",
        |c: ClassifierRef, f: FeatureSet, cv: Cv| tune(c.as_ref(), &f, &Map::new(), &cv),
    );
    api.func(
        "cross_val(clf: Classifier, f: FeatureSet, cv: Cv) -> Map",
        "The paper's score of a fixed classifier: score (pooled or mean, see scoring), scoring, metric, pooled,\nfolds (each fold's score, NaN where it does not exist), note.",
        "cross_val(linear_svm(#{ C: 0.01 }), f, slide_kfold(3)).score",
        |c: ClassifierRef, f: FeatureSet, cv: Cv| -> RResult<Map> {
            learn::tune::cross_val(c.as_ref(), &f, &cv).map(|t| cv_result(&t)).map_err(to_rhai)
        },
    );
    api.method(
        "Model",
        "m.cv_scores() -> Table",
        "Cross-validation table of a tuned model: params, mean, std, per fold.",
        "m.cv_scores()",
        |m: &mut Model| cv_scores(tuned(&m.cv)?).map_err(to_rhai),
    );
    api.method(
        "Model",
        "m.cv_best() -> float",
        "The best CV score of a tuned model (pooled or mean over folds, see m.cv_scoring()).",
        "m.cv_best()",
        |m: &mut Model| -> RResult<f64> {
            let t = tuned(&m.cv)?;
            Ok(t.score(t.best()))
        },
    );
    api.method(
        "Model",
        "m.cv_scoring() -> String",
        "How the tuning CV scored its folds: \"per_fold\" or \"pooled\".",
        "m.cv_scoring()",
        |m: &mut Model| cv_field(&m.cv, false),
    );
    api.method(
        "Model",
        "m.cv_note() -> String",
        "Why the tuning CV scored as it did (empty when per fold as usual).",
        "m.cv_note()",
        |m: &mut Model| cv_field(&m.cv, true),
    );
    api.method(
        "Model",
        "m.best_params() -> Map",
        "The hyper-parameters of the model.",
        "m.best_params()",
        |m: &mut Model| params_map(m.classifier.params()),
    );
    api.method(
        "Model",
        "m.predict(f: FeatureSet) -> Array",
        "Predicted class indices.",
        "m.predict(test)",
        |m: &mut Model, f: FeatureSet| m.predict(&f).map(|v| ints(&v)).map_err(to_rhai),
    );
    api.func(
        "rfe(clf: Classifier, options: Map) -> Rfe",
        "Recursive feature elimination ranked by the classifier's importances, scored by slide-wise CV.",
        "let sel = rfe(extra_trees(#{ n_trees: 20 }), #{ step: 0.25, cv: slide_kfold(3) }).fit(train);",
        |c: ClassifierRef, m: Map| -> RResult<Rfe> {
            let (o, mut objects) = options_with_objects::<RfeOptions>(&m, &["cv"])?;
            let cv = take_object::<Cv>(&mut objects, "cv", "Cv", "rfe")?;
            Ok(Rfe {
                estimator: c,
                step: o.step,
                cv: cv.unwrap_or_else(|| Cv::slide_kfold(3)),
                tolerance: o.tolerance,
            })
        },
    )
    .options::<RfeOptions>()
    .extra_option("cv", "Cv", "slide_kfold(3)", "The folds that score each subset size.");
    api.method(
        "Rfe",
        "sel.fit(f: FeatureSet) -> RfeResult",
        "Runs RFE with cross-validation.",
        "let r1 = rfe(extra_trees(#{ n_trees: 10 }), #{ step: 0.5 }).fit(train);",
        |r: &mut Rfe, f: FeatureSet| r.fit(&f).map_err(to_rhai),
    );
    api.getter(
        "RfeResult",
        "sel.k_min -> int",
        "The number of features kept: the smallest within tolerance of the best.",
        "sel.k_min",
        |r: &mut RfeResult| r.k_min as i64,
    );
    api.method(
        "RfeResult",
        "sel.curve() -> Table",
        "Number of features against CV score (mean, std).",
        "sel.curve()",
        |r: &mut RfeResult| Table::from_rows(&r.curve_points()).map_err(to_rhai),
    );
    api.method(
        "RfeResult",
        "sel.transform(f: FeatureSet) -> FeatureSet",
        "Keeps the k_min selected columns.",
        "sel.transform(f).dims()",
        |r: &mut RfeResult, f: FeatureSet| r.transform(&f).map_err(to_rhai),
    );
}
