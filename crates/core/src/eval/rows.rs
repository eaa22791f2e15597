//! The typed rows of the rooms below `eval` as table rows ([`Row`]): each says its columns once.

use super::table::{Cell, Row};
use crate::finetune::Epoch;
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

impl Row for Epoch {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            ("epoch", (self.epoch as i64).into()),
            ("phase", self.phase.clone().into()),
            ("train_loss", self.train_loss.into()),
            ("val_loss", self.val_loss.into()),
            ("val_score", self.val_score.into()),
            ("images_per_second", self.images_per_second.into()),
        ]
    }
}
