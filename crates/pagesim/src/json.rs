//! `--json`: serialisers for the engine's report structs (the engine does not
//! depend on serde) and the one-document writer. The schema is documented in
//! docs/json-schema.md.

use pagealloc::{BuddyInfo, PageTypeInfo};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// A map that keeps its insertion order.
struct Ordered<V>(Vec<(&'static str, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct BuddyZone<'a> {
    node: u16,
    zone: &'static str,
    nr_free: &'a [u64],
}

/// `/proc/buddyinfo` as `[{node, zone, nr_free: [per order]}]`.
pub fn buddyinfo<S: Serializer>(b: &BuddyInfo, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(b.zones.iter().map(|z| BuddyZone {
        node: z.node.0,
        zone: z.zone.linux_name(),
        nr_free: &z.nr_free,
    }))
}

#[derive(Serialize)]
struct PageTypeZone<'a> {
    node: u16,
    zone: &'static str,
    free: Ordered<&'a [u64]>,
    blocks: Ordered<u64>,
}

#[derive(Serialize)]
struct PageType<'a> {
    pageblock_order: u8,
    pages_per_block: u64,
    zones: Vec<PageTypeZone<'a>>,
}

/// `/proc/pagetypeinfo` as `{pageblock_order, pages_per_block, zones: [{node,
/// zone, free: {type: [per order]}, blocks: {type: n}}]}`.
pub fn pagetypeinfo<S: Serializer>(p: &PageTypeInfo, s: S) -> Result<S::Ok, S::Error> {
    let names: Vec<&'static str> = p.migratetypes.iter().map(|m| m.linux_name()).collect();
    PageType {
        pageblock_order: p.pageblock_order,
        pages_per_block: p.pages_per_block,
        zones: p
            .zones
            .iter()
            .map(|z| PageTypeZone {
                node: z.node.0,
                zone: z.zone.linux_name(),
                free: Ordered(
                    names
                        .iter()
                        .zip(&z.free)
                        .map(|(n, v)| (*n, v.as_slice()))
                        .collect(),
                ),
                blocks: Ordered(
                    names
                        .iter()
                        .copied()
                        .zip(z.blocks.iter().copied())
                        .collect(),
                ),
            })
            .collect(),
    }
    .serialize(s)
}

/// The document, pretty-printed, with a final newline.
pub fn to_string<T: Serialize>(report: &T) -> String {
    // Serialising plain data to a String cannot fail; fall back to an
    // explicit JSON error object rather than panicking if it ever did.
    let mut text = serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"{}\"}}", e.to_string().replace('"', "'")));
    text.push('\n');
    text
}
