//! Bags for multiple-instance learning: per slide (or patient) the feature rows of its tiles, their
//! coordinates on the slide and the bag's one label. A bag keeps its group (the patient, or the
//! slide id a split uses), so folds over bags keep a patient's slides together.

use crate::error::{Error, Result};
use crate::features::{Column, FeatureSet};
use crate::rng::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

crate::choice! {
    /// What one bag holds.
    pub enum By {
        /// The tiles of one slide (the part of a tile id before `#`; the slide id for images
        /// that are not tiles of a slide).
        Slide = "slide",
        /// The tiles of every slide of one patient (the feature set's slide id).
        Patient = "patient",
    }
}

crate::options! {
    /// The options map of `f.bags(#{ ... })`.
    pub struct BagOptions for "bags" {
        /// "slide": one bag per slide; "patient": one bag per patient (the set's slide id).
        by: By = By::Slide,
        /// A tile class whose presence makes a bag positive (the classic MIL label: a slide is
        /// positive when any tile is, e.g. tiles labelled by annotations): bags are then
        /// "negative" or "positive" and those tiles are the known positive instances. () takes
        /// the tiles' one shared label.
        positive: Option<String> = None,
    }
}

/// One bag: its tiles' features (row-major `n × d`), ids and coordinates, and its label.
#[derive(Clone, Debug)]
pub struct Bag {
    /// The slide (or patient) the bag stands for.
    pub id: String,
    /// What folds keep together: the patient (the feature set's slide id).
    pub group: String,
    pub label: usize,
    pub n: usize,
    pub x: Vec<f32>,
    /// The tiles' ids, in the order of the rows.
    pub tiles: Vec<String>,
    /// Each tile's top-left corner in level-0 pixels, when its id carries it (`…#L0@x,y`).
    pub coords: Vec<Option<(i64, i64)>>,
    /// Which tiles are known positive instances (the witness task's witnesses); () when unknown.
    pub instances: Option<Vec<bool>>,
}

impl Bag {
    /// Tile `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.x.len() / self.n.max(1);
        &self.x[i * d..(i + 1) * d]
    }
}

/// Bags of one width with their class names.
#[derive(Clone, Debug)]
pub struct Bags {
    pub bags: Vec<Bag>,
    pub d: usize,
    pub classes: Vec<String>,
    pub columns: Arc<Vec<Column>>,
}

/// The slide part of a tile id (`slide.svs#L0@512,1024` → `slide.svs`), and the tile's level-0
/// corner when the id carries one.
pub fn parse_tile_id(id: &str) -> (&str, Option<(i64, i64)>) {
    let Some((slide, tile)) = id.rsplit_once('#') else {
        return (id, None);
    };
    let xy = tile
        .split_once('@')
        .and_then(|(_, xy)| xy.split_once(','))
        .and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)));
    (slide, xy)
}

impl Bags {
    /// Groups the rows of `f` into bags, in the order each bag first appears. Every tile of a bag
    /// must carry the same label, and every feature must be finite: otherwise an error names the
    /// bag (and the tile).
    pub fn from_features(f: &FeatureSet, o: &BagOptions) -> Result<Bags> {
        crate::options::Options::check(o)?;
        let mut order: Vec<String> = Vec::new();
        let mut rows: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in 0..f.n {
            let key = match o.by {
                By::Slide => match parse_tile_id(&f.ids[i]) {
                    (slide, Some(_)) => slide.to_string(),
                    _ => f.slides[i].clone(),
                },
                By::Patient => f.slides[i].clone(),
            };
            rows.entry(key.clone())
                .or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                })
                .push(i);
        }
        let positive = match &o.positive {
            None => None,
            Some(c) => Some(f.classes.iter().position(|k| k == c).ok_or_else(|| {
                let names: Vec<&str> = f.classes.iter().map(|c| c.as_str()).collect();
                crate::options::bad_choice("positive class", c, &names)
            })?),
        };
        let mut bags = Vec::with_capacity(order.len());
        for id in order {
            let r = &rows[&id];
            let (label, instances) = match positive {
                Some(p) => {
                    let inst: Vec<bool> = r.iter().map(|j| f.labels[*j] == p).collect();
                    (usize::from(inst.iter().any(|v| *v)), Some(inst))
                }
                None => (f.labels[r[0]], None),
            };
            let mixed = r
                .iter()
                .find(|j| positive.is_none() && f.labels[**j] != label);
            if let Some(j) = mixed {
                return Err(Error::Invalid(format!(
                    "bag {id:?} holds tiles of two classes ({:?} and {:?}, e.g. tile {:?}): a bag \
                     has one label: give its tiles the slide's label (the manifest's label \
                     column), or say which tile class makes a bag positive (positive: \"…\")",
                    f.classes[label], f.classes[f.labels[*j]], f.ids[*j]
                )));
            }
            let mut x = Vec::with_capacity(r.len() * f.d);
            for j in r {
                x.extend_from_slice(f.row(*j));
            }
            bags.push(Bag {
                group: f.slides[r[0]].clone(),
                label,
                n: r.len(),
                x,
                tiles: r.iter().map(|j| f.ids[*j].clone()).collect(),
                coords: r.iter().map(|j| parse_tile_id(&f.ids[*j]).1).collect(),
                instances,
                id,
            });
        }
        let b = Bags {
            bags,
            d: f.d,
            classes: match positive {
                Some(_) => vec!["negative".into(), "positive".into()],
                None => f.classes.clone(),
            },
            columns: f.columns.clone(),
        };
        b.validate()?;
        Ok(b)
    }

    /// Checks what every learner relies on: bags exist, none is empty, every row has the set's
    /// width, every feature is finite; errors name the bag and the tile.
    pub fn validate(&self) -> Result<()> {
        if self.bags.is_empty() {
            return Err(Error::Invalid(
                "there are no bags (the feature set has no rows)".into(),
            ));
        }
        for b in &self.bags {
            if b.n == 0 {
                return Err(Error::Invalid(format!(
                    "bag {:?} is empty: it has no tiles",
                    b.id
                )));
            }
            if b.x.len() != b.n * self.d {
                return Err(Error::Invalid(format!(
                    "bag {:?} has {} values for {} tiles × {} features: its rows are not {} wide",
                    b.id,
                    b.x.len(),
                    b.n,
                    self.d,
                    self.d
                )));
            }
            if b.label >= self.classes.len() {
                return Err(Error::Invalid(format!(
                    "bag {:?} has label {} but there are {} classes",
                    b.id,
                    b.label,
                    self.classes.len()
                )));
            }
            if let Some(p) = b.x.iter().position(|v| !v.is_finite()) {
                return Err(Error::Invalid(format!(
                    "bag {:?}: tile {:?} has a non-finite feature (column {}: {})",
                    b.id,
                    b.tiles[p / self.d],
                    p % self.d,
                    b.x[p]
                )));
            }
        }
        Ok(())
    }

    /// Number of bags.
    pub fn len(&self) -> usize {
        self.bags.len()
    }

    /// Whether there are no bags.
    pub fn is_empty(&self) -> bool {
        self.bags.is_empty()
    }

    /// Each bag's label.
    pub fn labels(&self) -> Vec<usize> {
        self.bags.iter().map(|b| b.label).collect()
    }

    /// Each bag's group (what folds keep together).
    pub fn groups(&self) -> Vec<String> {
        self.bags.iter().map(|b| b.group.clone()).collect()
    }

    /// The bags at `idx`.
    pub fn subset(&self, idx: &[usize]) -> Result<Bags> {
        if let Some(bad) = idx.iter().find(|i| **i >= self.len()) {
            return Err(Error::Invalid(format!(
                "bag {bad} out of range: there are {} bags",
                self.len()
            )));
        }
        Ok(Bags {
            bags: idx.iter().map(|i| self.bags[*i].clone()).collect(),
            d: self.d,
            classes: self.classes.clone(),
            columns: self.columns.clone(),
        })
    }

    /// The bag named `id`.
    pub fn get(&self, id: &str) -> Result<&Bag> {
        self.bags.iter().find(|b| b.id == id).ok_or_else(|| {
            let names: Vec<&str> = self.bags.iter().map(|b| b.id.as_str()).collect();
            crate::options::bad_choice("bag", id, &names)
        })
    }

    /// Tiles per bag: least, mean, most.
    pub fn sizes(&self) -> (usize, f64, usize) {
        let n: Vec<usize> = self.bags.iter().map(|b| b.n).collect();
        (
            n.iter().copied().min().unwrap_or(0),
            n.iter().sum::<usize>() as f64 / n.len().max(1) as f64,
            n.iter().copied().max().unwrap_or(0),
        )
    }

    /// One line: bags, classes and their counts, tiles per bag, width.
    pub fn describe(&self) -> String {
        let counts = crate::learn::metrics::class_counts(&self.labels(), self.classes.len());
        let classes: Vec<String> = self
            .classes
            .iter()
            .zip(&counts)
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let (lo, mean, hi) = self.sizes();
        format!(
            "{} bags ({}), {lo}–{hi} tiles each (mean {mean:.1}), {} features",
            self.len(),
            classes.join(", "),
            self.d
        )
    }
}

crate::options! {
    /// The options map of `witness_bags(f, #{ ... })`: a task whose label only a few images decide.
    pub struct WitnessOptions for "witness_bags" {
        /// The class whose images make a bag positive (the witnesses).
        witness: String = String::new(),
        /// Images per bag.
        bag_size: usize = 50,
        /// Most witnesses in a positive bag, as a share of its images (at least one).
        witness_rate: f64 = 0.1,
        /// Training bags (half of them positive).
        train_bags: usize = 100,
        /// Test bags (half of them positive).
        test_bags: usize = 100,
        /// Share of each class's images kept for the test bags (images never shared).
        test_share: f64 = 0.5,
        /// Seed of the image split and the bags.
        seed: u64 = 0,
    }
    check(o) {
        if o.bag_size > 100_000 || o.train_bags > 1_000_000 || o.test_bags > 1_000_000 {
            return Err(Error::Invalid(format!(
                "witness_bags makes at most 1,000,000 bags per part of at most 100,000 images \
                 (got {} and {} bags of {})",
                o.train_bags, o.test_bags, o.bag_size
            )));
        }
        if o.bag_size < 2 || !(o.witness_rate > 0.0 && o.witness_rate <= 0.5)
            || !(o.test_share > 0.0 && o.test_share < 1.0) || o.train_bags < 2 || o.test_bags < 2
        {
            return Err(Error::Invalid(format!(
                "witness_bags needs bag_size ≥ 2, 0 < witness_rate ≤ 0.5, 0 < test_share < 1 and \
                 at least 2 bags per part (got {}, {}, {}, {}, {})",
                o.bag_size, o.witness_rate, o.test_share, o.train_bags, o.test_bags
            )));
        }
        Ok(())
    }
}

/// The most feature values `witness_bags` copies into its bags (8 GB of f32).
pub const MAX_VALUES: u128 = 2_000_000_000;

/// A witness task from real images: a bag is positive when it holds at least one image of the
/// witness class (at most `witness_rate` of its images), negative when it holds none. Images are
/// split by class into a training and a test pool first, so no image is in both parts. Returns the
/// training and the test bags, with classes `negative`, `positive`; each bag's `tiles` are the
/// images' ids and their `instances` say which rows are witnesses.
pub fn witness_bags(f: &FeatureSet, o: &WitnessOptions) -> Result<(Bags, Bags)> {
    crate::options::Options::check(o)?;
    let w = f
        .classes
        .iter()
        .position(|c| *c == o.witness)
        .ok_or_else(|| {
            let names: Vec<&str> = f.classes.iter().map(|c| c.as_str()).collect();
            crate::options::bad_choice("witness class", &o.witness, &names)
        })?;
    let mut rng = Rng::new(o.seed);
    let (mut pools_train, mut pools_test) = ([vec![], vec![]], [vec![], vec![]]);
    for class in 0..f.classes.len() {
        let mut rows: Vec<usize> = (0..f.n).filter(|i| f.labels[*i] == class).collect();
        rng.shuffle(&mut rows);
        let cut = ((rows.len() as f64) * o.test_share).round() as usize;
        let side = usize::from(class == w);
        pools_test[side].extend_from_slice(&rows[..cut]);
        pools_train[side].extend_from_slice(&rows[cut..]);
    }
    let values = (o.train_bags + o.test_bags) as u128 * o.bag_size as u128 * f.d as u128;
    if values > MAX_VALUES {
        return Err(Error::Invalid(format!(
            "witness_bags: {} bags × {} images × {} features is {values} values ({:.1} GB), more \
             than {MAX_VALUES}",
            o.train_bags + o.test_bags,
            o.bag_size,
            f.d,
            values as f64 * 4e-9
        )));
    }
    let most = ((o.bag_size as f64 * o.witness_rate).floor() as usize).max(1);
    let make = |pools: &[Vec<usize>; 2], n: usize, part: &str, rng: &mut Rng| -> Result<Bags> {
        if pools[1].is_empty() || pools[0].len() < o.bag_size {
            return Err(Error::Invalid(format!(
                "witness_bags: the {part} part has {} witness images and {} others; it needs at \
                 least one witness and {} others (bag_size)",
                pools[1].len(),
                pools[0].len(),
                o.bag_size
            )));
        }
        let mut bags = Vec::with_capacity(n);
        for b in 0..n {
            let positive = b % 2 == 1;
            let k = if positive { 1 + rng.below(most) } else { 0 };
            let mut rows = sample(&pools[0], o.bag_size - k, rng);
            rows.extend(sample(&pools[1], k, rng));
            rng.shuffle(&mut rows);
            let mut x = Vec::with_capacity(rows.len() * f.d);
            for r in &rows {
                x.extend_from_slice(f.row(*r));
            }
            let id = format!("{part}-{b:04}");
            bags.push(Bag {
                group: id.clone(),
                label: usize::from(positive),
                n: rows.len(),
                x,
                tiles: rows.iter().map(|r| f.ids[*r].clone()).collect(),
                coords: vec![None; rows.len()],
                instances: Some(rows.iter().map(|r| f.labels[*r] == w).collect()),
                id,
            });
        }
        Ok(Bags {
            bags,
            d: f.d,
            classes: vec!["negative".into(), "positive".into()],
            columns: f.columns.clone(),
        })
    };
    let train = make(&pools_train, o.train_bags, "train", &mut rng)?;
    let test = make(&pools_test, o.test_bags, "test", &mut rng)?;
    Ok((train, test))
}

/// `k` distinct elements of `pool` (k ≤ pool.len()), by a partial Fisher-Yates shuffle.
pub fn sample(pool: &[usize], k: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p = pool.to_vec();
    for i in 0..k.min(p.len()) {
        let j = i + rng.below(p.len() - i);
        p.swap(i, j);
    }
    p.truncate(k);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str], slides: &[&str], labels: &[usize], x: Vec<f32>) -> FeatureSet {
        let d = x.len() / ids.len();
        FeatureSet::new(
            x,
            ids.iter().map(|s| s.to_string()).collect(),
            labels.to_vec(),
            slides.iter().map(|s| s.to_string()).collect(),
            vec!["a".into(), "b".into()],
            (0..d)
                .map(|c| Column {
                    network: "n".into(),
                    tap: "t".into(),
                    reduce: "gap".into(),
                    channel: c,
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn tile_ids_give_slide_and_corner() {
        assert_eq!(
            parse_tile_id("s/a.svs#L0@512,1024"),
            ("s/a.svs", Some((512, 1024)))
        );
        assert_eq!(parse_tile_id("img.png"), ("img.png", None));
        assert_eq!(parse_tile_id("a#b"), ("a", None));
    }

    #[test]
    fn bags_by_slide_and_by_patient() {
        let f = set(
            &[
                "a.svs#L0@0,0",
                "b.svs#L0@0,0",
                "a.svs#L0@224,0",
                "c.svs#L0@0,0",
            ],
            &["p1", "p1", "p1", "p2"],
            &[1, 1, 1, 0],
            vec![1., 2., 3., 4., 5., 6., 7., 8.],
        );
        let b = Bags::from_features(&f, &BagOptions::default()).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b.bags[0].id, "a.svs");
        assert_eq!(b.bags[0].x, vec![1., 2., 5., 6.]);
        assert_eq!(b.bags[0].coords, vec![Some((0, 0)), Some((224, 0))]);
        assert_eq!(b.bags[0].group, "p1");
        let p = Bags::from_features(
            &f,
            &BagOptions {
                by: By::Patient,
                positive: None,
            },
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.bags[0].n, 3);
        assert_eq!(p.bags[1].label, 0);
        let any = BagOptions {
            positive: Some("b".into()),
            ..Default::default()
        };
        let f = set(
            &f.ids.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            &["p1"; 4],
            &[0, 1, 0, 0],
            f.x.to_vec(),
        );
        let b = Bags::from_features(&f, &any).unwrap();
        assert_eq!(b.classes, ["negative", "positive"]);
        assert_eq!(b.labels(), [0, 1, 0]);
        assert_eq!(b.bags[1].instances, Some(vec![true]));
        let e = Bags::from_features(
            &f,
            &BagOptions {
                positive: Some("bb".into()),
                ..any
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("did you mean \"b\""), "{e}");
    }

    #[test]
    fn mixed_labels_and_nan_name_the_bag() {
        let f = set(
            &["a#L0@0,0", "a#L0@1,0"],
            &["a", "a"],
            &[0, 1],
            vec![1., 2.],
        );
        let e = Bags::from_features(&f, &BagOptions::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("bag \"a\" holds tiles of two classes"),
            "{e}"
        );
        let f = set(
            &["a#L0@0,0", "a#L0@1,0"],
            &["a", "a"],
            &[0, 0],
            vec![1., f32::NAN],
        );
        let e = Bags::from_features(&f, &BagOptions::default()).unwrap_err();
        assert!(e.to_string().contains("tile \"a#L0@1,0\""), "{e}");
    }

    #[test]
    fn witness_bags_keep_images_apart_and_rates_low() {
        let n = 400;
        let labels: Vec<usize> = (0..n).map(|i| usize::from(i % 4 == 0)).collect();
        let ids: Vec<String> = (0..n).map(|i| format!("img{i}")).collect();
        let id_refs: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
        let f = set(
            &id_refs,
            &id_refs,
            &labels,
            (0..n).map(|i| i as f32).collect(),
        );
        let o = WitnessOptions {
            witness: "b".into(),
            bag_size: 20,
            train_bags: 10,
            test_bags: 10,
            ..Default::default()
        };
        let (tr, te) = witness_bags(&f, &o).unwrap();
        let used = |b: &Bags| -> std::collections::BTreeSet<String> {
            b.bags.iter().flat_map(|b| b.tiles.clone()).collect()
        };
        assert!(used(&tr).is_disjoint(&used(&te)));
        for b in tr.bags.iter().chain(&te.bags) {
            let k = b.x.iter().filter(|v| (**v as usize) % 4 == 0).count();
            assert_eq!(b.label == 1, k > 0);
            assert!(k <= 2, "{k} witnesses in a bag of 20 at rate 0.1");
        }
        assert_eq!(tr.labels().iter().sum::<usize>(), 5);
        let e = witness_bags(
            &f,
            &WitnessOptions {
                witness: "c".into(),
                ..o
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"c\""), "{e}");
    }
}
