//! Toxiproxy's toxics as its API describes them: a type, its attributes (toxics/*.go, each an
//! integer in the unit Toxiproxy uses), a name, a stream and a toxicity; decoded from a request
//! body and written back in its JSON shape.

use super::error::{self, ApiError};
use super::gojson;
use serde_json::{Map, Value, json};

/// A type's name, its Go struct's name, and its attributes with their Go types.
pub type ToxicType = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Each type Toxiproxy registers (toxics/*.go `Register`), its Go struct's name (for decoding
/// errors), its attributes in declaration order (the order its JSON has) and their Go types.
pub const TYPES: &[ToxicType] = &[
    ("noop", "NoopToxic", &[]),
    (
        "latency",
        "LatencyToxic",
        &[("latency", "int64"), ("jitter", "int64")],
    ),
    ("bandwidth", "BandwidthToxic", &[("rate", "int64")]),
    ("slow_close", "SlowCloseToxic", &[("delay", "int64")]),
    ("timeout", "TimeoutToxic", &[("timeout", "int64")]),
    ("reset_peer", "ResetToxic", &[("timeout", "int64")]),
    (
        "slicer",
        "SlicerToxic",
        &[
            ("average_size", "int"),
            ("size_variation", "int"),
            ("delay", "int"),
        ],
    ),
    ("limit_data", "LimitDataToxic", &[("bytes", "int64")]),
];

/// Which way the data goes: upstream is the client's writes (to the server), downstream its reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Upstream,
    Downstream,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Toxic {
    pub name: String,
    pub kind: &'static str,
    /// As the client wrote it (Toxiproxy keeps `"Upstream"` as given, and parses it ignoring
    /// case).
    pub stream_text: String,
    pub stream: Stream,
    pub toxicity: f32,
    /// The type's attributes, in its declaration order.
    pub attributes: Vec<(&'static str, i64)>,
}

impl Toxic {
    pub fn attribute(&self, name: &str) -> i64 {
        self.attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// toxic_collection.go `AddToxicJson`: defaults (downstream, toxicity 1), then the checks in
    /// its order: the body, the stream, the default name `<type>_<stream>`, the type; the name
    /// is checked against the proxy's toxics by the caller, then the attributes are decoded.
    pub fn from_body(body: &str) -> Result<Toxic, ApiError> {
        let bad = |e: String| error::bad_request_body().joined(e);
        let value = gojson::parse(body).map_err(bad)?;
        let map = gojson::object(&value, "toxics.ToxicWrapper").map_err(bad)?;
        let owner = "ToxicWrapper";
        let name = gojson::string(map, owner, "name").map_err(bad)?;
        let kind = gojson::string(map, owner, "type").map_err(bad)?;
        let stream_text = gojson::string(map, owner, "stream")
            .map_err(bad)?
            .unwrap_or_else(|| "downstream".into());
        let toxicity = gojson::float32(map, owner, "toxicity")
            .map_err(bad)?
            .unwrap_or(1.0);
        let stream = match stream_text.to_ascii_lowercase().as_str() {
            "upstream" => Stream::Upstream,
            "downstream" => Stream::Downstream,
            _ => return Err(error::invalid_stream()),
        };
        let kind = kind.unwrap_or_default();
        let name = name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{kind}_{stream_text}"));
        let Some(&(kind, _, fields)) = TYPES.iter().find(|(t, _, _)| *t == kind) else {
            return Err(error::invalid_toxic_type());
        };
        Ok(Toxic {
            name,
            kind,
            stream_text,
            stream,
            toxicity,
            attributes: fields.iter().map(|(f, _)| (*f, 0)).collect(),
        })
    }

    /// Decodes `attributes` from `map` onto these (Go decodes into the existing struct: a field
    /// not given keeps its value).
    pub fn decode_attributes(&mut self, map: &Map<String, Value>) -> Result<(), ApiError> {
        let bad = |e: String| error::bad_request_body().joined(e);
        let Some(attrs) = gojson::field(map, "attributes") else {
            return Ok(());
        };
        let (_, go_struct, fields) = TYPES
            .iter()
            .find(|(t, _, _)| *t == self.kind)
            .expect("a known type");
        let attrs = gojson::object(attrs, &format!("toxics.{go_struct}")).map_err(bad)?;
        for (i, (field, go_type)) in fields.iter().enumerate() {
            if let Some(v) = gojson::integer(attrs, go_struct, field, go_type).map_err(bad)? {
                // Go's `int` on a 64-bit build is 64 bits: the same range.
                self.attributes[i].1 = v;
            }
        }
        Ok(())
    }

    /// toxic_collection.go `UpdateToxicJson`: attributes onto the existing ones, and the
    /// toxicity (kept when absent).
    pub fn update(&mut self, body: &str) -> Result<(), ApiError> {
        let bad = |e: String| error::bad_request_body().joined(e);
        let value = gojson::parse(body).map_err(bad)?;
        let map = gojson::object(&value, "struct { Attributes interface {} \"json:\\\"attributes\\\"\"; Toxicity float32 \"json:\\\"toxicity\\\"\" }").map_err(bad)?;
        let toxicity = gojson::float32(map, "", "toxicity").map_err(bad)?;
        self.decode_attributes(map)?;
        if let Some(t) = toxicity {
            self.toxicity = t;
        }
        Ok(())
    }

    /// The JSON Toxiproxy writes for a `ToxicWrapper`, in its field order: attributes, name,
    /// type, stream, toxicity.
    pub fn to_json(&self) -> String {
        let attrs: Vec<String> = self
            .attributes
            .iter()
            .map(|(k, v)| format!("{}:{v}", json!(k)))
            .collect();
        format!(
            "{{\"attributes\":{{{}}},\"name\":{},\"type\":{},\"stream\":{},\"toxicity\":{}}}",
            attrs.join(","),
            json!(self.name),
            json!(self.kind),
            json!(self.stream_text),
            gojson::float32_value(self.toxicity)
        )
    }
}

/// Decodes a create body whole: the wrapper, then (the name being free) its attributes.
pub fn attributes_of(body: &str, toxic: &mut Toxic) -> Result<(), ApiError> {
    let value = gojson::parse(body).map_err(|e| error::bad_request_body().joined(e))?;
    let map = gojson::object(&value, "toxics.ToxicWrapper")
        .map_err(|e| error::bad_request_body().joined(e))?;
    toxic.decode_attributes(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_toxiproxys() {
        let t = Toxic::from_body(r#"{"type": "latency"}"#).unwrap();
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(t.stream, Stream::Downstream);
        assert_eq!(t.toxicity, 1.0);
        assert_eq!(
            t.to_json(),
            r#"{"attributes":{"latency":0,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}"#
        );
        let t = Toxic::from_body(r#"{"type": "slicer", "stream": "UpStream"}"#).unwrap();
        assert_eq!(
            (t.name.as_str(), t.stream),
            ("slicer_UpStream", Stream::Upstream)
        );
    }

    #[test]
    fn checks_come_in_toxiproxys_order() {
        // The stream is checked before the type, so a bad both reports the stream.
        let e = Toxic::from_body(r#"{"type": "nope", "stream": "sideways"}"#).unwrap_err();
        assert_eq!(e, error::invalid_stream());
        let e = Toxic::from_body(r#"{"type": "nope"}"#).unwrap_err();
        assert_eq!(e, error::invalid_toxic_type());
        let e = Toxic::from_body("").unwrap_err();
        assert_eq!(e.message, "bad request body: EOF");
        assert_eq!(e.status, 400);
    }

    #[test]
    fn attributes_merge_on_update_and_keep_their_types() {
        let body = r#"{"type": "latency", "attributes": {"latency": 100, "other": 1}}"#;
        let mut t = Toxic::from_body(body).unwrap();
        attributes_of(body, &mut t).unwrap();
        assert_eq!(t.attribute("latency"), 100);
        t.update(r#"{"attributes": {"jitter": 5}, "toxicity": 0.5}"#)
            .unwrap();
        assert_eq!((t.attribute("latency"), t.attribute("jitter")), (100, 5));
        assert_eq!(t.toxicity, 0.5);
        let e = t.update(r#"{"attributes": {"jitter": "5"}}"#).unwrap_err();
        assert_eq!(
            e.message,
            "bad request body: json: cannot unmarshal string into Go struct field \
             LatencyToxic.jitter of type int64"
        );
    }
}
