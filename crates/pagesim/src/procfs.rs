//! Reading a machine's zone layout from a captured `/proc/zoneinfo`.
//!
//! Only the zone headers (`Node 0, zone   Normal`, with nothing after the
//! name), `pages free`, `spanned`, `present`, `managed`, `start_pfn:` and
//! the per-CPU pagesets' `count:` are read, so the file may hold other sections around it (the `.procfs`
//! samples of `../shared/traces` hold buddyinfo, pagetypeinfo and
//! vmstat too, whose `Node 0, zone ...` lines carry numbers after the zone
//! name and are not headers; [`crate::pagetypeinfo`] reads that section).

use pagealloc::{NodeId, ZoneType};

use crate::error::{Error, Result};

/// One zone as `/proc/zoneinfo` describes it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProcZone {
    /// The node.
    pub node: NodeId,
    /// The zone.
    pub zone: ZoneType,
    /// First spanned frame.
    pub start_pfn: u64,
    /// Pages spanned, holes included.
    pub spanned: u64,
    /// Pages present.
    pub present: u64,
    /// Pages the buddy allocator manages (present minus boot reservations).
    pub managed: u64,
    /// Free pages when the file was captured (`pages free`), if shown.
    pub free: Option<u64>,
    /// Pages on the per-CPU lists then (the `count:` of every CPU's
    /// pageset), if shown.
    pub pcp: Option<u64>,
}

/// The zoneinfo of the machine the sample traces came from (x86-64, DMA,
/// DMA32 and a Normal zone that spans 21 GiB but manages 1 GiB), kept as a
/// fixture: the default machine of `pagesim replay`.
pub const TRACED_MACHINE_ZONEINFO: &str = include_str!("../fixtures/cargo-build.zoneinfo");

/// Where [`TRACED_MACHINE_ZONEINFO`] came from, for reports.
pub const TRACED_MACHINE_ORIGIN: &str =
    "traced machine (embedded zoneinfo of cargo-build.before.procfs)";

/// Parses the zones of a zoneinfo text; `origin` names it in errors.
/// Zones that manage no page (an empty Movable or Device zone) are left out.
pub fn parse_zoneinfo(text: &str, origin: &str) -> Result<Vec<ProcZone>> {
    let err = |line: usize, detail: String| Error::Procfs {
        origin: origin.to_owned(),
        detail: format!("line {line}: {detail}"),
    };
    let mut zones: Vec<(usize, PartialZone)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if let Some((node, zone)) = zone_header(line) {
            zones.push((line_no, PartialZone::new(node, zone)));
            continue;
        }
        let Some((_, current)) = zones.last_mut() else {
            continue;
        };
        let mut words = line.split_whitespace();
        if let (Some("count:"), Some(value), None) = (words.next(), words.next(), words.next()) {
            let n: u64 = value
                .parse()
                .map_err(|_| err(line_no, format!("`count:` has a bad value `{value}`")))?;
            current.pcp = Some(current.pcp.unwrap_or(0).saturating_add(n));
            continue;
        }
        let mut words = line.split_whitespace();
        let (key, value) = match (words.next(), words.next(), words.next(), words.next()) {
            (Some("pages"), Some("free"), Some(value), None) => ("pages free", value),
            (Some(key), Some(value), None, None) => (key, value),
            _ => continue,
        };
        let slot = match key {
            "pages free" => &mut current.free,
            "spanned" => &mut current.spanned,
            "present" => &mut current.present,
            "managed" => &mut current.managed,
            "start_pfn:" => &mut current.start_pfn,
            _ => continue,
        };
        let v = value
            .parse()
            .map_err(|_| err(line_no, format!("`{key}` has a bad value `{value}`")))?;
        *slot = Some(v);
    }
    let mut out = Vec::new();
    for (line_no, z) in zones {
        let managed = z.managed.ok_or_else(|| {
            err(
                line_no,
                format!("zone {} has no `managed` line", z.zone.linux_name()),
            )
        })?;
        if managed == 0 {
            continue;
        }
        let start_pfn = z.start_pfn.ok_or_else(|| {
            err(
                line_no,
                format!("zone {} has no `start_pfn:` line", z.zone.linux_name()),
            )
        })?;
        out.push(ProcZone {
            node: z.node,
            zone: z.zone,
            start_pfn,
            spanned: z.spanned.unwrap_or(managed),
            present: z.present.unwrap_or(managed),
            managed,
            free: z.free,
            pcp: z.pcp,
        });
    }
    if out.is_empty() {
        return Err(Error::Procfs {
            origin: origin.to_owned(),
            detail: "no zoneinfo section with a populated zone (`Node N, zone NAME` followed by `managed` and `start_pfn:`)".to_owned(),
        });
    }
    Ok(out)
}

struct PartialZone {
    node: NodeId,
    zone: ZoneType,
    start_pfn: Option<u64>,
    spanned: Option<u64>,
    present: Option<u64>,
    managed: Option<u64>,
    free: Option<u64>,
    pcp: Option<u64>,
}

impl PartialZone {
    fn new(node: NodeId, zone: ZoneType) -> PartialZone {
        PartialZone {
            node,
            zone,
            start_pfn: None,
            spanned: None,
            present: None,
            managed: None,
            free: None,
            pcp: None,
        }
    }
}

/// The CPUs a zoneinfo text shows per-CPU pagesets for (`cpu: N` lines):
/// the largest `N` plus one, or `None` if it shows none.
pub fn nr_cpus(text: &str) -> Option<u16> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("cpu:"))
        .filter_map(|n| n.trim().parse::<u16>().ok())
        .max()
        .and_then(|n| n.checked_add(1))
}

/// `Node 0, zone   Normal` exactly (Device zones are skipped: no page of
/// theirs is ever managed).
fn zone_header(line: &str) -> Option<(NodeId, ZoneType)> {
    let rest = line.strip_prefix("Node ")?;
    let (node, rest) = rest.split_once(',')?;
    let node: u16 = node.trim().parse().ok()?;
    let mut words = rest.split_whitespace();
    let (Some("zone"), Some(name), None) = (words.next(), words.next(), words.next()) else {
        return None;
    };
    let zone = ZoneType::ALL.into_iter().find(|z| z.linux_name() == name)?;
    Some((NodeId(node), zone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_traced_machine() {
        let zones = parse_zoneinfo(TRACED_MACHINE_ZONEINFO, "fixture").unwrap();
        let got: Vec<_> = zones
            .iter()
            .map(|z| (z.zone, z.start_pfn, z.managed))
            .collect();
        assert_eq!(
            got,
            [
                (ZoneType::Dma, 1, 3840),
                (ZoneType::Dma32, 4096, 772497),
                (ZoneType::Normal, 1048576, 262144)
            ]
        );
        assert_eq!(zones[2].spanned, 5505024);
        assert_eq!(zones[2].free, Some(29267));
        assert_eq!(zones[0].pcp, Some(0));
        assert_eq!(nr_cpus(TRACED_MACHINE_ZONEINFO), Some(2));
        assert_eq!(nr_cpus("Node 0, zone Normal\n"), None);
    }

    #[test]
    fn other_sections_are_not_headers() {
        let text = "## buddyinfo\nNode 0, zone      DMA      0      0\n## zoneinfo\nNode 0, zone   Normal\n  pages free 5\n        managed  100\n  start_pfn:           4096\n";
        let zones = parse_zoneinfo(text, "t").unwrap();
        assert_eq!(zones.len(), 1);
        assert_eq!((zones[0].start_pfn, zones[0].managed), (4096, 100));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_zoneinfo("Node 0, zone Normal\n  managed abc\n", "f").unwrap_err();
        assert_eq!(e.to_string(), "f: line 2: `managed` has a bad value `abc`");
        assert!(parse_zoneinfo("hello\n", "f").is_err());
        assert!(parse_zoneinfo("Node 0, zone Normal\n  managed 5\n", "f").is_err());
    }
}
