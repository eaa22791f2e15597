//! Feature sets: a dense f32 matrix with image ids, labels, slides and per-column provenance;
//! extraction from a network, the on-disk cache, PCA, and parquet/safetensors files.

pub mod cache;
pub mod claims;
pub mod extract;
pub mod io;
pub mod pca;

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Where one feature column comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Column {
    pub network: String,
    pub tap: String,
    pub reduce: String,
    pub channel: usize,
}

impl Column {
    /// `network/tap/reduce/channel`, the column name in files.
    pub fn name(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.network, self.tap, self.reduce, self.channel
        )
    }

    /// Parses [`Column::name`]; other names become a column of network "?".
    pub fn parse(name: &str) -> Column {
        let parts: Vec<&str> = name.rsplitn(4, '/').collect();
        if parts.len() == 4 {
            if let Ok(ch) = parts[0].parse() {
                return Column {
                    network: parts[3].into(),
                    tap: parts[2].into(),
                    reduce: parts[1].into(),
                    channel: ch,
                };
            }
        }
        Column {
            network: "?".into(),
            tap: name.into(),
            reduce: String::new(),
            channel: 0,
        }
    }
}

/// Images × features, with everything needed to learn and to keep slides apart.
#[derive(Clone, Debug)]
pub struct FeatureSet {
    /// Row-major `n × d`.
    pub x: Arc<Vec<f32>>,
    pub n: usize,
    pub d: usize,
    pub ids: Vec<String>,
    pub labels: Vec<usize>,
    pub slides: Vec<String>,
    pub classes: Vec<String>,
    pub columns: Arc<Vec<Column>>,
    /// Images whose features were computed (not read from the cache) when this set was made.
    pub computed: usize,
    /// Seconds the network waited for decoded images while computing them (≈ 0 when compute-bound).
    pub input_wait: f64,
    /// Images missing when this set was asked for that other processes sharing the cache computed.
    pub waited: usize,
}

impl FeatureSet {
    /// Builds a set, checking that all parts agree in length.
    pub fn new(
        x: Vec<f32>,
        ids: Vec<String>,
        labels: Vec<usize>,
        slides: Vec<String>,
        classes: Vec<String>,
        columns: Vec<Column>,
    ) -> Result<FeatureSet> {
        let (n, d) = (ids.len(), columns.len());
        if x.len() != n * d || labels.len() != n || slides.len() != n {
            return Err(Error::Invalid(format!(
                "feature set parts disagree: {} values for {n} rows × {d} columns, {} labels, {} slides",
                x.len(),
                labels.len(),
                slides.len()
            )));
        }
        Ok(FeatureSet {
            x: Arc::new(x),
            n,
            d,
            ids,
            labels,
            slides,
            classes,
            columns: Arc::new(columns),
            computed: 0,
            input_wait: 0.0,
            waited: 0,
        })
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// `[rows, columns]`.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.d)
    }

    /// The rows at `idx` (positions in this set, e.g. a split's train indices).
    pub fn subset(&self, idx: &[usize]) -> Result<FeatureSet> {
        if let Some(bad) = idx.iter().find(|i| **i >= self.n) {
            return Err(Error::Invalid(format!(
                "row {bad} out of range: the feature set has {} rows",
                self.n
            )));
        }
        let mut x = Vec::with_capacity(idx.len() * self.d);
        for i in idx {
            x.extend_from_slice(self.row(*i));
        }
        let pick = |v: &Vec<String>| idx.iter().map(|i| v[*i].clone()).collect();
        let mut f = FeatureSet::new(
            x,
            pick(&self.ids),
            idx.iter().map(|i| self.labels[*i]).collect(),
            pick(&self.slides),
            self.classes.clone(),
            (*self.columns).clone(),
        )?;
        f.computed = self.computed;
        Ok(f)
    }

    /// The same images with other columns.
    fn with_columns(&self, x: Vec<f32>, columns: Vec<Column>) -> Result<FeatureSet> {
        FeatureSet::new(
            x,
            self.ids.clone(),
            self.labels.clone(),
            self.slides.clone(),
            self.classes.clone(),
            columns,
        )
    }

    /// One row per slide: the mean (or max) of its rows, in order of first appearance; the
    /// slide's label is its most frequent row label (ties: the lowest class), its id the slide.
    pub fn pool_by_slide(&self, how: &str) -> Result<FeatureSet> {
        let max = match how {
            "mean" => false,
            "max" => true,
            other => {
                return Err(Error::Invalid(format!(
                    "pool_by_slide: \"mean\" or \"max\", got {other:?}"
                )))
            }
        };
        let mut order: Vec<&str> = Vec::new();
        let mut rows: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, s) in self.slides.iter().enumerate() {
            rows.entry(s.as_str())
                .or_insert_with(|| {
                    order.push(s.as_str());
                    Vec::new()
                })
                .push(i);
        }
        let mut x = Vec::with_capacity(order.len() * self.d);
        let mut labels = Vec::with_capacity(order.len());
        for s in &order {
            let r = &rows[s];
            let mut acc = if max {
                vec![f32::NEG_INFINITY; self.d]
            } else {
                vec![0f32; self.d]
            };
            for i in r {
                for (a, v) in acc.iter_mut().zip(self.row(*i)) {
                    *a = if max { a.max(*v) } else { *a + v };
                }
            }
            if !max {
                acc.iter_mut().for_each(|a| *a /= r.len() as f32);
            }
            x.extend(acc);
            let mut counts = vec![0usize; self.classes.len()];
            r.iter().for_each(|i| counts[self.labels[*i]] += 1);
            let best = (0..counts.len())
                .max_by_key(|c| (counts[*c], std::cmp::Reverse(*c)))
                .unwrap_or(0);
            labels.push(best);
        }
        let names: Vec<String> = order.iter().map(|s| s.to_string()).collect();
        FeatureSet::new(
            x,
            names.clone(),
            labels,
            names,
            self.classes.clone(),
            (*self.columns).clone(),
        )
    }

    /// The columns at `cols`, in that order.
    pub fn select_columns(&self, cols: &[usize]) -> Result<FeatureSet> {
        if let Some(bad) = cols.iter().find(|c| **c >= self.d) {
            return Err(Error::Invalid(format!(
                "column {bad} out of range: the feature set has {} columns",
                self.d
            )));
        }
        let mut x = Vec::with_capacity(self.n * cols.len());
        for i in 0..self.n {
            let r = self.row(i);
            x.extend(cols.iter().map(|c| r[*c]));
        }
        let columns = cols.iter().map(|c| self.columns[*c].clone()).collect();
        self.with_columns(x, columns)
    }

    /// Columns whose network and/or tap match (empty filter = any).
    pub fn select(&self, network: Option<&str>, tap: Option<&str>) -> Result<FeatureSet> {
        let cols: Vec<usize> = (0..self.d)
            .filter(|c| {
                let col = &self.columns[*c];
                network.is_none_or(|n| col.network == n) && tap.is_none_or(|t| col.tap == t)
            })
            .collect();
        if cols.is_empty() {
            return Err(Error::Invalid(format!(
                "no column matches network {network:?}, tap {tap:?}; taps here: {:?}",
                self.taps()
            )));
        }
        self.select_columns(&cols)
    }

    /// Distinct taps, in column order.
    pub fn taps(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.columns.iter() {
            if !out.contains(&c.tap) {
                out.push(c.tap.clone());
            }
        }
        out
    }

    /// Columns of `self` then `other`, for the same images (matched by id, any order).
    pub fn merge(&self, other: &FeatureSet) -> Result<FeatureSet> {
        if self.n != other.n {
            return Err(Error::Invalid(format!(
                "merge needs the same images: {} rows vs {}",
                self.n, other.n
            )));
        }
        let pos: HashMap<&str, usize> = other
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut x = Vec::with_capacity(self.n * (self.d + other.d));
        for i in 0..self.n {
            let j = *pos.get(self.ids[i].as_str()).ok_or_else(|| {
                Error::Invalid(format!(
                    "merge: image {} is missing from the other set",
                    self.ids[i]
                ))
            })?;
            x.extend_from_slice(self.row(i));
            x.extend_from_slice(other.row(j));
        }
        let mut columns = (*self.columns).clone();
        for c in other.columns.iter() {
            if columns.contains(c) {
                return Err(Error::Invalid(format!(
                    "merge: column {} is in both sets",
                    c.name()
                )));
            }
            columns.push(c.clone());
        }
        self.with_columns(x, columns)
    }

    /// One line for the prompt.
    pub fn describe(&self) -> String {
        let nets: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for c in self.columns.iter() {
                if !v.contains(&c.network) {
                    v.push(c.network.clone());
                }
            }
            v
        };
        format!(
            "FeatureSet: {} images × {} features ({} classes, {} slides) from {} tap(s) of {}",
            self.n,
            self.d,
            self.classes.len(),
            self.slides
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            self.taps().len(),
            nets.join(" + ")
        )
    }
}
