//! Script bindings of the ET-FL baseline (random subwindows, extra-trees leaf features, linear SVM):
//! fitted, tuned and cross-validated on images like the classifiers are on features.

use super::convert::{grid, options, params_map};
use super::data::DatasetRef;
use super::learning::{cv_field, cv_result, tuned};
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::baseline::et_fl::{self, EtFl, EtFlModel};
use patholab_core::data::split::Cv;
use patholab_core::eval::rows::cv_scores;
use patholab_core::eval::Evaluation;
use patholab_core::learn::tune::CvTable;
use rhai::Map;
use std::rc::Rc;

/// A fitted ET-FL model with its CV table when tuned.
#[derive(Clone)]
pub struct EtFlFitted {
    pub model: Rc<EtFlModel>,
    pub cv: Option<CvTable>,
}

fn all(d: &DatasetRef) -> Vec<usize> {
    (0..d.len()).collect()
}

fn with_options(m: &Map) -> RResult<EtFl> {
    let p: EtFl = options(m)?;
    p.validate().map_err(to_rhai)?;
    Ok(p)
}

/// Registers ET-FL.
pub fn register(api: &mut Api) {
    api.engine()
        .register_type_with_name::<EtFl>("EtFl")
        .register_type_with_name::<EtFlFitted>("EtFlModel");
    api.func(
        "et_fl() -> EtFl",
        "The ET-FL baseline (random subwindows, extra-trees leaf features, linear SVM) with the paper's defaults.",
        "let b = et_fl();",
        EtFl::default,
    );
    api.func(
        "et_fl(options: Map) -> EtFl",
        "ET-FL with these parameters.",
        r#"let b = et_fl(#{ n_subwindows: 20, colorspace: "hsv" });"#,
        |m: Map| with_options(&m),
    )
    .options::<EtFl>();
    api.func(
        "fit(b: EtFl, data: Dataset) -> EtFlModel",
        "Fits ET-FL on all images of data.",
        "let bm = fit(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small);",
        |p: EtFl, d: DatasetRef| -> RResult<EtFlFitted> {
            let m = p.fit(&d, &all(&d)).map_err(to_rhai)?;
            Ok(EtFlFitted {
                model: Rc::new(m),
                cv: None,
            })
        },
    );
    api.func(
        "tune(b: EtFl, data: Dataset, grid: Map, cv: Cv) -> EtFlModel",
        "Tunes ET-FL over slide-grouped folds (the paper's grid when empty), then refits.",
        "let bm = tune(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small, #{ max_size: [0.5, 1.0] }, slide_kfold(3));",
        |p: EtFl, d: DatasetRef, g: Map, cv: Cv| -> RResult<EtFlFitted> {
            let (m, t) = et_fl::tune(&p, &d, &all(&d), &grid(&g)?, &cv).map_err(to_rhai)?;
            Ok(EtFlFitted { model: Rc::new(m), cv: Some(t) })
        },
    );
    api.func(
        "cross_val(b: EtFl, data: Dataset, cv: Cv) -> Map",
        "ET-FL's score on slide-grouped folds, as cross_val of a classifier reports it.",
        "cross_val(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small, slide_kfold(3)).score",
        |p: EtFl, d: DatasetRef, cv: Cv| -> RResult<Map> {
            et_fl::cross_val(&p, &d, &all(&d), &cv)
                .map(|t| cv_result(&t))
                .map_err(to_rhai)
        },
    );
    api.func(
        "evaluate(m: EtFlModel, data: Dataset) -> Evaluation",
        "Evaluates ET-FL on images.",
        "evaluate(fit(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small), small)",
        |m: EtFlFitted, d: DatasetRef| -> RResult<Evaluation> {
            let s = m.model.decision(&d, &all(&d)).map_err(to_rhai)?;
            patholab_core::eval::evaluate_scores(&d.labels(), &s, &d.classes).map_err(to_rhai)
        },
    );
    api.method(
        "EtFlModel",
        "m.n_leaves() -> int",
        "Leaves of the ET-FL forest (columns of its sparse features).",
        "fit(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small).n_leaves()",
        |m: &mut EtFlFitted| m.model.n_leaves() as i64,
    );
    api.method(
        "EtFlModel",
        "m.cv_scores() -> Table",
        "Cross-validation table of a tuned ET-FL.",
        "tune(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small, #{ max_size: [1.0] }, slide_kfold(3)).cv_scores()",
        |m: &mut EtFlFitted| cv_scores(tuned(&m.cv)?).map_err(to_rhai),
    );
    api.method(
        "EtFlModel",
        "m.cv_scoring() -> String",
        "How the tuning CV scored its folds: \"per_fold\" or \"pooled\".",
        "tune(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small, #{ max_size: [1.0] }, slide_kfold(3)).cv_scoring()",
        |m: &mut EtFlFitted| cv_field(&m.cv, false),
    );
    api.method(
        "EtFlModel",
        "m.cv_note() -> String",
        "Why the tuning CV scored as it did.",
        "tune(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small, #{ max_size: [1.0] }, slide_kfold(3)).cv_note()",
        |m: &mut EtFlFitted| cv_field(&m.cv, true),
    );
    api.method(
        "EtFlModel",
        "m.best_params() -> Map",
        "ET-FL's parameters.",
        "fit(et_fl(#{ n_subwindows: 10, n_trees: 5 }), small).best_params()",
        |m: &mut EtFlFitted| params_map(m.model.params.params()),
    );
}
