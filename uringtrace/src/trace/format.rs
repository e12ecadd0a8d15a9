//! Parsing of tracefs `format` files (pure; tested with real files of several kernels).

use thiserror::Error;

/// One field of a tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The C declaration without the name (`void *`, `__data_loc char[]`, `u64`).
    pub ctype: String,
    pub offset: u16,
    pub size: u16,
    pub signed: bool,
}

/// A parsed `format` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub name: String,
    pub id: Option<u32>,
    /// Event fields, without the `common_*` header.
    pub fields: Vec<Field>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("line {line}: malformed field description: {text:?}")]
    BadField { line: usize, text: String },
    #[error("no `name:` line: not a tracefs format file")]
    NoName,
}

impl Format {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Parses the text of a `format` file.
pub fn parse_format(text: &str) -> Result<Format, FormatError> {
    let mut name = None;
    let mut id = None;
    let mut fields = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("name:") {
            name = Some(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("ID:") {
            id = rest.trim().parse().ok();
        } else if line.starts_with("field:") {
            let f = parse_field(line).ok_or_else(|| FormatError::BadField {
                line: i + 1,
                text: line.to_string(),
            })?;
            if !f.name.starts_with("common_") {
                fields.push(f);
            }
        } else if line.starts_with("print fmt:") {
            break;
        }
    }
    Ok(Format {
        name: name.ok_or(FormatError::NoName)?,
        id,
        fields,
    })
}

fn parse_field(line: &str) -> Option<Field> {
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("field:") {
            decl = Some(v.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    let decl = decl?;
    // The name is the last identifier: `char comm[16]`, `__data_loc char[] op_str`.
    let (ctype, last) = decl.rsplit_once(char::is_whitespace)?;
    let mut name = last.trim_start_matches('*');
    let mut ctype = ctype.trim().to_string();
    if let Some(idx) = name.find('[') {
        ctype.push_str(&name[idx..]);
        name = &name[..idx];
    }
    if name.is_empty() {
        return None;
    }
    Some(Field {
        name: name.to_string(),
        ctype,
        offset: offset?,
        size: size?,
        signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETE_618: &str = "name: io_uring_complete
ID: 2141
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:void * ctx;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * req;\toffset:16;\tsize:8;\tsigned:0;
\tfield:u64 user_data;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int res;\toffset:32;\tsize:4;\tsigned:1;
\tfield:unsigned cflags;\toffset:36;\tsize:4;\tsigned:0;
\tfield:__data_loc char[] op_str;\toffset:44;\tsize:4;\tsigned:0;
\tfield:char comm[16];\toffset:48;\tsize:16;\tsigned:0;

print fmt: \"ring %p\", REC->ctx
";

    #[test]
    fn parses_fields_and_skips_common_header() {
        let f = parse_format(COMPLETE_618).unwrap();
        assert_eq!(f.name, "io_uring_complete");
        assert_eq!(f.id, Some(2141));
        let names: Vec<_> = f.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["ctx", "req", "user_data", "res", "cflags", "op_str", "comm"]
        );
        let res = f.field("res").unwrap();
        assert_eq!((res.offset, res.size, res.signed), (32, 4, true));
        assert_eq!(res.ctype, "int");
        assert_eq!(f.field("ctx").unwrap().ctype, "void *");
        assert_eq!(f.field("comm").unwrap().ctype, "char[16]");
        assert_eq!(f.field("op_str").unwrap().ctype, "__data_loc char[]");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_format("hello"), Err(FormatError::NoName));
        let bad = "name: x\nformat:\n\tfield:int;\toffset:8;\tsize:4;\tsigned:1;\n";
        assert!(matches!(
            parse_format(bad),
            Err(FormatError::BadField { line: 3, .. })
        ));
    }
}
