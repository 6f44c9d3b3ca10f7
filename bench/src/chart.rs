//! The report's chart: commits/s and instructions per commit, one group of
//! bars per mode, one bar per library (and per form of ours) the mode
//! runs, logarithmic axes (the libraries differ by factors, and 4 KiB
//! values by orders of magnitude).

use crate::report::Row;
use crate::{Lib, MODES};
use plotters::prelude::*;
use std::error::Error;
use std::path::Path;

/// One colour per entry of [`Lib::ALL`].
const COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x9e, 0xda, 0xe5),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
];

/// Writes the chart of `rows` as SVG to `path`.
pub fn draw(path: &Path, rows: &[Row]) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1100, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    panel(&left, rows, "commits/s (median of 5, higher is better)", |r| {
        r.wall.rate.median
    })?;
    panel(&right, rows, "instructions per commit (lower is better)", |r| {
        r.instructions
    })?;
    root.present()?;
    Ok(())
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    rows: &[Row],
    title: &str,
    figure: impl Fn(&Row) -> f64,
) -> Result<(), Box<dyn Error>> {
    let values: Vec<f64> = rows.iter().map(&figure).filter(|v| *v > 0.0).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let hi = values.iter().copied().fold(1.0, f64::max);
    let (lo, hi) = (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..MODES.len() as f64, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(MODES.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < MODES.len() {
                MODES[i as usize].name.to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()?;
    for (&lib, &colour) in Lib::ALL.iter().zip(&COLOURS) {
        // Within a mode's group, bars in the mode's own order.
        let bars = rows.iter().filter(|r| r.lib == lib).filter_map(|r| {
            let m = MODES.iter().position(|m| *m == r.mode)? as f64;
            let libs: Vec<Lib> = r.mode.libs().collect();
            let k = libs.iter().position(|&l| l == lib)? as f64;
            let width = 0.8 / libs.len() as f64;
            let x0 = m + 0.1 + width * k;
            Some(Rectangle::new(
                [(x0, lo), (x0 + width * 0.85, figure(r).max(lo))],
                colour.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(match lib {
                Lib::Ours => "ours, inline Bytes",
                Lib::OursPayload => "ours, Payload",
                _ => lib.name(),
            })
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
