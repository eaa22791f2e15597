//! Script bindings of slide-level learning (`learn::mil`): bags from feature sets, the witness
//! task, ABMIL and the mean-pooled floor, fitting, evaluation, attention, checkpoints.

use super::convert::params_map;
use super::convert::{grid, options};
use super::data::DatasetRef;
use super::learning::{cv_field, cv_result, tuned};
use super::plots::drawn;
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::data::split::Cv;
use patholab_core::eval::evaluate_mil;
use patholab_core::eval::rows::cv_scores;
use patholab_core::eval::table::Table;
use patholab_core::features::FeatureSet;
use patholab_core::learn::mil::bags::{witness_bags, BagOptions, Bags, WitnessOptions};
use patholab_core::learn::mil::{
    self, AbmilOptions, MeanMilOptions, MilLearner, MilModel, TransMilOptions,
};
use rhai::{Dynamic, Map};
use std::path::Path;

/// Registers bags, MIL learners and models.
pub fn register(api: &mut Api) {
    api.engine()
        .register_type_with_name::<Bags>("Bags")
        .register_type_with_name::<MilLearner>("MilLearner")
        .register_type_with_name::<MilModel>("MilModel");
    api.method(
        "FeatureSet",
        "f.bags() -> Bags",
        "One bag per slide: its tiles' features, coordinates and the slide's label (every tile of a slide must share it).",
        "f.bags().len()",
        |f: &mut FeatureSet| Bags::from_features(f, &BagOptions::default()).map_err(to_rhai),
    );
    api.method(
        "FeatureSet",
        "f.bags(options: Map) -> Bags",
        "Bags with these options (by: \"slide\" or \"patient\").",
        r#"f.bags(#{ by: "patient" }).len()"#,
        |f: &mut FeatureSet, m: Map| -> RResult<Bags> {
            Bags::from_features(f, &options::<BagOptions>(&m)?).map_err(to_rhai)
        },
    )
    .options::<BagOptions>();
    api.func(
        "witness_bags(f: FeatureSet, options: Map) -> Map",
        "A task that needs attention, from real images: bags positive when they hold a few images of the witness class\n(at most witness_rate of them), images split between #{ train, test } bags.",
        r#"witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 4, test_bags: 4 }).train.len() // => 4"#,
        |f: FeatureSet, m: Map| -> RResult<Map> {
            let (train, test) = witness_bags(&f, &options::<WitnessOptions>(&m)?).map_err(to_rhai)?;
            let mut out = Map::new();
            out.insert("train".into(), Dynamic::from(train));
            out.insert("test".into(), Dynamic::from(test));
            Ok(out)
        },
    )
    .options::<WitnessOptions>();
    api.method(
        "Bags",
        "bags.len() -> int",
        "Number of bags.",
        "f.bags().len()",
        |b: &mut Bags| b.len() as i64,
    );
    api.method(
        "Bags",
        "bags.ids() -> Array",
        "Each bag's id (the slide or patient).",
        "f.bags().ids()",
        |b: &mut Bags| -> rhai::Array {
            b.bags.iter().map(|b| Dynamic::from(b.id.clone())).collect()
        },
    );
    api.func(
        "abmil() -> MilLearner",
        "Gated attention MIL (Ilse et al. 2018): tiles embedded, attention-pooled, classified; AdamW.",
        "let mil = abmil();",
        || MilLearner::Abmil(AbmilOptions::default()),
    );
    api.func(
        "abmil(options: Map) -> MilLearner",
        "ABMIL with these options (architecture and training).",
        "let mil = abmil(#{ heads: 2, epochs: 10, lr: 2e-4 });",
        |m: Map| -> RResult<MilLearner> { Ok(MilLearner::Abmil(options::<AbmilOptions>(&m)?)) },
    )
    .options::<AbmilOptions>();
    api.func(
        "transmil() -> MilLearner",
        "TransMIL (Shao et al. 2021): tiles embedded, two layers of Nyström attention with a pyramid position encoding, the class token classified; AdamW.",
        "let tm = transmil();",
        || MilLearner::TransMil(TransMilOptions::default()),
    );
    api.func(
        "transmil(options: Map) -> MilLearner",
        "TransMIL with these options (architecture and training).",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(transmil(#{ hidden: 64, landmarks: 32, epochs: 1, quiet: true }), wb.train).predict(wb.test).len() // => 4"#,
        |m: Map| -> RResult<MilLearner> { Ok(MilLearner::TransMil(options::<TransMilOptions>(&m)?)) },
    )
    .options::<TransMilOptions>();
    api.func(
        "mean_mil() -> MilLearner",
        "The floor: the mean of a bag's tiles, then a linear layer; AdamW.",
        "let floor = mean_mil();",
        || MilLearner::Mean(MeanMilOptions::default()),
    );
    api.func(
        "mean_mil(options: Map) -> MilLearner",
        "Mean pooling with these training options.",
        "let floor = mean_mil(#{ epochs: 10 });",
        |m: Map| -> RResult<MilLearner> { Ok(MilLearner::Mean(options::<MeanMilOptions>(&m)?)) },
    )
    .options::<MeanMilOptions>();
    api.func(
        "fit(learner: MilLearner, bags: Bags) -> MilModel",
        "Trains on every bag (or all but the validation part, for early stopping).",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(mean_mil(#{ epochs: 2, quiet: true }), wb.train).history().len() // => 2"#,
        |l: MilLearner, b: Bags| l.fit(&b).map_err(to_rhai),
    );
    api.func(
        "tune(learner: MilLearner, bags: Bags, grid: Map, cv: Cv) -> MilModel",
        "Grid search over folds of bags that keep a patient's slides together, then a refit of the best point on every bag.",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 12, test_bags: 4 }); tune(mean_mil(#{ epochs: 2, quiet: true }), wb.train, #{ lr: [1e-3, 1e-2] }, slide_kfold(3)).cv_scores().len() // => 2"#,
        |l: MilLearner, b: Bags, g: Map, cv: Cv| -> RResult<MilModel> {
            mil::tune(&l, &b, &grid(&g)?, &cv).map_err(to_rhai)
        },
    );
    api.func(
        "cross_val(learner: MilLearner, bags: Bags, cv: Cv) -> Map",
        "The score of a fixed MIL learner on folds of bags: score, scoring, metric, pooled, folds, note.",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 12, test_bags: 4 }); cross_val(mean_mil(#{ epochs: 2, quiet: true }), wb.train, slide_kfold(3)).folds.len() // => 3"#,
        |l: MilLearner, b: Bags, cv: Cv| -> RResult<Map> {
            mil::cross_val(&l, &b, &cv).map(|t| cv_result(&t)).map_err(to_rhai)
        },
    );
    api.method(
        "MilModel",
        "m.cv_scores() -> Table",
        "Cross-validation table of a tuned MIL model: params, mean, std, per fold.",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 12, test_bags: 4 }); tune(mean_mil(#{ epochs: 1, quiet: true }), wb.train, #{ lr: [1e-3] }, slide_kfold(3)).cv_scores()"#,
        |m: &mut MilModel| cv_scores(tuned(&m.cv)?).map_err(to_rhai),
    );
    let tuned_example = r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 12, test_bags: 4 }); let tm = tune(mean_mil(#{ epochs: 1, quiet: true }), wb.train, #{ lr: [1e-3] }, slide_kfold(3));"#;
    api.method(
        "MilModel",
        "m.cv_best() -> float",
        "The best CV score of a tuned MIL model (pooled or mean over folds, see m.cv_scoring()).",
        &format!("{tuned_example} tm.cv_best()"),
        |m: &mut MilModel| -> RResult<f64> {
            let t = tuned(&m.cv)?;
            Ok(t.score(t.best()))
        },
    );
    api.method(
        "MilModel",
        "m.cv_scoring() -> String",
        "How the tuning CV scored its folds: \"per_fold\" or \"pooled\".",
        &format!("{tuned_example} tm.cv_scoring()"),
        |m: &mut MilModel| cv_field(&m.cv, false),
    );
    api.method(
        "MilModel",
        "m.cv_note() -> String",
        "Why the tuning CV scored as it did (empty when per fold as usual).",
        &format!("{tuned_example} tm.cv_note()"),
        |m: &mut MilModel| cv_field(&m.cv, true),
    );
    api.method(
        "MilModel",
        "m.best_params() -> Map",
        "The options that describe the model (after tuning, the best point's).",
        &format!("{tuned_example} tm.best_params()"),
        |m: &mut MilModel| params_map(m.learner.params()),
    );
    api.method(
        "MilLearner",
        "learner.name() -> String",
        "The learner's name.",
        r#"abmil().name() // => "abmil""#,
        |l: &mut MilLearner| l.name().to_string(),
    );
    api.func(
        "evaluate(m: MilModel, bags: Bags) -> Evaluation",
        "Accuracy, balanced accuracy, ROC AUC per bag.",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); evaluate(fit(mean_mil(#{ epochs: 1, quiet: true }), wb.train), wb.test).accuracy"#,
        |m: MilModel, b: Bags| evaluate_mil(&m, &b).map_err(to_rhai),
    );
    api.method(
        "MilModel",
        "m.predict(bags: Bags) -> Table",
        "Each bag's label, predicted class and its probability.",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(mean_mil(#{ epochs: 1, quiet: true }), wb.train).predict(wb.test).len() // => 4"#,
        |m: &mut MilModel, b: Bags| {
            Table::from_rows(&m.predictions(&b).map_err(to_rhai)?).map_err(to_rhai)
        },
    );
    api.method(
        "MilModel",
        "m.attention(bags: Bags, bag: String) -> Table",
        "The attention of every tile of one bag: tile, x and y (its level-0 corner, for tiles of a slide), head, attention (each head sums to 1).",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(abmil(#{ epochs: 1, quiet: true }), wb.train).attention(wb.test, "test-0001").len() // => 10"#,
        |m: &mut MilModel, b: Bags, id: &str| -> RResult<Table> {
            let bag = b.get(id).map_err(to_rhai)?;
            Table::from_rows(&m.attention_rows(bag).map_err(to_rhai)?).map_err(to_rhai)
        },
    );
    api.method(
        "MilModel",
        "m.attention_map(bags: Bags, bag: String) -> Map",
        "Each tile's attention (mean over heads) keyed by its id, for plot_slide's scores: a heatmap from cached features.",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(abmil(#{ epochs: 1, quiet: true }), wb.train).attention_map(wb.test, "test-0001").len() // => 10"#,
        |m: &mut MilModel, b: Bags, id: &str| -> RResult<Map> {
            let bag = b.get(id).map_err(to_rhai)?;
            Ok(m.attention_by_tile(bag)
                .map_err(to_rhai)?
                .into_iter()
                .map(|(k, v)| (k.into(), Dynamic::from_float(v)))
                .collect())
        },
    );
    api.method(
        "MilModel",
        "m.show_top(bags: Bags, bag: String, data: Dataset, k: int) -> Figure",
        "The k tiles of a bag with the most attention, read from data (the dataset the features came from), with attention and label.",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(abmil(#{ epochs: 1, quiet: true }), wb.train).show_top(wb.test, "test-0001", data, 4)"#,
        |m: &mut MilModel, b: Bags, id: &str, d: DatasetRef, k: i64| {
            drawn(patholab_core::plot::top_tiles(m, &b, id, &d, k.max(1) as usize, None))
        },
    );
    api.method(
        "MilModel",
        "m.attention_recall(bags: Bags) -> float",
        "In bags with known positive instances (witness_bags), the share of them among the top-attended tiles.",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(abmil(#{ epochs: 1, quiet: true }), wb.train).attention_recall(wb.test)"#,
        |m: &mut MilModel, b: Bags| m.attention_recall(&b).map_err(to_rhai),
    );
    api.method(
        "MilModel",
        "m.history() -> Table",
        "One row per epoch: lr, train_loss, valid_loss and valid_auc (with a validation part).",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(mean_mil(#{ epochs: 3, quiet: true }), wb.train).history().len() // => 3"#,
        |m: &mut MilModel| Table::from_rows(&m.history).map_err(to_rhai),
    );
    api.method(
        "MilModel",
        "m.save(path: String) -> ()",
        "Saves the weights as .safetensors with the reference PyTorch module's names, and path + \".json\" (options, classes).",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(mean_mil(#{ epochs: 1, quiet: true }), wb.train).save("mil.safetensors")"#,
        |m: &mut MilModel, path: &str| m.save(Path::new(path)).map_err(to_rhai),
    );
    api.func(
        "load_mil(path: String) -> MilModel",
        "A MIL model saved with m.save(path).",
        r#"let wb = witness_bags(f, #{ witness: "Lymphocyte", bag_size: 10, train_bags: 6, test_bags: 4 }); fit(mean_mil(#{ epochs: 1, quiet: true }), wb.train).save("mil.safetensors"); load_mil("mil.safetensors")"#,
        |path: &str| MilModel::load(Path::new(path)).map_err(to_rhai),
    );
}
