//! Explaining predictions in the disentangled basis: the modified head A·U⁻¹ that
//! keeps every logit (`head`), and the channels that carry a class's evidence
//! (`channels`), and whole explanations with prototypes and figures
//! (`explanation`).
mod channels;
pub(crate) mod explanation;
mod head;
mod head_fit;
mod predict;

pub use channels::{top_channels, TopChannels};
pub use explanation::{ExplainOptions, Explanation};
pub use head::{logits, max_logit_change, modified_head};
pub use head_fit::{fit_head, FittedHead, HeadFit};
pub use predict::{predict, predict_file, predict_image, Prediction};
