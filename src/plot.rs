//! PNG plots (plotters, bitmap backend, an embedded DejaVu font: no system fonts needed).

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::train::EpochRecord;
use crate::{Error, Result};

const FONT: &str = "sans-serif";

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Input(format!("{}: cannot draw plot: {e}", path.display()))
}

/// Training loss (left axis) and validation balanced accuracy (right axis) per epoch.
pub fn training_curve(path: &Path, title: &str, history: &[EpochRecord]) -> Result<()> {
    fonts();
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let n = history.len().max(1) as f64;
    let max_loss = history.iter().map(|r| r.loss_all).fold(1e-6, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.5f64..n + 0.5, 0.0..max_loss)
        .map_err(|e| err(path, e))?
        .set_secondary_coord(0.5f64..n + 0.5, 0.0f64..100.0);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("mean triplet loss (all valid triplets)")
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    chart
        .configure_secondary_axes()
        .y_desc("%")
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    let loss: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.epoch as f64, r.loss_all))
        .collect();
    chart
        .draw_series(LineSeries::new(loss.clone(), BLUE.stroke_width(2)))
        .map_err(|e| err(path, e))?
        .label("loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(loss.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
        .map_err(|e| err(path, e))?;
    let acc: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|r| r.val.map(|v| (r.epoch as f64, v.balanced_accuracy * 100.0)))
        .collect();
    if !acc.is_empty() {
        chart
            .draw_secondary_series(LineSeries::new(acc.clone(), RED.stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label("val balanced accuracy (1-NN)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .draw_secondary_series(acc.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(|e| err(path, e))?;
    }
    let active: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.epoch as f64, r.active * 100.0))
        .collect();
    chart
        .draw_secondary_series(LineSeries::new(
            active,
            plotters::style::full_palette::GREEN_700.stroke_width(1),
        ))
        .map_err(|e| err(path, e))?
        .label("active triplets, %")
        .legend(|(x, y)| {
            PathElement::new(
                vec![(x, y), (x + 20, y)],
                plotters::style::full_palette::GREEN_700.stroke_width(1),
            )
        });
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}
