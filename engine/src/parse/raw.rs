//! What serde reads from a policy file: the sections and fields as written, each value with its
//! span so a meaning check can point at it. No meaning is checked here beyond TOML types.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) seed: Option<Spanned<u64>>,
    pub(super) platform: Option<Spanned<String>>,
    pub(super) quirks: Option<Spanned<Vec<String>>>,
    pub(super) no_quirks: Option<Spanned<Vec<String>>>,
    pub(super) quirk_probability: Option<Spanned<Number>>,
    #[serde(default)]
    pub(super) rules: Vec<Spanned<RawRule>>,
    #[serde(default)]
    pub(super) inject: Vec<Spanned<RawInjection>>,
    #[serde(default)]
    pub(super) process: Vec<Spanned<RawProcess>>,
    pub(super) attrition: Option<Spanned<RawAttrition>>,
    #[serde(default)]
    pub(super) nemesis: Vec<Spanned<RawNemesis>>,
    #[serde(default)]
    pub(super) partition: Vec<Spanned<RawPartition>>,
    pub(super) partitions: Option<Spanned<RawPartitions>>,
    #[serde(default)]
    pub(super) disk: Vec<Spanned<RawDisk>>,
    pub(super) durability: Option<Spanned<RawDurability>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: Option<Spanned<String>>,
    pub(super) on: Spanned<OneOrMany>,
    pub(super) fd: Option<Spanned<OneOrMany>>,
    pub(super) peer: Option<Spanned<String>>,
    pub(super) local: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) probability: Option<Spanned<Number>>,
    pub(super) after: Option<u64>,
    pub(super) every: Option<Spanned<u64>>,
    pub(super) times: Option<u64>,
    pub(super) window: Option<Spanned<Vec<String>>>,
    pub(super) fault: Spanned<toml::Value>,
    #[serde(default)]
    pub(super) any_errno: bool,
    pub(super) signal: Option<Spanned<String>>,
    pub(super) min_bytes: Option<u64>,
    pub(super) process: Option<Spanned<String>>,
    pub(super) host: Option<Spanned<String>>,
    pub(super) per: Option<Spanned<String>>,
    pub(super) enabled: Option<bool>,
}

/// `[[inject]]`: one exact fault at one decision key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInjection {
    pub(super) process: Spanned<String>,
    pub(super) conn: Spanned<String>,
    pub(super) at: Spanned<String>,
    /// The op that took the fault in the original run: documentation, checked to be an op name.
    pub(super) on: Option<Spanned<String>>,
    pub(super) fault: Spanned<toml::Value>,
}

/// `[[disk]]`: files under a glob share a capacity.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDisk {
    pub(super) name: Option<Spanned<String>>,
    pub(super) path: Spanned<String>,
    pub(super) capacity: Spanned<String>,
}

/// `[durability]`: files under a glob lose what was not made durable when a process crashes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDurability {
    pub(super) path: Spanned<String>,
    pub(super) torn: Option<Spanned<String>>,
    pub(super) model: Option<Spanned<String>>,
    pub(super) crash: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcess {
    pub(super) name: Spanned<String>,
    pub(super) cmd: Spanned<Vec<String>>,
    pub(super) replicas: Option<Spanned<u32>>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) data: Option<Spanned<String>>,
    pub(super) ready: Option<Spanned<String>>,
    pub(super) ready_timeout: Option<Spanned<String>>,
    pub(super) env: Option<Spanned<BTreeMap<String, String>>>,
    pub(super) stop_signal: Option<Spanned<String>>,
    pub(super) rules: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) restart: Option<Spanned<String>>,
    pub(super) limits: Option<Spanned<RawLimits>>,
    pub(super) user: Option<Spanned<String>>,
    pub(super) machine: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) nofile: Option<u64>,
    pub(super) memory: Option<Spanned<String>>,
    pub(super) cpu: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAttrition {
    pub(super) processes: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) max_dead: Option<u32>,
    pub(super) graceful: Option<Spanned<Number>>,
    pub(super) crash: Option<Spanned<Number>>,
    pub(super) wipe: Option<Spanned<Number>>,
    pub(super) pause: Option<Spanned<Number>>,
    #[serde(rename = "power-loss")]
    pub(super) power_loss: Option<Spanned<Number>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) recovery: Option<Spanned<String>>,
    pub(super) grace: Option<Spanned<String>>,
    pub(super) paused: Option<Spanned<String>>,
    pub(super) window: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartition {
    pub(super) between: Option<Spanned<Vec<Vec<Spanned<String>>>>>,
    pub(super) cut: Option<Spanned<Vec<Vec<Spanned<String>>>>>,
    pub(super) window: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub(super) one_way: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartitions {
    pub(super) processes: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) shapes: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) duration: Option<Spanned<String>>,
    pub(super) window: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNemesis {
    pub(super) at: Spanned<String>,
    pub(super) process: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) grace: Option<Spanned<String>>,
    pub(super) recovery: Option<Spanned<String>>,
    pub(super) paused: Option<Spanned<String>>,
}

/// A name or an array of names; each array item keeps its own span, so an error points at it.
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl OneOrMany {
    /// Each name with where it is (`whole` is the span of the value as a whole).
    pub(super) fn items(&self, whole: Range<usize>) -> Vec<(&str, Range<usize>)> {
        match self {
            OneOrMany::One(s) => vec![(s.as_str(), whole)],
            OneOrMany::Many(v) => v.iter().map(|s| (s.get_ref().as_str(), s.span())).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or an array of names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Any TOML number (a too-large integer too: it is then out of range, not a type error).
pub(super) enum Number {
    Int(i64),
    Float(f64),
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number from 0.0 to 1.0")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number::Float(v as f64))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Number, E> {
                Ok(Number::Float(v as f64))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Number, E> {
                Ok(Number::Float(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number::Float(v))
            }
        }
        d.deserialize_any(Visit)
    }
}
