//! Money as people read and type it: minor units (fen) shown with two decimals, thousands
//! separators and the currency's sign; typed amounts parsed exactly, never through floats.

/// `123456, "CNY"` → `¥1,234.56`; other currencies get their code (`USD 1,234.56`).
pub fn format(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let (units, cents) = (abs / 100, abs % 100);
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let prefix = match currency {
        "CNY" => "¥".to_owned(),
        "USD" => "$".to_owned(),
        "EUR" => "€".to_owned(),
        other => format!("{other} "),
    };
    format!("{sign}{prefix}{grouped}.{cents:02}")
}

/// `"1,234.5"` → `123450` minor units (see `guanxi_records::normalize::money`).
pub fn parse(raw: &str) -> Option<i64> {
    guanxi_records::normalize::money(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format(123456, "CNY"), "¥1,234.56");
        assert_eq!(format(5, "USD"), "$0.05");
        assert_eq!(format(-100000000, "JPY"), "-JPY 1,000,000.00");
        assert_eq!(parse("1,234.5"), Some(123450));
        assert_eq!(parse("¥ 12"), Some(1200));
        assert_eq!(parse(".5"), Some(50));
        for bad in ["", "abc", "1.234", "1..2", "--1", "9999999999999999999"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for v in [0i64, 1, 99, 100, 12345, 987654321, -4200] {
            let shown = format(v, "CNY");
            assert_eq!(parse(&shown), Some(v), "{shown}");
        }
    }
}
