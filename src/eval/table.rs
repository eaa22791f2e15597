//! PLACEHOLDER: replaced by the tables branch.
use polars::prelude::DataFrame;
/// A table.
#[derive(Clone, Debug)]
pub struct Table(pub DataFrame);
/// A cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell { Null, Bool(bool), Int(i64), Float(f64), Str(String) }
impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) }
}
