//! The results table every strategy appends to, average ranks across datasets (the paper's
//! comparison), Table 2, and the Friedman test with the Nemenyi critical difference.
//!
//! A row is an options struct: a script's `r.add(#{ ... })` names its fields, an unknown key is an
//! error with a suggestion, and `score` is required. Rows record how the tuning CV was scored
//! (`scoring`) and why a row is not as the paper would have it (`note`); files written before
//! those columns existed still load (the columns read as empty).

use crate::error::{Context, Error, Result};
use crate::options::Options;
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

crate::options! {
    /// One row of results: what ran on which dataset, and its test score.
    pub struct Row for "results.add" {
        /// Dataset name, as given to `dataset`.
        dataset: String = String::new(),
        /// Strategy of the study, docs/paper.md (`last layer`, `feature selection`, ...).
        strategy: String = String::new(),
        /// Network(s) the features come from.
        network: String = String::new(),
        /// Taps (cut points) of the features.
        taps: String = String::new(),
        /// Classifier name.
        classifier: String = String::new(),
        /// The chosen hyper-parameters, as text.
        params: String = String::new(),
        /// The metric of `score`: `roc_auc` or `accuracy`.
        metric: String = String::new(),
        /// The test score (required).
        score: f64 = f64::NAN,
        /// Number of features.
        n_features: i64 = 0,
        /// Wall-clock seconds.
        seconds: f64 = 0.0,
        /// How the tuning CV scored its folds: `per_fold` or `pooled` (`holdout` for a validation part, empty without tuning).
        scoring: String = String::new(),
        /// Why the row is not as the paper would have it (a one-class test set, pooled CV scores); empty when it is.
        note: String = String::new(),
    }
}

impl Row {
    /// The method a rank is given to: strategy, network and classifier.
    pub fn method(&self) -> String {
        [
            self.strategy.as_str(),
            self.network.as_str(),
            self.classifier.as_str(),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" / ")
    }
}

/// The results table.
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub rows: Vec<Row>,
}

impl Results {
    /// Appends a row given as a JSON object (what `r.add(#{ ... })` passes): unknown keys are
    /// errors naming the closest field, and the score is required.
    pub fn add(&mut self, row: serde_json::Map<String, serde_json::Value>) -> Result<()> {
        crate::options::check_keys::<Row>(row.keys().map(|k| k.as_str()))?;
        if row.get("score").map_or(true, |v| v.is_null()) {
            return Err(Error::Invalid("a result row needs a score".into()));
        }
        self.rows.push(Row::from_object(row)?);
        Ok(())
    }

    /// As a polars table.
    pub fn frame(&self) -> Result<DataFrame> {
        let r = &self.rows;
        let s = |f: fn(&Row) -> String| r.iter().map(f).collect::<Vec<_>>();
        Ok(DataFrame::new(
            r.len(),
            vec![
                Column::new("dataset".into(), s(|x| x.dataset.clone())),
                Column::new("strategy".into(), s(|x| x.strategy.clone())),
                Column::new("network".into(), s(|x| x.network.clone())),
                Column::new("taps".into(), s(|x| x.taps.clone())),
                Column::new("classifier".into(), s(|x| x.classifier.clone())),
                Column::new("params".into(), s(|x| x.params.clone())),
                Column::new("metric".into(), s(|x| x.metric.clone())),
                Column::new(
                    "score".into(),
                    r.iter().map(|x| x.score).collect::<Vec<_>>(),
                ),
                Column::new(
                    "n_features".into(),
                    r.iter().map(|x| x.n_features).collect::<Vec<_>>(),
                ),
                Column::new(
                    "seconds".into(),
                    r.iter().map(|x| x.seconds).collect::<Vec<_>>(),
                ),
                Column::new("scoring".into(), s(|x| x.scoring.clone())),
                Column::new("note".into(), s(|x| x.note.clone())),
            ],
        )?)
    }

    /// Saves as `.parquet` or `.csv`.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).at(d)?;
        }
        let mut df = self.frame()?;
        let file = std::fs::File::create(path).at(path)?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => ParquetWriter::new(file)
                .finish(&mut df)
                .map(|_| ())
                .map_err(|e| Error::file(path, e)),
            Some("csv") => CsvWriter::new(file)
                .finish(&mut df)
                .map_err(|e| Error::file(path, e)),
            _ => Err(Error::file(path, "results files end in .parquet or .csv")),
        }
    }

    /// Loads a table written by [`Results::save`].
    pub fn load(path: &Path) -> Result<Results> {
        let file = std::fs::File::open(path).at(path)?;
        let df = match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => ParquetReader::new(file)
                .finish()
                .map_err(|e| Error::file(path, e))?,
            Some("csv") => CsvReader::new(file)
                .finish()
                .map_err(|e| Error::file(path, e))?,
            _ => return Err(Error::file(path, "results files end in .parquet or .csv")),
        };
        let strs = |n: &str| -> Result<Vec<String>> {
            let c = df
                .column(n)
                .map_err(|_| Error::file(path, format!("no column {n:?}")))?
                .cast(&DataType::String)?;
            Ok(c.str()?
                .iter()
                .map(|v| v.unwrap_or("").to_string())
                .collect())
        };
        let nums = |n: &str| -> Result<Vec<f64>> {
            let c = df
                .column(n)
                .map_err(|_| Error::file(path, format!("no column {n:?}")))?
                .cast(&DataType::Float64)?;
            Ok(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        };
        let (d, st, ne, ta, cl, pa, me) = (
            strs("dataset")?,
            strs("strategy")?,
            strs("network")?,
            strs("taps")?,
            strs("classifier")?,
            strs("params")?,
            strs("metric")?,
        );
        let (sc, nf, se) = (nums("score")?, nums("n_features")?, nums("seconds")?);
        // Columns added later: absent from older files, read as empty.
        let optional = |n: &str| -> Result<Vec<String>> {
            if df.column(n).is_ok() {
                strs(n)
            } else {
                Ok(vec![String::new(); d.len()])
            }
        };
        let (sg, no) = (optional("scoring")?, optional("note")?);
        let rows = (0..d.len())
            .map(|i| Row {
                dataset: d[i].clone(),
                strategy: st[i].clone(),
                network: ne[i].clone(),
                taps: ta[i].clone(),
                classifier: cl[i].clone(),
                params: pa[i].clone(),
                metric: me[i].clone(),
                score: sc[i],
                n_features: nf[i] as i64,
                seconds: se[i],
                scoring: sg[i].clone(),
                note: no[i].clone(),
            })
            .collect();
        Ok(Results { rows })
    }

    /// The datasets that have rows, sorted.
    pub fn datasets(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| r.dataset.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Best score per (method, dataset).
    fn best_scores(
        &self,
        method: impl Fn(&Row) -> String,
    ) -> BTreeMap<String, BTreeMap<String, f64>> {
        let mut m: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for r in &self.rows {
            let e = m
                .entry(method(r))
                .or_default()
                .entry(r.dataset.clone())
                .or_insert(f64::NEG_INFINITY);
            *e = e.max(r.score);
        }
        m
    }

    /// Each method's rank per dataset (best = number of methods, ties averaged) and the mean rank,
    /// over the datasets where every method has a score. Sorted by mean rank, best first.
    pub fn ranks(&self) -> Result<Ranks> {
        // A NaN score would silently rank last (max() skips it): say which row holds it instead.
        if let Some((i, r)) = self.rows.iter().enumerate().find(|(_, r)| r.score.is_nan()) {
            return Err(Error::Invalid(format!(
                "ranks: row {i} ({} on {:?}) has score NaN; fix or leave out that row",
                r.method(),
                r.dataset
            )));
        }
        let best = self.best_scores(|r| r.method());
        let methods: Vec<String> = best.keys().cloned().collect();
        let datasets: Vec<String> = self
            .datasets()
            .into_iter()
            .filter(|d| best.values().all(|m| m.contains_key(d)))
            .collect();
        if methods.len() < 2 || datasets.is_empty() {
            return Err(Error::Invalid(format!("ranks need ≥ 2 methods scored on a common dataset ({} methods, {} common datasets)", methods.len(), datasets.len())));
        }
        let table: Vec<Vec<f64>> = datasets
            .iter()
            .map(|d| methods.iter().map(|m| best[m][d]).collect())
            .collect();
        Ok(Ranks::from_scores(methods, datasets, &table))
    }

    /// Table 2: best score per strategy (rows) and dataset (columns), as markdown.
    pub fn table2(&self) -> String {
        let best = self.best_scores(|r| r.strategy.clone());
        let datasets = self.datasets();
        let mut s = format!(
            "| Strategy | {} |\n|---|{}\n",
            datasets.join(" | "),
            "---|".repeat(datasets.len())
        );
        for (strategy, per) in &best {
            let cells: Vec<String> = datasets
                .iter()
                .map(|d| per.get(d).map_or("–".into(), |v| format!("{v:.4}")))
                .collect();
            s += &format!("| {strategy} | {} |\n", cells.join(" | "));
        }
        s
    }
}

/// Average ranks of methods over datasets.
#[derive(Clone, Debug)]
pub struct Ranks {
    pub methods: Vec<String>,
    pub datasets: Vec<String>,
    /// `ranks[d][m]`.
    pub ranks: Vec<Vec<f64>>,
    pub mean: Vec<f64>,
}

impl Ranks {
    /// Methods by mean rank, best first, with each dataset's rank.
    pub fn frame(&self) -> Result<DataFrame> {
        use polars::prelude::Column;
        let sorted = self.sorted();
        let mut cols = vec![
            Column::new(
                "method".into(),
                sorted.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "mean_rank".into(),
                sorted.iter().map(|s| s.1).collect::<Vec<_>>(),
            ),
        ];
        for (d, name) in self.datasets.iter().enumerate() {
            let v: Vec<f64> = sorted
                .iter()
                .map(|(m, _)| {
                    self.methods
                        .iter()
                        .position(|x| x == m)
                        .map_or(f64::NAN, |i| self.ranks[d][i])
                })
                .collect();
            cols.push(Column::new(name.as_str().into(), v));
        }
        Ok(DataFrame::new(sorted.len(), cols)?)
    }
}

/// Ranks of `v` where the highest value gets rank `len` and ties share the average rank.
pub fn rank_row(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        for o in &order[i..=j] {
            r[*o] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

impl Ranks {
    /// Ranks from a `datasets × methods` score table.
    pub fn from_scores(methods: Vec<String>, datasets: Vec<String>, table: &[Vec<f64>]) -> Ranks {
        let ranks: Vec<Vec<f64>> = table.iter().map(|row| rank_row(row)).collect();
        let mean = (0..methods.len())
            .map(|m| ranks.iter().map(|r| r[m]).sum::<f64>() / ranks.len() as f64)
            .collect();
        Ranks {
            methods,
            datasets,
            ranks,
            mean,
        }
    }

    /// Methods by mean rank, best first.
    pub fn sorted(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .methods
            .iter()
            .cloned()
            .zip(self.mean.iter().copied())
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    /// Friedman's chi-square, its p-value, the Iman–Davenport F, and the Nemenyi critical
    /// difference at α = 0.05.
    pub fn friedman(&self) -> Result<Friedman> {
        if self.datasets.len() < 2 {
            return Err(Error::Invalid(format!(
                "the Friedman test needs at least two datasets (have {})",
                self.datasets.len()
            )));
        }
        let n = self.datasets.len() as f64;
        let k = self.methods.len() as f64;
        let sum_sq: f64 = self.mean.iter().map(|r| r * r).sum();
        let chi2 = 12.0 * n / (k * (k + 1.0)) * (sum_sq - k * (k + 1.0).powi(2) / 4.0);
        // Tie correction, as scipy.stats.friedmanchisquare applies it.
        let mut ties = 0.0;
        for row in &self.ranks {
            let mut counts: BTreeMap<u64, f64> = BTreeMap::new();
            for r in row {
                *counts.entry(r.to_bits()).or_default() += 1.0;
            }
            ties += counts.values().map(|t| t * t * t - t).sum::<f64>();
        }
        let c = 1.0 - ties / (n * k * (k * k - 1.0));
        let chi2 = if c > 0.0 { chi2 / c } else { chi2 };
        let p = chi2_sf(chi2, k - 1.0);
        let f = (n - 1.0) * chi2 / (n * (k - 1.0) - chi2);
        let q = nemenyi_q(k as usize).ok_or_else(|| {
            Error::Invalid(format!(
                "the Nemenyi critical difference is tabulated for 2 to 50 methods (have {k}); rank fewer methods"
            ))
        })?;
        let cd = q * (k * (k + 1.0) / (6.0 * n)).sqrt();
        Ok(Friedman {
            chi2,
            p_value: p,
            iman_davenport: f,
            critical_difference: cd,
        })
    }
}

/// Friedman test results.
#[derive(Clone, Debug)]
pub struct Friedman {
    pub chi2: f64,
    pub p_value: f64,
    pub iman_davenport: f64,
    pub critical_difference: f64,
}

/// Studentized range q_0.05 / √2 for k methods: Demšar (2006), Table 5a, for k ≤ 20, and
/// `scipy.stats.studentized_range.ppf(0.95, k, inf) / √2` beyond (to three decimals, as the
/// table). `None` past the table's end: a smaller q would understate the difference.
fn nemenyi_q(k: usize) -> Option<f64> {
    const Q: [f64; 49] = [
        1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164, 3.219, 3.268, 3.313, 3.354,
        3.391, 3.426, 3.458, 3.489, 3.517, 3.544, 3.569, 3.593, 3.616, 3.637, 3.658, 3.678, 3.696,
        3.714, 3.732, 3.749, 3.765, 3.780, 3.795, 3.810, 3.824, 3.837, 3.850, 3.863, 3.876, 3.888,
        3.899, 3.911, 3.922, 3.933, 3.943, 3.954, 3.964, 3.973, 3.983, 3.992,
    ];
    k.checked_sub(2).and_then(|i| Q.get(i)).copied()
}

/// Upper tail of the chi-square distribution (regularised incomplete gamma).
pub fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    1.0 - gamma_p(dof / 2.0, x / 2.0)
}

fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

fn gamma_p(a: f64, x: f64) -> f64 {
    if x < a + 1.0 {
        let (mut sum, mut term, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        sum * (-x + a * x.ln() - ln_gamma(a)).exp()
    } else {
        // Continued fraction for Q, then P = 1 - Q.
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / 1e-300;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < 1e-300 {
                d = 1e-300;
            }
            c = b + an / c;
            if c.abs() < 1e-300 {
                c = 1e-300;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        1.0 - (-x + a * x.ln() - ln_gamma(a)).exp() * h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties_and_best_is_highest() {
        assert_eq!(rank_row(&[0.9, 0.8, 0.9, 0.1]), vec![3.5, 2.0, 3.5, 1.0]);
    }

    #[test]
    fn a_nan_score_is_an_error_naming_its_row() {
        let row = |strategy: &str, score: f64| Row {
            dataset: "a".into(),
            strategy: strategy.into(),
            score,
            ..Default::default()
        };
        let r = Results {
            rows: vec![row("s", 0.5), row("t", f64::NAN)],
        };
        let e = r.ranks().unwrap_err().to_string();
        assert_eq!(
            e,
            "ranks: row 1 (t on \"a\") has score NaN; fix or leave out that row"
        );
    }

    #[test]
    fn chi2_tail_matches_known_values() {
        // scipy.stats.chi2.sf(3.84, 1) = 0.05004352; chi2.sf(10, 4) = 0.04042768
        assert!((chi2_sf(3.84, 1.0) - 0.050_043_52).abs() < 1e-6);
        assert!((chi2_sf(10.0, 4.0) - 0.040_427_68).abs() < 1e-6);
    }

    fn row(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_row_needs_a_score_and_known_keys() {
        let mut r = Results::default();
        let e = r
            .add(row(serde_json::json!({ "dataset": "x" })))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "a result row needs a score");
        let e = r
            .add(row(serde_json::json!({ "scor": 0.5 })))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown option `scor` for results.add; did you mean `score`?"),
            "{e}"
        );
        r.add(row(
            serde_json::json!({ "dataset": "x", "score": 1, "n_features": 3, "scoring": "pooled" }),
        ))
        .unwrap();
        assert_eq!((r.rows[0].score, r.rows[0].n_features), (1.0, 3));
    }

    #[test]
    fn scoring_and_note_round_trip_and_old_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Results::default();
        r.rows.push(Row {
            dataset: "cohort".into(),
            strategy: "last layer".into(),
            score: 0.75,
            scoring: "pooled".into(),
            note: "test set holds one class".into(),
            ..Default::default()
        });
        for ext in ["parquet", "csv"] {
            let p = dir.path().join(format!("r.{ext}"));
            r.save(&p).unwrap();
            let back = Results::load(&p).unwrap();
            assert_eq!(back.rows[0].scoring, "pooled");
            assert_eq!(back.rows[0].note, "test set holds one class");
            assert_eq!(back.rows[0].score, 0.75);
        }
        // A file from before the scoring and note columns.
        let old = dir.path().join("old.csv");
        std::fs::write(&old, "dataset,strategy,network,taps,classifier,params,metric,score,n_features,seconds\nd,s,n,t,c,p,roc_auc,0.5,3,1.0\n").unwrap();
        let back = Results::load(&old).unwrap();
        assert_eq!(
            (back.rows[0].score, back.rows[0].scoring.as_str()),
            (0.5, "")
        );
    }

    /// Demšar (2006), Table 5(a): q_0.05 of the Nemenyi test for k = 2..10 classifiers, typed
    /// here from the paper rather than copied from the code's table.
    const DEMSAR_Q_005: [f64; 9] = [
        1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164,
    ];

    /// `n` datasets × `k` methods with made-up, untied scores.
    fn ranks(k: usize, n: usize) -> Ranks {
        let table: Vec<Vec<f64>> = (0..n)
            .map(|d| {
                (0..k)
                    .map(|m| ((m * 7 + d * 3) % (k + 1)) as f64 + m as f64 * 1e-3)
                    .collect()
            })
            .collect();
        Ranks::from_scores(
            (0..k).map(|m| format!("m{m}")).collect(),
            (0..n).map(|d| format!("d{d}")).collect(),
            &table,
        )
    }

    #[test]
    fn nemenyi_critical_difference_follows_demsars_table() {
        for (i, q) in DEMSAR_Q_005.iter().enumerate() {
            let k = i + 2;
            for n in [2, 5, 14, 30] {
                let kf = k as f64;
                let want = q * (kf * (kf + 1.0) / (6.0 * n as f64)).sqrt();
                let got = ranks(k, n).friedman().unwrap().critical_difference;
                assert!(
                    (got - want).abs() < 1e-12,
                    "k {k}, N {n}: CD {got}, Demšar {want}"
                );
            }
        }
        // Demšar's worked example (section 3.2.4): four classifiers on 14 data sets, CD = 1.25.
        let cd = ranks(4, 14).friedman().unwrap().critical_difference;
        assert!((cd - 1.25).abs() < 0.005, "{cd}");
        // Beyond Demšar's table, q grows on (scipy.stats.studentized_range.ppf(0.95, k, inf) / √2
        // = 3.5690 for k = 21, 3.9923 for k = 50): it never stays at the last tabulated value.
        for (k, q) in [(21, 3.5690), (50, 3.9923)] {
            let kf = k as f64;
            let want = q * (kf * (kf + 1.0) / (6.0 * 8.0)).sqrt();
            let got = ranks(k, 8).friedman().unwrap().critical_difference;
            assert!(
                (got / want - 1.0).abs() < 2e-4,
                "k {k}: CD {got}, want {want}"
            );
        }
        let e = ranks(51, 8).friedman().unwrap_err().to_string();
        assert!(e.contains("2 to 50 methods (have 51)"), "{e}");
    }

    #[test]
    fn nan_scores_never_panic_a_sort() {
        assert_eq!(rank_row(&[0.5, f64::NAN, 0.7]).len(), 3);
    }
}
