//! Slide-wise splits and cross-validation folds. A slide never sits on two sides of a split or a
//! fold unless the user opted out explicitly, and every split can print its audit.

use crate::error::{Error, Result};
use crate::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Assigns whole slides to `targets.len()` bins so that each bin gets about `targets[b]` of every
/// class (greedy, biggest slides first, ties broken by the seed). Returns each item's bin.
pub fn assign_slides(
    slides: &[String],
    labels: &[usize],
    targets: &[f64],
    seed: u64,
) -> Vec<usize> {
    let n_classes = labels.iter().max().map_or(1, |m| m + 1);
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in slides.iter().enumerate() {
        groups.entry(s.as_str()).or_default().push(i);
    }
    let mut order: Vec<(&str, Vec<usize>)> = groups.into_iter().collect();
    Rng::new(seed).shuffle(&mut order);
    order.sort_by_key(|(_, items)| std::cmp::Reverse(items.len()));
    let mut class_total = vec![0.0; n_classes];
    for l in labels {
        class_total[*l] += 1.0;
    }
    let total: f64 = labels.len() as f64;
    let mut counts = vec![vec![0.0; n_classes]; targets.len()];
    let mut sizes = vec![0.0; targets.len()];
    let mut bin_of = vec![0; labels.len()];
    for (_, items) in order {
        let mut gc = vec![0.0; n_classes];
        for i in &items {
            gc[labels[*i]] += 1.0;
        }
        let g = items.len() as f64;
        let mut best = (f64::INFINITY, 0);
        for (b, t) in targets.iter().enumerate() {
            if *t <= 0.0 {
                continue;
            }
            // Change in squared deviation from the bin's target, per class and in size.
            let mut cost = 0.0;
            for c in 0..n_classes {
                let want = t * class_total[c];
                cost += (counts[b][c] + gc[c] - want).powi(2) - (counts[b][c] - want).powi(2);
            }
            let want = t * total;
            cost += (sizes[b] + g - want).powi(2) - (sizes[b] - want).powi(2);
            if cost < best.0 {
                best = (cost, b);
            }
        }
        let b = best.1;
        for i in &items {
            bin_of[*i] = b;
            counts[b][labels[*i]] += 1.0;
        }
        sizes[b] += g;
    }
    bin_of
}

/// Names of the slides that appear in both index sets.
pub fn shared_slides(slides: &[String], a: &[usize], b: &[usize]) -> Vec<String> {
    let sa: BTreeSet<&str> = a.iter().map(|i| slides[*i].as_str()).collect();
    let sb: BTreeSet<&str> = b.iter().map(|i| slides[*i].as_str()).collect();
    sa.intersection(&sb).map(|s| s.to_string()).collect()
}

crate::choice! {
    /// What a split keeps together.
    pub enum SplitBy {
        /// Whole slides: no slide on two sides.
        Slide = "slide",
        /// Single images (a slide may end up on two sides: needs allow_slide_leakage).
        Image = "image",
    }
}

crate::options! {
    /// Options of [`Split::new`] (`data.split(#{ ... })`).
    pub struct SplitOptions for "split" {
        /// Fraction of the data for training.
        train: f64 = 0.6,
        /// Fraction for validation.
        val: f64 = 0.2,
        /// Fraction for testing.
        test: f64 = 0.2,
        /// What stays together.
        by: SplitBy = SplitBy::Slide,
        /// Keep each class's share in every part, as far as slides allow.
        stratify: bool = true,
        /// Seed of the slide assignment.
        seed: u64 = 0,
        /// Accept a slide on two sides (only sensible with by: "image").
        allow_slide_leakage: bool = false,
    }
}

/// A train / validation / test partition of a dataset's images (indices into the dataset).
#[derive(Clone, Debug)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    slides: Vec<String>,
    labels: Vec<usize>,
    classes: Vec<String>,
    pub leakage_allowed: bool,
}

impl Split {
    /// Splits by the manifest's split column when every image has one, else by slide with the
    /// given fractions.
    pub fn new(ds: &super::Dataset, o: &SplitOptions) -> Result<Split> {
        let slides: Vec<String> = ds.items.iter().map(|i| i.slide.clone()).collect();
        let labels = ds.labels();
        let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
        if !ds.items.is_empty() && ds.items.iter().all(|i| i.split.is_some()) {
            for (i, it) in ds.items.iter().enumerate() {
                match it.split.as_deref().unwrap().to_ascii_lowercase().as_str() {
                    "train" => train.push(i),
                    "val" | "valid" | "validation" => val.push(i),
                    "test" => test.push(i),
                    other => {
                        return Err(Error::Invalid(format!(
                            "{}: unknown split {other:?} (train, val, test)",
                            it.path.display()
                        )))
                    }
                }
            }
        } else {
            let sum = o.train + o.val + o.test;
            if !(sum > 0.0) || o.train < 0.0 || o.val < 0.0 || o.test < 0.0 {
                return Err(Error::Invalid(format!(
                    "split fractions must be ≥ 0 and not all zero (got {}, {}, {})",
                    o.train, o.val, o.test
                )));
            }
            let targets = [o.train / sum, o.val / sum, o.test / sum];
            if o.by == SplitBy::Image && !o.allow_slide_leakage {
                return Err(Error::Invalid(
                    "by: \"image\" can put a slide on both sides; add allow_slide_leakage: true to accept that".into(),
                ));
            }
            let groups: Vec<String> = if o.by == SplitBy::Slide {
                slides.clone()
            } else {
                (0..slides.len()).map(|i| i.to_string()).collect()
            };
            let strat_labels: Vec<usize> = if o.stratify {
                labels.clone()
            } else {
                vec![0; labels.len()]
            };
            for (i, b) in assign_slides(&groups, &strat_labels, &targets, o.seed)
                .into_iter()
                .enumerate()
            {
                [&mut train, &mut val, &mut test][b].push(i);
            }
        }
        let s = Split {
            train,
            val,
            test,
            slides,
            labels,
            classes: ds.classes.clone(),
            leakage_allowed: o.allow_slide_leakage,
        };
        s.check()?;
        Ok(s)
    }

    /// Errors when a slide sits in two parts, unless leakage was allowed explicitly.
    pub fn check(&self) -> Result<()> {
        if self.leakage_allowed {
            return Ok(());
        }
        let pairs = [
            ("train", &self.train, "val", &self.val),
            ("train", &self.train, "test", &self.test),
            ("val", &self.val, "test", &self.test),
        ];
        for (na, a, nb, b) in pairs {
            let shared = shared_slides(&self.slides, a, b);
            if !shared.is_empty() {
                return Err(Error::SlideLeakage(format!(
                    "{} slide(s) in both {na} and {nb}: {}{} (set allow_slide_leakage: true to accept this)",
                    shared.len(),
                    shared.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                    if shared.len() > 5 { ", …" } else { "" }
                )));
            }
        }
        Ok(())
    }

    /// Train and validation indices together (what the paper tunes on).
    pub fn train_val(&self) -> Vec<usize> {
        let mut v = self.train.clone();
        v.extend(&self.val);
        v.sort();
        v
    }

    /// A printable audit: images, slides and class counts per part, and shared slides.
    pub fn audit(&self) -> String {
        let mut s = format!(
            "{:<6} {:>7} {:>7}  per class ({})\n",
            "part",
            "images",
            "slides",
            self.classes.join(", ")
        );
        for (name, idx) in [
            ("train", &self.train),
            ("val", &self.val),
            ("test", &self.test),
        ] {
            let n_sl = idx
                .iter()
                .map(|i| &self.slides[*i])
                .collect::<BTreeSet<_>>()
                .len();
            let mut per = vec![0; self.classes.len()];
            for i in idx.iter() {
                per[self.labels[*i]] += 1;
            }
            s += &format!("{name:<6} {:>7} {n_sl:>7}  {per:?}\n", idx.len());
        }
        let leaks = shared_slides(&self.slides, &self.train, &self.test).len()
            + shared_slides(&self.slides, &self.train, &self.val).len()
            + shared_slides(&self.slides, &self.val, &self.test).len();
        s += &if leaks == 0 {
            "no slide is shared between parts".to_string()
        } else {
            format!("WARNING: {leaks} slide(s) shared between parts (leakage allowed explicitly)")
        };
        s
    }
}

/// Cross-validation by slide.
#[derive(Clone, Debug, PartialEq)]
pub enum Cv {
    /// `k` folds of whole slides, stratified by class as far as slides allow.
    SlideKFold { k: usize, seed: u64 },
    /// One fold per slide.
    LeaveOneSlideOut,
}

impl Cv {
    /// `(train, test)` index pairs over rows with these slides and labels; checked for leakage.
    pub fn folds(
        &self,
        slides: &[String],
        labels: &[usize],
    ) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
        let distinct: BTreeSet<&str> = slides.iter().map(|s| s.as_str()).collect();
        let bins = match self {
            Cv::SlideKFold { k, seed } => {
                if *k < 2 {
                    return Err(Error::Invalid(format!("slide_kfold needs k ≥ 2 (got {k})")));
                }
                if *k > distinct.len() {
                    return Err(Error::Invalid(format!(
                        "slide_kfold({k}) needs at least {k} slides; the data has {}",
                        distinct.len()
                    )));
                }
                let targets = vec![1.0 / *k as f64; *k];
                (assign_slides(slides, labels, &targets, *seed), *k)
            }
            Cv::LeaveOneSlideOut => {
                let names: Vec<&str> = distinct.iter().copied().collect();
                (
                    slides
                        .iter()
                        .map(|s| names.binary_search(&s.as_str()).unwrap())
                        .collect(),
                    names.len(),
                )
            }
        };
        let (bin_of, k) = bins;
        let mut folds = Vec::new();
        for f in 0..k {
            let test: Vec<usize> = (0..slides.len()).filter(|i| bin_of[*i] == f).collect();
            let train: Vec<usize> = (0..slides.len()).filter(|i| bin_of[*i] != f).collect();
            if test.is_empty() {
                continue;
            }
            let shared = shared_slides(slides, &train, &test);
            if !shared.is_empty() {
                return Err(Error::SlideLeakage(format!(
                    "fold {f} shares slides {shared:?}"
                )));
            }
            folds.push((train, test));
        }
        Ok(folds)
    }

    /// A short description.
    pub fn describe(&self) -> String {
        match self {
            Cv::SlideKFold { k, seed } => format!("slide_kfold({k}, seed {seed})"),
            Cv::LeaveOneSlideOut => "leave_one_slide_out()".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_data(seed: u64) -> (Vec<String>, Vec<usize>) {
        let mut r = Rng::new(seed);
        let n_slides = 3 + r.below(40);
        let n_classes = 2 + r.below(4);
        let mut slides = Vec::new();
        let mut labels = Vec::new();
        for s in 0..n_slides {
            let main = r.below(n_classes);
            for _ in 0..1 + r.below(12) {
                slides.push(format!("s{s}"));
                labels.push(if r.below(4) == 0 {
                    r.below(n_classes)
                } else {
                    main
                });
            }
        }
        (slides, labels)
    }

    #[test]
    fn folds_never_share_a_slide_and_are_deterministic() {
        for seed in 0..200 {
            let (slides, labels) = random_data(seed);
            let n_slides = slides.iter().collect::<BTreeSet<_>>().len();
            let k = 2 + (seed as usize % n_slides.saturating_sub(1).max(1)).min(8);
            let cv = Cv::SlideKFold {
                k: k.min(n_slides),
                seed,
            };
            let folds = cv.folds(&slides, &labels).unwrap();
            let mut seen = vec![0; slides.len()];
            for (train, test) in &folds {
                assert!(shared_slides(&slides, train, test).is_empty());
                assert_eq!(train.len() + test.len(), slides.len());
                for t in test {
                    seen[*t] += 1;
                }
            }
            assert!(
                seen.iter().all(|s| *s == 1),
                "each row is tested exactly once"
            );
            assert_eq!(folds, cv.folds(&slides, &labels).unwrap());
        }
    }

    #[test]
    fn stratification_follows_the_classes_when_slides_allow() {
        // 40 single-class slides of 5 images, two classes 3:1; 4 folds get ~3:1 each.
        let slides: Vec<String> = (0..200).map(|i| format!("s{}", i / 5)).collect();
        let labels: Vec<usize> = (0..200).map(|i| usize::from((i / 5) % 4 == 0)).collect();
        let folds = Cv::SlideKFold { k: 4, seed: 1 }
            .folds(&slides, &labels)
            .unwrap();
        for (_, test) in folds {
            let ones = test.iter().filter(|i| labels[**i] == 1).count();
            assert_eq!(test.len(), 50);
            assert!((10..=15).contains(&ones), "{ones}");
        }
    }

    #[test]
    fn leave_one_slide_out_has_one_fold_per_slide() {
        let (slides, labels) = random_data(5);
        let n = slides.iter().collect::<BTreeSet<_>>().len();
        assert_eq!(
            Cv::LeaveOneSlideOut.folds(&slides, &labels).unwrap().len(),
            n
        );
    }
}
