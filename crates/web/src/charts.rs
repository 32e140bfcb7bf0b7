//! Charts as SVG drawn on the server: no script, nothing for the content security policy to
//! refuse, readable on a phone (the drawing scales to the width; colours are classes in
//! `app.css`). Horizontal bars for comparing people (forecast against target, win rate by
//! rep) and a funnel; later modules' charts (Pareto, trends) go here too.

use minijinja::Value;

/// One bar: stacked parts (value, class), an optional marker (a target) and the text shown
/// after it.
pub struct Bar {
    pub label: String,
    pub parts: Vec<(i64, &'static str)>,
    pub marker: Option<i64>,
    pub text: String,
}

const WIDTH: i64 = 400;
const LABEL: i64 = 96;
const AREA: i64 = 200;
const ROW: i64 = 24;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A label cut to what fits beside the bars.
fn short(s: &str, chars: usize) -> String {
    if s.chars().count() <= chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `value` of `max` as a length of `AREA` (0 for nothing, never past the end).
fn scale(value: i64, max: i64) -> i64 {
    if max <= 0 || value <= 0 {
        return 0;
    }
    ((value as i128 * AREA as i128) / max as i128).clamp(0, AREA as i128) as i64
}

fn open(title: &str, rows: usize) -> String {
    let height = (rows.max(1) as i64) * ROW + 4;
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = escape(title)
    )
}

/// Horizontal bars, all on one scale (the largest stack or marker is the full width).
pub fn bars(title: &str, bars: &[Bar]) -> Value {
    let max = bars
        .iter()
        .map(|b| {
            let stack: i64 = b.parts.iter().map(|p| p.0.max(0)).sum();
            stack.max(b.marker.unwrap_or(0))
        })
        .max()
        .unwrap_or(0);
    let mut svg = open(title, bars.len());
    for (i, b) in bars.iter().enumerate() {
        let y = i as i64 * ROW + 2;
        svg.push_str(&format!(
            "<g><title>{full}: {text}</title><text x=\"0\" y=\"{ty}\" class=\"chart-label\">{label}</text>",
            full = escape(&b.label),
            text = escape(&b.text),
            ty = y + 14,
            label = escape(&short(&b.label, 8)),
        ));
        let (mut x, mut sum) = (LABEL, 0i64);
        for (value, class) in &b.parts {
            sum = sum.saturating_add((*value).max(0));
            let end = LABEL + scale(sum, max);
            if end > x {
                svg.push_str(&format!(
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"18\" class=\"bar-{class}\"/>",
                    w = end - x
                ));
            }
            x = end;
        }
        if let Some(m) = b.marker {
            let mx = LABEL + scale(m, max);
            svg.push_str(&format!(
                "<line x1=\"{mx}\" x2=\"{mx}\" y1=\"{y0}\" y2=\"{y1}\" class=\"chart-marker\"/>",
                y0 = y - 1,
                y1 = y + 19
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{tx}\" y=\"{ty}\" class=\"chart-value\">{text}</text></g>",
            tx = LABEL + AREA + 6,
            ty = y + 14,
            text = escape(&b.text)
        ));
    }
    svg.push_str("</svg>");
    Value::from_safe_string(svg)
}

/// A funnel: each step a bar centred under the one before, its width its share of the
/// first step; the text says how many and the conversion.
pub fn funnel(title: &str, steps: &[(String, i64, String)]) -> Value {
    let first = steps.iter().map(|s| s.1).max().unwrap_or(0);
    let mut svg = open(title, steps.len());
    for (i, (label, value, text)) in steps.iter().enumerate() {
        let y = i as i64 * ROW + 2;
        let w = scale(*value, first).max(1);
        svg.push_str(&format!(
            "<g><title>{full}: {t}</title><text x=\"0\" y=\"{ty}\" class=\"chart-label\">{l}</text><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"18\" class=\"bar-funnel\"/><text x=\"{tx}\" y=\"{ty}\" class=\"chart-value\">{t}</text></g>",
            full = escape(label),
            t = escape(text),
            ty = y + 14,
            l = escape(&short(label, 8)),
            x = LABEL + (AREA - w) / 2,
            tx = LABEL + AREA + 6,
        ));
    }
    svg.push_str("</svg>");
    Value::from_safe_string(svg)
}

/// A line over labelled points in order (dates, usually): values on one scale from 0 (or the
/// lowest, if negative) to the highest, the first and last labels under the axis.
pub fn line(title: &str, points: &[(String, f64)]) -> Value {
    const X0: i64 = 8;
    const Y0: i64 = 8;
    const W: i64 = 384;
    const H: i64 = 150;
    let (lo, hi) = points
        .iter()
        .fold((0f64, 0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let span = if hi - lo > 0.0 { hi - lo } else { 1.0 };
    let n = points.len().max(2) as i64 - 1;
    let x = |i: usize| X0 + i as i64 * W / n;
    let y = |v: f64| Y0 + H - (((v - lo) / span) * H as f64).round() as i64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 400 {h}\" role=\"img\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        h = Y0 + H + 22,
        t = escape(title)
    );
    svg.push_str(&format!(
        "<line x1=\"{X0}\" x2=\"{x2}\" y1=\"{yy}\" y2=\"{yy}\" class=\"chart-grid\"/>",
        x2 = X0 + W,
        yy = y(lo.max(0.0).min(hi))
    ));
    let coords: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{},{}", x(i), y(p.1)))
        .collect();
    svg.push_str(&format!(
        "<polyline points=\"{}\" class=\"chart-curve\"/>",
        coords.join(" ")
    ));
    for (i, (label, v)) in points.iter().enumerate() {
        svg.push_str(&format!(
            "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" class=\"chart-dot\"><title>{l}: {v}</title></circle>",
            cx = x(i),
            cy = y(*v),
            l = escape(label)
        ));
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        svg.push_str(&format!(
            "<text x=\"{X0}\" y=\"{ty}\" class=\"chart-value\">{a}</text><text x=\"{tx}\" y=\"{ty}\" class=\"chart-value\" text-anchor=\"end\">{b}</text>",
            ty = Y0 + H + 16,
            tx = X0 + W,
            a = escape(&first.0),
            b = escape(&last.0)
        ));
    }
    svg.push_str("</svg>");
    Value::from_safe_string(svg)
}

/// A pie of the positive values (up to eight slices, the rest as one), each slice titled with
/// its label and share; a legend of the same labels beside it.
pub fn pie(title: &str, slices: &[(String, f64)], other: &str) -> Value {
    let mut parts: Vec<(String, f64)> = slices.iter().filter(|s| s.1 > 0.0).cloned().collect();
    if parts.len() > 8 {
        let rest: f64 = parts[7..].iter().map(|s| s.1).sum();
        parts.truncate(7);
        parts.push((other.to_owned(), rest));
    }
    let total: f64 = parts.iter().map(|s| s.1).sum();
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 400 {h}\" role=\"img\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        h = 180.max(parts.len() as i64 * 20 + 10),
        t = escape(title)
    );
    let (cx, cy, r) = (90.0f64, 90.0f64, 80.0f64);
    let mut angle = -std::f64::consts::FRAC_PI_2;
    for (i, (label, v)) in parts.iter().enumerate() {
        let share = if total > 0.0 { v / total } else { 0.0 };
        let text = format!("{}: {:.1}%", label, share * 100.0);
        let class = format!("slice-{}", i % 8);
        if share >= 0.9999 {
            svg.push_str(&format!(
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{r}\" class=\"{class}\"><title>{t}</title></circle>",
                t = escape(&text)
            ));
        } else if share > 0.0 {
            let end = angle + share * std::f64::consts::TAU;
            let (x1, y1) = (cx + r * angle.cos(), cy + r * angle.sin());
            let (x2, y2) = (cx + r * end.cos(), cy + r * end.sin());
            let large = i32::from(share > 0.5);
            svg.push_str(&format!(
                "<path d=\"M{cx},{cy} L{x1:.1},{y1:.1} A{r},{r} 0 {large} 1 {x2:.1},{y2:.1} Z\" class=\"{class}\"><title>{t}</title></path>",
                t = escape(&text)
            ));
            angle = end;
        }
        let ly = 14 + i as i64 * 20;
        svg.push_str(&format!(
            "<rect x=\"190\" y=\"{ry}\" width=\"12\" height=\"12\" class=\"{class}\"/><text x=\"208\" y=\"{ty}\" class=\"chart-label\">{t}</text>",
            ry = ly - 10,
            ty = ly,
            t = escape(&short(&text, 24))
        ));
    }
    svg.push_str("</svg>");
    Value::from_safe_string(svg)
}

/// A Pareto chart on one axis of 0–100%: a bar per slice of the ranked customers (its share
/// of the measure, coloured by class), the cumulative curve over them, and a dashed line at
/// each threshold. Shares are basis points; `curve` runs from (0, 0) to (10000, 10000).
pub fn pareto(
    title: &str,
    bins: &[(i64, &'static str)],
    curve: &[(i64, i64)],
    thresholds: &[(i64, String)],
) -> Value {
    const X0: i64 = 34;
    const Y0: i64 = 8;
    const W: i64 = 356;
    const H: i64 = 180;
    let x = |bp: i64| X0 + bp.clamp(0, 10_000) * W / 10_000;
    let y = |bp: i64| Y0 + H - bp.clamp(0, 10_000) * H / 10_000;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 400 {h}\" role=\"img\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        h = Y0 + H + 22,
        t = escape(title)
    );
    for (bp, label) in [(0, "0%"), (5_000, "50%"), (10_000, "100%")] {
        svg.push_str(&format!(
            "<line x1=\"{X0}\" x2=\"{x2}\" y1=\"{yy}\" y2=\"{yy}\" class=\"chart-grid\"/><text x=\"0\" y=\"{ty}\" class=\"chart-value\">{label}</text>",
            x2 = X0 + W,
            yy = y(bp),
            ty = y(bp) + 4
        ));
    }
    let n = bins.len().max(1) as i64;
    for (i, (share, class)) in bins.iter().enumerate() {
        let (left, right) = (x(i as i64 * 10_000 / n), x((i as i64 + 1) * 10_000 / n));
        let top = y(*share);
        svg.push_str(&format!(
            "<rect x=\"{left}\" y=\"{top}\" width=\"{w}\" height=\"{h}\" class=\"bar-{class}\"><title>{pct:.1}%</title></rect>",
            w = (right - left - 1).max(1),
            h = (Y0 + H - top).max(0),
            pct = *share as f64 / 100.0
        ));
    }
    for (bp, label) in thresholds {
        svg.push_str(&format!(
            "<line x1=\"{X0}\" x2=\"{x2}\" y1=\"{yy}\" y2=\"{yy}\" class=\"chart-threshold\"/><text x=\"{tx}\" y=\"{ty}\" class=\"chart-value\">{l}</text>",
            x2 = X0 + W,
            yy = y(*bp),
            tx = X0 + 4,
            ty = y(*bp) - 3,
            l = escape(label)
        ));
    }
    let points: Vec<String> = curve
        .iter()
        .map(|(c, m)| format!("{},{}", x(*c), y(*m)))
        .collect();
    svg.push_str(&format!(
        "<polyline points=\"{}\" class=\"chart-curve\"/>",
        points.join(" ")
    ));
    svg.push_str(&format!(
        "<text x=\"{X0}\" y=\"{ty}\" class=\"chart-value\">0%</text><text x=\"{tx}\" y=\"{ty}\" class=\"chart-value\" text-anchor=\"end\">100%</text></svg>",
        ty = Y0 + H + 16,
        tx = X0 + W
    ));
    Value::from_safe_string(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_share_one_scale_escape_text_and_never_overflow() {
        let v = bars(
            "<t>",
            &[
                Bar {
                    label: "王<b>".into(),
                    parts: vec![(50, "won"), (50, "commit")],
                    marker: Some(200),
                    text: "¥1".into(),
                },
                Bar {
                    label: "李".into(),
                    parts: vec![(i64::MAX, "won")],
                    marker: None,
                    text: "x".into(),
                },
            ],
        )
        .to_string();
        assert!(v.contains("&lt;t&gt;") && v.contains("王&lt;b&gt;") && !v.contains("<b>"));
        // Nothing drawn past the bar area, whatever the values.
        for w in v.split("width=\"").skip(1) {
            let n: i64 = w
                .split('"')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(-1);
            assert!((0..=AREA).contains(&n), "{n}");
        }
        assert!(funnel("f", &[]).to_string().ends_with("</svg>"));
        let p = pareto(
            "<p>",
            &[(9_000, "a"), (20_000, "c")],
            &[(0, 0), (5_000, 9_000), (10_000, 10_000)],
            &[(7_000, "A <70%>".into())],
        )
        .to_string();
        assert!(p.contains("&lt;p&gt;") && p.contains("A &lt;70%&gt;") && p.ends_with("</svg>"));
        // A share past the whole is drawn to the top, never above the plot.
        assert!(p.contains("y=\"8\" width") && !p.contains("height=\"-"));
    }
}
