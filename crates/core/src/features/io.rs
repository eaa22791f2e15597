//! Feature sets on disk: parquet (one row per image, readable by pandas/polars/DuckDB) and
//! safetensors (`x`, `labels`) with a JSON sidecar for ids, slides, classes and provenance.

use super::{Column, FeatureSet};
use crate::error::{Context, Error, Result};
use polars::prelude::*;
use std::path::Path;

/// The feature set as a table: `id, label, slide` then one column per feature.
pub fn to_frame(f: &FeatureSet) -> Result<DataFrame> {
    let mut cols: Vec<polars::prelude::Column> = vec![
        polars::prelude::Column::new("id".into(), &f.ids),
        polars::prelude::Column::new(
            "label".into(),
            f.labels
                .iter()
                .map(|l| f.classes[*l].clone())
                .collect::<Vec<_>>(),
        ),
        polars::prelude::Column::new(
            "label_index".into(),
            f.labels.iter().map(|l| *l as i64).collect::<Vec<_>>(),
        ),
        polars::prelude::Column::new("slide".into(), &f.slides),
    ];
    for (j, c) in f.columns.iter().enumerate() {
        let v: Vec<f32> = (0..f.n).map(|i| f.x[i * f.d + j]).collect();
        cols.push(polars::prelude::Column::new(c.name().into(), v));
    }
    Ok(DataFrame::new(f.n, cols)?)
}

/// Saves as parquet (`.parquet`) or safetensors (`.safetensors`), by extension.
pub fn save(f: &FeatureSet, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            let mut df = to_frame(f)?;
            let file = std::fs::File::create(path).at(path)?;
            ParquetWriter::new(file)
                .finish(&mut df)
                .map_err(|e| Error::file(path, e))?;
            Ok(())
        }
        Some("safetensors") => {
            let x = tch::Tensor::from_slice(&f.x).reshape([f.n as i64, f.d as i64]);
            let labels =
                tch::Tensor::from_slice(&f.labels.iter().map(|l| *l as i64).collect::<Vec<_>>());
            crate::nets::weights::write_safetensors(
                path,
                &[("x".into(), x), ("labels".into(), labels)],
            )?;
            let meta = serde_json::json!({
                "ids": f.ids, "slides": f.slides, "classes": f.classes,
                "columns": f.columns.iter().map(|c| c.name()).collect::<Vec<_>>(),
            });
            let side = path.with_extension("json");
            std::fs::write(&side, meta.to_string()).at(&side)
        }
        _ => Err(Error::file(
            path,
            "feature files end in .parquet or .safetensors",
        )),
    }
}

/// Loads a feature set written by [`save`] (or any parquet with `id,label,slide` and numeric columns).
pub fn load(path: &Path) -> Result<FeatureSet> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            let file = std::fs::File::open(path).at(path)?;
            let df = ParquetReader::new(file)
                .finish()
                .map_err(|e| Error::file(path, e))?;
            let strings = |name: &str| -> Result<Vec<String>> {
                let c = df
                    .column(name)
                    .map_err(|_| Error::file(path, format!("no column {name:?}")))?;
                let c = c
                    .cast(&DataType::String)
                    .map_err(|e| Error::file(path, e))?;
                Ok(c.str()
                    .map_err(|e| Error::file(path, e))?
                    .iter()
                    .map(|s| s.unwrap_or("").to_string())
                    .collect())
            };
            let ids = strings("id")?;
            let label_names = strings("label")?;
            let slides = strings("slide")?;
            let mut classes: Vec<String> = label_names.clone();
            if let Ok(idx) = df.column("label_index") {
                let idx: Vec<i64> = idx
                    .cast(&DataType::Int64)?
                    .i64()?
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect();
                let k = idx.iter().max().map_or(0, |m| *m as usize + 1);
                classes = vec![String::new(); k];
                for (i, n) in idx.iter().zip(&label_names) {
                    classes[*i as usize] = n.clone();
                }
            } else {
                classes.sort();
                classes.dedup();
            }
            let labels = label_names
                .iter()
                .map(|l| classes.iter().position(|c| c == l).unwrap())
                .collect();
            let feature_names: Vec<String> = df
                .get_column_names()
                .into_iter()
                .map(|s| s.to_string())
                .filter(|n| !["id", "label", "label_index", "slide"].contains(&n.as_str()))
                .collect();
            let (n, d) = (ids.len(), feature_names.len());
            let mut x = vec![0f32; n * d];
            for (j, name) in feature_names.iter().enumerate() {
                let c = df
                    .column(name)?
                    .cast(&DataType::Float32)
                    .map_err(|e| Error::file(path, format!("column {name}: {e}")))?;
                for (i, v) in c.f32()?.iter().enumerate() {
                    x[i * d + j] = v.unwrap_or(f32::NAN);
                }
            }
            FeatureSet::new(
                x,
                ids,
                labels,
                slides,
                classes,
                feature_names.iter().map(|n| Column::parse(n)).collect(),
            )
        }
        Some("safetensors") => {
            let tensors = crate::nets::weights::read(path)?;
            let get = |n: &str| {
                tensors
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, t)| t.shallow_clone())
                    .ok_or_else(|| Error::file(path, format!("no tensor {n:?}")))
            };
            let x = get("x")?.to_kind(tch::Kind::Float);
            let labels: Vec<i64> = Vec::try_from(get("labels")?.to_kind(tch::Kind::Int64))?;
            let side = path.with_extension("json");
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&side).at(&side)?).at(&side)?;
            let strs = |k: &str| -> Vec<String> {
                meta[k]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            FeatureSet::new(
                Vec::try_from(x.flatten(0, -1))?,
                strs("ids"),
                labels.iter().map(|l| *l as usize).collect(),
                strs("slides"),
                strs("classes"),
                strs("columns").iter().map(|n| Column::parse(n)).collect(),
            )
        }
        _ => Err(Error::file(
            path,
            "feature files end in .parquet or .safetensors",
        )),
    }
}
