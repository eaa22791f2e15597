//! The typed rows of the rooms below `eval` as table rows ([`Row`]): each says its columns once.
//! Rooms above `eval` implement [`Row`] beside their own types (`finetune::Epoch`).

use super::table::{Cell, Row, Table};
use crate::data::ImageRow;
use crate::error::Result;
use crate::learn::mil::{BagPrediction, Epoch as MilEpoch, TileAttention};
use crate::learn::rfe::RfePoint;
use crate::learn::tune::CvTable;
use crate::learn::{Importance, Share};
use crate::nets::TapShape;

impl Row for TapShape {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            ("tap", self.tap.clone().into()),
            ("shape", format!("{:?}", self.shape).into()),
            ("channels", self.channels.into()),
        ]
    }
}

impl Row for Importance {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            ("network", self.network.clone().into()),
            ("tap", self.tap.clone().into()),
            ("channel", (self.channel as i64).into()),
            ("importance", self.importance.into()),
        ]
    }
}

/// The key column is named by what the share sums over (`network` or `tap`).
impl Row for Share {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            (self.by.as_str(), self.key.clone().into()),
            ("importance", self.importance.into()),
        ]
    }
}

impl Row for ImageRow {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            ("path", self.path.clone().into()),
            ("label", self.label.clone().into()),
            ("slide", self.slide.clone().into()),
            ("split", self.split.clone().into()),
            ("width", i64::from(self.width).into()),
            ("height", i64::from(self.height).into()),
        ]
    }
}

impl Row for RfePoint {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            ("n_features", (self.n_features as i64).into()),
            ("mean", self.mean.into()),
            ("std", self.std.into()),
        ]
    }
}

/// A tuning's scores (`m.cv_scores()`), one row per grid point: params, scoring, score (what
/// ranks the rows), pooled, mean, std, fold_0.. (NaN where a fold has no score).
pub fn cv_scores(s: &CvTable) -> Result<Table> {
    let folds = s.folds.first().map_or(0, |r| r.len());
    let rows = (0..s.params.len())
        .map(|i| {
            let mut row: Vec<(String, Cell)> = vec![
                ("params".into(), s.params_text(i).into()),
                ("scoring".into(), s.scoring.as_str().into()),
                ("score".into(), s.score(i).into()),
                ("pooled".into(), s.pooled[i].into()),
                ("mean".into(), s.mean(i).into()),
                ("std".into(), s.std(i).into()),
            ];
            row.extend((0..folds).map(|f| (format!("fold_{f}"), s.folds[i][f].into())));
            row
        })
        .collect();
    Table::from_cells(rows)
}

/// The validation columns appear when the training had a validation part (then every epoch has
/// them; an AUC that does not exist on it is NaN).
impl Row for MilEpoch {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        let mut c = vec![
            ("epoch", (self.epoch as i64).into()),
            ("lr", self.lr.into()),
            ("train_loss", self.train_loss.into()),
        ];
        if let Some(loss) = self.valid_loss {
            c.push(("valid_loss", loss.into()));
            c.push(("valid_auc", self.valid_auc.unwrap_or(f64::NAN).into()));
        }
        c
    }
}

/// `x` and `y` appear for tiles of a slide (a bag's tiles have them all or none).
impl Row for TileAttention {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        let mut c = vec![("tile", self.tile.clone().into())];
        if let (Some(x), Some(y)) = (self.x, self.y) {
            c.push(("x", x.into()));
            c.push(("y", y.into()));
        }
        c.push(("head", (self.head as i64).into()));
        c.push(("attention", self.attention.into()));
        c
    }
}

/// The probability column is the predicted class's.
impl Row for BagPrediction {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            ("bag", self.bag.clone().into()),
            ("label", self.label.clone().into()),
            ("predicted", self.predicted.clone().into()),
            (
                "probability",
                self.probability
                    .iter()
                    .cloned()
                    .fold(f64::NAN, f64::max)
                    .into(),
            ),
        ]
    }
}
