//! Attention MIL against the PyTorch reference modules (tests/fixtures/make_mil.py): the forward
//! pass of every bag (logits and attention), three AdamW steps, and checkpoint names and shapes
//! equal to the reference state_dict (what a strict load needs), both ways.

use patholab_core::learn::mil::bags::{Bag, Bags};
use patholab_core::learn::mil::{
    AbmilOptions, MeanMilOptions, MilLearner, MilModel, TransMilOptions,
};
use patholab_core::options::Options;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::Tensor;

fn generated(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/generated")
        .join(name)
}

struct Fixture {
    tensors: Vec<(String, Tensor)>,
    meta: serde_json::Value,
}

impl Fixture {
    fn load() -> Fixture {
        let tensors = patholab_core::nets::weights::read(&generated("mil.safetensors"))
            .expect("run scripts/make-fixtures");
        let meta =
            serde_json::from_str(&std::fs::read_to_string(generated("mil.json")).unwrap()).unwrap();
        Fixture { tensors, meta }
    }

    fn get(&self, key: &str) -> Option<Tensor> {
        self.tensors
            .iter()
            .find(|(n, _)| n == key)
            .map(|(_, t)| t.shallow_clone())
    }

    fn bags(&self, name: &str) -> Bags {
        let labels: Vec<i64> = Vec::try_from(self.get(&format!("{name}/labels")).unwrap()).unwrap();
        let k = self.meta[name]["classes"].as_u64().unwrap() as usize;
        let d = self.meta[name]["features"].as_u64().unwrap() as usize;
        let bags = labels
            .iter()
            .enumerate()
            .map(|(i, y)| {
                let x = self.get(&format!("{name}/bag{i}")).unwrap();
                let n = x.size()[0] as usize;
                Bag {
                    id: format!("bag{i}"),
                    group: format!("bag{i}"),
                    label: *y as usize,
                    n,
                    x: Vec::try_from(x.flatten(0, -1)).unwrap(),
                    tiles: (0..n).map(|t| format!("t{t}")).collect(),
                    coords: vec![None; n],
                    instances: None,
                }
            })
            .collect();
        Bags {
            bags,
            d,
            classes: (0..k).map(|c| format!("c{c}")).collect(),
            columns: Arc::new(vec![]),
        }
    }

    /// The learner of configuration `name`: its shape from the fixture, dropout 0, and the
    /// reference's training (lr 1e-2, weight decay 1e-2, constant, one step over all 4 bags, no
    /// class weights), from the reference's initial weights.
    fn learner(&self, name: &str, epochs: usize) -> MilLearner {
        let mut o = serde_json::json!({
            "lr": 1e-2, "weight_decay": 1e-2, "epochs": epochs, "schedule": "constant",
            "accumulate": 4, "class_weight": "none", "quiet": true,
            "weights": generated(&format!("mil_{name}_init.safetensors")),
        });
        let cfg = &self.meta[name]["config"];
        let kind = match cfg.as_object() {
            None => "mean_mil",
            Some(c) if c.contains_key("transmil") => "transmil",
            Some(_) => "abmil",
        };
        for (k, v) in cfg
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "transmil")
        {
            o[k] = v.clone();
        }
        let o = o.as_object().unwrap().clone();
        match kind {
            "mean_mil" => MilLearner::Mean(MeanMilOptions::from_object(o).unwrap()),
            "transmil" => MilLearner::TransMil(TransMilOptions::from_object(o).unwrap()),
            _ => MilLearner::Abmil(AbmilOptions::from_object(o).unwrap()),
        }
    }
}

fn close(a: &[f64], b: &[f64], rel: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rel * scale,
            "{what}[{i}]: {x} vs {y} (scale {scale})"
        );
    }
}

fn f64s(t: &Tensor) -> Vec<f64> {
    Vec::try_from(t.to_kind(tch::Kind::Double).flatten(0, -1)).unwrap()
}

const CONFIGS: [&str; 4] = ["gated1", "plain2", "mean", "trans"];

#[test]
fn forward_pass_equals_the_reference_modules() {
    let fx = Fixture::load();
    for name in CONFIGS {
        let bags = fx.bags(name);
        let m = fx.learner(name, 1).build(bags.d, &bags.classes).unwrap();
        for (i, b) in bags.bags.iter().enumerate() {
            let want = f64s(&fx.get(&format!("{name}/logits{i}")).unwrap());
            close(
                &m.logits(b).unwrap(),
                &want,
                1e-5,
                &format!("{name} logits of bag {i}"),
            );
            if let Some(a) = fx.get(&format!("{name}/attention{i}")) {
                let got: Vec<f64> = m.attention(b).unwrap().concat();
                close(
                    &got,
                    &f64s(&a),
                    1e-5,
                    &format!("{name} attention of bag {i}"),
                );
            } else {
                assert!(m.attention(b).is_err(), "{name} has no attention");
            }
        }
    }
}

#[test]
fn three_adamw_steps_equal_the_reference() {
    let fx = Fixture::load();
    for name in CONFIGS {
        let bags = fx.bags(name);
        let m = fx.learner(name, 3).fit(&bags).unwrap();
        let got = m.tensors();
        for (n, t) in &got {
            let want = fx
                .get(&format!("{name}/after/{n}"))
                .unwrap_or_else(|| panic!("{name}: no reference {n}"));
            if n.ends_with("attention_c.bias") {
                // Softmax ignores a shift of every score, so this bias's gradient is zero but
                // for round-off, and Adam's step (m / √v) turns round-off into steps of up to lr
                // in either direction: both sides must stay within 3 steps of the start.
                let init = patholab_core::nets::weights::read(&generated(&format!(
                    "mil_{name}_init.safetensors"
                )))
                .unwrap();
                let start = &init.iter().find(|(k, _)| k == n).unwrap().1;
                let start = f64s(start)[0];
                for side in [f64s(t)[0], f64s(&want)[0]] {
                    assert!(
                        (side - start).abs() <= 3.0 * 1e-2 + 1e-6,
                        "{name} {n}: {start} → {side}"
                    );
                }
                continue;
            }
            close(
                &f64s(t),
                &f64s(&want),
                1e-5,
                &format!("{name} {n} after 3 steps"),
            );
        }
    }
}

#[test]
fn checkpoints_have_the_reference_state_dict() {
    let fx = Fixture::load();
    for name in CONFIGS {
        let m = fx.learner(name, 1).fit(&fx.bags(name)).unwrap();
        let got: Vec<(String, Vec<i64>)> = m
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        let mut want: Vec<(String, Vec<i64>)> = fx.meta[name]["state_dict"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, s)| (n.clone(), serde_json::from_value(s.clone()).unwrap()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{name}: names and shapes of a strict load");
        // A checkpoint with one tensor missing or renamed is refused, naming it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        m.save(&path).unwrap();
        let mut t = m.tensors();
        let (first, _) = t.remove(0);
        patholab_core::nets::weights::write_safetensors(&path, &t).unwrap();
        let e = MilModel::load(&path).unwrap_err().to_string();
        assert!(e.contains(&first) && e.contains("missing"), "{e}");
        // Saved whole, it loads back to the same logits.
        m.save(&path).unwrap();
        let back = MilModel::load(&path).unwrap();
        for b in &fx.bags(name).bags {
            assert_eq!(
                m.logits(b).unwrap(),
                back.logits(b).unwrap(),
                "{name}: reloaded logits"
            );
        }
    }
}
