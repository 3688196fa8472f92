//! `--out DIR`: SVG plots of the sampled time series, one line per policy
//! or variant.
//!
//! * `free-blocks.svg`: free blocks of each order over time, one panel per
//!   order;
//! * `unusable-index.svg`: the unusable free space index at the probed
//!   orders;
//! * `mixed-pageblocks.svg`: mixed pageblocks, all kinds and unmovable or
//!   reclaimable pages inside movable pageblocks;
//! * `reported-memory.svg` (scenarios with a variant that has free page
//!   reporting on): reported memory over time, and the fraction of free
//!   memory at or above the reporting order that is reported, one line per
//!   such variant.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::report::{RegionSample, ReportingPoint, Sample};

/// One line: a name and its samples.
pub struct Series<'a, T = Sample> {
    /// Policy or variant name.
    pub name: &'a str,
    /// The samples.
    pub samples: &'a [T],
}

/// A point of a time series: where it lies on the x axis.
trait Point {
    /// Scenario step, or events replayed.
    fn at(&self) -> u64;
    /// Trace time in seconds (replay only).
    fn time_s(&self) -> Option<f64>;
}

impl Point for Sample {
    fn at(&self) -> u64 {
        self.at
    }
    fn time_s(&self) -> Option<f64> {
        self.time_s
    }
}

impl Point for ReportingPoint {
    fn at(&self) -> u64 {
        self.at
    }
    fn time_s(&self) -> Option<f64> {
        None
    }
}

impl Point for RegionSample {
    fn at(&self) -> u64 {
        self.at
    }
    fn time_s(&self) -> Option<f64> {
        self.time_s
    }
}

/// What the x axis shows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum XAxis {
    /// Scenario steps.
    Steps,
    /// Trace time in seconds (replay).
    TraceSeconds,
}

impl XAxis {
    fn label(self) -> &'static str {
        match self {
            XAxis::Steps => "step",
            XAxis::TraceSeconds => "trace time (s)",
        }
    }

    fn decimals(self) -> usize {
        match self {
            XAxis::Steps => 0,
            XAxis::TraceSeconds => 1,
        }
    }

    fn x(self, s: &impl Point) -> f64 {
        match self {
            XAxis::Steps => s.at() as f64,
            XAxis::TraceSeconds => s.time_s().unwrap_or(s.at() as f64),
        }
    }
}

/// One panel: a title, a value per sample and how many decimals its axis
/// labels need.
struct Panel<'a, T = Sample> {
    title: String,
    value: Box<dyn Fn(&T) -> f64 + 'a>,
    decimals: usize,
}

/// Writes the three plots into `dir` (created if needed); returns the files.
pub fn write_all(
    dir: &Path,
    title: &str,
    x: XAxis,
    series: &[Series<'_>],
    nr_orders: usize,
    index_orders: &[u8],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Output {
        path: dir.to_owned(),
        source,
    })?;
    let free: Vec<Panel> = (0..nr_orders)
        .map(|o| Panel {
            title: format!("free blocks, order {o}"),
            value: Box::new(move |s: &Sample| s.free_blocks.get(o).copied().unwrap_or(0) as f64),
            decimals: 0,
        })
        .collect();
    let index: Vec<Panel> = index_orders
        .iter()
        .map(|&o| Panel {
            title: format!("unusable free space index, order {o}"),
            value: Box::new(move |s: &Sample| {
                f64::from(s.unusable_index.get(o as usize).copied().unwrap_or(1000)) / 1000.0
            }),
            decimals: 2,
        })
        .collect();
    let mixed = vec![
        Panel {
            title: "mixed pageblocks (all kinds)".to_owned(),
            value: Box::new(|s: &Sample| s.mixed.total as f64),
            decimals: 0,
        },
        Panel {
            title: "movable pageblocks with unmovable/reclaimable pages".to_owned(),
            value: Box::new(|s: &Sample| s.mixed.unmovable_in_movable as f64),
            decimals: 0,
        },
    ];
    let files = [
        ("free-blocks.svg", free, (1400, 1000)),
        ("unusable-index.svg", index, (1200, 500)),
        ("mixed-pageblocks.svg", mixed, (1200, 500)),
    ];
    let mut written = Vec::new();
    for (name, panels, size) in files {
        let path = dir.join(name);
        draw(&path, title, x, series, &panels, size).map_err(|detail| Error::Plot {
            path: path.clone(),
            detail,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `reported-memory.svg` into `dir` (created if needed): reported
/// memory in MiB over the steps and the reported fraction, one line per
/// variant in `series` (those with reporting on); `None` without any.
pub fn write_reporting(
    dir: &Path,
    title: &str,
    series: &[Series<'_, ReportingPoint>],
    page_size_bytes: u64,
) -> Result<Option<PathBuf>> {
    if series.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Output {
        path: dir.to_owned(),
        source,
    })?;
    let mib = page_size_bytes as f64 / (1024.0 * 1024.0);
    let panels: Vec<Panel<'_, ReportingPoint>> = vec![
        Panel {
            title: "reported memory (MiB)".to_owned(),
            value: Box::new(move |p: &ReportingPoint| p.reported as f64 * mib),
            decimals: 0,
        },
        Panel {
            title: "reported fraction of free memory at or above the reporting order".to_owned(),
            value: Box::new(|p: &ReportingPoint| p.fraction),
            decimals: 2,
        },
    ];
    let path = dir.join("reported-memory.svg");
    draw(&path, title, XAxis::Steps, series, &panels, (1200, 500)).map_err(|detail| {
        Error::Plot {
            path: path.clone(),
            detail,
        }
    })?;
    Ok(Some(path))
}

/// Writes `fully-free-regions.svg` into `dir` (created if needed): fully
/// free memory regions (seed 000) at every sample, one line per policy in
/// `series` (those with `--regions` or `--count-regions`); `None` without
/// any.
pub fn write_regions(
    dir: &Path,
    title: &str,
    x: XAxis,
    series: &[Series<'_, RegionSample>],
) -> Result<Option<PathBuf>> {
    if series.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Output {
        path: dir.to_owned(),
        source,
    })?;
    let panels: Vec<Panel<'_, RegionSample>> = vec![Panel {
        title: "fully free regions".to_owned(),
        value: Box::new(|p: &RegionSample| p.fully_free as f64),
        decimals: 0,
    }];
    let path = dir.join("fully-free-regions.svg");
    draw(&path, title, x, series, &panels, (900, 500)).map_err(|detail| Error::Plot {
        path: path.clone(),
        detail,
    })?;
    Ok(Some(path))
}

fn draw<T: Point>(
    path: &Path,
    title: &str,
    x: XAxis,
    series: &[Series<'_, T>],
    panels: &[Panel<'_, T>],
    size: (u32, u32),
) -> std::result::Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let cols = if panels.len() > 2 {
        4
    } else {
        panels.len().max(1)
    };
    let rows = panels.len().div_ceil(cols).max(1);
    let areas = root.split_evenly((rows, cols));
    let (x_min, x_max) = bounds(series.iter().flat_map(|s| s.samples.iter().map(|p| x.x(p))));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let (_, y_max) = bounds(
            series
                .iter()
                .flat_map(|s| s.samples.iter().map(|p| (panel.value)(p))),
        );
        let y_top = (y_max * 1.05).max(1.0);
        // Integer panels get at most one tick per integer in range, or the
        // rounded labels repeat (0, 0, 1, 1...) on small ranges.
        let y_ticks = if panel.decimals == 0 {
            (y_top.floor() as usize + 1).clamp(2, 6)
        } else {
            6
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(x_min..x_max, 0f64..y_top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x.label())
            .x_labels(5)
            .y_labels(y_ticks)
            .x_label_formatter(&|v| format!("{v:.*}", x.decimals()))
            .y_label_formatter(&|v| format!("{v:.*}", panel.decimals))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.samples.iter().map(|p| (x.x(p), (panel.value)(p))),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(s.name)
                .legend(move |(lx, ly)| {
                    PathElement::new(vec![(lx, ly), (lx + 18, ly)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

/// The range of the values, never empty.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}
