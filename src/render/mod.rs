//! Figures: prototype grids, explanations, purity curves and histograms, drawn
//! into RGB canvases (plotters for text and plots, with an embedded font so that
//! machines without fonts render the same) and written atomically as JPEG or PNG;
//! purity tables as HTML or text. The value types ([`PrototypeGrid`],
//! [`PurityPlot`], [`PurityTable`]) are what notebooks display inline.
pub(crate) mod canvas;
mod contrast;
pub mod explain_run;
pub mod figures;
mod plots;
pub mod report;
mod study;
pub(crate) mod table;

pub use canvas::Canvas;
pub use figures::{
    explanation_figure, prototype_grid, ExplanationRow, PrototypeGrid, PrototypeGrids, Tile, Visualization,
};
pub use plots::{purity_curve, purity_curve_canvas, purity_histogram, purity_histogram_canvas, PurityPlot};
pub use table::PurityTable;

/// Registers the embedded DejaVu Sans as plotters' "sans-serif", once.
pub(crate) fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes);
    });
}
