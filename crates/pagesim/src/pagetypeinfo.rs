//! Reading a captured `/proc/pagetypeinfo`: the free-count table (free
//! blocks per zone, migratetype and order) and the pageblock counts per
//! migratetype, as mm/vmstat.c `pagetypeinfo_showfree_print` and
//! `pagetypeinfo_showblockcount_print` write them:
//!
//! ```text
//! Page block order: 9
//! Pages per block:  512
//!
//! Free pages count per migrate type at order       0      1      2 ...
//! Node    0, zone      DMA, type    Unmovable      0      0      0 ...
//! ...
//! Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate
//! Node 0, zone      DMA            1            7            0            0            0
//! ```
//!
//! Rows count only under their table's heading and up to the first line
//! that is not such a row, so the file may hold other sections around it
//! (the `.procfs` samples of `../shared/traces` put buddyinfo, whose
//! rows look like block-count rows, before it). Linux prints the three
//! parts once per node; a table `Number of mixed blocks` (with
//! `CONFIG_PAGE_OWNER`) is skipped. A list Linux stopped counting
//! (`>100000`) is taken as 100000 and marked [`ZonePageTypes::capped`].

use pagealloc::{MigrateType, NodeId, ZoneType};

use crate::error::{Error, Result, SnapshotError};

/// Entries Linux counts on one free list before printing `>100000`.
pub const LIST_CAP: u64 = 100_000;

/// One zone's rows.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ZonePageTypes {
    /// The node.
    pub node: NodeId,
    /// The zone.
    pub zone: ZoneType,
    /// Free blocks, `[migratetype index][order]` (every migratetype, zeros
    /// for the types the file does not show).
    pub free: Vec<Vec<u64>>,
    /// Pageblocks per migratetype index.
    pub blocks: [u64; MigrateType::ALL.len()],
    /// The line of the zone's first free-count row (1-based).
    pub free_line: usize,
    /// The line of the zone's block-count row (1-based).
    pub blocks_line: usize,
    /// Some free list held more than [`LIST_CAP`] blocks (counted as
    /// [`LIST_CAP`]).
    pub capped: bool,
}

impl ZonePageTypes {
    /// Free pages in the free-count table.
    pub fn free_pages(&self) -> u64 {
        self.free
            .iter()
            .flat_map(|per_order| per_order.iter().enumerate())
            .map(|(order, &n)| n.saturating_mul(1u64 << order))
            .fold(0, u64::saturating_add)
    }

    /// Pageblocks of every type.
    pub fn nr_blocks(&self) -> u64 {
        self.blocks.iter().fold(0, |a, &b| a.saturating_add(b))
    }
}

/// A parsed `/proc/pagetypeinfo`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageTypes {
    /// `Page block order:`.
    pub pageblock_order: u8,
    /// Its line.
    pub pageblock_order_line: usize,
    /// Orders of the free-count table (`0..nr_orders`).
    pub nr_orders: usize,
    /// The zones, in file order.
    pub zones: Vec<ZonePageTypes>,
}

/// The table a line belongs to.
#[derive(Clone, PartialEq, Eq)]
enum Section {
    /// Outside both tables.
    None,
    /// Free-count rows with this many orders.
    Free { nr_orders: usize },
    /// Block-count rows with these columns.
    Blocks { columns: Vec<MigrateType> },
    /// A table that is skipped (mixed blocks).
    Skipped,
}

const FREE_HEADING: &str = "Free pages count per migrate type at order";
const BLOCKS_HEADING: &str = "Number of blocks type";
const MIXED_HEADING: &str = "Number of mixed blocks";
const ORDER_LINE: &str = "Page block order:";

/// Parses the pagetypeinfo section of `text`, or `None` if it has none
/// (no free-count heading); `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<Option<PageTypes>> {
    let err = |line: usize, kind: SnapshotError| Error::Snapshot {
        origin: origin.to_owned(),
        line,
        kind,
    };
    let mut section = Section::None;
    let mut pageblock_order: Option<(u8, usize)> = None;
    let mut nr_orders: Option<usize> = None;
    let mut zones: Vec<ZoneEntry> = Vec::new();
    let mut heading_line = 0;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix(ORDER_LINE) {
            let order = rest
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&o| usize::from(o) < pagealloc::units::MAX_NR_ORDERS)
                .ok_or_else(|| err(line_no, SnapshotError::bad("pageblock order", rest.trim())))?;
            pageblock_order = Some((order, line_no));
            section = Section::None;
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix(FREE_HEADING) {
            let n = free_heading(rest)
                .ok_or_else(|| err(line_no, SnapshotError::bad("order heading", rest.trim())))?;
            if nr_orders.is_some_and(|m| m != n) {
                return Err(err(line_no, SnapshotError::OrdersChange));
            }
            nr_orders = Some(n);
            if heading_line == 0 {
                heading_line = line_no;
            }
            section = Section::Free { nr_orders: n };
            continue;
        }
        if trimmed.starts_with(MIXED_HEADING) {
            section = Section::Skipped;
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix(BLOCKS_HEADING) {
            let columns = rest
                .split_whitespace()
                .map(|name| {
                    migratetype(name)
                        .ok_or_else(|| err(line_no, SnapshotError::bad("migratetype", name)))
                })
                .collect::<Result<Vec<_>>>()?;
            if columns.is_empty() || has_duplicate(&columns) {
                return Err(err(
                    line_no,
                    SnapshotError::bad("block-count heading", rest.trim()),
                ));
            }
            section = Section::Blocks { columns };
            continue;
        }
        match &section {
            Section::None => {}
            Section::Skipped => {
                if !trimmed.starts_with("Node") {
                    section = Section::None;
                }
            }
            Section::Free { nr_orders } => {
                let Some(row) = row_head(trimmed) else {
                    section = Section::None;
                    continue;
                };
                let (node, zone, rest) = row.map_err(|k| err(line_no, k))?;
                let (type_name, counts) = type_column(rest)
                    .ok_or_else(|| err(line_no, SnapshotError::bad("type column", rest)))?;
                let mt = migratetype(type_name)
                    .ok_or_else(|| err(line_no, SnapshotError::bad("migratetype", type_name)))?;
                let (values, capped) =
                    counts_of(counts, *nr_orders).map_err(|k| err(line_no, k))?;
                let z = zone_entry(&mut zones, node, zone, *nr_orders);
                if std::mem::replace(&mut z.free_seen[mt.idx()], true) {
                    return Err(err(line_no, SnapshotError::DuplicateFree));
                }
                let z = &mut z.zone;
                if z.free_line == 0 {
                    z.free_line = line_no;
                }
                z.free[mt.idx()] = values;
                z.capped |= capped;
            }
            Section::Blocks { columns } => {
                let Some(row) = row_head(trimmed) else {
                    section = Section::None;
                    continue;
                };
                let (node, zone, rest) = row.map_err(|k| err(line_no, k))?;
                let (values, capped) =
                    counts_of(rest, columns.len()).map_err(|k| err(line_no, k))?;
                if capped {
                    return Err(err(line_no, SnapshotError::bad("pageblock count", rest)));
                }
                let n = nr_orders.unwrap_or(0);
                let z = &mut zone_entry(&mut zones, node, zone, n).zone;
                if z.blocks_line != 0 {
                    return Err(err(line_no, SnapshotError::DuplicateBlocks));
                }
                z.blocks_line = line_no;
                for (mt, v) in columns.iter().zip(values) {
                    z.blocks[mt.idx()] = v;
                }
            }
        }
    }
    let Some(nr_orders) = nr_orders else {
        return Ok(None);
    };
    let Some((pageblock_order, pageblock_order_line)) = pageblock_order else {
        return Err(err(
            heading_line,
            SnapshotError::Missing("`Page block order:` line"),
        ));
    };
    let zones: Vec<ZonePageTypes> = zones.into_iter().map(|z| z.zone).collect();
    for z in &zones {
        if z.free_line == 0 {
            return Err(err(
                z.blocks_line,
                SnapshotError::Missing("free-count rows for this zone"),
            ));
        }
        if z.blocks_line == 0 {
            return Err(err(
                z.free_line,
                SnapshotError::Missing("a block-count row for this zone"),
            ));
        }
    }
    Ok(Some(PageTypes {
        pageblock_order,
        pageblock_order_line,
        nr_orders,
        zones,
    }))
}

/// A zone being read: its rows, and which types' free rows were seen.
struct ZoneEntry {
    zone: ZonePageTypes,
    free_seen: [bool; MigrateType::ALL.len()],
}

fn zone_entry(
    zones: &mut Vec<ZoneEntry>,
    node: NodeId,
    zone: ZoneType,
    nr_orders: usize,
) -> &mut ZoneEntry {
    let i = match zones
        .iter()
        .position(|z| z.zone.node == node && z.zone.zone == zone)
    {
        Some(i) => i,
        None => {
            zones.push(ZoneEntry {
                zone: ZonePageTypes {
                    node,
                    zone,
                    free: vec![vec![0; nr_orders]; MigrateType::ALL.len()],
                    blocks: [0; MigrateType::ALL.len()],
                    free_line: 0,
                    blocks_line: 0,
                    capped: false,
                },
                free_seen: [false; MigrateType::ALL.len()],
            });
            zones.len() - 1
        }
    };
    &mut zones[i]
}

/// The order columns of the free-count heading: `0 1 2 ... n-1`.
fn free_heading(rest: &str) -> Option<usize> {
    let mut n = 0usize;
    for word in rest.split_whitespace() {
        if word.parse::<usize>().ok()? != n {
            return None;
        }
        n += 1;
    }
    (1..=pagealloc::units::MAX_NR_ORDERS)
        .contains(&n)
        .then_some(n)
}

/// `Node N, zone NAME` and what follows it on a row, or `None` if the line
/// is not a row at all (the table has ended).
fn row_head(line: &str) -> Option<std::result::Result<(NodeId, ZoneType, &str), SnapshotError>> {
    let rest = line.strip_prefix("Node")?;
    let (node, rest) = rest.split_once(',')?;
    Some((|| {
        let node = node
            .trim()
            .parse::<u16>()
            .map_err(|_| SnapshotError::bad("node", node.trim()))?;
        let rest = rest
            .trim_start()
            .strip_prefix("zone")
            .ok_or_else(|| SnapshotError::bad("zone column", rest.trim()))?
            .trim_start();
        let end = rest
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = &rest[..end];
        let zone = ZoneType::ALL
            .into_iter()
            .find(|z| z.linux_name() == name)
            .ok_or_else(|| SnapshotError::bad("zone", name))?;
        Ok((NodeId(node), zone, rest[end..].trim_start()))
    })())
}

/// `, type NAME counts...` after the zone of a free-count row.
fn type_column(rest: &str) -> Option<(&str, &str)> {
    let rest = rest.strip_prefix(',')?.trim_start().strip_prefix("type")?;
    let rest = rest.trim_start();
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some((&rest[..end], &rest[end..]))
}

/// Exactly `n` counts (`>100000` read as [`LIST_CAP`], reported).
fn counts_of(text: &str, n: usize) -> std::result::Result<(Vec<u64>, bool), SnapshotError> {
    let mut capped = false;
    let values = text
        .split_whitespace()
        .map(|w| {
            if w.strip_prefix('>').and_then(|v| v.parse::<u64>().ok()) == Some(LIST_CAP) {
                capped = true;
                return Ok(LIST_CAP);
            }
            w.parse::<u64>().map_err(|_| SnapshotError::bad("count", w))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if values.len() != n {
        return Err(SnapshotError::Columns {
            expected: n,
            found: values.len(),
        });
    }
    Ok((values, capped))
}

fn migratetype(name: &str) -> Option<MigrateType> {
    MigrateType::ALL
        .into_iter()
        .find(|m| m.linux_name() == name)
}

fn has_duplicate(columns: &[MigrateType]) -> bool {
    columns
        .iter()
        .enumerate()
        .any(|(i, m)| columns[..i].contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "## buddyinfo
Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3
## pagetypeinfo
Page block order: 9
Pages per block:  512

Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10
Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0      0      1      0      0
Node    0, zone      DMA, type      Movable      0      0      0      0      0      0      0      0      0      1      3
Node    0, zone      DMA, type  Reclaimable      0      0      0      0      0      0      0      0      0      0      0
Node    0, zone      DMA, type   HighAtomic      0      0      0      0      0      0      0      0      0      0      0
Node    0, zone      DMA, type      Isolate      0      0      0      0      0      0      0      0      0      0      0
Node    0, zone   Normal, type    Unmovable      2 >100000      0      0      0      0      0      0      0      0      0

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate
Node 0, zone      DMA            1            7            0            0            0
Node 0, zone   Normal          125          375           12            0            0
## zoneinfo
Node 0, zone      DMA
  pages free     3840
";

    #[test]
    fn reads_both_tables() {
        let p = parse(SAMPLE, "s").unwrap().unwrap();
        assert_eq!((p.pageblock_order, p.nr_orders), (9, 11));
        assert_eq!(p.zones.len(), 2);
        let dma = &p.zones[0];
        assert_eq!((dma.node, dma.zone), (NodeId(0), ZoneType::Dma));
        assert_eq!(dma.free[MigrateType::Unmovable.idx()][8], 1);
        assert_eq!(dma.free[MigrateType::Movable.idx()][10], 3);
        assert_eq!(dma.free_pages(), 256 + 512 + 3 * 1024);
        assert_eq!(dma.blocks[..3], [1, 7, 0]);
        assert_eq!((dma.free_line, dma.blocks_line), (8, 16));
        assert!(!dma.capped);
        let normal = &p.zones[1];
        assert_eq!(normal.free[0][1], LIST_CAP);
        assert!(normal.capped);
        assert_eq!(normal.nr_blocks(), 512);
    }

    #[test]
    fn no_section_is_none() {
        assert_eq!(parse("Node 0, zone DMA 1 2 3\n", "s").unwrap(), None);
    }

    #[test]
    fn errors_name_the_line() {
        let bad = SAMPLE.replace("type      Movable      0", "type      Movable      x");
        let e = parse(&bad, "s").unwrap_err();
        assert_eq!(e.to_string(), "s:9: bad count `x`");
        let short = SAMPLE.replace(
            "      1      3\nNode    0, zone      DMA, type  Recl",
            "      1\nNode    0, zone      DMA, type  Recl",
        );
        let e = parse(&short, "s").unwrap_err();
        assert_eq!(e.to_string(), "s:9: 10 columns where the heading has 11");
        let zone = SAMPLE.replace("zone   Normal          125", "zone   Nromal          125");
        assert_eq!(
            parse(&zone, "s").unwrap_err().to_string(),
            "s:17: bad zone `Nromal`"
        );
        let dup = SAMPLE.replace("type  Reclaimable", "type      Movable");
        assert_eq!(
            parse(&dup, "s").unwrap_err().to_string(),
            "s:10: a second row for the same zone and type"
        );
        let no_order = SAMPLE.replace("Page block order: 9\n", "");
        assert_eq!(
            parse(&no_order, "s").unwrap_err().to_string(),
            "s:6: missing `Page block order:` line"
        );
        let no_blocks = SAMPLE.replace("Node 0, zone   Normal          125          375           12            0            0\n", "");
        assert_eq!(
            parse(&no_blocks, "s").unwrap_err().to_string(),
            "s:13: missing a block-count row for this zone"
        );
    }
}
