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

/// Draws through `draw` into a temporary PNG beside `path`, synced and renamed into place:
/// a full disk or a failed plot leaves the old file or none, never a truncated PNG.
fn atomic_png(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let stem = path
        .file_stem()
        .map_or("plot".into(), |s| s.to_string_lossy());
    // The backend picks the format from the extension: keep .png.
    let tmp = path.with_file_name(format!(".{stem}.partial-{}.png", std::process::id()));
    let done = draw(&tmp).and_then(|()| {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
            })
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Training loss (left axis) and validation balanced accuracy (right axis) per epoch.
pub fn training_curve(path: &Path, title: &str, history: &[EpochRecord]) -> Result<()> {
    atomic_png(path, |p| draw_training_curve(p, title, history))
}

/// Accuracy and balanced accuracy (mean +- std) per row, as horizontal bars.
pub fn accuracy_bars(path: &Path, title: &str, rows: &[ScoreBar]) -> Result<()> {
    atomic_png(path, |p| draw_accuracy_bars(p, title, rows))
}

/// A confusion matrix as a heat map (rows actual, columns predicted).
pub fn confusion_heatmap(
    path: &Path,
    title: &str,
    classes: &[String],
    confusion: &crate::metric::scores::Confusion,
) -> Result<()> {
    atomic_png(path, |p| {
        draw_confusion_heatmap(p, title, classes, confusion)
    })
}

/// A 2-D embedding (t-SNE) coloured by class, misclassified points marked.
pub fn embedding_scatter(
    path: &Path,
    title: &str,
    classes: &[String],
    xy: &[f32],
    actual: &[u32],
    predicted: &[u32],
) -> Result<()> {
    atomic_png(path, |p| {
        draw_embedding_scatter(p, title, classes, xy, actual, predicted)
    })
}

/// One curve per fold (e.g. the loss per epoch).
pub fn fold_curves(path: &Path, title: &str, y_desc: &str, curves: &[Vec<f64>]) -> Result<()> {
    atomic_png(path, |p| draw_fold_curves(p, title, y_desc, curves))
}

/// Learning curves: per named series, mean accuracy (+- std as error bars) against images
/// per class on a log axis.
pub fn learning_curves(path: &Path, title: &str, series: &[LearningSeries]) -> Result<()> {
    atomic_png(path, |p| draw_learning_curves(p, title, series))
}

/// One method's learning curve: (images per class, mean, std) per point.
pub struct LearningSeries {
    pub name: String,
    pub points: Vec<(usize, f64, f64)>,
}

fn draw_learning_curves(path: &Path, title: &str, series: &[LearningSeries]) -> Result<()> {
    fonts();
    let root = BitMapBackend::new(path, (820, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0 as f64));
    let x_max = xs.fold(1.0f64, f64::max) * 1.3;
    let y_min = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1 - p.2))
        .fold(1.0f64, f64::min)
        .clamp(0.0, 0.9)
        - 0.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((0.8f64..x_max).log_scale(), y_min.max(0.0)..1.0)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("training images per class (log scale)")
        .y_desc("test accuracy (mean over folds)")
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    for (i, s) in series.iter().enumerate() {
        let colour = palette(i);
        let pts: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0 as f64, p.1)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| err(path, e))?;
        chart
            .draw_series(s.points.iter().map(|&(n, m, sd)| {
                ErrorBar::new_vertical(n as f64, m - sd, m, (m + sd).min(1.0), colour, 6)
            }))
            .map_err(|e| err(path, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// Open-set ROC curves, one per named curve of (false-positive rate, true-positive rate)
/// points, with the chance diagonal; the legend sits lower right, where a useful curve
/// leaves the plot empty.
pub fn roc_curves(path: &Path, title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    atomic_png(path, |p| draw_roc_curves(p, title, curves))
}

fn draw_roc_curves(path: &Path, title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    fonts();
    let root = BitMapBackend::new(path, (700, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("known images rejected (false-positive rate)")
        .y_desc("unknown images rejected (true-positive rate)")
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
        .map_err(|e| err(path, e))?;
    for (i, (name, pts)) in curves.iter().enumerate() {
        let colour = palette(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// Training loss (left axis) and validation balanced accuracy (right axis) per epoch.
fn draw_training_curve(path: &Path, title: &str, history: &[EpochRecord]) -> Result<()> {
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

/// Distinct colours for classes and series (cycled past ten).
fn palette(i: usize) -> RGBColor {
    use plotters::style::full_palette as p;
    [
        p::BLUE_600,
        p::RED_600,
        p::GREEN_700,
        p::ORANGE_700,
        p::PURPLE_500,
        p::BROWN_500,
        p::PINK_400,
        p::TEAL_600,
        p::GREY_700,
        p::LIME_800,
    ][i % 10]
}

/// One method's scores for `accuracy_bars`: (mean, std) in [0, 1].
pub struct ScoreBar {
    pub name: String,
    pub accuracy: (f64, f64),
    pub balanced: (f64, f64),
}

/// Accuracy and balanced accuracy per method as horizontal bars with +- one standard
/// deviation over folds as error bars, drawn top to bottom in order.
fn draw_accuracy_bars(path: &Path, title: &str, rows: &[ScoreBar]) -> Result<()> {
    fonts();
    let n = rows.len();
    let height = (140 + 56 * n as u32).max(300);
    let root = BitMapBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let lo = rows
        .iter()
        .flat_map(|r| [r.accuracy.0 - r.accuracy.1, r.balanced.0 - r.balanced.1])
        .fold(1.0f64, f64::min);
    let x0 = ((lo * 100.0 - 5.0) / 10.0).floor().max(0.0) * 10.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(200)
        .build_cartesian_2d(x0..100.0, 0f64..n as f64)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("% (mean +- std over folds)")
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    // Row i occupies [n - 1 - i, n - i): the first row on top.
    let top = |i: usize| (n - 1 - i) as f64;
    for (series, (label, colour)) in [("accuracy", palette(0)), ("balanced accuracy", palette(3))]
        .into_iter()
        .enumerate()
    {
        let (y1, y0) = (
            0.88 - 0.38 * series as f64,
            0.88 - 0.38 * (series + 1) as f64,
        );
        let stat = |r: &ScoreBar| {
            if series == 0 {
                r.accuracy
            } else {
                r.balanced
            }
        };
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                Rectangle::new(
                    [(x0, top(i) + y0), (stat(r).0 * 100.0, top(i) + y1)],
                    colour.filled(),
                )
            }))
            .map_err(|e| err(path, e))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled()));
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let (m, s) = stat(r);
                ErrorBar::new_horizontal(
                    top(i) + (y0 + y1) / 2.0,
                    ((m - s) * 100.0).max(x0),
                    m * 100.0,
                    ((m + s) * 100.0).min(100.0),
                    BLACK.stroke_width(1),
                    8,
                )
            }))
            .map_err(|e| err(path, e))?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                Text::new(
                    format!("{:.1}", stat(r).0 * 100.0),
                    (x0 + 0.5, top(i) + (y0 + y1) / 2.0 + 0.12),
                    (FONT, 12).into_font().color(&WHITE),
                )
            }))
            .map_err(|e| err(path, e))?;
    }
    for (i, r) in rows.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(x0, top(i) + 0.5));
        root.draw(&Text::new(
            r.name.clone(),
            (px - 190, py - 8),
            (FONT, 15).into_font(),
        ))
        .map_err(|e| err(path, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// Confusion matrix as a heat map (rows actual, columns predicted), shaded by the row's
/// fraction so rare classes read as clearly as common ones, with the counts written in.
fn draw_confusion_heatmap(
    path: &Path,
    title: &str,
    classes: &[String],
    confusion: &crate::metric::scores::Confusion,
) -> Result<()> {
    fonts();
    let c = classes.len();
    let side = (120 + 90 * c as u32).clamp(480, 1400);
    let root = BitMapBackend::new(path, (side + 120, side)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(130)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..c as f64, 0f64..c as f64)
        .map_err(|e| err(path, e))?;
    // Row 0 at the top, as the paper's table.
    let flip = |a: usize| (c - 1 - a) as f64;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc("predicted")
        .y_desc("actual")
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    for (i, name) in classes.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(0.0, flip(i) + 0.5));
        root.draw(&Text::new(
            name.clone(),
            (px - 135, py - 8),
            (FONT, 14).into_font(),
        ))
        .map_err(|e| err(path, e))?;
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            name.clone(),
            (px + 7, py + 6),
            (FONT, 14).into_font().transform(FontTransform::Rotate90),
        ))
        .map_err(|e| err(path, e))?;
    }
    let mut cells = Vec::new();
    for a in 0..c {
        let total: u64 = (0..c).map(|p| confusion.get(a, p)).sum();
        for p in 0..c {
            let v = confusion.get(a, p);
            let frac = if total > 0 {
                v as f64 / total as f64
            } else {
                0.0
            };
            cells.push((a, p, v, frac));
        }
    }
    chart
        .draw_series(cells.iter().map(|&(a, p, _, frac)| {
            let shade = (255.0 * (1.0 - frac)) as u8;
            let colour = if a == p {
                RGBColor(
                    shade,
                    shade.saturating_add(((255 - shade) as f64 * 0.3) as u8),
                    255,
                )
            } else {
                RGBColor(255, shade, shade)
            };
            Rectangle::new(
                [(p as f64, flip(a)), (p as f64 + 1.0, flip(a) + 1.0)],
                colour.filled(),
            )
        }))
        .map_err(|e| err(path, e))?;
    chart
        .draw_series(cells.iter().map(|&(a, p, v, frac)| {
            let colour = if frac > 0.6 { WHITE } else { BLACK };
            Text::new(
                v.to_string(),
                (p as f64 + 0.5, flip(a) + 0.5),
                (FONT, 16)
                    .into_font()
                    .color(&colour)
                    .pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    )),
            )
        }))
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// A 2-D map `[n, 2]` coloured by actual class; misclassified points circled in black.
fn draw_embedding_scatter(
    path: &Path,
    title: &str,
    classes: &[String],
    xy: &[f32],
    actual: &[u32],
    predicted: &[u32],
) -> Result<()> {
    fonts();
    let root = BitMapBackend::new(path, (900, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let (mut xr, mut yr) = ((f32::MAX, f32::MIN), (f32::MAX, f32::MIN));
    for p in xy.chunks(2) {
        xr = (xr.0.min(p[0]), xr.1.max(p[0]));
        yr = (yr.0.min(p[1]), yr.1.max(p[1]));
    }
    let pad = |r: (f32, f32), right: f32| {
        let span = (r.1 - r.0).max(1e-3);
        (r.0 - 0.05 * span)..(r.1 + right * span)
    };
    // Room on the right for the legend, so it never hides a cluster.
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(pad(xr, 0.45), pad(yr, 0.05))
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style((FONT, 12))
        .draw()
        .map_err(|e| err(path, e))?;
    for (c, name) in classes.iter().enumerate() {
        let colour = palette(c);
        let pts: Vec<(f32, f32)> = xy
            .chunks(2)
            .zip(actual)
            .filter(|(_, &a)| a as usize == c)
            .map(|(p, _)| (p[0], p[1]))
            .collect();
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| err(path, e))?
            .label(name.clone())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
    }
    let wrong: Vec<(f32, f32)> = xy
        .chunks(2)
        .zip(actual.iter().zip(predicted))
        .filter(|(_, (a, p))| a != p)
        .map(|(p, _)| (p[0], p[1]))
        .collect();
    chart
        .draw_series(
            wrong
                .iter()
                .map(|&p| Circle::new(p, 8, BLACK.stroke_width(2))),
        )
        .map_err(|e| err(path, e))?
        .label(format!("misclassified by 1-NN ({})", wrong.len()))
        .legend(|(x, y)| Circle::new((x + 8, y), 6, BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// One training-loss curve per fold.
fn draw_fold_curves(path: &Path, title: &str, y_desc: &str, curves: &[Vec<f64>]) -> Result<()> {
    fonts();
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let n = curves.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let top = curves.iter().flatten().copied().fold(1e-6, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..n + 0.5, 0.0..top)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    for (f, curve) in curves.iter().enumerate() {
        let colour = palette(f);
        chart
            .draw_series(LineSeries::new(
                curve.iter().enumerate().map(|(e, &v)| (e as f64 + 1.0, v)),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(path, e))?
            .label(format!("fold {}", f + 1))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_appear_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("glassnet-plot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let curves = vec![vec![0.5, 0.3, 0.2], vec![0.6, 0.4, 0.1]];
        let p = dir.join("loss.png");
        fold_curves(&p, "t", "loss", &curves).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["loss.png"], "no temporary left beside it");
        image::open(&p).expect("a whole PNG");
        // A failed draw (here: a folder that is not there) leaves nothing.
        let missing = dir.join("nope").join("loss.png");
        assert!(fold_curves(&missing, "t", "loss", &curves).is_err());
        assert!(!dir.join("nope").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
