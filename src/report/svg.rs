//! Small SVG charts drawn by hand: bars, stacked bars, lines and
//! horizontal bars, each scaled to its own viewBox, so that the page needs
//! no script, no font and no network, and stays legible from a phone to
//! a wide screen.

use std::fmt::Write;

const W: f64 = 560.0;
const H: f64 = 240.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 12.0;

/// Text as it may stand in XML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A round number at or above `max`, for the top of an axis.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * step).find(|v| *v >= max).unwrap_or(max)
}

fn frame(title: &str, body: &str, top: f64, format: &dyn Fn(f64) -> String) -> String {
    let mut s =
        format!(r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title>"#, t = escape(title));
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let y = H - BOTTOM - (H - BOTTOM - TOP) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{W}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{x:.1}" y="{ty:.1}" font-size="13" text-anchor="end" fill="#555">{label}</text>"##,
            x = LEFT - 4.0,
            ty = y + 4.0,
            label = escape(&format(v))
        );
    }
    s.push_str(body);
    s.push_str("</svg>");
    s
}

/// The x labels under `n` slots, at most about twelve of them shown.
fn x_labels(labels: &[String], slot: f64) -> String {
    let every = labels.len().div_ceil(12).max(1);
    let mut s = String::new();
    for (i, l) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let x = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="13" text-anchor="middle" fill="#555">{t}</text>"##,
            y = H - BOTTOM + 16.0,
            t = escape(l)
        );
    }
    s
}

/// Stacked bars: one bar per label, one segment per series (with its colour).
pub fn stacked(title: &str, labels: &[String], series: &[(&str, &str, Vec<f64>)]) -> String {
    let totals: Vec<f64> = (0..labels.len()).map(|i| series.iter().map(|s| s.2[i]).sum()).collect();
    let top = nice_max(totals.iter().cloned().fold(0.0, f64::max));
    let slot = (W - LEFT) / labels.len().max(1) as f64;
    let scale = (H - BOTTOM - TOP) / top;
    let mut body = String::new();
    for i in 0..labels.len() {
        let mut y = H - BOTTOM;
        for (name, colour, values) in series {
            let h = values[i] * scale;
            y -= h;
            let _ = write!(
                body,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"><title>{l}: {v} {n}</title></rect>"#,
                x = LEFT + slot * i as f64 + slot * 0.15,
                w = slot * 0.7,
                l = escape(&labels[i]),
                v = values[i],
                n = escape(name)
            );
        }
    }
    body.push_str(&x_labels(labels, slot));
    frame(title, &body, top, &|v| format!("{v:.0}"))
}

/// Bars, one per label.
pub fn bars(title: &str, labels: &[String], values: &[f64], colour: &str) -> String {
    stacked(title, labels, &[(title, colour, values.to_vec())])
}

/// Lines over the labels, one per series; a missing value breaks its line.
/// `percent`: the axis reads 0–100 %.
pub fn lines(title: &str, labels: &[String], series: &[(&str, &str, Vec<Option<f64>>)], percent: bool) -> String {
    let max = series.iter().flat_map(|s| s.2.iter().flatten()).cloned().fold(0.0, f64::max);
    let top = if percent { 1.0 } else { nice_max(max) };
    let slot = (W - LEFT) / labels.len().max(1) as f64;
    let scale = (H - BOTTOM - TOP) / top;
    let mut body = String::new();
    for (name, colour, values) in series {
        let mut path = String::new();
        for (i, v) in values.iter().enumerate() {
            let Some(v) = v else {
                path.push(' ');
                continue;
            };
            let (x, y) = (LEFT + slot * (i as f64 + 0.5), H - BOTTOM - v * scale);
            let verb = if path.trim_end().is_empty() || path.ends_with(' ') { 'M' } else { 'L' };
            let _ = write!(path, "{verb}{x:.1},{y:.1}");
            let _ = write!(
                body,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{colour}"><title>{l}: {v:.3} {n}</title></circle>"#,
                l = escape(&labels[i]),
                n = escape(name)
            );
        }
        let _ = write!(body, r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#, path.trim());
    }
    body.push_str(&x_labels(labels, slot));
    let format = move |v: f64| if percent { format!("{:.0} %", v * 100.0) } else { format!("{v:.1}") };
    frame(title, &body, top, &format)
}

/// Horizontal bars, one per item, longest first as given.
pub fn hbars(title: &str, items: &[(String, i64)], colour: &str) -> String {
    let rows = items.len().max(1) as f64;
    let height = 24.0 * rows + 8.0;
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let mut s =
        format!(r#"<svg viewBox="0 0 {W} {height}" role="img" aria-label="{t}"><title>{t}</title>"#, t = escape(title));
    for (i, (label, n)) in items.iter().enumerate() {
        let y = 4.0 + 24.0 * i as f64;
        let w = (W - 260.0) * *n as f64 / max;
        let _ = write!(
            s,
            r##"<text x="200" y="{ty:.1}" font-size="13" text-anchor="end" fill="#333">{l}</text><rect x="208" y="{y:.1}" width="{w:.1}" height="18" fill="{colour}"/><text x="{nx:.1}" y="{ty:.1}" font-size="13" fill="#333">{n}</text>"##,
            ty = y + 13.0,
            l = escape(if label.is_empty() { "(none)" } else { label }),
            nx = 212.0 + w
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round_and_text_is_escaped() {
        assert_eq!((nice_max(0.0), nice_max(7.0), nice_max(130.0), nice_max(2400.0)), (1.0, 10.0, 200.0, 2500.0));
        let s = bars("a < b", &["x&y".into()], &[3.0], "#123");
        assert!(s.contains("a &lt; b") && s.contains("x&amp;y") && !s.contains("x&y"), "{s}");
        assert!(s.starts_with("<svg viewBox=") && s.ends_with("</svg>"));
    }

    #[test]
    fn a_missing_value_breaks_the_line_and_bars_stack() {
        let labels: Vec<String> = ["1", "2", "3"].map(String::from).to_vec();
        let s = lines("r", &labels, &[("m", "#000", vec![Some(0.5), None, Some(1.0)])], true);
        let d = s.split("<path d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "two segments: {d}");
        assert!(s.contains("50 %") || s.contains("100 %"));
        let st = stacked("s", &labels, &[("a", "#111", vec![1.0, 2.0, 3.0]), ("b", "#222", vec![1.0, 1.0, 1.0])]);
        assert_eq!(st.matches("<rect").count(), 6);
    }
}
