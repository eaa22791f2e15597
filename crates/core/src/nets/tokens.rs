//! The token layout of a transformer's tap outputs (`[n, tokens, dim]`): how many prefix tokens
//! (class, registers) come before the patch tokens, and the pooling a model's authors publish.

use tch::Tensor;

/// The pooled embedding a model's authors publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// The class token.
    Cls,
    /// The class token and the mean of the patch tokens, concatenated (Virchow's 2×dim).
    ClsMean,
}

/// What a feature reducer must know about a ViT's token tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// Tokens before the patch tokens: the class token (if any) then the registers.
    pub prefix: i64,
    /// Whether token 0 is a class token.
    pub cls: bool,
    /// The published pooling (the `"default"` reducer).
    pub pool: Pool,
}

/// `[n, tokens, dim]` → `[n, dim]` (or `2·dim` for [`Pool::ClsMean`]).
pub fn pool(x: &Tensor, t: Tokens, how: Pool) -> Tensor {
    let cls = x.select(1, 0);
    match how {
        Pool::Cls => cls,
        Pool::ClsMean => Tensor::cat(&[cls, patch_tokens(x, t).mean_dim(1, false, x.kind())], 1),
    }
}

/// The patch tokens of a tap output (class and register tokens dropped).
pub fn patch_tokens(x: &Tensor, t: Tokens) -> Tensor {
    let n = x.size()[1];
    x.narrow(1, t.prefix, n - t.prefix)
}
