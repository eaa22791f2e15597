//! Script bindings of the `nets` room and fine-tuning: networks by name, their taps, summaries,
//! classification, saving, and the paper's fine-tuning schedule.

use super::convert::{ints, options, strings};
use super::data::DatasetRef;
use super::registry::Api;
use super::{to_rhai, RResult};
use patholab_core::data::split::Split;
use patholab_core::eval::table::Table;
use patholab_core::finetune::Epoch;
use patholab_core::nets::{Network, NetworkOptions};
use rhai::{Array, Dynamic, Map};
use std::rc::Rc;

/// A network at the prompt, with the curve of the fine-tuning that made it (empty otherwise).
pub struct NetValue {
    pub network: Network,
    pub curve: Vec<Epoch>,
}

impl std::ops::Deref for NetValue {
    type Target = Network;
    fn deref(&self) -> &Network {
        &self.network
    }
}

impl From<Network> for NetValue {
    fn from(network: Network) -> Self {
        NetValue {
            network,
            curve: Vec::new(),
        }
    }
}

/// A script handle to a network.
pub type Net = Rc<NetValue>;

/// A network by registry name, or one saved with `net.save` (a .safetensors with its .json).
pub fn open(name: &str, o: &NetworkOptions) -> RResult<Net> {
    let opts = o.resolve().map_err(to_rhai)?;
    let path = std::path::Path::new(name);
    let saved = path.extension().is_some_and(|e| e == "safetensors")
        && path.with_extension("json").exists();
    let net = if saved {
        Network::load(path, opts.device)
    } else {
        Network::new(name, opts)
    };
    net.map(|n| Rc::new(n.into())).map_err(to_rhai)
}

fn finetune(n: &Network, d: &DatasetRef, s: &Split, m: &Map) -> RResult<Net> {
    let o: patholab_core::finetune::Options = options(m)?;
    patholab_core::finetune::finetune(n, d, s, &o)
        .map(|ft| {
            Rc::new(NetValue {
                network: ft.network,
                curve: ft.curve,
            })
        })
        .map_err(to_rhai)
}

/// Registers networks and fine-tuning.
pub fn register(api: &mut Api) {
    api.engine().register_type_with_name::<Net>("Network");
    let names = patholab_core::nets::registry::names().join(", ");
    api.func(
        "network(name: String) -> Network",
        format!(
            "A network with its ImageNet weights (found locally; never downloaded silently), or a network saved\nwith net.save(PATH). Names: {names}."
        ),
        r#"let n = network("efficientnet_lite0");"#,
        |n: &str| open(n, &NetworkOptions::default()),
    );
    api.func(
        "network(name: String, options: Map) -> Network",
        "A network with chosen weights and device.",
        r#"let n = network("resnet18", #{ weights: "random", seed: 1 });"#,
        |n: &str, m: Map| open(n, &options(&m)?),
    )
    .options::<NetworkOptions>();
    api.method(
        "Network",
        "net.name() -> String",
        "The registry name (\"resnet50\", \"uni\").",
        "net.name()",
        |n: &mut Net| n.spec.name.to_string(),
    );
    api.method(
        "Network",
        "net.taps() -> Array",
        "Every tap (block boundary), in forward order.",
        "net.taps()",
        |n: &mut Net| strings(&n.taps()),
    );
    api.method(
        "Network",
        "net.preset(name: String) -> Array",
        "The taps of a preset: \"last\", \"paper\" (the study's cut points, docs/paper.md; a ViT's: every block), \"all\",\nor for ViTs \"quarters\" (the blocks at 25/50/75/100 % depth).",
        r#"net.preset("paper")"#,
        |n: &mut Net, p: &str| n.resolve_taps(&[p.to_string()]).map(|v| strings(&v)).map_err(to_rhai),
    );
    api.method(
        "Network",
        "net.input_size() -> int",
        "Side of the square input image.",
        "net.input_size() // => 224",
        |n: &mut Net| n.spec.input_size,
    );
    api.method(
        "Network",
        "net.summary() -> Table",
        "Each tap with its output shape for one image; prints the parameter count and weights.",
        "net.summary()",
        |n: &mut Net| -> RResult<Table> {
            println!(
                "{} ({}), {} parameters, weights: {}",
                n.spec.name,
                n.spec.family,
                n.parameter_count(),
                n.weights_label
            );
            n.summary()
                .and_then(|rows| Table::from_rows(&rows))
                .map_err(to_rhai)
        },
    );
    api.method(
        "Network",
        "net.classify(image: String, k: int) -> Array",
        "Top-k classes of an image file by the network's own head, as #{ class, name, p } maps.",
        r#"net.classify(data.table().column("path")[0], 3)"#,
        |n: &mut Net, p: &str, k: i64| -> RResult<Array> {
            let top = patholab_core::features::extract::classify(
                n,
                std::path::Path::new(p),
                k.max(1) as usize,
            )
            .map_err(to_rhai)?;
            Ok(top
                .into_iter()
                .map(|(c, name, p)| {
                    let mut m = Map::new();
                    m.insert("class".into(), (c as i64).into());
                    m.insert("name".into(), name.into());
                    m.insert("p".into(), p.into());
                    Dynamic::from(m)
                })
                .collect())
        },
    );
    api.method(
        "Network",
        "net.save(path: String)",
        "Saves the weights (.safetensors, PyTorch-loadable) and a .json beside them.",
        r#"net.save("model.safetensors");"#,
        |n: &mut Net, p: &str| n.save(std::path::Path::new(p)).map_err(to_rhai),
    );
    api.method(
        "Network",
        "net.finetune(data: Dataset, split: Split, options: Map) -> Network",
        "Fine-tunes a copy with the paper's schedule: a new head trained with the backbone frozen, then the\nwhole network; validates after every epoch and keeps the best one.",
        r#"let ft = net.finetune(small, small.split(), #{ head_epochs: 1, epochs: 0, batch: 8, quiet: true });"#,
        |n: &mut Net, d: DatasetRef, s: Split, m: Map| finetune(n, &d, &s, &m),
    )
    .options::<patholab_core::finetune::Options>();
    api.method(
        "Network",
        "ft.curve() -> Table",
        "The fine-tuning curve: epoch, phase, losses, validation score, images/s.",
        "ft.curve()",
        |n: &mut Net| -> RResult<Table> {
            if n.curve.is_empty() {
                return Err("this network was not fine-tuned (use net.finetune)".into());
            }
            Table::from_rows(&n.curve).map_err(to_rhai)
        },
    );
    api.method(
        "Network",
        "net.predict(data: Dataset) -> Array",
        "Predicted class index of every image (with the network's own head).",
        "ft.predict(small)",
        |n: &mut Net, d: DatasetRef| -> RResult<Array> {
            let p = patholab_core::finetune::predict(n, &d).map_err(to_rhai)?;
            Ok(ints(&p))
        },
    );
}
