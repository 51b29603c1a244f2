//! The small part of RFC 4180 that bank and provider files need: one record per line, fields
//! separated by commas, a field in double quotes may hold commas and doubled quotes. Line
//! breaks inside quotes are refused (no file we exchange has them), so a record is a line and
//! every error can name its line.

use crate::error::DomainError;

/// One non-empty line of a file, split into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based, counting every line of the file (the header is line 1).
    pub line_no: usize,
    pub fields: Vec<String>,
}

/// Splits `text` into records, skipping empty lines; at most `records_max` of them.
pub fn parse(field: &'static str, text: &str, records_max: usize) -> Result<Vec<Record>, DomainError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let line_no = index + 1;
        if records.len() == records_max {
            return Err(DomainError::invalid(field, format!("holds more than {records_max} lines")));
        }
        let fields = split_line(line)
            .map_err(|reason| DomainError::invalid(field, format!("line {line_no}: {reason}")))?;
        records.push(Record { line_no, fields });
    }
    Ok(records)
}

fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("a quoted field is not closed".to_owned()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        value.push('"');
                    }
                    Some('"') => break,
                    Some(c) => value.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(value);
                    return Ok(fields);
                }
                Some(',') => fields.push(value),
                Some(c) => return Err(format!("`{c}` after a closing quote")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(value.trim().to_owned());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("a quote inside an unquoted field".to_owned()),
                    Some(c) => value.push(c),
                }
            }
            fields.push(value.trim().to_owned());
        }
    }
}

/// Checks that the first record is exactly `columns` (case-insensitive).
pub fn expect_header(field: &'static str, records: &[Record], columns: &[&str]) -> Result<(), DomainError> {
    let wanted = columns.join(",");
    match records.first() {
        Some(header)
            if header.fields.len() == columns.len()
                && header.fields.iter().zip(columns).all(|(a, b)| a.eq_ignore_ascii_case(b)) =>
        {
            Ok(())
        }
        Some(header) => Err(DomainError::invalid(
            field,
            format!("line {}: the header must be `{wanted}`", header.line_no),
        )),
        None => Err(DomainError::invalid(field, format!("is empty: it needs the header `{wanted}`"))),
    }
}

/// One field written for a CSV file: quoted when it holds a comma, a quote or spaces at an end.
pub fn field(value: &str) -> String {
    let needs_quotes =
        value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ');
    if needs_quotes { format!("\"{}\"", value.replace('"', "\"\"")) } else { value.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_quoted_and_plain_fields_and_names_bad_lines() {
        let records = parse("file", "a,b\r\n\n\"x, y\",\"say \"\"hi\"\"\"\n 1 ,2", 10).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1], Record { line_no: 3, fields: vec!["x, y".into(), "say \"hi\"".into()] });
        assert_eq!(records[2].fields, vec!["1", "2"]);
        let error = parse("file", "a,b\n\"open,b", 10).unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
        assert!(parse("file", "a\nb\nc", 2).is_err());
        assert!(expect_header("file", &records, &["A", "B"]).is_ok());
        assert!(expect_header("file", &records, &["a", "c"]).is_err());
    }

    proptest! {
        #[test]
        fn written_fields_read_back(values in prop::collection::vec("[ -~]{0,12}", 1..6)) {
            let line: Vec<String> = values.iter().map(|v| field(v)).collect();
            let records = parse("file", &line.join(","), 1).unwrap();
            let expected: Vec<String> = values.iter().map(|v| {
                if field(v).starts_with('"') { v.clone() } else { v.trim().to_owned() }
            }).collect();
            if values.iter().all(|v| v.trim().is_empty()) {
                prop_assert!(records.is_empty() || records[0].fields == expected);
            } else {
                prop_assert_eq!(&records[0].fields, &expected);
            }
        }
    }
}
