//! Script bindings of tables: every result comes back as a polars-backed `Table`, and these are
//! what a user reaches for at the prompt to look into one.

use super::convert::{cell, cells_map, strings};
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::eval::table::{Cell, Grouped, Table};
use rhai::{Array, Dynamic, FnPtr, NativeCallContext};

fn to_cell(v: &Dynamic) -> RResult<Cell> {
    if v.is_unit() {
        Ok(Cell::Null)
    } else if let Ok(b) = v.as_bool() {
        Ok(Cell::Bool(b))
    } else if let Ok(i) = v.as_int() {
        Ok(Cell::Int(i))
    } else if let Ok(f) = v.as_float() {
        Ok(Cell::Float(f))
    } else if v.is_string() {
        Ok(Cell::Str(v.to_string()))
    } else {
        Err(format!(
            "a table cell is a number, a string, a bool or (), got {}",
            v.type_name()
        )
        .into())
    }
}

fn names(a: &Array) -> RResult<Vec<String>> {
    a.iter()
        .map(|x| {
            x.clone()
                .into_string()
                .map_err(|_| format!("column names are strings, got {}", x.type_name()).into())
        })
        .collect()
}

/// Registers tables.
pub fn register(api: &mut Api) {
    api.engine()
        .register_type_with_name::<Table>("Table")
        .register_type_with_name::<Grouped>("Grouped");
    api.func(
        "table(path: String) -> Table",
        "Loads a table saved as .csv or .parquet.",
        r#"r.table().save("t.csv"); let t2 = table("t.csv");"#,
        |p: &str| Table::load(std::path::Path::new(p)).map_err(to_rhai),
    );
    api.method(
        "Table",
        "t.len() -> int",
        "Number of rows.",
        "m.cv_scores().len()",
        |t: &mut Table| t.len() as i64,
    );
    api.method(
        "Table",
        "t.columns() -> Array",
        "Column names, in order.",
        r#"m.cv_scores().columns() // => ["params", "scoring", "score", "pooled", "mean", "std", "fold_0", "fold_1", "fold_2"]"#,
        |t: &mut Table| strings(&t.columns()),
    );
    api.method(
        "Table",
        "t.column(name: String) -> Array",
        "The values of one column.",
        r#"m.cv_scores().column("mean")"#,
        |t: &mut Table, name: &str| -> RResult<Array> {
            Ok(t.column(name)
                .map_err(to_rhai)?
                .into_iter()
                .map(cell)
                .collect())
        },
    );
    api.method(
        "Table",
        "t.row(i: int) -> Map",
        "Row i as a map from column name to value.",
        "m.cv_scores().row(0)",
        |t: &mut Table, i: i64| -> RResult<rhai::Map> {
            if i < 0 {
                return Err(format!("row {i}: rows are numbered from 0").into());
            }
            t.row(i as usize).map(cells_map).map_err(to_rhai)
        },
    );
    api.method(
        "Table",
        "t.head(n: int) -> Table",
        "The first n rows.",
        "m.cv_scores().head(2)",
        |t: &mut Table, n: i64| t.head(n.max(0) as usize),
    );
    api.method(
        "Table",
        "t.sort(column: String, descending: bool) -> Table",
        "Rows ordered by a column (NaN and empty cells last).",
        r#"m.cv_scores().sort("mean", true)"#,
        |t: &mut Table, c: &str, desc: bool| t.sort(c, desc).map_err(to_rhai),
    );
    api.method(
        "Table",
        "t.filter(column: String, op: String, value) -> Table",
        "Rows whose column compares to value: op is ==, !=, <, <=, >, >= or contains.",
        r#"m.cv_scores().filter("mean", ">", 0.5)"#,
        |t: &mut Table, c: &str, op: &str, v: Dynamic| {
            t.filter(c, op, to_cell(&v)?).map_err(to_rhai)
        },
    );
    api.method(
        "Table",
        "t.filter(keep: Fn) -> Table",
        "Rows for which a function of the row (a map) returns true.",
        "m.cv_scores().filter(|row| row.mean > 0.5)",
        |ctx: NativeCallContext, t: &mut Table, keep: FnPtr| -> RResult<Table> {
            let mut mask = Vec::with_capacity(t.len());
            for row in t.to_rows().map_err(to_rhai)? {
                let v: Dynamic =
                    keep.call_within_context(&ctx, (Dynamic::from_map(cells_map(row)),))?;
                mask.push(v.as_bool().map_err(|_| {
                    format!(
                        "the filter function must return true or false, got {}",
                        v.type_name()
                    )
                })?);
            }
            t.filter_mask(&mask).map_err(to_rhai)
        },
    );
    api.method(
        "Table",
        "t.select(columns: Array) -> Table",
        "These columns, in this order.",
        r#"m.cv_scores().select(["params", "mean"])"#,
        |t: &mut Table, a: Array| -> RResult<Table> {
            let names = names(&a)?;
            t.select(&names.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                .map_err(to_rhai)
        },
    );
    api.method(
        "Table",
        "t.group_by(column: String) -> Grouped",
        "Rows grouped by a column's values; then .mean(), .max(), .min(), .sum() or .count().",
        r#"r.table().group_by("strategy").mean()"#,
        |t: &mut Table, c: &str| t.group_by(c).map_err(to_rhai),
    );
    api.method(
        "Grouped",
        "g.mean() -> Table",
        "Mean of each numeric column per group.",
        r#"r.table().group_by("dataset").mean()"#,
        |g: &mut Grouped| g.mean().map_err(to_rhai),
    );
    api.method(
        "Grouped",
        "g.max() -> Table",
        "Largest value of each numeric column per group.",
        r#"r.table().group_by("dataset").max()"#,
        |g: &mut Grouped| g.max().map_err(to_rhai),
    );
    api.method(
        "Grouped",
        "g.min() -> Table",
        "Smallest value of each numeric column per group.",
        r#"r.table().group_by("dataset").min()"#,
        |g: &mut Grouped| g.min().map_err(to_rhai),
    );
    api.method(
        "Grouped",
        "g.sum() -> Table",
        "Sum of each numeric column per group.",
        r#"r.table().group_by("dataset").sum()"#,
        |g: &mut Grouped| g.sum().map_err(to_rhai),
    );
    api.method(
        "Grouped",
        "g.count() -> Table",
        "Rows per group.",
        r#"r.table().group_by("dataset").count()"#,
        |g: &mut Grouped| g.count().map_err(to_rhai),
    );
    api.method(
        "Table",
        "t.to_maps() -> Array",
        "Every row as a map.",
        "m.cv_scores().to_maps()",
        |t: &mut Table| -> RResult<Array> {
            Ok(t.to_rows()
                .map_err(to_rhai)?
                .into_iter()
                .map(|r| Dynamic::from_map(cells_map(r)))
                .collect())
        },
    );
    api.method(
        "Table",
        "t.save(path: String) -> String",
        "Writes .csv or .parquet (by the extension); returns the path.",
        r#"m.cv_scores().save("cv.parquet")"#,
        |t: &mut Table, p: &str| -> RResult<String> {
            t.save(std::path::Path::new(p)).map_err(to_rhai)?;
            Ok(p.to_string())
        },
    );
}
