//! Parsing of raw stream replies. fred's typed helpers do not cover Redis 7's three-part
//! XAUTOCLAIM reply, so the few shapes used here are read by hand from `Value`.

use fred::types::Value;

use super::QueueError;

/// One stream entry as Redis returned it: the id and its field/value pairs, undecoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawEntry {
    pub id: String,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

fn unexpected(what: &str) -> QueueError {
    QueueError::UnexpectedReply(what.to_string())
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Bytes(b) => Some(b.to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

pub(crate) fn string(value: Value) -> Option<String> {
    bytes(value).and_then(|b| String::from_utf8(b).ok())
}

/// `[id, [field, value, ...]]`. `Ok(None)` for an entry deleted while pending (Redis 6.2
/// sends its fields as nil).
fn entry(value: Value) -> Result<Option<RawEntry>, QueueError> {
    let mut parts = value.into_array().into_iter();
    let id = parts
        .next()
        .and_then(string)
        .ok_or_else(|| unexpected("stream entry without an id"))?;
    let fields = match parts.next() {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(flat)) => flat,
        Some(_) => return Err(unexpected("stream entry fields are not a list")),
    };
    if fields.len() % 2 != 0 {
        return Err(unexpected("stream entry has an odd number of field values"));
    }
    let mut pairs = Vec::with_capacity(fields.len() / 2);
    let mut flat = fields.into_iter();
    while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
        let (Some(k), Some(v)) = (bytes(k), bytes(v)) else {
            return Err(unexpected("stream field is not a string"));
        };
        pairs.push((k, v));
    }
    Ok(Some(RawEntry { id, fields: pairs }))
}

/// A list of entries (XRANGE, or the entries of one stream in XREADGROUP).
pub(crate) fn entries(value: Value) -> Result<Vec<RawEntry>, QueueError> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in value.into_array() {
        if let Some(e) = entry(item)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// XREADGROUP on one stream: nil on timeout, else `[[stream, [entries]]]` (RESP2) or a map
/// `{stream: [entries]}` (RESP3).
pub(crate) fn read_group(value: Value) -> Result<Vec<RawEntry>, QueueError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Map(map) => {
            let mut out = Vec::new();
            for (_, v) in map.inner() {
                out.extend(entries(v)?);
            }
            Ok(out)
        }
        Value::Array(streams) => {
            let mut out = Vec::new();
            for stream in streams {
                let mut parts = stream.into_array().into_iter();
                let _name = parts.next();
                out.extend(entries(parts.next().unwrap_or(Value::Null))?);
            }
            Ok(out)
        }
        _ => Err(unexpected("XREADGROUP reply is neither nil nor a list")),
    }
}

/// XAUTOCLAIM: `[next_cursor, [entries], [deleted ids]]` (the third part since Redis 7).
pub(crate) fn auto_claim(value: Value) -> Result<(String, Vec<RawEntry>), QueueError> {
    let mut parts = value.into_array().into_iter();
    let cursor = parts
        .next()
        .and_then(string)
        .ok_or_else(|| unexpected("XAUTOCLAIM reply without a cursor"))?;
    let claimed = entries(parts.next().unwrap_or(Value::Null))?;
    Ok((cursor, claimed))
}

/// XPENDING key group id id 1: `[[id, consumer, idle_ms, deliveries]]`; the delivery count.
pub(crate) fn pending_deliveries(value: Value) -> Option<u64> {
    let first = value.into_array().into_iter().next()?;
    first.into_array().get(3)?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn queue_reply_auto_claim_redis7_shape() {
        let reply = Value::Array(vec![
            s("0-0"),
            Value::Array(vec![Value::Array(vec![
                s("1-1"),
                Value::Array(vec![s("id"), s("x")]),
            ])]),
            Value::Array(vec![s("1-0")]),
        ]);
        let (cursor, claimed) = auto_claim(reply).unwrap();
        assert_eq!(cursor, "0-0");
        assert_eq!(
            claimed,
            vec![RawEntry {
                id: "1-1".into(),
                fields: vec![(b"id".to_vec(), b"x".to_vec())]
            }]
        );
    }

    #[test]
    fn queue_reply_deleted_entry_is_skipped_and_odd_fields_rejected() {
        let deleted = Value::Array(vec![Value::Array(vec![s("1-1"), Value::Null])]);
        assert_eq!(entries(deleted).unwrap(), vec![]);
        let odd = Value::Array(vec![Value::Array(vec![
            s("1-1"),
            Value::Array(vec![s("a")]),
        ])]);
        assert!(entries(odd).is_err());
    }
}
