//! Normalisation and validation of customer data as Chinese users write it: phones (E.164 via
//! libphonenumber's metadata, mainland numbers by default), 统一社会信用代码, WeChat ids, names with
//! their pinyin and initials, and the search text built from all of them. Every validator
//! returns a stable error code the UI translates.

use guanxi_platform::validate::fold_width;
use phonenumber::{country, Mode};
use pinyin::ToPinyin;

/// A phone number as typed and its E.164 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    pub raw: String,
    pub e164: String,
    /// National digits with the trunk prefix (`13800138000`, `01062345678`), for search.
    pub national: String,
}

/// Parses a phone number in any common format. Numbers without `+`/`00` are read as numbers of
/// `country` (ISO 3166 alpha-2, `CN` by default).
pub fn phone(raw: &str, country: &str) -> Result<Phone, &'static str> {
    let folded = fold_width(raw);
    let raw = folded.trim();
    if raw.chars().count() > 40 {
        return Err("too_long");
    }
    let region: Option<country::Id> = country.parse().ok();
    let intl = raw.replacen("00", "+", usize::from(raw.starts_with("00")));
    let n = phonenumber::parse(region, &intl).map_err(|_| "invalid_phone")?;
    if !phonenumber::is_valid(&n) {
        return Err("invalid_phone");
    }
    let e164 = phonenumber::format(&n).mode(Mode::E164).to_string();
    let national = digits(&phonenumber::format(&n).mode(Mode::National).to_string());
    Ok(Phone {
        raw: raw.to_owned(),
        e164,
        national,
    })
}

/// Only the digits of `s`, full-width ones as ASCII.
pub fn digits(s: &str) -> String {
    fold_width(s).chars().filter(char::is_ascii_digit).collect()
}

const CREDIT_CODE_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_CODE_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The check character of the first 17 characters of a 统一社会信用代码 (GB 32100-2015).
pub fn credit_code_check(first17: &str) -> Option<char> {
    let mut sum = 0;
    for (i, c) in first17.chars().enumerate() {
        let v = CREDIT_CODE_CHARS.find(c)? as u32;
        sum += v * CREDIT_CODE_WEIGHTS.get(i)?;
    }
    if first17.chars().count() != 17 {
        return None;
    }
    let check = (31 - sum % 31) % 31;
    CREDIT_CODE_CHARS.chars().nth(check as usize)
}

/// A 统一社会信用代码: 18 characters from the national alphabet (no I, O, Z, S, V), last one the
/// check character. Returned upper-cased without spaces.
pub fn credit_code(raw: &str) -> Result<String, &'static str> {
    let code: String = fold_width(raw)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    if code.chars().count() != 18 || !code.chars().all(|c| CREDIT_CODE_CHARS.contains(c)) {
        return Err("invalid_credit_code");
    }
    let (first, last) = code.split_at(17);
    match credit_code_check(first) {
        Some(c) if last.starts_with(c) => Ok(code),
        _ => Err("invalid_credit_code"),
    }
}

/// A WeChat id: 6–20 letters, digits, `_` or `-` (phone-number ids included).
pub fn wechat(raw: &str) -> Result<String, &'static str> {
    let folded = fold_width(raw);
    let w = folded.trim();
    let n = w.chars().count();
    if (6..=20).contains(&n)
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(w.to_owned())
    } else {
        Err("invalid_wechat")
    }
}

/// A web address: `http(s)://` is added when missing; must have a dotted host and no spaces.
pub fn url(raw: &str) -> Result<String, &'static str> {
    let folded = fold_width(raw);
    let u = folded.trim();
    let full = if u.starts_with("http://") || u.starts_with("https://") {
        u.to_owned()
    } else {
        format!("https://{u}")
    };
    let host = full
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if full.len() > 500
        || full.chars().any(|c| c.is_whitespace() || c.is_control())
        || !host.contains('.')
        || host.starts_with('.')
        || host.ends_with('.')
    {
        return Err("invalid_url");
    }
    Ok(full)
}

/// Country names as spreadsheets write them, with their ISO codes (the codes themselves are
/// always accepted).
const COUNTRY_NAMES: &[(&str, &[&str])] = &[
    (
        "CN",
        &[
            "中国",
            "中國",
            "中华人民共和国",
            "中國大陸",
            "中国大陆",
            "china",
            "prc",
        ],
    ),
    ("HK", &["中国香港", "香港", "hong kong"]),
    ("MO", &["中国澳门", "澳门", "澳門", "macau", "macao"]),
    ("TW", &["中国台湾", "台湾", "臺灣", "台灣", "taiwan"]),
    (
        "US",
        &[
            "美国",
            "美國",
            "united states",
            "united states of america",
            "usa",
        ],
    ),
    (
        "GB",
        &["英国", "英國", "united kingdom", "uk", "great britain"],
    ),
    ("JP", &["日本", "japan"]),
    ("KR", &["韩国", "韓國", "south korea", "korea"]),
    ("SG", &["新加坡", "singapore"]),
    ("MY", &["马来西亚", "馬來西亞", "malaysia"]),
    ("TH", &["泰国", "泰國", "thailand"]),
    ("VN", &["越南", "vietnam", "viet nam"]),
    ("ID", &["印度尼西亚", "印尼", "indonesia"]),
    ("PH", &["菲律宾", "菲律賓", "philippines"]),
    ("IN", &["印度", "india"]),
    ("AU", &["澳大利亚", "澳洲", "australia"]),
    ("NZ", &["新西兰", "紐西蘭", "new zealand"]),
    ("CA", &["加拿大", "canada"]),
    ("DE", &["德国", "德國", "germany"]),
    ("FR", &["法国", "法國", "france"]),
    ("IT", &["意大利", "義大利", "italy"]),
    ("ES", &["西班牙", "spain"]),
    ("NL", &["荷兰", "荷蘭", "netherlands"]),
    ("RU", &["俄罗斯", "俄羅斯", "russia"]),
    (
        "AE",
        &["阿联酋", "阿拉伯联合酋长国", "united arab emirates", "uae"],
    ),
    ("BR", &["巴西", "brazil"]),
    ("MX", &["墨西哥", "mexico"]),
];

/// ISO 3166 alpha-2 country code, upper-cased; a common country name (Chinese or English, as
/// spreadsheets write them) is read as its code.
pub fn country_code(raw: &str) -> Result<String, &'static str> {
    let t = fold_width(raw).trim().to_lowercase();
    if let Some((code, _)) = COUNTRY_NAMES
        .iter()
        .find(|(_, names)| names.contains(&t.as_str()))
    {
        return Ok((*code).to_owned());
    }
    let c = t.to_uppercase();
    if c.len() == 2 && c.parse::<country::Id>().is_ok() {
        Ok(c)
    } else {
        Err("invalid_country")
    }
}

pub use guanxi_platform::validate::text;

/// A name's full pinyin and initials, lower-case ASCII without spaces: 张三丰 → (`zhangsanfeng`,
/// `zsf`); Latin words keep their letters and give their first letters (`John Smith` →
/// (`johnsmith`, `js`)).
pub fn pinyin(name: &str) -> (String, String) {
    let mut full = String::new();
    let mut initials = String::new();
    let mut in_word = false;
    for c in name.chars() {
        if let Some(p) = c.to_pinyin() {
            // ü is typed as v on Chinese keyboards (lv for 绿).
            full.extend(p.plain().chars().map(|c| if c == 'ü' { 'v' } else { c }));
            initials.push_str(p.first_letter());
            in_word = false;
        } else if c.is_ascii_alphanumeric() {
            let l = c.to_ascii_lowercase();
            full.push(l);
            if !in_word {
                initials.push(l);
            }
            in_word = true;
        } else {
            in_word = false;
        }
    }
    (full, initials)
}

/// The text a record is found by: each part lower-cased, separated so that a query never
/// matches across two parts.
pub fn search_text<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("|");
    for p in parts {
        let p = fold_width(p).trim().to_lowercase();
        if !p.is_empty() {
            out.push_str(&p.replace('|', " "));
            out.push('|');
        }
    }
    out
}

/// What a search box query looks for: the query lower-cased and trimmed, and, when it looks
/// like a phone number, its digits (`+86 138-0013-8000` → `8613800138000`).
pub fn search_terms(q: &str) -> Vec<String> {
    let q = fold_width(q).trim().to_lowercase();
    if q.is_empty() {
        return vec![];
    }
    let phone_like = q
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && q.chars().filter(char::is_ascii_digit).count() >= 3;
    if phone_like {
        // 00 is the international prefix: 0086… is +86… — for a whole number (8 or more digits
        // after it); a fragment such as 00015 is searched as typed.
        let d = digits(&q);
        match d.strip_prefix("00") {
            Some(intl) if intl.len() >= 8 => vec![intl.to_owned()],
            _ => vec![d],
        }
    } else {
        vec![q.split_whitespace().collect::<Vec<_>>().join(" ")]
    }
}

/// `"1,234.5"` → `123450` minor units. At most two decimals; `None` for anything else.
pub fn money(raw: &str) -> Option<i64> {
    let t = raw.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let s: String = t
        .trim_start_matches(['¥', '$', '€'])
        .chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect();
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
    {
        return None;
    }
    let units: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let cents: i64 = format!("{frac:0<2}").parse().ok()?;
    let v = units.checked_mul(100)?.checked_add(cents)?;
    Some(if neg { -v } else { v })
}

/// A Chinese (Han) character.
pub fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{20000}'..='\u{3134f}')
}

/// Runs of letters and digits, split where Chinese characters meet others.
fn runs(text: &str) -> Vec<(bool, Vec<char>)> {
    let mut out: Vec<(bool, Vec<char>)> = Vec::new();
    for c in text.chars() {
        if !c.is_alphanumeric() {
            out.push((false, Vec::new()));
            continue;
        }
        let cjk = is_cjk(c);
        match out.last_mut() {
            Some((k, run)) if *k == cjk && !run.is_empty() => run.push(c),
            Some((k, run)) if run.is_empty() => {
                *k = cjk;
                run.push(c);
            }
            _ => out.push((cjk, vec![c])),
        }
    }
    out.retain(|(_, r)| !r.is_empty());
    out
}

/// The index tokens of a record's search text: Chinese characters and pairs of them, the
/// pairs and triples of letters and digits, and runs of four digits — so every substring a
/// person types (2 Chinese characters, 2 or more letters or digits) has all its tokens in the
/// record's. Space-joined, each once. (Trigram indexes alone cannot serve a two-character
/// Chinese query such as 三丰; digit triples alone narrow five typed phone digits to 17
/// times the records that hold them, digit quadruples to about one.)
pub fn grams(search: &str) -> String {
    let mut set = std::collections::BTreeSet::new();
    for (cjk, run) in runs(search) {
        if cjk {
            for c in &run {
                set.insert(c.to_string());
            }
            for w in run.windows(2) {
                set.insert(w.iter().collect::<String>());
            }
        } else {
            for n in [2, 3] {
                for w in run.windows(n) {
                    set.insert(w.iter().collect::<String>());
                }
            }
            for w in run.windows(4) {
                if w.iter().all(char::is_ascii_digit) {
                    set.insert(w.iter().collect::<String>());
                }
            }
        }
    }
    set.into_iter().collect::<Vec<_>>().join(" ")
}

/// The tokens a search term needs a record to have, or none when the term is too short to use
/// the index (a single letter or digit): Chinese characters (one, or each pair), letter/digit
/// pairs (a two-character run) or triples, digit quadruples (a run of four or more digits).
pub fn query_grams(term: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (cjk, run) in runs(term) {
        let n = match (cjk, run.len()) {
            (true, 1) => 1,
            (true, _) => 2,
            (false, 1) => continue,
            (false, 2) => 2,
            (false, n) if n >= 4 && run.iter().all(char::is_ascii_digit) => 4,
            (false, _) => 3,
        };
        for w in run.windows(n) {
            let g: String = w.iter().collect();
            if !out.contains(&g) {
                out.push(g);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The substring of `text` at `a` (wrapped), up to `len` characters, and whether its
    /// tokens are all among the text's.
    fn substring_indexed(text: &str, a: usize, len: usize) -> (String, bool) {
        let chars: Vec<char> = text.chars().collect();
        let a = a % chars.len();
        let b = (a + len).min(chars.len());
        let term: String = chars[a..b].iter().collect();
        let doc: std::collections::HashSet<String> =
            grams(text).split(' ').map(str::to_owned).collect();
        let held = query_grams(&term).iter().all(|g| doc.contains(g));
        (term, held)
    }

    proptest! {
        /// Every substring of a record's search text finds the record: its tokens are all among
        /// the record's.
        #[test]
        fn every_substring_is_indexed(text in "[a-z0-9@. \u{4e00}-\u{4e30}]{1,30}", a in 0usize..30, len in 1usize..12) {
            let (term, held) = substring_indexed(&text, a, len);
            prop_assert!(held, "{:?} of {:?}", term, text);
        }

        /// The same for phone-like text (runs of digits, some letters, separators).
        #[test]
        fn every_digit_fragment_is_indexed(text in "[0-9a +-]{1,30}", a in 0usize..30, len in 1usize..14) {
            let (term, held) = substring_indexed(&text, a, len);
            prop_assert!(held, "{:?} of {:?}", term, text);
        }
    }

    proptest! {
        /// A term that is a single token is held by exactly the texts whose tokens hold it, so
        /// a search for it needs no LIKE to confirm (the converse of the property above).
        #[test]
        fn a_one_token_term_needs_no_confirmation(
            text in "[ab12@. \u{4e00}-\u{4e03}]{0,20}",
            term in "[ab12@. \u{4e00}-\u{4e03}]{1,4}",
        ) {
            let g = query_grams(&term);
            if matches!(g.as_slice(), [one] if *one == term) {
                let held = grams(&text).split(' ').any(|x| x == term);
                prop_assert_eq!(held, text.contains(&term), "{:?} in {:?}", term, text);
            }
        }
    }

    #[test]
    fn grams_of_names_and_numbers() {
        let g = grams("张三丰 zhangsanfeng zsf 13800138000");
        for t in ["三丰", "张", "zsf", "sf", "138", "00"] {
            assert!(g.split(' ').any(|x| x == t), "{t} in {g}");
        }
        assert_eq!(query_grams("三丰"), ["三丰"]);
        assert_eq!(query_grams("zsf"), ["zsf"]);
        assert_eq!(query_grams("z"), Vec::<String>::new());
        assert_eq!(query_grams("张三丰"), ["张三", "三丰"]);
        // Four or more digits: their quadruples (a phone fragment); mixed runs: triples.
        assert_eq!(query_grams("00015"), ["0001", "0015"]);
        assert_eq!(query_grams("a0015"), ["a00", "001", "015"]);
        assert!(g.split(' ').any(|x| x == "0013"), "{g}");
        assert!(!grams("zsf1").split(' ').any(|x| x == "zsf1"));
    }

    #[test]
    fn mainland_phones_in_any_format() {
        for raw in [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "+86 138 0013 8000",
            "+8613800138000",
            "008613800138000",
        ] {
            let p = phone(raw, "CN").unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(p.e164, "+8613800138000", "{raw}");
            assert_eq!(p.national, "13800138000", "{raw}");
            assert_eq!(p.raw, raw);
        }
        let landline = phone("010-6234 5678", "CN").unwrap();
        assert_eq!(landline.e164, "+861062345678");
        assert_eq!(landline.national, "01062345678");
        assert_eq!(phone("+1 650-253-0000", "CN").unwrap().e164, "+16502530000");
        assert_eq!(phone("(650) 253-0000", "US").unwrap().e164, "+16502530000");
        for bad in ["12345", "1380013800", "abc", "+86 999", ""] {
            assert_eq!(phone(bad, "CN"), Err("invalid_phone"), "{bad}");
        }
    }

    #[test]
    fn credit_codes() {
        for ok in [
            "91350100M000100Y43",
            "91110000802100433B",
            "9144030071526726XG",
        ] {
            assert_eq!(credit_code(ok).as_deref(), Ok(ok));
        }
        assert_eq!(
            credit_code(" 91350100m000100y43 ").as_deref(),
            Ok("91350100M000100Y43")
        );
        for bad in [
            "91350100M000100Y44",
            "91350100M000100Y4",
            "9135010OM000100Y43",
            "",
        ] {
            assert_eq!(credit_code(bad), Err("invalid_credit_code"), "{bad}");
        }
    }

    #[test]
    fn pinyin_and_initials() {
        assert_eq!(pinyin("张三丰"), ("zhangsanfeng".into(), "zsf".into()));
        assert_eq!(pinyin("John Smith"), ("johnsmith".into(), "js".into()));
        assert_eq!(
            pinyin("阿里巴巴 Alibaba"),
            ("alibabaalibaba".into(), "albba".into())
        );
    }

    #[test]
    fn search_terms_read_phones_as_digits() {
        assert_eq!(search_terms("138 0013 8000"), vec!["13800138000"]);
        assert_eq!(search_terms("+8613800138000"), vec!["8613800138000"]);
        assert_eq!(search_terms("0086 138 0013 8000"), vec!["8613800138000"]);
        assert_eq!(
            search_terms("00015"),
            vec!["00015"],
            "a fragment, not a prefix"
        );
        assert_eq!(search_terms("  三丰 "), vec!["三丰"]);
        assert_eq!(search_terms("ZSF"), vec!["zsf"]);
        assert!(search_terms("  ").is_empty());
    }

    #[test]
    fn other_validators() {
        assert_eq!(wechat("wxid_abc123").as_deref(), Ok("wxid_abc123"));
        assert_eq!(wechat("abc"), Err("invalid_wechat"));
        assert_eq!(url("example.com").as_deref(), Ok("https://example.com"));
        assert_eq!(url("not a url"), Err("invalid_url"));
        assert_eq!(country_code("cn").as_deref(), Ok("CN"));
        assert_eq!(country_code("XX"), Err("invalid_country"));
    }

    proptest! {
        /// Any 17 characters from the alphabet plus their check character form a valid code,
        /// and changing any one character makes it invalid.
        #[test]
        fn credit_code_check_digit(body in proptest::collection::vec(0usize..31, 17), pos in 0usize..18, delta in 1usize..31) {
            let alphabet: Vec<char> = CREDIT_CODE_CHARS.chars().collect();
            let first: String = body.iter().map(|i| alphabet[*i]).collect();
            let code = format!("{first}{}", credit_code_check(&first).unwrap());
            prop_assert_eq!(credit_code(&code), Ok(code.clone()));
            let mut chars: Vec<char> = code.chars().collect();
            let i = alphabet.iter().position(|c| *c == chars[pos]).unwrap();
            chars[pos] = alphabet[(i + delta) % 31];
            let broken: String = chars.into_iter().collect();
            prop_assert_eq!(credit_code(&broken), Err("invalid_credit_code"));
        }

        /// Every way of writing a mainland mobile normalises to the same E.164, and a search for
        /// any of those spellings finds it in the stored search text.
        #[test]
        fn mobile_spellings_agree(prefix in prop::sample::select(vec!["138", "139", "150", "186", "199"]), rest in 10_000_000u32..99_999_999, style in 0usize..5) {
            let d = format!("{prefix}{rest:08}");
            let typed = match style {
                0 => d.clone(),
                1 => format!("{} {} {}", &d[..3], &d[3..7], &d[7..]),
                2 => format!("+86 {d}"),
                3 => format!("0086{d}"),
                _ => format!("{}-{}-{}", &d[..3], &d[3..7], &d[7..]),
            };
            let p = phone(&typed, "CN").unwrap();
            prop_assert_eq!(&p.e164, &format!("+86{d}"));
            let text = search_text([p.national.as_str(), digits(&p.e164).as_str()]);
            for t in search_terms(&typed) {
                prop_assert!(text.contains(&t), "{} not in {}", t, text);
            }
        }

        /// Pinyin output is always lower-case ASCII, and initials are never longer than it.
        #[test]
        fn pinyin_is_ascii(name in "[\\u4e00-\\u9fa5a-zA-Z ]{0,12}") {
            let (full, initials) = pinyin(&name);
            prop_assert!(full.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            prop_assert!(initials.len() <= full.len());
        }
    }
}
