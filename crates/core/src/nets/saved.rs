//! A network saved to disk and loaded back: `.safetensors` weights (PyTorch loads them) with a
//! `.json` beside them naming the architecture and the classes.

use super::{registry, weights, NetOptions, Network, Weights};
use crate::error::{Context, Error, Result};
use std::path::Path;
use tch::{Device, Tensor};

impl Network {
    /// Saves the weights as `.safetensors` (PyTorch-loadable) with a `.json` beside it naming the
    /// architecture and classes, so `network(PATH)` can rebuild it.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut tensors: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.to_device(Device::Cpu)))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        weights::write_safetensors(path, &tensors)?;
        let meta = serde_json::json!({ "network": self.spec.name, "classes": self.classes });
        crate::write_atomically(
            &path.with_extension("json"),
            serde_json::to_string_pretty(&meta).unwrap().as_bytes(),
        )
    }

    /// Loads a network saved by [`Network::save`].
    pub fn load(path: &Path, device: Device) -> Result<Network> {
        let meta_path = path.with_extension("json");
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&meta_path).at(&meta_path)?).at(&meta_path)?;
        let name = meta["network"]
            .as_str()
            .ok_or_else(|| Error::file(&meta_path, "no \"network\" field"))?;
        let spec = registry::find(name)
            .ok_or_else(|| Error::file(&meta_path, format!("unknown network {name}")))?;
        let classes: Vec<String> = meta["classes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let opts = NetOptions {
            weights: Weights::File(path.to_path_buf()),
            device,
            ..Default::default()
        };
        Self::build(spec, opts, classes.len() as i64, classes)
    }
}
