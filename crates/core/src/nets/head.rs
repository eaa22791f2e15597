//! A network's classifier head: classifying a preprocessed image with it, and replacing it by a
//! new one for other classes (fine-tuning).

use super::body::dotted;
use super::Network;
use crate::error::Result;
use tch::{nn, Device, Tensor};

impl Network {
    /// Top-`k` classes of one preprocessed image (`3 × size × size`, normalised), with softmax
    /// probabilities.
    pub fn classify_pixels(&self, px: &[f32], k: usize) -> Result<Vec<(usize, String, f64)>> {
        let s = self.spec.input_size;
        let x = Tensor::from_slice(px)
            .reshape([1, 3, s, s])
            .to_device(self.device());
        let p = tch::no_grad(|| self.logits(&x, false))
            .softmax(1, tch::Kind::Float)
            .to_device(Device::Cpu);
        let (vals, idx) = p.topk(k.min(self.classes.len()) as i64, 1, true, true);
        let vals: Vec<f32> = Vec::try_from(vals.flatten(0, -1))?;
        let idx: Vec<i64> = Vec::try_from(idx.flatten(0, -1))?;
        Ok(idx
            .iter()
            .zip(vals)
            .map(|(i, v)| {
                (
                    *i as usize,
                    self.classes.get(*i as usize).cloned().unwrap_or_default(),
                    v as f64,
                )
            })
            .collect())
    }

    /// The variable-name prefix of the classifier.
    pub fn head_path(&self) -> &str {
        &self.body.fc_path
    }

    /// Replaces the classifier by a new, randomly initialised one for `classes`.
    pub fn replace_head(&mut self, classes: Vec<String>, seed: u64) {
        tch::manual_seed(seed as i64);
        let prefix = format!("{}.", self.body.fc_path);
        {
            let mut vars = self.vs.variables_.lock().unwrap();
            let old: Vec<usize> = vars
                .named_variables
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, t)| t.data_ptr() as usize)
                .collect();
            vars.named_variables.retain(|k, _| !k.starts_with(&prefix));
            vars.trainable_variables
                .retain(|v| !old.contains(&(v.tensor.data_ptr() as usize)));
        }
        let root = self.vs.root();
        self.fc = nn::linear(
            dotted(&root, &self.body.fc_path),
            self.body.fc_in,
            classes.len() as i64,
            Default::default(),
        );
        self.classes = classes;
    }
}
