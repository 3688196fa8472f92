//! The common line, read in one pass: an event line exactly as ftrace
//! writes it, with a `kmem` event whose fields are in Linux's order and
//! valid. Anything else (comments, lost-event notes, unusual layouts, other
//! tracepoints, any bad value) is left to the general parser, which gives
//! the same result for every line this one accepts: this one takes the
//! first colon the general parser would try, and accepts it only where the
//! general parser would.
//!
//! It exists for speed: a replay parses millions of lines, and this path
//! does a third of the general one's work.

use memchr::memchr;

use super::{
    alloc_fields, drain_fields, free_fields, last_byte, parse_dec, parse_hex, task_and_cpu, Event,
    Fields, Line, MAX_TRACE_ORDERS,
};

const SPACES: u64 = 0x2020_2020_2020_2020;

/// The number of leading spaces in `s`, eight bytes at a time.
#[inline(always)]
fn leading_spaces(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let other = u64::from_le_bytes(word) ^ SPACES;
        if other != 0 {
            return i + (other.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + s[i..].iter().take_while(|&&b| b == b' ').count()
}

/// Where the timestamp token ending at `colon` starts: digits with at most
/// one dot, at least one digit, a space before it. (The general parser
/// walks back from the colon and fails at the first byte that is neither;
/// the same as finding the space first and checking what lies between.)
#[inline(always)]
fn timestamp_start(line: &[u8], colon: usize) -> Option<usize> {
    let start = last_byte(&line[..colon], b' ')? + 1;
    let token = &line[start..colon];
    let mut dots = 0;
    let mut bad = false;
    for &b in token {
        dots += usize::from(b == b'.');
        bad |= !(b.is_ascii_digit() || b == b'.');
    }
    (!bad && token.len() > dots && dots <= 1).then_some(start)
}

/// The line as the general parser would read it, if it is the common kind.
#[inline(always)]
pub(super) fn parse(line: &[u8]) -> Option<Line<'_>> {
    let lead = leading_spaces(line);
    let first = *line.get(lead)?;
    if first == b'#' || first.is_ascii_whitespace() || line[lead..].starts_with(b"CPU:") {
        return None;
    }
    let colon = memchr(b':', line)?;
    if line.get(colon + 1) != Some(&b' ') {
        return None;
    }
    let ts_start = timestamp_start(line, colon)?;
    let rest = &line[colon + 2..];
    // The name is everything up to the next colon; these literals are
    // names the general parser accepts, and match only whole names.
    let (event, fields) = if let Some(f) = rest.strip_prefix(b"mm_page_alloc:") {
        (Kind::Alloc, f)
    } else if let Some(f) = rest.strip_prefix(b"mm_page_free:") {
        (Kind::Free, f)
    } else if let Some(f) = rest.strip_prefix(b"mm_page_free_batched:") {
        (Kind::FreeBatched, f)
    } else if let Some(f) = rest.strip_prefix(b"mm_page_pcpu_drain:") {
        (Kind::Drain, f)
    } else {
        return None;
    };
    let fields = fields.trim_ascii();
    let event = match event {
        Kind::Alloc => alloc(alloc_fields(fields)?)?,
        Kind::Free => {
            let f = free_fields(fields)?;
            Event::Free {
                pfn: pfn(&f)?,
                order: order(&f)?,
            }
        }
        Kind::FreeBatched => Event::FreeBatched {
            pfn: pfn(&free_fields(fields)?)?,
        },
        Kind::Drain => {
            pfn(&drain_fields(fields)?)?;
            Event::PcpuDrain
        }
    };
    let (task, cpu) = task_and_cpu(&line[lead.min(ts_start)..ts_start]);
    Some(Line::Event {
        task,
        cpu,
        timestamp: &line[ts_start..colon],
        event,
    })
}

enum Kind {
    Alloc,
    Free,
    FreeBatched,
    Drain,
}

#[inline(always)]
fn pfn(f: &Fields<'_>) -> Option<u64> {
    f.pfn?.strip_prefix(b"0x").and_then(parse_hex)
}

#[inline(always)]
fn order(f: &Fields<'_>) -> Option<u8> {
    parse_dec(f.order?)
        .filter(|&n| n < MAX_TRACE_ORDERS)
        .map(|n| n as u8)
}

#[inline(always)]
fn alloc(f: Fields<'_>) -> Option<Event<'_>> {
    let order = order(&f)?;
    let migratetype = match parse_dec(f.migratetype?) {
        Some(n @ 0..=2) => n as u8,
        _ => return None,
    };
    let gfp = f.gfp?;
    let null_page = f
        .page
        .is_some_and(|p| p == b"(null)" || p.iter().all(|&b| b == b'0'));
    let pfn = if null_page { None } else { Some(pfn(&f)?) };
    Some(Event::Alloc {
        pfn,
        order,
        migratetype,
        gfp,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_line_general as parse_general;
    use super::*;

    #[test]
    fn agrees_with_the_general_parser() {
        // (line, whether the one-pass reader takes it)
        let lines: &[(&[u8], bool)] = &[
            (b"            bash-3517    [000] .....   152.085071: mm_page_alloc: page=00000000910055ff pfn=0x12ec68 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP", true),
            (b"       opt cgu.0-3561    [000] ...2.   152.490698: mm_page_free: page=000000006ff1d7a7 pfn=0x146805 order=3", true),
            (b"   opt cgu.0-3561    [000] d..3.   152.490701: mm_page_pcpu_drain: page=00000000f60b4f73 pfn=0x146a41 order=0 migratetype=1", true),
            (b"  kworker/u8-32      [001] d..3.   182.368442: mm_page_free_batched: page=00000000655604e5 pfn=0x15c000 order=0", true),
            (b" a-1 [000] ..... 1.5: mm_page_alloc: page=(null) pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE", true),
            (b" a-1 [000] ..... 1.5: mm_page_alloc: page=0000000000000000 pfn=0x0 order=9 migratetype=1 gfp_flags=", true),
            (b"a-1 1.5: mm_page_free: page=1 pfn=0x1 order=0", true),
            (b"  a-1 [012] 1.5: mm_page_free: page=1 pfn=0x1 order=0  ", true),
            (b"  a [b] [7] 1.5: mm_page_free: page=1 pfn=0x1 order=0", true),
            // A colon in the task name comes first: the general parser.
            (b"  kworker/u8:1 x:2-32      [001] d..3.   182.368442: mm_page_free_batched: page=00000000655604e5 pfn=0x15c000 order=0", false),
            (b"\t a-1 [000] 1.5: mm_page_free: page=1 pfn=0x1 order=0", false),
        ];
        for &(line, taken) in lines {
            let shown = String::from_utf8_lossy(line);
            let general = parse_general(line);
            assert!(general.is_ok(), "{shown}");
            match parse(line) {
                Some(fast) => {
                    assert!(taken, "{shown}");
                    assert_eq!(Ok(fast), general, "{shown}");
                }
                None => assert!(!taken, "{shown}"),
            }
        }
    }

    #[test]
    fn leaves_the_rest_to_the_general_parser() {
        let lines: &[&[u8]] = &[
            b"# tracer: nop",
            b"CPU:1 [LOST 1234 EVENTS]",
            b"  a 1: b-2 [000] ..... 1.5: mm_page_free: page=1 pfn=0x1 order=0",
            b" a-1 [000] ..... 1.5: mm_page_free: page=0 order=0",
            b" a-1 [000] ..... 1.5: mm_page_free: pfn=0x1 order=0",
            b" a-1 [000] ..... 1.5: mm_page_free: page=1 pfn=0x1 order=0 order=1",
            b" a-1 [000] ..... 1.5: mm_page_free: page=1  pfn=0x1 order=0",
            b" a-1 [000] ..... 1.5: mm_page_free: page=1 pfn=0xZZ order=0",
            b" a-1 [000] ..... 1.5: mm_page_alloc: page=1 pfn=0x1 order=0 migratetype=7 gfp_flags=GFP_KERNEL",
            b" a-1 [000] ..... 1.5: mm_page_free: page=1 pfn=0x1 order=99",
            b" a-1 [000] ..... 1.5.1: mm_page_free: page=1 pfn=0x1 order=0",
            b" a-1 [000] ..... 1.5: kmalloc: call_site=foo",
            b" a-1 [000] ..... 1.5: mm_page_alloc_extfrag: page=1 pfn=0x1 alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1",
        ];
        for line in lines {
            assert_eq!(parse(line), None, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn leading_spaces_word_by_word() {
        for n in 0..40 {
            let mut s = vec![b' '; n];
            s.push(b'x');
            s.extend_from_slice(b"   ");
            assert_eq!(leading_spaces(&s), n);
            assert_eq!(leading_spaces(&s[..n]), n);
        }
    }
}
