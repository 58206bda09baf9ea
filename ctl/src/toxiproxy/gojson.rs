//! Decoding a JSON body the way Go's `encoding/json` decodes it into Toxiproxy's structs, since
//! its clients were written against that: field names match case-insensitively, unknown fields
//! and `null` are ignored (the field keeps its value), and a value of the wrong type is refused
//! with Go's message, which Toxiproxy passes on after `bad request body: `.

use serde_json::{Map, Value};

/// The whole body as a JSON value; Go's decoder reports an empty body as `EOF`.
pub fn parse(body: &str) -> Result<Value, String> {
    if body.trim().is_empty() {
        return Err("EOF".into());
    }
    // Go's Decoder reads one value and ignores what follows it; a stream of values is rare
    // enough in a request that the first one is all a client means.
    let mut values = serde_json::Deserializer::from_str(body).into_iter::<Value>();
    match values.next() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("EOF".into()),
    }
}

/// JSON's name for a value's type, as Go's `UnmarshalTypeError` says it.
fn json_kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// The object a struct decodes from; `go_type` names the struct for the error.
pub fn object<'a>(v: &'a Value, go_type: &str) -> Result<&'a Map<String, Value>, String> {
    match v {
        Value::Object(map) => Ok(map),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type {go_type}",
            json_kind(other).split(' ').next().unwrap_or("value")
        )),
    }
}

/// The value of `field` (matched as Go does: exactly, else ignoring case), unless absent or null.
pub fn field<'a>(map: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    map.get(field)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(field))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn mismatch(v: &Value, owner: &str, field: &str, go_type: &str) -> String {
    let kind = json_kind(v);
    let kind = if go_type.starts_with("int") || go_type.starts_with("float") {
        kind
    } else {
        kind.split(' ').next().unwrap_or("value").to_string()
    };
    format!("json: cannot unmarshal {kind} into Go struct field {owner}.{field} of type {go_type}")
}

pub fn string(map: &Map<String, Value>, owner: &str, name: &str) -> Result<Option<String>, String> {
    match field(map, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(mismatch(v, owner, name, "string")),
    }
}

pub fn boolean(map: &Map<String, Value>, owner: &str, name: &str) -> Result<Option<bool>, String> {
    match field(map, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(mismatch(v, owner, name, "bool")),
    }
}

/// An integer field: Go refuses a fraction or an exponent form for an int.
pub fn integer(
    map: &Map<String, Value>,
    owner: &str,
    name: &str,
    go_type: &str,
) -> Result<Option<i64>, String> {
    match field(map, name) {
        None => Ok(None),
        Some(v @ Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| mismatch(v, owner, name, go_type)),
        Some(v) => Err(mismatch(v, owner, name, go_type)),
    }
}

pub fn float32(map: &Map<String, Value>, owner: &str, name: &str) -> Result<Option<f32>, String> {
    match field(map, name) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64().map(|f| f as f32)),
        Some(v) => Err(mismatch(v, owner, name, "float32")),
    }
}

/// A float32 as Go's encoder writes it: the shortest text that reads back as the same float32
/// (`1`, `0.5`, `0.1`), not the float64 it widens to (`0.10000000149011612`).
pub fn float32_value(f: f32) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return Value::from(f as i64);
    }
    let text = f.to_string();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decode_as_go_decodes_them() {
        let v = parse(r#"{"Name": "a", "enabled": null, "n": 1.5, "x": "s"}"#).unwrap();
        let m = object(&v, "toxiproxy.Proxy").unwrap();
        assert_eq!(string(m, "Proxy", "name").unwrap(), Some("a".into()));
        assert_eq!(boolean(m, "Proxy", "enabled").unwrap(), None);
        assert_eq!(
            integer(m, "LatencyToxic", "n", "int64").unwrap_err(),
            "json: cannot unmarshal number 1.5 into Go struct field LatencyToxic.n of type int64"
        );
        assert_eq!(
            boolean(m, "Proxy", "x").unwrap_err(),
            "json: cannot unmarshal string into Go struct field Proxy.x of type bool"
        );
        assert_eq!(parse("  ").unwrap_err(), "EOF");
        assert_eq!(
            object(&parse("[1]").unwrap(), "toxiproxy.Proxy").unwrap_err(),
            "json: cannot unmarshal array into Go value of type toxiproxy.Proxy"
        );
    }

    #[test]
    fn float32_is_written_short() {
        assert_eq!(float32_value(1.0).to_string(), "1");
        assert_eq!(float32_value(0.5).to_string(), "0.5");
        assert_eq!(float32_value(0.1).to_string(), "0.1");
    }
}
