//! Grid search over slide-grouped folds, the one routine every tuned learner shares
//! ([`search`]: the classifiers here through [`tune`] and [`cross_val`], ET-FL in `baseline`),
//! the refit of the best point on all given rows, and the CV table.
//!
//! How the folds' predictions become a score ([`Scoring`], chosen with
//! `slide_kfold(k, #{ scoring })`): *per fold* is the mean of the folds' scores (scikit-learn's
//! `cross_val_score`); *pooled* gathers every fold's decision scores on its held-out rows into one
//! n × k matrix in row order and computes the metric once (`cross_val_predict`, then the metric).
//! *Auto*, the default, is per fold when every fold's score exists and pooled otherwise: ROC AUC
//! does not exist on a test part that holds one class, which slide-wise folds of a small cohort
//! make likely. Auto says so once, on stderr, naming the class and the numbers; an explicit
//! `"per_fold"` is an error naming the fold, its class counts and the option that fixes it.
//!
//! A fold whose training part holds a single class is not fitted: its held-out rows get a constant
//! score for that class (a model that has seen one class can only say that class; scikit-learn
//! would refuse to fit). In a cohort where a class has one slide in the rows given, a slide-wise
//! fold cannot do better, and the study goes on; the table's note says which fold.

use super::metrics::{self, paper_metric, paper_score_defined};
use super::{fit, Classifier, Model, Param};
use crate::data::split::{Cv, Folds, Scoring};
use crate::error::{Error, Result};
use crate::features::FeatureSet;
use rayon::prelude::*;

/// Cross-validation results: one row per grid point.
#[derive(Clone, Debug)]
pub struct CvTable {
    pub params: Vec<Vec<(String, Param)>>,
    /// Each row's score on each fold; NaN where the metric does not exist on the fold.
    pub folds: Vec<Vec<f64>>,
    /// Each row's metric over all out-of-fold predictions together.
    pub pooled: Vec<f64>,
    /// `roc_auc` or `accuracy` (the paper's metric for the number of classes).
    pub metric: String,
    /// The scoring used: [`Scoring::PerFold`] or [`Scoring::Pooled`], never `Auto`.
    pub scoring: Scoring,
    /// Why the scoring is what it is and which folds got a constant score; empty when nothing
    /// needs saying.
    pub note: String,
}

impl CvTable {
    /// The score that ranks row `i`: the pooled score when pooled, the mean over folds otherwise.
    pub fn score(&self, i: usize) -> f64 {
        match self.scoring {
            Scoring::Pooled => self.pooled[i],
            _ => self.mean(i),
        }
    }

    /// Mean score of row `i` over the folds (NaN when a fold has none).
    pub fn mean(&self, i: usize) -> f64 {
        self.folds[i].iter().sum::<f64>() / self.folds[i].len() as f64
    }

    /// Standard deviation of row `i` over the folds (population, as scikit-learn reports it;
    /// NaN when a fold has no score).
    pub fn std(&self, i: usize) -> f64 {
        let m = self.mean(i);
        (self.folds[i].iter().map(|v| (v - m).powi(2)).sum::<f64>() / self.folds[i].len() as f64)
            .sqrt()
    }

    /// Index of the best row (highest [`CvTable::score`]; the first on ties; a NaN never wins).
    pub fn best(&self) -> usize {
        (0..self.params.len()).fold(0, |b, i| {
            let (s, t) = (self.score(i), self.score(b));
            if s > t || (t.is_nan() && !s.is_nan()) {
                i
            } else {
                b
            }
        })
    }

    /// A grid point's parameters as one line (`C=0.01, class_weight=balanced`).
    pub fn params_text(&self, i: usize) -> String {
        self.params[i]
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every combination of the grid's values (in the grid's order).
pub fn expand(grid: &[(String, Vec<Param>)]) -> Vec<Vec<(String, Param)>> {
    let mut out = vec![Vec::new()];
    for (name, values) in grid {
        if values.is_empty() {
            continue;
        }
        out = out
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((name.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    out
}

/// The paper's score of a fitted model on `f`: AUC when binary, accuracy otherwise.
pub fn paper_score(m: &Model, f: &FeatureSet) -> Result<f64> {
    let scores = m.decision(f)?;
    metrics::paper_score(&f.labels, &scores, f.classes.len())
}

/// The folds whose test part the paper's metric over `k` classes does not exist on.
fn undefined_folds(folds: &Folds, k: usize) -> Vec<usize> {
    (0..folds.pairs.len())
        .filter(|f| k == 2 && folds.test_counts[*f].iter().take(2).any(|n| *n == 0))
        .collect()
}

/// The scoring `folds` get for the paper's metric over `k` classes, and the note that goes with
/// it. Auto becomes pooled when a fold's score does not exist, with one warning on stderr; an
/// explicit per-fold scoring is then an error naming the fold, its class counts and the fix.
pub fn resolve_scoring(folds: &Folds, k: usize) -> Result<(Scoring, String)> {
    let undefined = undefined_folds(folds, k);
    let metric = paper_metric(k);
    let all: Vec<usize> = (0..folds.classes.len())
        .map(|c| folds.test_counts.iter().map(|t| t[c]).sum())
        .collect();
    if k == 2 && all.iter().take(2).any(|n| *n == 0) {
        let counts: Vec<String> = folds
            .classes
            .iter()
            .zip(&all)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        return Err(Error::Invalid(format!(
            "{}: the rows given hold {} images, and {metric} needs both classes, per fold or pooled; give rows of both classes",
            folds.cv,
            counts.join(", ")
        )));
    }
    let Some(&first) = undefined.first() else {
        let s = match folds.scoring {
            Scoring::Auto => Scoring::PerFold,
            s => s,
        };
        return Ok((s, String::new()));
    };
    let why = folds.shortfall.join("; ");
    let which: Vec<String> = undefined
        .iter()
        .map(|f| format!("fold {f} ({})", folds.test_counts_text(*f)))
        .collect();
    let pooled_cv = folds.cv_with_scoring(Scoring::Pooled);
    match folds.scoring {
        Scoring::PerFold => Err(Error::Invalid(format!(
            "fold {first} of {}: its test part holds {} images, and {metric} needs both classes{}; {pooled_cv} scores the pooled out-of-fold predictions instead",
            folds.cv,
            folds.test_counts_text(first),
            if why.is_empty() { String::new() } else { format!(" ({why})") },
        ))),
        Scoring::Pooled => Ok((Scoring::Pooled, String::new())),
        Scoring::Auto => {
            let note = format!(
                "{}{metric} does not exist on {}, so the CV scores are pooled over all out-of-fold predictions",
                if why.is_empty() { String::new() } else { format!("{why}; ") },
                which.join(", ")
            );
            crate::progress::warn_once(&format!("{note} (say {pooled_cv} to choose this explicitly)"));
            Ok((Scoring::Pooled, note))
        }
    }
}

/// The one class a fold's training part holds, if it holds only one.
fn single_class(folds: &Folds, f: usize) -> Option<usize> {
    let present: Vec<usize> = (0..folds.classes.len())
        .filter(|c| folds.train_counts[f][*c] > 0)
        .collect();
    (present.len() == 1).then(|| present[0])
}

/// The decision scores a model that has seen only class `c` gives `n` rows of `k` classes.
pub fn constant_scores(n: usize, k: usize, c: usize) -> Vec<f64> {
    let mut s = vec![0.0; n * k];
    for r in 0..n {
        s[r * k + c] = 1.0;
    }
    s
}

/// The note for folds whose training part holds one class (said once on stderr too).
fn constant_note(folds: &Folds) -> String {
    let v: Vec<String> = (0..folds.pairs.len())
        .filter_map(|f| {
            single_class(folds, f).map(|c| {
                format!(
                    "fold {f}'s training part holds only {}, so its test rows get a constant score",
                    folds.classes[c]
                )
            })
        })
        .collect();
    let note = v.join("; ");
    if !note.is_empty() {
        crate::progress::warn_once(&format!("{}: {note}", folds.cv));
    }
    note
}

/// The scores of one set of fold decisions (`decisions[f]`: fold f's test rows × k): each fold's
/// score (NaN where the metric does not exist there) and the pooled score over all of them.
pub fn score_folds(folds: &Folds, y: &[usize], decisions: &[Vec<f64>]) -> Result<(Vec<f64>, f64)> {
    let k = folds.classes.len();
    let n = y.len();
    let mut oof = vec![f64::NAN; n * k];
    let mut per = Vec::with_capacity(folds.pairs.len());
    for (f, ((_, test), d)) in folds.pairs.iter().zip(decisions).enumerate() {
        let yt: Vec<usize> = test.iter().map(|i| y[*i]).collect();
        per.push(if paper_score_defined(&yt, k) {
            metrics::paper_score(&yt, d, k).map_err(|e| {
                Error::Invalid(format!(
                    "fold {f} of {} (test part: {}): {e}",
                    folds.cv,
                    folds.test_counts_text(f)
                ))
            })?
        } else {
            f64::NAN
        });
        for (r, i) in test.iter().enumerate() {
            oof[i * k..(i + 1) * k].copy_from_slice(&d[r * k..(r + 1) * k]);
        }
    }
    let pooled = if paper_score_defined(y, k) {
        metrics::paper_score(y, &oof, k)
            .map_err(|e| Error::Invalid(format!("pooled over {}: {e}", folds.cv)))?
    } else {
        f64::NAN
    };
    Ok((per, pooled))
}

/// One fold as the [`search`] closure sees it.
#[derive(Clone, Copy, Debug)]
pub struct Fold<'a> {
    pub index: usize,
    pub train: &'a [usize],
    pub test: &'a [usize],
}

/// Scores every grid point on every fold: `decide(point, fold)` fits the point on the fold's
/// training rows and returns the decision scores (`test.len() × k`, row-major) of its test rows.
/// `y` are the labels of the rows the folds index. With `parallel`, the (point, fold) jobs run in
/// parallel; a learner that is itself parallel and memory-bound (ET-FL) runs them one at a time.
pub fn search<F>(
    points: Vec<Vec<(String, Param)>>,
    folds: &Folds,
    y: &[usize],
    parallel: bool,
    decide: F,
) -> Result<CvTable>
where
    F: Fn(&[(String, Param)], Fold) -> Result<Vec<f64>> + Sync,
{
    let k = folds.classes.len();
    let (scoring, mut note) = resolve_scoring(folds, k)?;
    let constant = constant_note(folds);
    if !constant.is_empty() {
        note = if note.is_empty() {
            constant
        } else {
            format!("{note}; {constant}")
        };
    }
    let jobs: Vec<(usize, usize)> = (0..points.len())
        .flat_map(|p| (0..folds.pairs.len()).map(move |f| (p, f)))
        .collect();
    let job = |&(p, f): &(usize, usize)| -> Result<Vec<f64>> {
        crate::cancel::check()?;
        let (train, test) = &folds.pairs[f];
        if let Some(c) = single_class(folds, f) {
            return Ok(constant_scores(test.len(), k, c));
        }
        decide(
            &points[p],
            Fold {
                index: f,
                train,
                test,
            },
        )
        .map_err(|e| match e {
            Error::Cancelled => e,
            e => Error::Invalid(format!("fold {f} of {}: {e}", folds.cv)),
        })
    };
    let decisions: Vec<Vec<f64>> = if parallel {
        jobs.par_iter().map(job).collect::<Result<_>>()?
    } else {
        jobs.iter().map(job).collect::<Result<_>>()?
    };
    let n_folds = folds.pairs.len();
    let mut per_fold = Vec::with_capacity(points.len());
    let mut pooled = Vec::with_capacity(points.len());
    for p in 0..points.len() {
        let (per, all) = score_folds(folds, y, &decisions[p * n_folds..(p + 1) * n_folds])?;
        per_fold.push(per);
        pooled.push(all);
    }
    Ok(CvTable {
        params: points,
        folds: per_fold,
        pooled,
        metric: paper_metric(k).into(),
        scoring,
        note,
    })
}

/// The scores of `clf` (as it is, no grid) on the folds of `cv`: a one-row table.
pub fn cross_val(clf: &dyn Classifier, f: &FeatureSet, cv: &Cv) -> Result<CvTable> {
    let folds = cv.plan(&f.slides, &f.labels, &f.classes)?;
    let mut table = search(vec![Vec::new()], &folds, &f.labels, true, |_, fold| {
        let m = fit(clf, &f.subset(fold.train)?)?;
        m.decision(&f.subset(fold.test)?)
    })?;
    table.params = vec![clf.params()];
    Ok(table)
}

/// Tunes `clf` over `grid` (empty = the paper's grid) with slide-grouped `cv`, then refits the
/// best on all rows of `f`.
pub fn tune(
    clf: &dyn Classifier,
    f: &FeatureSet,
    grid: &[(String, Vec<Param>)],
    cv: &Cv,
) -> Result<Model> {
    let grid = if grid.is_empty() {
        clf.paper_grid(f.d)
    } else {
        grid.to_vec()
    };
    let points = expand(&grid);
    let folds = cv.plan(&f.slides, &f.labels, &f.classes)?;
    let parts: Vec<(FeatureSet, FeatureSet)> = folds
        .pairs
        .iter()
        .map(|(tr, te)| Ok((f.subset(tr)?, f.subset(te)?)))
        .collect::<Result<_>>()?;
    let table = search(points, &folds, &f.labels, true, |point, fold| {
        let mut c = clf.box_clone();
        for (name, v) in point {
            c.set(name, v)?;
        }
        let (train, test) = &parts[fold.index];
        fit(c.as_ref(), train)?.decision(test)
    })?;
    let mut best = clf.box_clone();
    for (name, v) in &table.params[table.best()] {
        best.set(name, v)?;
    }
    let mut model = fit(best.as_ref(), f)?;
    model.cv = Some(table);
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::split::CvOptions;

    /// Rows with a known score: row i's class-1 decision is `s[i]`.
    fn folds(fold_of: &[usize], labels: &[usize], scoring: Scoring) -> Folds {
        let slides: Vec<String> = (0..labels.len()).map(|i| format!("s{i}")).collect();
        let classes = vec!["A".to_string(), "B".to_string()];
        Folds::from_assignment(fold_of, &slides, labels, &classes, scoring).unwrap()
    }

    fn by_score(s: &[f64]) -> impl Fn(&[(String, Param)], Fold) -> Result<Vec<f64>> + Sync + '_ {
        move |_, fold| Ok(fold.test.iter().flat_map(|i| [0.0, s[*i]]).collect())
    }

    #[test]
    fn pooled_scores_gather_out_of_fold_predictions_in_row_order() {
        // Fold 2 holds only class B: auto pools, and the pooled AUC is the AUC of all rows.
        let y = [0, 1, 0, 1, 1, 1];
        let s = [0.1, 0.9, 0.4, 0.3, 0.8, 0.2];
        let f = folds(&[0, 0, 1, 1, 2, 2], &y, Scoring::Auto);
        let t = search(vec![vec![]], &f, &y, true, by_score(&s)).unwrap();
        assert_eq!(t.scoring, Scoring::Pooled);
        let pos: Vec<bool> = y.iter().map(|v| *v == 1).collect();
        assert_eq!(t.pooled[0], metrics::roc_auc(&pos, &s).unwrap());
        assert_eq!(t.score(0), t.pooled[0]);
        assert_eq!(&t.folds[0][..2], &[1.0, 0.0]);
        assert!(t.folds[0][2].is_nan());
        assert!(
            t.note
                .contains("roc_auc does not exist on fold 2 (A 0, B 2)"),
            "{}",
            t.note
        );
        let table = crate::eval::rows::cv_scores(&t).unwrap();
        assert_eq!(
            table.row(0).unwrap()[1],
            (
                "scoring".to_string(),
                crate::eval::table::Cell::Str("pooled".into())
            )
        );
    }

    #[test]
    fn per_fold_when_every_fold_holds_both_classes_and_an_error_when_asked_for_it_otherwise() {
        let y = [0, 1, 0, 1];
        let s = [0.1, 0.9, 0.4, 0.3];
        let t = search(
            vec![vec![]],
            &folds(&[0, 0, 1, 1], &y, Scoring::Auto),
            &y,
            false,
            by_score(&s),
        )
        .unwrap();
        assert_eq!(t.scoring, Scoring::PerFold);
        assert_eq!(t.score(0), 0.5);
        let y = [0, 1, 1, 1];
        let e = search(
            vec![vec![]],
            &folds(&[0, 0, 1, 1], &y, Scoring::PerFold),
            &y,
            false,
            by_score(&s),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("fold 1 of 2 given folds: its test part holds A 0, B 2 images, and roc_auc needs both classes"), "{e}");
        assert!(
            e.ends_with("scores the pooled out-of-fold predictions instead"),
            "{e}"
        );
    }

    #[test]
    fn the_fix_is_named_as_the_script_writes_it() {
        let slides: Vec<String> = (0..150).map(|i| format!("p{}", i / 30)).collect();
        let y: Vec<usize> = (0..150).map(|i| usize::from(i / 30 >= 3)).collect();
        let classes = vec!["Infected".to_string(), "NotInfected".to_string()];
        let cv = Cv::slide_kfold_with(
            3,
            CvOptions {
                scoring: Scoring::PerFold,
                ..Default::default()
            },
        );
        let e = resolve_scoring(&cv.plan(&slides, &y, &classes).unwrap(), 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "of slide_kfold(3, #{ scoring: \"per_fold\" }): its test part holds Infected "
            ),
            "{e}"
        );
        assert!(
            e.contains("class NotInfected has 2 slides in the 5 slides given"),
            "{e}"
        );
        assert!(
            e.contains("slide_kfold(3, #{ scoring: \"pooled\" }) scores the pooled"),
            "{e}"
        );
    }

    #[test]
    fn a_fold_trained_on_one_class_gets_a_constant_score() {
        let y = [0, 0, 1, 1, 0, 1];
        let s = [0.1, 0.2, 0.9, 0.8, 0.3, 0.7];
        // Each fold tests one class and trains on the other: neither model is asked to fit.
        let f = folds(&[0, 0, 1, 1, 0, 1], &y, Scoring::Pooled);
        let t = search(vec![vec![]], &f, &y, true, |_, _| -> Result<Vec<f64>> {
            panic!("a one-class training part is never fitted")
        })
        .unwrap();
        assert!(
            t.note.contains("fold 0's training part holds only B"),
            "{}",
            t.note
        );
        assert!(
            t.note.contains("fold 1's training part holds only A"),
            "{}",
            t.note
        );
        // Each model says the class it saw, always the wrong one.
        assert_eq!(t.pooled[0], 0.0);
        let _ = s;
    }

    #[test]
    fn best_ignores_nan() {
        let t = CvTable {
            params: vec![vec![], vec![]],
            folds: vec![vec![f64::NAN], vec![0.5]],
            pooled: vec![f64::NAN, 0.5],
            metric: "roc_auc".into(),
            scoring: Scoring::PerFold,
            note: String::new(),
        };
        assert_eq!(t.best(), 1);
    }
}
