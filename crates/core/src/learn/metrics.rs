//! Metrics, matching scikit-learn's definitions: accuracy, balanced accuracy, ROC AUC (binary,
//! ties averaged) and macro one-vs-rest AUC, confusion matrix. Undefined cases are errors, never NaN;
//! a score that is NaN never panics a sort. Pure functions of labels and scores: `learn` scores its
//! folds with them and `eval` (which re-exports this module) reports with them.

use super::argmax_rows;
use crate::error::{Error, Result};

/// Fraction of correct predictions.
pub fn accuracy(y: &[usize], pred: &[usize]) -> Result<f64> {
    if y.is_empty() || y.len() != pred.len() {
        return Err(Error::Invalid(format!(
            "accuracy needs equal, non-empty inputs ({} vs {})",
            y.len(),
            pred.len()
        )));
    }
    Ok(y.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / y.len() as f64)
}

/// `k × k` counts, rows = true class, columns = predicted.
pub fn confusion(y: &[usize], pred: &[usize], k: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; k]; k];
    for (a, b) in y.iter().zip(pred) {
        m[*a][*b] += 1;
    }
    m
}

/// Recall of each class present in `y` (None for absent classes).
pub fn recalls(y: &[usize], pred: &[usize], k: usize) -> Vec<Option<f64>> {
    let m = confusion(y, pred, k);
    (0..k)
        .map(|c| {
            let n: usize = m[c].iter().sum();
            (n > 0).then(|| m[c][c] as f64 / n as f64)
        })
        .collect()
}

/// Mean recall over the classes present in `y`.
pub fn balanced_accuracy(y: &[usize], pred: &[usize], k: usize) -> Result<f64> {
    accuracy(y, pred)?;
    let r: Vec<f64> = recalls(y, pred, k).into_iter().flatten().collect();
    Ok(r.iter().sum::<f64>() / r.len() as f64)
}

/// ROC AUC of `scores` for the positive labels `pos` (Mann–Whitney with averaged tie ranks).
pub fn roc_auc(pos: &[bool], scores: &[f64]) -> Result<f64> {
    if pos.len() != scores.len() || pos.is_empty() {
        return Err(Error::Invalid(
            "roc_auc needs equal, non-empty inputs".into(),
        ));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::Invalid(format!(
            "roc_auc: score {i} is not finite ({})",
            scores[i]
        )));
    }
    let n_pos = pos.iter().filter(|p| **p).count();
    let n_neg = pos.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(Error::Invalid(
            "ROC AUC is undefined when only one class is present in the true labels".into(),
        ));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for o in &order[i..=j] {
            if pos[*o] {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    Ok((rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0) / (n_pos as f64 * n_neg as f64))
}

/// The ROC curve of `scores` for the positive labels `pos`: (false, true positive rate) points
/// from (0, 0) to (1, 1), one per distinct score (ties move both rates at once). Errors as
/// [`roc_auc`] does (a non-finite score, one class only).
pub fn roc_curve(pos: &[bool], scores: &[f64]) -> Result<Vec<(f64, f64)>> {
    roc_auc(pos, scores)?;
    let np = pos.iter().filter(|p| **p).count() as f64;
    let nn = pos.len() as f64 - np;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = vec![(0.0, 0.0)];
    for (i, o) in order.iter().enumerate() {
        if pos[*o] {
            tp += 1.0
        } else {
            fp += 1.0
        }
        if i + 1 == order.len() || scores[order[i + 1]] != scores[*o] {
            points.push((fp / nn, tp / np));
        }
    }
    Ok(points)
}

/// Macro average of one-vs-rest AUCs over `k` classes, from `n × k` scores.
pub fn roc_auc_ovr(y: &[usize], scores: &[f64], k: usize) -> Result<f64> {
    let mut total = 0.0;
    for c in 0..k {
        let pos: Vec<bool> = y.iter().map(|v| *v == c).collect();
        let s: Vec<f64> = scores.chunks(k).map(|r| r[c]).collect();
        total += roc_auc(&pos, &s).map_err(|e| Error::Invalid(format!("class {c}: {e}")))?;
    }
    Ok(total / k as f64)
}

/// The paper's metric: ROC AUC (of the class-1 score) for two classes, accuracy otherwise.
pub fn paper_score(y: &[usize], scores: &[f64], k: usize) -> Result<f64> {
    if k == 2 {
        let pos: Vec<bool> = y.iter().map(|v| *v == 1).collect();
        let s: Vec<f64> = scores.chunks(2).map(|r| r[1] - r[0]).collect();
        roc_auc(&pos, &s)
    } else {
        accuracy(y, &argmax_rows(scores, k))
    }
}

/// The name of the paper's metric for `k` classes: `roc_auc` for two, `accuracy` otherwise.
pub fn paper_metric(k: usize) -> &'static str {
    if k == 2 {
        "roc_auc"
    } else {
        "accuracy"
    }
}

/// Images of each of the `k` classes in `y`.
pub fn class_counts(y: &[usize], k: usize) -> Vec<usize> {
    let mut c = vec![0; k];
    for v in y {
        if *v < k {
            c[*v] += 1;
        }
    }
    c
}

/// Whether the paper's metric is defined on labels `y` of `k` classes: ROC AUC needs both
/// classes; accuracy needs rows.
pub fn paper_score_defined(y: &[usize], k: usize) -> bool {
    if k == 2 {
        class_counts(y, 2).iter().all(|c| *c > 0)
    } else {
        !y.is_empty()
    }
}

/// The paper's metric where it is defined on `y`, else accuracy: `(score, metric name)`. For a
/// test or validation set that holds one class of two, where ROC AUC does not exist.
pub fn paper_score_or_accuracy(
    y: &[usize],
    scores: &[f64],
    k: usize,
) -> Result<(f64, &'static str)> {
    if paper_score_defined(y, k) {
        Ok((paper_score(y, scores, k)?, paper_metric(k)))
    } else {
        Ok((accuracy(y, &argmax_rows(scores, k))?, "accuracy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_curve_encloses_the_auc_and_refuses_nan() {
        let pos = [true, false, true, true, false, false, true];
        let scores = [0.9, 0.8, 0.8, 0.4, 0.3, 0.3, 0.1];
        let c = roc_curve(&pos, &scores).unwrap();
        assert_eq!(c.first(), Some(&(0.0, 0.0)));
        assert_eq!(c.last(), Some(&(1.0, 1.0)));
        let area: f64 = c
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - roc_auc(&pos, &scores).unwrap()).abs() < 1e-12);
        assert!(roc_curve(&pos, &[0.1, f64::NAN, 0.2, 0.3, 0.4, 0.5, 0.6]).is_err());
    }

    #[test]
    fn auc_with_ties() {
        // sklearn.metrics.roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        assert_eq!(
            roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap(),
            0.75
        );
        // all tied: 0.5
        assert_eq!(
            roc_auc(&[false, true, true], &[1.0, 1.0, 1.0]).unwrap(),
            0.5
        );
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_err());
    }

    #[test]
    fn one_class_falls_back_to_accuracy() {
        let (s, m) =
            paper_score_or_accuracy(&[1, 1, 1], &[0.0, 1.0, 1.0, 0.0, 0.0, 1.0], 2).unwrap();
        assert_eq!((s, m), (2.0 / 3.0, "accuracy"));
        let (s, m) = paper_score_or_accuracy(&[0, 1], &[1.0, 0.0, 0.0, 1.0], 2).unwrap();
        assert_eq!((s, m), (1.0, "roc_auc"));
    }

    #[test]
    fn a_nan_score_is_an_error_not_a_panic() {
        assert!(roc_auc(&[true, false, true], &[f64::NAN, 0.1, 0.2]).is_err());
    }

    #[test]
    fn balanced_accuracy_ignores_absent_classes() {
        assert_eq!(
            balanced_accuracy(&[0, 0, 1, 1], &[0, 1, 1, 1], 3).unwrap(),
            0.75
        );
    }
}
