//! Explaining predictions in the disentangled basis: the modified head A·U⁻¹ that
//! keeps every logit (`head`), and the channels that carry a class's evidence
//! (`channels`), and whole explanations with prototypes and figures
//! (`explanation`).
mod channels;
mod class_view;
mod contrast;
mod evaluate;
pub(crate) mod explanation;
mod head;
mod head_fit;
mod predict;
mod run;

pub use channels::{top_channels, TopChannels};
pub use class_view::ClassView;
pub use contrast::{Contrast, ContrastSide};
pub use evaluate::{Deletion, Disagreement, Evaluation, DELETION_K};
pub use explanation::{ExplainOptions, Explanation};
pub use head::{logits, max_logit_change, modified_head};
pub use head_fit::{fit_head, FittedHead, HeadFit};
pub use predict::{predict, predict_file, predict_image, Prediction};
pub use run::Run;
