//! Single-layer perceptron: softmax regression trained with Adam on minibatches, L2 penalty
//! `alpha`, on the CPU or a CUDA device through libtorch.

use super::{Classifier, Fitted, Matrix, Param};
use crate::error::Result;
use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Tensor};

crate::options! {
    /// `perceptron(#{ ... })`: its hyper-parameters.
    pub struct Perceptron for "perceptron" {
        /// Adam's learning rate.
        lr: f64 = 1e-3,
        /// Number of minibatch steps.
        iterations: usize = 1000,
        /// L2 penalty.
        alpha: f64 = 1e-4,
        /// Rows per minibatch.
        batch: usize = 200,
        /// Seed of the initialisation and the minibatch order.
        seed: u64 = 0,
        /// "cpu", "cuda" or "cuda:N".
        device: String = "cpu".into(),
    }
    check(o) {
        if !(o.lr.is_finite() && o.lr > 0.0) || !(o.alpha.is_finite() && o.alpha >= 0.0) {
            return Err(crate::error::Error::Invalid(format!(
                "perceptron needs lr > 0 and alpha ≥ 0 (got {}, {})",
                o.lr, o.alpha
            )));
        }
        Ok(())
    }
}

/// The fitted softmax layer.
pub struct SoftmaxModel {
    w: Tensor,
    b: Tensor,
    k: usize,
}

// The tensors are only read after fitting.
unsafe impl Sync for SoftmaxModel {}

impl Fitted for SoftmaxModel {
    fn decision(&self, x: &Matrix) -> Vec<f64> {
        let xt = Tensor::from_slice(&x.data)
            .reshape([x.n as i64, x.d as i64])
            .to_device(self.w.device());
        let logits = tch::no_grad(|| xt.matmul(&self.w.tr()) + &self.b);
        Vec::<f64>::try_from(
            logits
                .to_kind(Kind::Double)
                .to_device(Device::Cpu)
                .flatten(0, -1),
        )
        .unwrap_or_default()
    }
    fn proba(&self, x: &Matrix) -> Option<Vec<f64>> {
        let s = self.decision(x);
        let t = Tensor::from_slice(&s)
            .reshape([x.n as i64, self.k as i64])
            .softmax(1, Kind::Double);
        Vec::<f64>::try_from(t.flatten(0, -1)).ok()
    }
    fn n_classes(&self) -> usize {
        self.k
    }
}

impl Classifier for Perceptron {
    fn name(&self) -> &'static str {
        "perceptron"
    }
    fn set(&mut self, key: &str, v: &Param) -> Result<()> {
        super::set_option(self, key, v)
    }
    fn params(&self) -> Vec<(String, Param)> {
        super::option_params(self, &["lr", "iterations"])
    }
    fn needs_standardization(&self) -> bool {
        true
    }
    fn fit(&self, x: &Matrix, y: &[usize], k: usize) -> Result<Box<dyn Fitted>> {
        crate::options::Options::check(self)?;
        let device = crate::parse_device(&self.device)?;
        let (iterations, batch) = (self.iterations.max(1), self.batch.max(1));
        let vs = nn::VarStore::new(device);
        let mut rng = crate::rng::Rng::new(self.seed);
        tch::manual_seed(self.seed as i64);
        let layer = nn::linear(vs.root() / "fc", x.d as i64, k as i64, Default::default());
        let mut opt = nn::Adam::default().build(&vs, self.lr)?;
        let xt = Tensor::from_slice(&x.data)
            .reshape([x.n as i64, x.d as i64])
            .to_device(device);
        let yt =
            Tensor::from_slice(&y.iter().map(|v| *v as i64).collect::<Vec<_>>()).to_device(device);
        let mut order: Vec<i64> = (0..x.n as i64).collect();
        let mut pos = x.n;
        for step in 0..iterations {
            if step % 100 == 0 {
                crate::cancel::check()?;
            }
            if pos + batch.min(x.n) > x.n {
                rng.shuffle(&mut order);
                pos = 0;
            }
            let take = batch.min(x.n);
            let idx = Tensor::from_slice(&order[pos..pos + take]).to_device(device);
            pos += take;
            let (xb, yb) = (xt.index_select(0, &idx), yt.index_select(0, &idx));
            let loss = layer.forward(&xb).cross_entropy_for_logits(&yb)
                + layer.ws.square().sum(Kind::Float) * (0.5 * self.alpha / take as f64);
            opt.backward_step(&loss);
        }
        Ok(Box::new(SoftmaxModel {
            w: layer.ws.detach(),
            b: layer.bs.unwrap().detach(),
            k,
        }))
    }
    fn box_clone(&self) -> Box<dyn Classifier> {
        Box::new(self.clone())
    }
    fn paper_grid(&self, _d: usize) -> Vec<(String, Vec<Param>)> {
        vec![
            (
                "lr".into(),
                [1e-4, 1e-3, 1e-2, 1e-1]
                    .iter()
                    .map(|v| Param::Float(*v))
                    .collect(),
            ),
            (
                "iterations".into(),
                [1000, 2500, 5000, 10000]
                    .iter()
                    .map(|v| Param::Int(*v))
                    .collect(),
            ),
        ]
    }
}
