//! What an architecture builder returns: a network as a list of named stages (its taps), the
//! step between the last stage and the classifier, and where the classifier lives.

use super::layers::Step;
use super::tokens::Tokens;
use tch::{nn, Tensor};

/// One named block of a network.
pub struct Stage {
    pub name: String,
    pub run: Step,
    /// A ViT's last block: the same block computing only the class token of its output
    /// (`[n, 1, dim]`), for passes whose taps are all reduced to their class token. Every stage
    /// after it works token by token (the final norm), so they take that one token as it is.
    pub class_token: Option<Step>,
}

impl Stage {
    /// A stage named `name` running `f`.
    pub fn new(name: &str, f: impl Fn(&Tensor, bool) -> Tensor + Send + 'static) -> Self {
        Stage {
            name: name.to_string(),
            run: Box::new(f),
            class_token: None,
        }
    }

    /// The same stage, able to compute its class token alone with `f`.
    pub fn with_class_token(
        mut self,
        f: impl Fn(&Tensor, bool) -> Tensor + Send + 'static,
    ) -> Self {
        self.class_token = Some(Box::new(f));
        self
    }
}

/// What an architecture builder returns: the stages in order, what lies between the last stage
/// and the classifier, and where the classifier's parameters live.
pub struct Body {
    pub stages: Vec<Stage>,
    pub pre_logits: Step,
    pub fc_path: String,
    pub fc_in: i64,
    /// For token networks (ViTs): which tokens are prefix tokens and the published pooling.
    pub tokens: Option<Tokens>,
}

/// Builds an architecture's [`Body`] under a variable-store path.
pub type Builder = std::sync::Arc<dyn Fn(&nn::Path) -> Body + Send + Sync>;

/// The var-store path for a dotted name (`classifier.6`).
pub fn dotted<'a>(root: &nn::Path<'a>, name: &str) -> nn::Path<'a> {
    let mut p = root.clone();
    for part in name.split('.') {
        p = p.sub(part);
    }
    p
}
