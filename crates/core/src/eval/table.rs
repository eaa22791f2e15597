//! A table as a user handles it at the prompt: count its rows, read a column or a row, sort,
//! filter, select, group and aggregate, save and load. Every operation returns a new table and
//! leaves the old one as it was.
//!
//! Contract: a column name that is not in the table is an error that lists the columns and
//! suggests the closest one; a row out of range names the range; a comparison between a column
//! and a value of another type says both types. Nothing here panics on user input.
//!
//! Values leave a table as [`Cell`]s, so the script layer converts one small enum rather than every
//! polars type. Sorting and grouping are written here over the cells (NaN after every number,
//! nulls last; groups in order of first appearance), so they need nothing beyond polars' eager core.
//! Why not polars' own `sort`/`filter`/`group_by`: they sit behind its `lazy` feature, which takes
//! `cargo tree -p patholab-core` from 287 to 449 crates, tokio and an HTTP client among them (the
//! library crate builds no async runtime), and its rules (NaN order, null groups, group order)
//! are not the ones this contract promises.

use crate::error::{Context, Error, Result};
use crate::options::closest;
use polars::prelude::*;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;

/// A table of named columns (a polars `DataFrame`), printed as polars prints it.
#[derive(Clone, Debug)]
pub struct Table(pub DataFrame);

/// One value of a table, as it is handed to the script layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// A comparison of [`Table::filter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// The string column holds the value as a substring.
    Contains,
}

/// The rows of a table gathered by the values of one column, ready to aggregate.
#[derive(Clone, Debug)]
pub struct Grouped {
    table: Table,
    key: String,
    /// Row indices of each group, groups in order of first appearance.
    groups: Vec<Vec<usize>>,
}

/// How [`Grouped`] folds the values of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Agg {
    Mean,
    Sum,
    Min,
    Max,
}

impl Cell {
    /// The type of the value as a script user writes it, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "()",
            Cell::Bool(_) => "bool",
            Cell::Int(_) => "int",
            Cell::Float(_) => "float",
            Cell::Str(_) => "string",
        }
    }

    /// The value as a number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(x) => Some(*x),
            _ => None,
        }
    }

    fn from_any(v: &AnyValue) -> Cell {
        match v {
            AnyValue::Null => Cell::Null,
            AnyValue::Boolean(b) => Cell::Bool(*b),
            AnyValue::String(s) => Cell::Str(s.to_string()),
            AnyValue::StringOwned(s) => Cell::Str(s.to_string()),
            v if v.dtype().is_float() => v.extract::<f64>().map_or(Cell::Null, Cell::Float),
            // An integer beyond i64 (u64, i128) still reads as a number.
            v if v.dtype().is_integer() => match v.extract::<i64>() {
                Some(i) => Cell::Int(i),
                None => v.extract::<f64>().map_or(Cell::Null, Cell::Float),
            },
            v => Cell::Str(v.to_string()),
        }
    }

    /// Orders two cells of one column: nulls last, NaN after every number, whatever the direction.
    fn order(a: &Cell, b: &Cell, descending: bool) -> Ordering {
        let rank = |c: &Cell| match c {
            Cell::Null => 2,
            Cell::Float(x) if x.is_nan() => 1,
            _ => 0,
        };
        match (rank(a), rank(b)) {
            (0, 0) => {
                let o = match (a, b) {
                    (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
                    (Cell::Bool(x), Cell::Bool(y)) => x.cmp(y),
                    (Cell::Str(x), Cell::Str(y)) => x.cmp(y),
                    _ => match (a.as_f64(), b.as_f64()) {
                        (Some(x), Some(y)) => x.total_cmp(&y),
                        _ => a.kind().cmp(b.kind()),
                    },
                };
                if descending {
                    o.reverse()
                } else {
                    o
                }
            }
            (ra, rb) => ra.cmp(&rb),
        }
    }

    /// Cells of one group key: a text that tells values apart (NaN groups with NaN).
    fn group_key(&self) -> String {
        format!("{self:?}")
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Null => write!(f, "null"),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(x) => write!(f, "{x}"),
            Cell::Str(s) => write!(f, "{s}"),
        }
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Float(v)
    }
}
impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Str(v.to_string())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Str(v)
    }
}
impl From<()> for Cell {
    fn from(_: ()) -> Self {
        Cell::Null
    }
}

const OPS: &[(&str, Op)] = &[
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<", Op::Lt),
    ("<=", Op::Le),
    (">", Op::Gt),
    (">=", Op::Ge),
    ("contains", Op::Contains),
];

impl std::str::FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Op> {
        OPS.iter()
            .find(|(t, _)| *t == s.trim())
            .map(|(_, op)| *op)
            .ok_or_else(|| {
                let names: Vec<&str> = OPS.iter().map(|(t, _)| *t).collect();
                crate::error::Error::Invalid(format!(
                    "unknown comparison {s:?}; valid: {}",
                    names.join(", ")
                ))
            })
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = OPS
            .iter()
            .find(|(_, op)| op == self)
            .map_or("?", |(t, _)| *t);
        write!(f, "{text}")
    }
}

impl Op {
    /// Whether `cell op value` holds. NaN compares like IEEE (only `!=` holds); a null cell
    /// matches nothing but `== ()`.
    fn holds(self, cell: &Cell, value: &Cell) -> bool {
        let o = match (cell, value) {
            (Cell::Null, Cell::Null) => return self == Op::Eq,
            (_, Cell::Null) => return self == Op::Ne,
            (Cell::Null, _) => return false,
            (Cell::Str(c), Cell::Str(v)) if self == Op::Contains => return c.contains(v.as_str()),
            (Cell::Str(c), Cell::Str(v)) => Some(c.cmp(v)),
            (Cell::Bool(c), Cell::Bool(v)) => Some(c.cmp(v)),
            (Cell::Int(c), Cell::Int(v)) => Some(c.cmp(v)),
            _ => match (cell.as_f64(), value.as_f64()) {
                (Some(c), Some(v)) => c.partial_cmp(&v),
                _ => None,
            },
        };
        match (self, o) {
            (Op::Ne, None) => true,
            (_, None) => false,
            (Op::Eq, Some(o)) => o == Ordering::Equal,
            (Op::Ne, Some(o)) => o != Ordering::Equal,
            (Op::Lt, Some(o)) => o == Ordering::Less,
            (Op::Le, Some(o)) => o != Ordering::Greater,
            (Op::Gt, Some(o)) => o == Ordering::Greater,
            (Op::Ge, Some(o)) => o != Ordering::Less,
            (Op::Contains, Some(_)) => false,
        }
    }
}

/// A typed result row of the library that becomes one row of a [`Table`]: its cells in column
/// order, each with its column name. Every table the prompt shows is built from rows through
/// [`Table::from_rows`]; the impls for rows of the rooms below live in `eval/rows.rs`.
pub trait Row {
    fn cells(&self) -> Vec<(&'static str, Cell)>;
}

impl Table {
    /// A table of `rows`, one column per cell name (the first row's order). A column's type is
    /// that of its values (ints, floats, strings, bools); [`Cell::Null`] is a missing value, and
    /// a column mixing ints and floats is a float column.
    pub fn from_rows<R: Row>(rows: &[R]) -> Result<Table> {
        let rows = rows.iter().map(|r| {
            r.cells()
                .into_iter()
                .map(|(n, c)| (n.to_string(), c))
                .collect()
        });
        Table::from_cells(rows.collect())
    }

    /// [`Table::from_rows`] for rows whose column names are known only at run time (`fold_0`,
    /// `fold_1`, …): every row names its cells in the same order.
    pub fn from_cells(rows: Vec<Vec<(String, Cell)>>) -> Result<Table> {
        let Some(first) = rows.first() else {
            return Ok(Table(DataFrame::empty()));
        };
        let mut columns = Vec::with_capacity(first.len());
        for (j, (name, _)) in first.iter().enumerate() {
            let cells: Vec<&Cell> = rows.iter().filter_map(|r| r.get(j).map(|c| &c.1)).collect();
            if cells.len() != rows.len() {
                return Err(Error::Invalid(format!("table: a row has no cell {name:?}")));
            }
            columns.push(column_of(name, &cells)?);
        }
        Ok(Table(DataFrame::new(rows.len(), columns)?))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.0.height()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.0
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Every value of column `name`, top to bottom.
    pub fn column(&self, name: &str) -> Result<Vec<Cell>> {
        let c = self.get(name)?;
        (0..c.len())
            .map(|i| Ok(Cell::from_any(&c.get(i)?)))
            .collect()
    }

    /// Row `i` (from 0) as (column, value) pairs.
    pub fn row(&self, i: usize) -> Result<Vec<(String, Cell)>> {
        if i >= self.len() {
            return Err(match self.len() {
                0 => crate::error::Error::Invalid(format!(
                    "row {i} is out of range: the table has no rows"
                )),
                n => crate::error::Error::Invalid(format!(
                    "row {i} is out of range: the table has {n} rows (0..{})",
                    n - 1
                )),
            });
        }
        self.0
            .columns()
            .iter()
            .map(|c| Ok((c.name().to_string(), Cell::from_any(&c.get(i)?))))
            .collect()
    }

    /// Every row, as [`Table::row`] gives them.
    pub fn to_rows(&self) -> Result<Vec<Vec<(String, Cell)>>> {
        let cells: Vec<(String, Vec<Cell>)> = self
            .columns()
            .into_iter()
            .map(|n| self.column(&n).map(|v| (n, v)))
            .collect::<Result<_>>()?;
        Ok((0..self.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|(n, v)| (n.clone(), v[i].clone()))
                    .collect()
            })
            .collect())
    }

    /// The first `n` rows (all of them when there are fewer).
    pub fn head(&self, n: usize) -> Table {
        Table(self.0.head(Some(n)))
    }

    /// Rows ordered by column `name`; ties keep their order, NaN and then nulls come last in
    /// either direction.
    pub fn sort(&self, name: &str, descending: bool) -> Result<Table> {
        let cells = self.column(name)?;
        let mut rows: Vec<usize> = (0..cells.len()).collect();
        rows.sort_by(|&a, &b| Cell::order(&cells[a], &cells[b], descending));
        self.take(&rows)
    }

    /// Rows where `column op value` holds; `op` is one of `==, !=, <, <=, >, >=, contains`.
    /// Numbers compare as numbers, strings as strings; comparing a column with a value of
    /// another type is an error that names both.
    pub fn filter(&self, name: &str, op: &str, value: impl Into<Cell>) -> Result<Table> {
        let op: Op = op.parse()?;
        let value = value.into();
        let column = self.get(name)?;
        let dtype = column.dtype();
        let holds = if dtype.is_primitive_numeric() {
            "numbers"
        } else if dtype.is_bool() {
            "bools"
        } else if dtype == &DataType::String {
            "strings"
        } else {
            return Err(crate::error::Error::Invalid(format!(
                "filter: column {name:?} holds {dtype} values; filter compares numbers, strings and bools"
            )));
        };
        let fits = match &value {
            Cell::Null => matches!(op, Op::Eq | Op::Ne),
            Cell::Int(_) | Cell::Float(_) => holds == "numbers" && op != Op::Contains,
            Cell::Str(_) => holds == "strings",
            Cell::Bool(_) => holds == "bools" && matches!(op, Op::Eq | Op::Ne),
        };
        if !fits {
            let what = match (&value, op) {
                (Cell::Null, _) => "() is only compared with == or !=".to_string(),
                (_, Op::Contains) => format!(
                    "contains needs a column of strings and a string, got {} and {}",
                    holds,
                    value.kind()
                ),
                (Cell::Bool(_), _) if holds == "bools" => {
                    "bools are only compared with == or !=".to_string()
                }
                _ => format!(
                    "column {name:?} holds {holds} ({dtype}), cannot compare with the {} {value}",
                    value.kind()
                ),
            };
            return Err(crate::error::Error::Invalid(format!(
                "filter {name:?} {op} {value}: {what}"
            )));
        }
        let cells = self.column(name)?;
        let mask: Vec<bool> = cells.iter().map(|c| op.holds(c, &value)).collect();
        self.filter_mask(&mask)
    }

    /// The rows whose entry of `mask` is true (one entry per row, e.g. a script predicate
    /// evaluated on each row).
    pub fn filter_mask(&self, mask: &[bool]) -> Result<Table> {
        if mask.len() != self.len() {
            return Err(crate::error::Error::Invalid(format!(
                "filter: {} true/false values for a table of {} rows",
                mask.len(),
                self.len()
            )));
        }
        let mask = BooleanChunked::from_slice("mask".into(), mask);
        Ok(Table(self.0.filter(&mask)?))
    }

    /// Only the columns `names`, in that order.
    pub fn select(&self, names: &[&str]) -> Result<Table> {
        for (i, n) in names.iter().enumerate() {
            self.get(n)?;
            if names[..i].contains(n) {
                return Err(crate::error::Error::Invalid(format!(
                    "select: column {n:?} is named twice"
                )));
            }
        }
        Ok(Table(self.0.select(names.iter().copied())?))
    }

    /// Rows gathered by the values of column `name` (groups in order of first appearance; nulls
    /// form a group, as does NaN).
    pub fn group_by(&self, name: &str) -> Result<Grouped> {
        let keys = self.column(name)?;
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (row, k) in keys.iter().enumerate() {
            let g = *index.entry(k.group_key()).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(row);
        }
        Ok(Grouped {
            table: self.clone(),
            key: name.to_string(),
            groups,
        })
    }

    /// Saves as `.csv` or `.parquet` (by the extension), creating the folder.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let ext = extension(path)?;
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).at(d)?;
        }
        let mut df = self.0.clone();
        let file = std::fs::File::create(path).at(path)?;
        match ext {
            "parquet" => ParquetWriter::new(file).finish(&mut df).map(|_| ()),
            _ => CsvWriter::new(file).finish(&mut df),
        }
        .map_err(|e| Error::file(path, e))
    }

    /// Loads a `.csv` (with a header line) or `.parquet` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Table> {
        let path = path.as_ref();
        let ext = extension(path)?;
        let file = std::fs::File::open(path).at(path)?;
        match ext {
            "parquet" => ParquetReader::new(file).finish(),
            _ => CsvReader::new(file).finish(),
        }
        .map(Table)
        .map_err(|e| Error::file(path, e))
    }

    /// An HTML `<table>` of the first `max_rows` rows (text escaped), with a last row saying how
    /// many were left out; for notebooks.
    pub fn to_html(&self, max_rows: usize) -> Result<String> {
        let names = self.columns();
        let shown = self.head(max_rows).to_rows()?;
        let mut s = String::from("<table class=\"patholab-table\">\n<thead><tr>");
        for n in &names {
            s += &format!("<th>{}</th>", escape(n));
        }
        s += "</tr></thead>\n<tbody>\n";
        for row in &shown {
            s += "<tr>";
            for (_, c) in row {
                // Floats as polars prints them (0.32672, not 0.3267195767195767).
                let text = match c {
                    Cell::Float(x) => AnyValue::Float64(*x).to_string(),
                    other => other.to_string(),
                };
                s += &format!("<td>{}</td>", escape(&text));
            }
            s += "</tr>\n";
        }
        if self.len() > shown.len() {
            let more = self.len() - shown.len();
            s += &format!(
                "<tr><td colspan=\"{}\">… {more} more row{}</td></tr>\n",
                names.len().max(1),
                if more == 1 { "" } else { "s" }
            );
        }
        s += "</tbody>\n</table>";
        Ok(s)
    }

    /// Column `name`, or an error listing the columns and suggesting the closest.
    fn get(&self, name: &str) -> Result<&Column> {
        self.0.column(name).map_err(|_| {
            let names = self.columns();
            let valid: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            let hint = closest(name, &valid)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_else(|| ";".into());
            crate::error::Error::Invalid(format!(
                "no column {name:?} in the table{hint} columns: {}",
                valid.join(", ")
            ))
        })
    }

    /// The rows at `rows`, in that order.
    fn take(&self, rows: &[usize]) -> Result<Table> {
        let idx = IdxCa::from_vec("rows".into(), rows.iter().map(|&i| i as IdxSize).collect());
        Ok(Table(self.0.take(&idx)?))
    }
}

/// One column of [`Table::from_rows`], typed by its values.
fn column_of(name: &str, cells: &[&Cell]) -> Result<Column> {
    let has = |f: fn(&Cell) -> bool| cells.iter().any(|c| f(c));
    let name: PlSmallStr = name.into();
    Ok(if has(|c| matches!(c, Cell::Str(_))) {
        let v: Vec<Option<String>> = cells
            .iter()
            .map(|c| match c {
                Cell::Null => None,
                c => Some(c.to_string()),
            })
            .collect();
        Column::new(name, v)
    } else if has(|c| matches!(c, Cell::Float(_))) {
        Column::new(name, cells.iter().map(|c| c.as_f64()).collect::<Vec<_>>())
    } else if has(|c| matches!(c, Cell::Int(_))) {
        let v: Vec<Option<i64>> = cells
            .iter()
            .map(|c| match c {
                Cell::Int(i) => Some(*i),
                _ => None,
            })
            .collect();
        Column::new(name, v)
    } else {
        let v: Vec<Option<bool>> = cells
            .iter()
            .map(|c| match c {
                Cell::Bool(b) => Some(*b),
                _ => None,
            })
            .collect();
        Column::new(name, v)
    })
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<DataFrame> for Table {
    fn from(df: DataFrame) -> Self {
        Table(df)
    }
}

impl Grouped {
    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there are no groups (the table had no rows).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The key and the number of rows of each group (column `count`).
    pub fn count(&self) -> Result<Table> {
        let counts: Vec<i64> = self.groups.iter().map(|g| g.len() as i64).collect();
        let mut cols = vec![self.keys()?];
        let name = if self.key == "count" { "n" } else { "count" };
        cols.push(Column::new(name.into(), counts));
        Ok(Table(DataFrame::new(self.len(), cols)?))
    }

    /// The key and the mean of every numeric column per group (nulls skipped, NaN kept).
    pub fn mean(&self) -> Result<Table> {
        self.aggregate(Agg::Mean)
    }

    /// The key and the sum of every numeric column per group (nulls skipped, NaN kept).
    pub fn sum(&self) -> Result<Table> {
        self.aggregate(Agg::Sum)
    }

    /// The key and the smallest value of every numeric column per group (nulls and NaN skipped).
    pub fn min(&self) -> Result<Table> {
        self.aggregate(Agg::Min)
    }

    /// The key and the largest value of every numeric column per group (nulls and NaN skipped).
    pub fn max(&self) -> Result<Table> {
        self.aggregate(Agg::Max)
    }

    /// The key column, one row per group.
    fn keys(&self) -> Result<Column> {
        let firsts: Vec<usize> = self.groups.iter().map(|g| g[0]).collect();
        let t = self.table.take(&firsts)?;
        Ok(t.0.column(&self.key)?.clone())
    }

    fn aggregate(&self, agg: Agg) -> Result<Table> {
        let mut cols = vec![self.keys()?];
        for c in self.table.0.columns() {
            let name = c.name().as_str();
            if name == self.key || !c.dtype().is_primitive_numeric() {
                continue;
            }
            let cells = self.table.column(name)?;
            let ints =
                agg != Agg::Mean && cells.iter().all(|c| matches!(c, Cell::Int(_) | Cell::Null));
            if ints {
                let mut v: Vec<Option<i64>> = Vec::with_capacity(self.len());
                for g in &self.groups {
                    let values = g.iter().filter_map(|&i| match cells[i] {
                        Cell::Int(x) => Some(x),
                        _ => None,
                    });
                    v.push(fold_ints(values, agg).ok_or_else(|| {
                        crate::error::Error::Invalid(format!(
                            "group_by: the sum of column {name:?} does not fit in an int"
                        ))
                    })?);
                }
                cols.push(Column::new(name.into(), v));
            } else {
                let v: Vec<Option<f64>> = self
                    .groups
                    .iter()
                    .map(|g| fold_floats(g.iter().filter_map(|&i| cells[i].as_f64()), agg))
                    .collect();
                cols.push(Column::new(name.into(), v));
            }
        }
        Ok(Table(DataFrame::new(self.len(), cols)?))
    }
}

/// Folds the integers of one group: `None` when the sum overflows, `Some(None)` when there are none
/// (a null, except for a sum, which is 0).
fn fold_ints(values: impl Iterator<Item = i64>, agg: Agg) -> Option<Option<i64>> {
    let mut acc: Option<i64> = None;
    for x in values {
        acc = Some(match (acc, agg) {
            (None, _) => x,
            (Some(a), Agg::Sum) => a.checked_add(x)?,
            (Some(a), Agg::Min) => a.min(x),
            (Some(a), _) => a.max(x),
        });
    }
    Some(if agg == Agg::Sum {
        Some(acc.unwrap_or(0))
    } else {
        acc
    })
}

/// Folds the numbers of one group; min and max skip NaN (NaN only when every value is NaN).
fn fold_floats(values: impl Iterator<Item = f64>, agg: Agg) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    match agg {
        Agg::Sum => Some(v.iter().sum()),
        Agg::Mean if v.is_empty() => None,
        Agg::Mean => Some(v.iter().sum::<f64>() / v.len() as f64),
        Agg::Min | Agg::Max => {
            let numbers = v.iter().copied().filter(|x| !x.is_nan());
            let best = if agg == Agg::Min {
                numbers.reduce(f64::min)
            } else {
                numbers.reduce(f64::max)
            };
            best.or_else(|| (!v.is_empty()).then_some(f64::NAN))
        }
    }
}

/// `csv` or `parquet`, or an error naming the path.
fn extension(path: &Path) -> Result<&'static str> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
    {
        Some(e) if e == "csv" => Ok("csv"),
        Some(e) if e == "parquet" => Ok("parquet"),
        _ => Err(Error::file(
            path,
            "a table is saved and loaded as .csv or .parquet",
        )),
    }
}

/// Text made safe inside HTML.
/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dataset / strategy / score / n, with a NaN and a null score.
    fn scores() -> Table {
        let df = DataFrame::new(
            5,
            vec![
                Column::new("dataset".into(), ["a", "b", "a", "c", "b"]),
                Column::new("strategy".into(), ["svm", "svm", "trees", "trees", "trees"]),
                Column::new(
                    "score".into(),
                    [Some(0.9), Some(f64::NAN), Some(0.7), None, Some(0.8)],
                ),
                Column::new("n".into(), [10i64, 20, 30, 40, 50]),
            ],
        )
        .unwrap();
        Table(df)
    }

    fn strs(cells: Vec<Cell>) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn len_columns_column_and_row() {
        let t = scores();
        assert_eq!(t.len(), 5);
        assert!(!t.is_empty());
        assert_eq!(t.columns(), ["dataset", "strategy", "score", "n"]);
        assert_eq!(
            strs(t.column("dataset").unwrap()),
            ["a", "b", "a", "c", "b"]
        );
        assert_eq!(t.column("n").unwrap()[1], Cell::Int(20));
        let r = t.row(3).unwrap();
        assert_eq!(r[0], ("dataset".to_string(), Cell::Str("c".into())));
        assert_eq!(r[2], ("score".to_string(), Cell::Null));
        let e = t.row(5).unwrap_err().to_string();
        assert_eq!(e, "row 5 is out of range: the table has 5 rows (0..4)");
        let empty = t.head(0);
        assert!(empty
            .row(0)
            .unwrap_err()
            .to_string()
            .contains("has no rows"));
    }

    #[test]
    fn a_bad_column_lists_the_columns_and_suggests_the_closest() {
        let t = scores();
        let e = t.column("scroe").unwrap_err().to_string();
        assert_eq!(
            e,
            "no column \"scroe\" in the table; did you mean \"score\"? columns: dataset, strategy, score, n"
        );
        let e = t.sort("zzzzzz", false).unwrap_err().to_string();
        assert!(
            !e.contains("did you mean") && e.contains("columns: dataset"),
            "{e}"
        );
        assert!(t
            .filter("dataset_", "==", "a")
            .unwrap_err()
            .to_string()
            .contains("\"dataset\"?"));
        assert!(t
            .group_by("strategi")
            .unwrap_err()
            .to_string()
            .contains("\"strategy\"?"));
        assert!(t
            .select(&["n", "scor"])
            .unwrap_err()
            .to_string()
            .contains("\"score\"?"));
    }

    #[test]
    fn head_takes_at_most_n() {
        let t = scores();
        assert_eq!(t.head(2).len(), 2);
        assert_eq!(t.head(100).len(), 5);
    }

    #[test]
    fn sort_puts_nan_then_nulls_last_in_both_directions() {
        let t = scores();
        let up = t.sort("score", false).unwrap();
        assert_eq!(
            strs(up.column("score").unwrap()),
            ["0.7", "0.8", "0.9", "NaN", "null"]
        );
        let down = t.sort("score", true).unwrap();
        assert_eq!(
            strs(down.column("score").unwrap()),
            ["0.9", "0.8", "0.7", "NaN", "null"]
        );
        assert_eq!(
            strs(down.column("n").unwrap()),
            ["10", "50", "30", "20", "40"]
        );
        let by_name = t.sort("dataset", true).unwrap();
        assert_eq!(
            strs(by_name.column("dataset").unwrap()),
            ["c", "b", "b", "a", "a"]
        );
        // Ties keep their order.
        assert_eq!(
            strs(by_name.column("n").unwrap()),
            ["40", "20", "50", "10", "30"]
        );
    }

    #[test]
    fn filter_compares_numbers_as_numbers_and_strings_as_strings() {
        let t = scores();
        let n = |t: Table| strs(t.column("n").unwrap());
        assert_eq!(n(t.filter("score", ">", 0.75).unwrap()), ["10", "50"]);
        assert_eq!(n(t.filter("score", "<=", 0.8).unwrap()), ["30", "50"]);
        // An int value against a float column, and ints exactly.
        assert_eq!(n(t.filter("score", "<", 1).unwrap()), ["10", "30", "50"]);
        assert_eq!(n(t.filter("n", ">=", 30).unwrap()), ["30", "40", "50"]);
        assert_eq!(n(t.filter("n", "==", 20).unwrap()), ["20"]);
        // NaN is unequal to everything; nulls match only () .
        assert_eq!(n(t.filter("score", "!=", 0.9).unwrap()), ["20", "30", "50"]);
        assert_eq!(n(t.filter("score", "==", ()).unwrap()), ["40"]);
        assert_eq!(
            n(t.filter("score", "!=", ()).unwrap()),
            ["10", "20", "30", "50"]
        );
        assert_eq!(n(t.filter("dataset", "==", "a").unwrap()), ["10", "30"]);
        assert_eq!(
            n(t.filter("dataset", ">", "a").unwrap()),
            ["20", "40", "50"]
        );
        assert_eq!(
            n(t.filter("strategy", "contains", "re").unwrap()),
            ["30", "40", "50"]
        );
    }

    #[test]
    fn filter_type_mismatches_and_bad_ops_are_clear_errors() {
        let t = scores();
        let e = t.filter("score", ">", "high").unwrap_err().to_string();
        assert_eq!(
            e,
            "filter \"score\" > high: column \"score\" holds numbers (f64), cannot compare with the string high"
        );
        let e = t.filter("dataset", "==", 1).unwrap_err().to_string();
        assert!(
            e.contains("holds strings (str), cannot compare with the int 1"),
            "{e}"
        );
        let e = t.filter("n", "contains", "1").unwrap_err().to_string();
        assert!(e.contains("contains needs a column of strings"), "{e}");
        let e = t.filter("n", "=<", 1).unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown comparison \"=<\"; valid: ==, !=, <, <=, >, >=, contains"
        );
        let e = t.filter("n", "<", ()).unwrap_err().to_string();
        assert!(e.contains("() is only compared with == or !="), "{e}");
    }

    #[test]
    fn filter_mask_keeps_the_true_rows_and_checks_the_length() {
        let t = scores();
        let kept = t.filter_mask(&[true, false, false, false, true]).unwrap();
        assert_eq!(strs(kept.column("n").unwrap()), ["10", "50"]);
        let e = t.filter_mask(&[true]).unwrap_err().to_string();
        assert_eq!(e, "filter: 1 true/false values for a table of 5 rows");
    }

    #[test]
    fn select_orders_the_columns_and_rejects_repeats() {
        let t = scores();
        assert_eq!(
            t.select(&["n", "dataset"]).unwrap().columns(),
            ["n", "dataset"]
        );
        assert!(t
            .select(&["n", "n"])
            .unwrap_err()
            .to_string()
            .contains("named twice"));
        assert_eq!(t.select(&[]).unwrap().columns().len(), 0);
    }

    #[test]
    fn group_by_aggregates_numeric_columns_in_order_of_first_appearance() {
        let t = scores();
        let g = t.group_by("strategy").unwrap();
        assert_eq!(g.len(), 2);
        let count = g.count().unwrap();
        assert_eq!(count.columns(), ["strategy", "count"]);
        assert_eq!(strs(count.column("count").unwrap()), ["2", "3"]);
        let mean = g.mean().unwrap();
        assert_eq!(mean.columns(), ["strategy", "score", "n"]);
        assert_eq!(strs(mean.column("strategy").unwrap()), ["svm", "trees"]);
        assert_eq!(strs(mean.column("score").unwrap()), ["NaN", "0.75"]);
        assert_eq!(strs(mean.column("n").unwrap()), ["15", "40"]);
        let sum = g.sum().unwrap();
        assert_eq!(sum.column("n").unwrap(), [Cell::Int(30), Cell::Int(120)]);
        let max = g.max().unwrap();
        assert_eq!(strs(max.column("score").unwrap()), ["0.9", "0.8"]);
        assert_eq!(max.column("n").unwrap(), [Cell::Int(20), Cell::Int(50)]);
        let min = g.min().unwrap();
        assert_eq!(strs(min.column("score").unwrap()), ["0.9", "0.7"]);
        // Grouping by a numeric column leaves it out of the aggregates; nulls and NaN form groups.
        let by_score = t.group_by("score").unwrap().count().unwrap();
        assert_eq!(by_score.len(), 5);
        assert_eq!(
            t.head(0).group_by("dataset").unwrap().mean().unwrap().len(),
            0
        );
    }

    #[test]
    fn an_int_sum_that_overflows_is_an_error() {
        let t = Table(
            DataFrame::new(
                2,
                vec![
                    Column::new("k".into(), ["x", "x"]),
                    Column::new("v".into(), [i64::MAX, 1]),
                ],
            )
            .unwrap(),
        );
        let e = t.group_by("k").unwrap().sum().unwrap_err().to_string();
        assert!(e.contains("column \"v\" does not fit in an int"), "{e}");
    }

    #[test]
    fn to_rows_gives_every_row() {
        let rows = scores().to_rows().unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[4][3], ("n".to_string(), Cell::Int(50)));
    }

    #[test]
    fn csv_and_parquet_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let t = scores();
        for name in ["deep/er/t.csv", "t.parquet"] {
            let path = dir.path().join(name);
            t.save(&path).unwrap();
            let back = Table::load(&path).unwrap();
            assert_eq!(back.columns(), t.columns(), "{name}");
            assert_eq!(
                back.column("dataset").unwrap(),
                t.column("dataset").unwrap(),
                "{name}"
            );
            assert_eq!(back.column("n").unwrap(), t.column("n").unwrap(), "{name}");
            let s = strs(back.column("score").unwrap());
            assert_eq!(s, ["0.9", "NaN", "0.7", "null", "0.8"], "{name}");
        }
    }

    #[test]
    fn save_and_load_name_the_path_on_a_bad_extension_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xlsx");
        let e = scores().save(&path).unwrap_err().to_string();
        assert!(
            e.contains("t.xlsx: a table is saved and loaded as .csv or .parquet"),
            "{e}"
        );
        let missing = dir.path().join("none.csv");
        assert!(Table::load(&missing)
            .unwrap_err()
            .to_string()
            .contains("none.csv"));
        let junk = dir.path().join("junk.parquet");
        std::fs::write(&junk, "not parquet").unwrap();
        assert!(Table::load(&junk)
            .unwrap_err()
            .to_string()
            .contains("junk.parquet"));
    }

    #[test]
    fn html_shows_floats_as_polars_prints_them() {
        struct R(f64);
        impl Row for R {
            fn cells(&self) -> Vec<(&'static str, Cell)> {
                vec![("x", self.0.into())]
            }
        }
        let t = Table::from_rows(&[R(0.3267195767195767), R(2.0), R(1e-9)]).unwrap();
        let html = t.to_html(10).unwrap();
        assert!(html.contains("<td>0.32672</td>"), "{html}");
        assert!(html.contains("<td>2.0</td>"), "{html}");
        assert!(html.contains("<td>1.0000e-9</td>"), "{html}");
        assert!(t.to_string().contains("0.32672"), "{t}");
    }

    #[test]
    fn html_is_escaped_and_says_what_was_left_out() {
        let t = Table(
            DataFrame::new(3, vec![Column::new("<b>".into(), ["a&b", "\"q\"", "c"])]).unwrap(),
        );
        let h = t.to_html(2).unwrap();
        assert!(h.starts_with("<table"), "{h}");
        assert!(h.contains("<th>&lt;b&gt;</th>"), "{h}");
        assert!(
            h.contains("<td>a&amp;b</td>") && h.contains("<td>&quot;q&quot;</td>"),
            "{h}"
        );
        assert!(
            !h.contains("<td>c</td>") && h.contains("… 1 more row<"),
            "{h}"
        );
        assert!(t.to_html(10).unwrap().ends_with("</tbody>\n</table>"));
    }

    #[test]
    fn display_is_polars_layout() {
        let s = scores().to_string();
        assert!(s.contains("shape: (5, 4)") && s.contains("dataset"), "{s}");
    }
}
