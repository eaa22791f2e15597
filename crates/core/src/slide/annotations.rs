//! Annotations as QuPath exports them: a GeoJSON FeatureCollection (or a bare array of features) of
//! Polygon / MultiPolygon geometries in level-0 pixels, each classified by
//! `properties.classification.name` (or `properties.classification` as a string, or
//! `properties.name`). An invalid polygon is an error naming the file and the feature.

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// One classified region: polygons, each an outer ring followed by its holes.
#[derive(Clone, Debug)]
pub struct Region {
    pub label: String,
    pub polygons: Vec<Vec<Vec<(f64, f64)>>>,
}

/// The regions of one slide.
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    pub regions: Vec<Region>,
}

impl Annotations {
    /// Reads a GeoJSON file.
    pub fn read(path: &Path) -> Result<Annotations> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("not valid JSON: {e}")))?;
        Self::parse(&v).map_err(|m| Error::file(path, m))
    }

    /// Parses GeoJSON; the error names the feature at fault.
    pub fn parse(v: &Value) -> std::result::Result<Annotations, String> {
        let features: &[Value] = match v {
            Value::Array(a) => a,
            Value::Object(o) => match o.get("type").and_then(|t| t.as_str()) {
                Some("FeatureCollection") => o
                    .get("features")
                    .and_then(|f| f.as_array())
                    .map(|a| a.as_slice())
                    .ok_or("a FeatureCollection without a features array")?,
                Some("Feature") => std::slice::from_ref(v),
                t => return Err(format!("expected a FeatureCollection, got type {t:?}")),
            },
            _ => return Err("expected a GeoJSON FeatureCollection".into()),
        };
        let mut regions = Vec::new();
        for (i, f) in features.iter().enumerate() {
            let at = |m: String| format!("feature {i}: {m}");
            let props = f.get("properties");
            let class = props.and_then(|p| p.get("classification"));
            let label = class
                .and_then(|c| c.get("name").or(Some(c)))
                .and_then(|n| n.as_str())
                .or_else(|| props.and_then(|p| p.get("name")).and_then(|n| n.as_str()))
                .ok_or_else(|| {
                    at("no classification name (properties.classification.name)".into())
                })?;
            let geom = f.get("geometry").ok_or_else(|| at("no geometry".into()))?;
            let coords = geom
                .get("coordinates")
                .ok_or_else(|| at("geometry without coordinates".into()))?;
            let polygons = match geom.get("type").and_then(|t| t.as_str()) {
                Some("Polygon") => vec![polygon(coords).map_err(at)?],
                Some("MultiPolygon") => coords
                    .as_array()
                    .ok_or_else(|| at("MultiPolygon coordinates are not an array".into()))?
                    .iter()
                    .map(|p| polygon(p).map_err(at))
                    .collect::<std::result::Result<_, _>>()?,
                // Points and lines carry no area: QuPath exports them for other purposes.
                Some("Point" | "MultiPoint" | "LineString" | "MultiLineString") => continue,
                t => return Err(at(format!("unsupported geometry type {t:?}"))),
            };
            regions.push(Region {
                label: label.to_string(),
                polygons,
            });
        }
        Ok(Annotations { regions })
    }

    /// The label of the first region containing the point, if any.
    pub fn label_at(&self, x: f64, y: f64) -> Option<&str> {
        self.regions
            .iter()
            .find(|r| r.polygons.iter().any(|p| inside(p, x, y)))
            .map(|r| r.label.as_str())
    }
}

fn polygon(v: &Value) -> std::result::Result<Vec<Vec<(f64, f64)>>, String> {
    let rings = v.as_array().ok_or("polygon coordinates are not an array")?;
    if rings.is_empty() {
        return Err("polygon without rings".into());
    }
    rings
        .iter()
        .enumerate()
        .map(|(r, ring)| {
            let pts = ring.as_array().ok_or(format!("ring {r} is not an array"))?;
            let pts: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| {
                    let xy = p.as_array().filter(|a| a.len() >= 2);
                    let num = |k: usize| xy.and_then(|a| a[k].as_f64()).filter(|v| v.is_finite());
                    match (num(0), num(1)) {
                        (Some(x), Some(y)) => Ok((x, y)),
                        _ => Err(format!("ring {r}: a position is not [x, y] numbers: {p}")),
                    }
                })
                .collect::<std::result::Result<_, _>>()?;
            if pts.len() < 4 {
                return Err(format!(
                    "ring {r} has {} positions (a closed ring needs at least 4)",
                    pts.len()
                ));
            }
            if pts.first() != pts.last() {
                return Err(format!("ring {r} is not closed (first position ≠ last)"));
            }
            Ok(pts)
        })
        .collect()
}

/// Even-odd rule over the outer ring and its holes.
fn inside(rings: &[Vec<(f64, f64)>], x: f64, y: f64) -> bool {
    let mut c = false;
    for ring in rings {
        for k in 0..ring.len() - 1 {
            let ((x1, y1), (x2, y2)) = (ring[k], ring[k + 1]);
            if (y1 > y) != (y2 > y) && x < (x2 - x1) * (y - y1) / (y2 - y1) + x1 {
                c = !c;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_of_point_with_hole() {
        let v: Value = serde_json::from_str(
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"classification":{"name":"Tumor"}},
            "geometry":{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}}]}"#,
        )
        .unwrap();
        let a = Annotations::parse(&v).unwrap();
        assert_eq!(a.label_at(1.0, 1.0), Some("Tumor"));
        assert_eq!(a.label_at(5.0, 5.0), None);
        assert_eq!(a.label_at(11.0, 1.0), None);
    }

    #[test]
    fn open_ring_is_an_error_naming_the_feature() {
        let v: Value = serde_json::from_str(
            r#"[{"type":"Feature","properties":{"name":"A"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}}]"#,
        )
        .unwrap();
        let e = Annotations::parse(&v).unwrap_err();
        assert!(e.contains("feature 0") && e.contains("not closed"), "{e}");
    }
}
