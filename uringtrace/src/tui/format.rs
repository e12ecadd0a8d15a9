//! Short number formats for narrow columns.

pub use crate::output::who;
pub use crate::units::human_ns;

/// "1.5" for 1.5, "2" for 2.0.
pub fn trim_float(f: f64) -> String {
    let s = format!("{f:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A rate in at most 6 characters: "0", "12", "3.4", "12.3k", "1.2M"; "-" when unknown.
pub fn rate(r: Option<f64>) -> String {
    let Some(r) = r else { return "-".into() };
    match r {
        r if r < 0.05 => "0".into(),
        r if r < 10.0 => format!("{r:.1}"),
        r if r < 9_999.5 => format!("{r:.0}"),
        r if r < 999_950.0 => format!("{:.1}k", r / 1e3),
        r if r < 999_950_000.0 => format!("{:.1}M", r / 1e6),
        r => format!("{:.1}G", r / 1e9),
    }
}

/// A count in at most 6 characters: "999", "12.3k", "4.5M".
pub fn count(n: u64) -> String {
    match n {
        n if n < 10_000 => n.to_string(),
        n if n < 999_950 => format!("{:.1}k", n as f64 / 1e3),
        n if n < 999_950_000 => format!("{:.1}M", n as f64 / 1e6),
        n => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// A latency in at most 7 characters, 3 significant digits: "850ns", "12.3µs",
/// "495ms", "1.25s"; "-" when unknown.
pub fn latency(ns: Option<u64>) -> String {
    let Some(ns) = ns else { return "-".into() };
    let three = |v: f64, unit: &str| match v {
        v if v < 9.995 => format!("{v:.2}{unit}"),
        v if v < 99.95 => format!("{v:.1}{unit}"),
        v => format!("{v:.0}{unit}"),
    };
    match ns {
        n if n < 1_000 => format!("{n}ns"),
        n if n < 999_500 => three(n as f64 / 1e3, "µs"),
        n if n < 999_500_000 => three(n as f64 / 1e6, "ms"),
        n if n < 999_500_000_000 => three(n as f64 / 1e9, "s"),
        _ => ">999s".into(),
    }
}

/// Elapsed time as "12.3s", "4m05s", "2h03m".
pub fn elapsed(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        s if s < 60 => format!("{:.1}s", ns as f64 / 1e9),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The low 32 bits of a kernel address: enough to tell rings apart in a narrow column.
pub fn short_ring(hex: &str) -> &str {
    let digits = hex.trim_start_matches("0x");
    &digits[digits.len().saturating_sub(8)..]
}

/// Cuts `s` to `width` characters, marking the cut with "…".
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A one-line sparkline of the last `width` values, scaled to their maximum (a flat
/// zero line stays at the bottom).
pub fn sparkline(values: &[u64], width: usize) -> String {
    let values = &values[values.len().saturating_sub(width)..];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if max == 0 || v == 0 {
                ' '
            } else {
                SPARKS[((v * 8).div_ceil(max) as usize).saturating_sub(1).min(7)]
            }
        })
        .collect()
}

/// A horizontal bar of `value / max` of `width` cells, in eighths.
pub fn bar(value: u64, max: u64, width: usize) -> String {
    if max == 0 || width == 0 {
        return String::new();
    }
    let eighths = ((value as u128 * width as u128 * 8) / max as u128) as usize;
    let mut s = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTS[eighths % 8]);
    if s.is_empty() && value > 0 {
        s.push('▏');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_fit_six_columns() {
        for r in [
            0.0, 0.04, 3.44, 12.0, 9999.0, 12_345.0, 999_949.0, 1.2e6, 5e9,
        ] {
            assert!(rate(Some(r)).chars().count() <= 6, "{r}: {}", rate(Some(r)));
        }
        assert_eq!(rate(Some(12_345.0)), "12.3k");
        assert_eq!(rate(None), "-");
    }

    #[test]
    fn latencies_fit_seven_columns() {
        for ns in [
            0,
            999,
            1_000,
            9_994,
            99_949,
            999_499,
            999_500,
            494_930_000,
            999_499_999,
            1_250_000_000,
            u64::MAX,
        ] {
            assert!(
                latency(Some(ns)).chars().count() <= 7,
                "{ns}: {}",
                latency(Some(ns))
            );
        }
        assert_eq!(latency(Some(494_930_000)), "495ms");
        assert_eq!(latency(Some(12_340)), "12.3µs");
        assert_eq!(latency(Some(1_000)), "1.00µs");
        assert_eq!(latency(None), "-");
    }

    #[test]
    fn fit_and_short_ring() {
        assert_eq!(fit("uringtrace-work", 8), "uringtr…");
        assert_eq!(fit("abc", 8), "abc");
        assert_eq!(short_ring("0xffff88814c024000"), "4c024000");
        assert_eq!(short_ring("0x10"), "10");
    }

    #[test]
    fn sparkline_and_bar() {
        assert_eq!(sparkline(&[0, 1, 2, 4, 8], 10), " ▁▂▄█");
        assert_eq!(sparkline(&[1, 2, 3], 2), "▆█");
        assert_eq!(bar(4, 8, 4), "██");
        assert_eq!(bar(1, 1000, 4), "▏");
        assert_eq!(bar(0, 0, 4), "");
    }

    #[test]
    fn elapsed_formats() {
        assert_eq!(elapsed(1_500_000_000), "1.5s");
        assert_eq!(elapsed(125_000_000_000), "2m05s");
        assert_eq!(elapsed(7_500_000_000_000), "2h05m");
    }
}
