//! Slide-wise splits and cross-validation folds. A slide never sits on two sides of a split or a
//! fold unless the user opted out explicitly, and every split can print its audit.
//!
//! Whole slides are stratified: every part (a fold's test part; train, val and test of a split)
//! holds every class whenever the slides allow it, and then the class proportions and sizes follow
//! the targets. "Whenever the slides allow it", precisely: a slide's *dominant class* is its most
//! frequent label (ties: the lower class index); a class that is dominant in at least as many
//! slides as there are parts (k for `slide_kfold(k)`; the parts of a split with a non-zero
//! fraction) is in every part. With one label per slide, the usual case (labels per patient), that
//! is every case where it is possible at all. A class with fewer slides cannot be in every part:
//! its slides go to distinct parts (the largest deficit first, so a split's train part first), and
//! [`Folds::shortfall`] and [`Split::warnings`] say so once, with the numbers. The assignment is
//! deterministic by seed (the seed orders slides of equal size).
//!
//! What a score over folds that lack a class should be is the learner's business; the folds carry
//! the [`Scoring`] asked for and what every test part holds.

use crate::error::{Error, Result};
use crate::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};

crate::choice! {
    /// How cross-validation turns the folds' predictions into one score.
    pub enum Scoring {
        /// Per fold when every fold's score exists; pooled otherwise, with a warning saying why.
        Auto = "auto",
        /// One score over all out-of-fold predictions (scikit-learn's `cross_val_predict`, then the metric).
        Pooled = "pooled",
        /// The mean of the folds' scores (scikit-learn's `cross_val_score`); an error naming the fold when one does not exist.
        PerFold = "per_fold",
    }
}

crate::options! {
    /// Options of `slide_kfold(k, #{ seed, scoring })` (and of `leave_one_slide_out`).
    pub struct CvOptions for "slide_kfold" {
        /// Seed of the slide assignment (orders slides of equal size).
        seed: u64 = 0,
        /// "auto" (per fold when every fold's score exists, else pooled with a warning), "pooled" or "per_fold".
        scoring: Scoring = Scoring::Auto,
    }
}

/// Each group's (slide's) most frequent label; ties go to the lower label.
fn dominant(items: &[usize], labels: &[usize], n_classes: usize) -> usize {
    let mut c = vec![0usize; n_classes];
    for i in items {
        c[labels[*i]] += 1;
    }
    (0..n_classes).fold(0, |b, k| if c[k] > c[b] { k } else { b })
}

/// Assigns whole slides to `targets.len()` bins; returns each item's bin. First, for every class
/// (the one with the fewest slides first), its largest slides where it is the dominant class go
/// one to each bin with a non-zero target that lacks the class, the bin furthest below its target
/// size first; then every other slide, biggest first, goes where it brings the per-class counts
/// and the size closest to the targets (squared deviation). Ties are broken by the seed.
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
    let mut order: Vec<Vec<usize>> = groups.into_values().collect();
    Rng::new(seed).shuffle(&mut order);
    order.sort_by_key(|items| std::cmp::Reverse(items.len()));
    let mut class_total = vec![0.0; n_classes];
    for l in labels {
        class_total[*l] += 1.0;
    }
    let total: f64 = labels.len() as f64;
    let mut bins = Bins {
        counts: vec![vec![0.0; n_classes]; targets.len()],
        sizes: vec![0.0; targets.len()],
        bin_of: vec![0; labels.len()],
    };
    let mut placed = vec![false; order.len()];
    // Cover: one dominant slide of each class per bin, scarcest class first.
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (g, items) in order.iter().enumerate() {
        by_class[dominant(items, labels, n_classes)].push(g);
    }
    let mut classes: Vec<usize> = (0..n_classes)
        .filter(|c| !by_class[*c].is_empty())
        .collect();
    classes.sort_by_key(|c| (by_class[*c].len(), *c));
    for c in classes {
        for &g in &by_class[c] {
            let deficit = |b: &usize| targets[*b] * total - bins.sizes[*b];
            // The first open bin of the largest deficit (max_by keeps the last of equals).
            let best = (0..targets.len())
                .filter(|b| targets[*b] > 0.0 && bins.counts[*b][c] == 0.0)
                .rev()
                .max_by(|a, b| deficit(a).total_cmp(&deficit(b)));
            let Some(b) = best else { break };
            bins.place(&order[g], b, labels);
            placed[g] = true;
        }
    }
    // Balance: every other slide, biggest first.
    for (g, items) in order.iter().enumerate() {
        if placed[g] {
            continue;
        }
        let mut gc = vec![0.0; n_classes];
        for i in items {
            gc[labels[*i]] += 1.0;
        }
        let size = items.len() as f64;
        let mut best = (f64::INFINITY, 0);
        for (b, t) in targets.iter().enumerate() {
            if *t <= 0.0 {
                continue;
            }
            // Change in squared deviation from the bin's target, per class and in size.
            let (counts, sizes) = (&bins.counts, &bins.sizes);
            let mut cost = 0.0;
            for c in 0..n_classes {
                let want = t * class_total[c];
                cost += (counts[b][c] + gc[c] - want).powi(2) - (counts[b][c] - want).powi(2);
            }
            let want = t * total;
            cost += (sizes[b] + size - want).powi(2) - (sizes[b] - want).powi(2);
            if cost < best.0 {
                best = (cost, b);
            }
        }
        bins.place(items, best.1, labels);
    }
    bins.bin_of
}

/// What [`assign_slides`] has put in each bin so far.
struct Bins {
    counts: Vec<Vec<f64>>,
    sizes: Vec<f64>,
    bin_of: Vec<usize>,
}

impl Bins {
    fn place(&mut self, items: &[usize], b: usize, labels: &[usize]) {
        for i in items {
            self.bin_of[*i] = b;
            self.counts[b][labels[*i]] += 1.0;
        }
        self.sizes[b] += items.len() as f64;
    }
}

/// Names of the slides that appear in both index sets.
pub fn shared_slides(slides: &[String], a: &[usize], b: &[usize]) -> Vec<String> {
    let sa: BTreeSet<&str> = a.iter().map(|i| slides[*i].as_str()).collect();
    let sb: BTreeSet<&str> = b.iter().map(|i| slides[*i].as_str()).collect();
    sa.intersection(&sb).map(|s| s.to_string()).collect()
}

/// A class's name, or its index when the names are not known.
fn class_name(classes: &[String], c: usize) -> String {
    classes
        .get(c)
        .cloned()
        .unwrap_or_else(|| format!("class {c}"))
}

/// `"a"`, `"a and b"`, `"a, b and c"`; beyond six, the first five and how many in all.
fn and_list(v: &[String]) -> String {
    if v.len() > 6 {
        return format!("{}, … ({} in all)", v[..5].join(", "), v.len());
    }
    match v {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// One sentence for each class present in the rows that some of the `parts` lacks, with the
/// numbers: `class NotInfected has 2 slides in the 5 slides given; 3 slide folds cannot all hold
/// it (fold 2 lacks it)`. `part_of[i]` is row i's part (parts not listed are not checked), `all`
/// names the parts together, `place` says where the slides were counted.
fn shortfall(
    slides: &[String],
    labels: &[usize],
    part_of: &[usize],
    parts: &[(usize, String)],
    all: &str,
    place: &str,
    classes: &[String],
) -> Vec<String> {
    let n_classes = labels.iter().max().map_or(0, |m| m + 1).max(classes.len());
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in slides.iter().enumerate() {
        groups.entry(s.as_str()).or_default().push(i);
    }
    let mut out = Vec::new();
    for c in 0..n_classes {
        if !labels.contains(&c) {
            continue;
        }
        let lacking: Vec<String> = parts
            .iter()
            .filter(|(p, _)| !(0..labels.len()).any(|i| part_of[i] == *p && labels[i] == c))
            .map(|(_, name)| name.clone())
            .collect();
        if lacking.is_empty() {
            continue;
        }
        let with_c = groups
            .values()
            .filter(|items| items.iter().any(|i| labels[*i] == c));
        let n_slides = with_c.clone().count();
        let n_main = with_c
            .filter(|items| dominant(items, labels, n_classes) == c)
            .count();
        let verb = if lacking.len() == 1 { "lacks" } else { "lack" };
        let name = class_name(classes, c);
        let s = |n: usize| if n == 1 { "" } else { "s" };
        out.push(if n_slides < parts.len() {
            format!(
                "class {name} has {n_slides} slide{} {place}; {all} cannot all hold it ({} {verb} it)",
                s(n_slides),
                and_list(&lacking)
            )
        } else if n_main < parts.len() {
            format!(
                "class {name} is in {n_slides} slides {place} but the main class of only {n_main}; {} {verb} it",
                and_list(&lacking)
            )
        } else {
            format!(
                "class {name} has {n_slides} slides {place}, yet {} {verb} it",
                and_list(&lacking)
            )
        });
    }
    out
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
    check(o) {
        let sum = o.train + o.val + o.test;
        if !(sum > 0.0 && sum.is_finite()) || o.train < 0.0 || o.val < 0.0 || o.test < 0.0 {
            return Err(Error::Invalid(format!(
                "split fractions must be ≥ 0 and not all zero (got {}, {}, {})",
                o.train, o.val, o.test
            )));
        }
        Ok(())
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
    /// Classes that a part lacks because the slides do not allow otherwise, one sentence each
    /// (the script layer prints them once, as it prints a dataset's warnings).
    pub warnings: Vec<String>,
}

impl Split {
    /// Splits by the manifest's split column when every image has one, else by slide with the
    /// given fractions, stratified by class (see the module's contract).
    pub fn new(ds: &super::Dataset, o: &SplitOptions) -> Result<Split> {
        let slides: Vec<String> = ds.items.iter().map(|i| i.slide.clone()).collect();
        let labels = ds.labels();
        let mut part_of = vec![0usize; labels.len()];
        let checked: Vec<usize>;
        if !ds.items.is_empty() && ds.items.iter().all(|i| i.split.is_some()) {
            for (i, it) in ds.items.iter().enumerate() {
                part_of[i] = match it.split.as_deref().unwrap().to_ascii_lowercase().as_str() {
                    "train" => 0,
                    "val" | "valid" | "validation" => 1,
                    "test" => 2,
                    other => {
                        return Err(Error::Invalid(format!(
                            "{}: unknown split {other:?} (train, val, test)",
                            it.path.display()
                        )))
                    }
                };
            }
            checked = (0..3).filter(|p| part_of.contains(p)).collect();
        } else {
            crate::options::Options::check(o)?;
            let sum = o.train + o.val + o.test;
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
            part_of = assign_slides(&groups, &strat_labels, &targets, o.seed);
            checked = (0..3).filter(|p| targets[*p] > 0.0).collect();
        }
        let names = ["train", "val", "test"];
        let parts: Vec<(usize, String)> = checked
            .iter()
            .map(|p| (*p, names[*p].to_string()))
            .collect();
        let all = and_list(&parts.iter().map(|p| p.1.clone()).collect::<Vec<_>>());
        let warnings = if parts.len() > 1 {
            shortfall(
                &slides,
                &labels,
                &part_of,
                &parts,
                &all,
                "in the dataset",
                &ds.classes,
            )
        } else {
            Vec::new()
        };
        let mut split = [Vec::new(), Vec::new(), Vec::new()];
        for (i, p) in part_of.iter().enumerate() {
            split[*p].push(i);
        }
        let [train, val, test] = split;
        let s = Split {
            train,
            val,
            test,
            slides,
            labels,
            classes: ds.classes.clone(),
            leakage_allowed: o.allow_slide_leakage,
            warnings,
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
        for w in &self.warnings {
            s += &format!("\n{w}");
        }
        s
    }
}

/// How rows are cut into folds.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheme {
    /// `k` folds of whole slides, stratified by class as far as slides allow.
    SlideKFold { k: usize },
    /// One fold per slide.
    LeaveOneSlideOut,
}

/// Cross-validation by slide: the folds and how their predictions are scored.
#[derive(Clone, Debug, PartialEq)]
pub struct Cv {
    pub scheme: Scheme,
    pub options: CvOptions,
}

/// The folds of a [`Cv`] over given rows, with what each part holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Folds {
    /// `(train, test)` row indices of each fold.
    pub pairs: Vec<(Vec<usize>, Vec<usize>)>,
    /// Images of each class in each fold's test part: `test_counts[fold][class]`.
    pub test_counts: Vec<Vec<usize>>,
    /// Images of each class in each fold's training part.
    pub train_counts: Vec<Vec<usize>>,
    /// A sentence for each class that some test part lacks, with the numbers.
    pub shortfall: Vec<String>,
    /// Class names (indices into them are the labels).
    pub classes: Vec<String>,
    /// The scoring asked for.
    pub scoring: Scoring,
    /// The CV as a script writes it (`slide_kfold(3)`), for messages.
    pub cv: String,
    /// The CV these folds came from (none for folds given by assignment).
    pub source: Option<Cv>,
}

impl Folds {
    /// Folds from a fold number per row (every fold number below the largest has rows), e.g. to
    /// reproduce folds computed elsewhere. Checked for leakage like any folds.
    pub fn from_assignment(
        fold_of: &[usize],
        slides: &[String],
        labels: &[usize],
        classes: &[String],
        scoring: Scoring,
    ) -> Result<Folds> {
        let k = fold_of.iter().max().map_or(0, |m| m + 1);
        let what = format!("{k} given folds");
        Folds::build(fold_of, k, slides, labels, classes, scoring, what, None)
    }

    fn build(
        fold_of: &[usize],
        k: usize,
        slides: &[String],
        labels: &[usize],
        classes: &[String],
        scoring: Scoring,
        cv: String,
        source: Option<Cv>,
    ) -> Result<Folds> {
        let n_classes = labels.iter().max().map_or(0, |m| m + 1).max(classes.len());
        let count = |idx: &[usize]| {
            let mut c = vec![0usize; n_classes];
            for i in idx {
                c[labels[*i]] += 1;
            }
            c
        };
        let mut pairs = Vec::new();
        let mut kept = Vec::new();
        for f in 0..k {
            let test: Vec<usize> = (0..slides.len()).filter(|i| fold_of[*i] == f).collect();
            let train: Vec<usize> = (0..slides.len()).filter(|i| fold_of[*i] != f).collect();
            if test.is_empty() {
                continue;
            }
            let shared = shared_slides(slides, &train, &test);
            if !shared.is_empty() {
                return Err(Error::SlideLeakage(format!(
                    "fold {f} of {cv} shares slides {shared:?}"
                )));
            }
            kept.push(f);
            pairs.push((train, test));
        }
        // Folds are numbered as kept, so that messages and tables agree.
        let renumber: Vec<usize> = fold_of
            .iter()
            .map(|f| kept.iter().position(|g| g == f).unwrap_or(usize::MAX))
            .collect();
        let parts: Vec<(usize, String)> =
            (0..pairs.len()).map(|f| (f, format!("fold {f}"))).collect();
        let n_slides = slides.iter().collect::<BTreeSet<_>>().len();
        let shortfall = if pairs.len() > 1 {
            shortfall(
                slides,
                labels,
                &renumber,
                &parts,
                &format!("{} slide folds", pairs.len()),
                &format!("in the {n_slides} slides given"),
                classes,
            )
        } else {
            Vec::new()
        };
        Ok(Folds {
            test_counts: pairs.iter().map(|p| count(&p.1)).collect(),
            train_counts: pairs.iter().map(|p| count(&p.0)).collect(),
            pairs,
            shortfall,
            classes: (0..n_classes).map(|c| class_name(classes, c)).collect(),
            scoring,
            cv,
            source,
        })
    }

    /// The same folds with another scoring, as a script writes it (for messages that name a fix).
    pub fn cv_with_scoring(&self, scoring: Scoring) -> String {
        match &self.source {
            Some(cv) => cv.with_scoring(scoring).describe(),
            None => format!("scoring: \"{scoring}\""),
        }
    }

    /// `"Infected 37, NotInfected 0"`: the images of each class in fold `f`'s test part.
    pub fn test_counts_text(&self, f: usize) -> String {
        self.counts_text(&self.test_counts[f])
    }

    fn counts_text(&self, counts: &[usize]) -> String {
        self.classes
            .iter()
            .zip(counts)
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Cv {
    /// `slide_kfold(k)` with default options.
    pub fn slide_kfold(k: usize) -> Cv {
        Cv::slide_kfold_with(k, CvOptions::default())
    }

    /// `slide_kfold(k, #{ seed, scoring })`.
    pub fn slide_kfold_with(k: usize, options: CvOptions) -> Cv {
        Cv {
            scheme: Scheme::SlideKFold { k },
            options,
        }
    }

    /// `leave_one_slide_out()`: one fold per slide (the seed plays no part).
    pub fn leave_one_slide_out(options: CvOptions) -> Cv {
        Cv {
            scheme: Scheme::LeaveOneSlideOut,
            options,
        }
    }

    /// The same folds, scored another way.
    pub fn with_scoring(&self, scoring: Scoring) -> Cv {
        let mut c = self.clone();
        c.options.scoring = scoring;
        c
    }

    /// The scoring asked for.
    pub fn scoring(&self) -> Scoring {
        self.options.scoring
    }

    /// `(train, test)` index pairs over rows with these slides and labels; checked for leakage.
    pub fn folds(
        &self,
        slides: &[String],
        labels: &[usize],
    ) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
        Ok(self.plan(slides, labels, &[])?.pairs)
    }

    /// The folds over rows with these slides and labels (indices into `classes`), with the class
    /// counts of every part and a sentence for each class some test part lacks.
    pub fn plan(&self, slides: &[String], labels: &[usize], classes: &[String]) -> Result<Folds> {
        let distinct: BTreeSet<&str> = slides.iter().map(|s| s.as_str()).collect();
        let (bin_of, k) = match self.scheme {
            Scheme::SlideKFold { k } => {
                if k < 2 {
                    return Err(Error::Invalid(format!("slide_kfold needs k ≥ 2 (got {k})")));
                }
                if k > distinct.len() {
                    return Err(Error::Invalid(format!(
                        "slide_kfold({k}) needs at least {k} slides; the data has {}",
                        distinct.len()
                    )));
                }
                let targets = vec![1.0 / k as f64; k];
                (
                    assign_slides(slides, labels, &targets, self.options.seed),
                    k,
                )
            }
            Scheme::LeaveOneSlideOut => {
                let names: Vec<&str> = distinct.iter().copied().collect();
                (
                    slides
                        .iter()
                        .map(|s| names.binary_search(&s.as_str()).unwrap_or(0))
                        .collect(),
                    names.len(),
                )
            }
        };
        Folds::build(
            &bin_of,
            k,
            slides,
            labels,
            classes,
            self.scoring(),
            self.describe(),
            Some(self.clone()),
        )
    }

    /// The CV as a script writes it: `slide_kfold(5)`, `slide_kfold(5, #{ seed: 1, scoring: "pooled" })`.
    pub fn describe(&self) -> String {
        let mut opts = Vec::new();
        if self.options.seed != 0 && matches!(self.scheme, Scheme::SlideKFold { .. }) {
            opts.push(format!("seed: {}", self.options.seed));
        }
        if self.options.scoring != Scoring::Auto {
            opts.push(format!("scoring: \"{}\"", self.options.scoring));
        }
        let opts = if opts.is_empty() {
            String::new()
        } else {
            format!("#{{ {} }}", opts.join(", "))
        };
        match self.scheme {
            Scheme::SlideKFold { k } if opts.is_empty() => format!("slide_kfold({k})"),
            Scheme::SlideKFold { k } => format!("slide_kfold({k}, {opts})"),
            Scheme::LeaveOneSlideOut => format!("leave_one_slide_out({opts})"),
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
            let cv = Cv::slide_kfold_with(
                k.min(n_slides),
                CvOptions {
                    seed,
                    ..Default::default()
                },
            );
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
        let folds = Cv::slide_kfold_with(
            4,
            CvOptions {
                seed: 1,
                ..Default::default()
            },
        )
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
            Cv::leave_one_slide_out(CvOptions::default())
                .folds(&slides, &labels)
                .unwrap()
                .len(),
            n
        );
    }

    /// A random cohort: `n_slides` slides of 1..=30 images; with `mixed`, a quarter of the labels
    /// differ from the slide's own class.
    fn cohort(
        r: &mut Rng,
        n_classes: usize,
        n_slides: usize,
        mixed: bool,
    ) -> (Vec<String>, Vec<usize>) {
        let mut slides = Vec::new();
        let mut labels = Vec::new();
        for s in 0..n_slides {
            let main = r.below(n_classes);
            for _ in 0..1 + r.below(30) {
                slides.push(format!("s{s}"));
                labels.push(if mixed && r.below(4) == 0 {
                    r.below(n_classes)
                } else {
                    main
                });
            }
        }
        (slides, labels)
    }

    /// Property: every fold's test part holds every class that is the main class of at least k
    /// slides (with one label per slide: every class with ≥ k slides, i.e. whenever possible); a
    /// class with fewer slides has them in distinct folds; no slide is shared; same seed, same folds.
    #[test]
    fn stratified_folds_hold_every_class_whenever_possible() {
        let mut r = Rng::new(19);
        for case in 0..400u64 {
            let n_classes = 2 + r.below(4);
            let n_slides = 2 + r.below(25);
            let mixed = case % 3 == 0;
            let (slides, labels) = cohort(&mut r, n_classes, n_slides, mixed);
            let k = 2 + r.below(n_slides.min(10) - 1);
            let n_present = slides.iter().collect::<BTreeSet<_>>().len();
            if k > n_present {
                continue;
            }
            let cv = Cv::slide_kfold_with(
                k,
                CvOptions {
                    seed: case,
                    ..Default::default()
                },
            );
            let folds = cv.plan(&slides, &labels, &[]).unwrap();
            assert_eq!(folds.pairs.len(), k, "case {case}: every fold has rows");
            let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, s) in slides.iter().enumerate() {
                groups.entry(s.as_str()).or_default().push(i);
            }
            for c in 0..n_classes {
                let main: Vec<&str> = groups
                    .iter()
                    .filter(|(_, items)| dominant(items, &labels, n_classes) == c)
                    .map(|(s, _)| *s)
                    .collect();
                let holding = folds
                    .test_counts
                    .iter()
                    .filter(|t| t.get(c).is_some_and(|n| *n > 0))
                    .count();
                if main.len() >= k {
                    assert_eq!(
                        holding,
                        k,
                        "case {case}: class {c} ({} main slides) in {holding} of {k} folds",
                        main.len()
                    );
                } else if !mixed {
                    assert_eq!(
                        holding,
                        main.len(),
                        "case {case}: class {c}'s slides share a fold"
                    );
                }
            }
            for (train, test) in &folds.pairs {
                assert!(shared_slides(&slides, train, test).is_empty());
            }
            assert_eq!(
                folds,
                cv.plan(&slides, &labels, &[]).unwrap(),
                "case {case}: same seed"
            );
        }
    }

    #[test]
    fn a_class_too_scarce_for_the_folds_is_named_with_its_numbers() {
        // The train+val: 3 Infected and 2 NotInfected slides of 30 images, 3 folds.
        let slides: Vec<String> = (0..150).map(|i| format!("p{}", i / 30)).collect();
        let labels: Vec<usize> = (0..150).map(|i| usize::from(i / 30 >= 3)).collect();
        let classes = vec!["Infected".to_string(), "NotInfected".to_string()];
        let folds = Cv::slide_kfold(3).plan(&slides, &labels, &classes).unwrap();
        assert_eq!(folds.shortfall.len(), 1, "{:?}", folds.shortfall);
        let s = &folds.shortfall[0];
        assert!(s.starts_with("class NotInfected has 2 slides in the 5 slides given; 3 slide folds cannot all hold it (fold "), "{s}");
        assert!(s.ends_with(" lacks it)"), "{s}");
        let lacking = folds.test_counts.iter().filter(|t| t[1] == 0).count();
        assert_eq!(lacking, 1);
        assert!(folds.test_counts_text(0).starts_with("Infected "));
        // Enough slides: no sentence.
        let folds = Cv::slide_kfold(2).plan(&slides, &labels, &classes).unwrap();
        assert!(folds.shortfall.is_empty(), "{:?}", folds.shortfall);
    }

    fn dataset(per_class: &[usize], images: usize) -> crate::data::Dataset {
        let mut items = Vec::new();
        let mut s = 0;
        for (c, n) in per_class.iter().enumerate() {
            for _ in 0..*n {
                for j in 0..images {
                    items.push(crate::data::Item {
                        tile: None,
                        path: format!("{s}-{j}.png").into(),
                        label: c,
                        slide: format!("p{s}"),
                        split: None,
                        width: 1,
                        height: 1,
                    });
                }
                s += 1;
            }
        }
        crate::data::Dataset {
            name: "cohort".into(),
            root: Default::default(),
            classes: vec!["Infected".into(), "NotInfected".into()],
            items,
            slide_info: String::new(),
            skipped: vec![],
            warnings: vec![],
            stain: None,
        }
    }

    #[test]
    fn split_parts_hold_every_class_when_slides_allow() {
        let holds = |s: &Split, ds: &crate::data::Dataset, part: &[usize], c: usize| {
            let _ = s;
            part.iter().any(|i| ds.items[*i].label == c)
        };
        for seed in 0..20 {
            // 4 + 3 slides: every part holds both classes.
            let ds = dataset(&[4, 3], 28);
            let s = Split::new(
                &ds,
                &SplitOptions {
                    seed,
                    ..Default::default()
                },
            )
            .unwrap();
            for part in [&s.train, &s.val, &s.test] {
                assert!(
                    holds(&s, &ds, part, 0) && holds(&s, &ds, part, 1),
                    "seed {seed}: {}",
                    s.audit()
                );
            }
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
            // 2 + 2 slides: train holds both, val and test one each, and the split says so.
            let ds = dataset(&[2, 2], 20);
            let s = Split::new(
                &ds,
                &SplitOptions {
                    seed,
                    ..Default::default()
                },
            )
            .unwrap();
            assert!(
                holds(&s, &ds, &s.train, 0) && holds(&s, &ds, &s.train, 1),
                "{}",
                s.audit()
            );
            assert!(!s.val.is_empty() && !s.test.is_empty(), "{}", s.audit());
            assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
            assert!(s.warnings[0].starts_with("class Infected has 2 slides in the dataset; train, val and test cannot all hold it ("), "{}", s.warnings[0]);
        }
    }

    #[test]
    fn options_read_and_describe_as_the_script_writes_them() {
        use crate::options::Options;
        let o = CvOptions::from_object(
            serde_json::json!({ "scoring": "pooled", "seed": 2 })
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap();
        assert_eq!((o.seed, o.scoring), (2, Scoring::Pooled));
        let e = CvOptions::from_object(
            serde_json::json!({ "scorng": "pooled" })
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("did you mean `scoring`"), "{e}");
        let e = CvOptions::from_object(
            serde_json::json!({ "scoring": "mean" })
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"auto\" | \"pooled\" | \"per_fold\""), "{e}");
        assert_eq!(Cv::slide_kfold(5).describe(), "slide_kfold(5)");
        assert_eq!(
            Cv::slide_kfold_with(3, o).describe(),
            "slide_kfold(3, #{ seed: 2, scoring: \"pooled\" })"
        );
        assert_eq!(
            Cv::leave_one_slide_out(CvOptions::default()).describe(),
            "leave_one_slide_out()"
        );
    }
}
