//! Parsing one line of ftrace text (`trace_pipe` or `trace`), without regex.
//!
//! A line looks like
//!
//! ```text
//!    opt cgu.0-3561    [000] d..3.   152.490701: mm_page_pcpu_drain: page=00000000f60b4f73 pfn=0x146a41 order=0 migratetype=1
//! ```
//!
//! The task name may hold spaces and colons, so the event is found after the
//! first `": "` that ends a timestamp (digits with an optional dot) and is
//! followed by an event name (letters, digits, `_`) up to the next `':'`.
//! Fields are `key=value` tokens separated by spaces, scanned once, byte by
//! byte. The `trace` file adds `#` comment lines (its header); both files
//! may report `CPU:N [LOST M EVENTS]`.

use memchr::memchr;

mod fast;

/// A page-allocator event from the `kmem` trace system.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event<'a> {
    /// `mm_page_alloc`: a block was handed out (`pfn: None` when Linux's
    /// allocation failed and the event carries a NULL page).
    Alloc {
        /// Linux's frame, `None` for a failed allocation.
        pfn: Option<u64>,
        /// Order.
        order: u8,
        /// Linux's migratetype number (0 Unmovable, 1 Movable, 2 Reclaimable).
        migratetype: u8,
        /// The `gfp_flags=` text.
        gfp: &'a [u8],
    },
    /// `mm_page_free`: a block was freed (authoritative for frees).
    Free {
        /// Linux's frame.
        pfn: u64,
        /// Order.
        order: u8,
    },
    /// `mm_page_free_batched`: the same free again, from the batched path.
    FreeBatched {
        /// Linux's frame.
        pfn: u64,
    },
    /// `mm_page_pcpu_drain`: a per-CPU list gave a page back to the buddy
    /// lists; not a free by a user.
    PcpuDrain,
    /// `mm_page_alloc_extfrag`: Linux fell back to another migratetype.
    Extfrag {
        /// The fallback split a block smaller than a pageblock.
        fragmenting: bool,
        /// The pageblock changed owner.
        change_ownership: bool,
    },
    /// Any other event (another tracepoint enabled in the same session).
    Other,
}

/// What a line holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Line<'a> {
    /// Empty, or a `#` comment (the `trace` file's header).
    Comment,
    /// `CPU:N [LOST M EVENTS]`: the ring buffer overflowed.
    Lost {
        /// Events lost.
        nr: u64,
    },
    /// An event.
    Event {
        /// The task column (`bash-3517`, `opt cgu.0-3561`), without the
        /// padding around it.
        task: &'a [u8],
        /// The CPU column (`[001]`), if the line has one.
        cpu: Option<u16>,
        /// The timestamp text (seconds, as printed).
        timestamp: &'a [u8],
        /// The event.
        event: Event<'a>,
    },
}

/// Why a line is not what ftrace writes.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum LineError {
    /// No `timestamp: event:` structure.
    #[error("not an ftrace event line: `{snippet}`")]
    NotAnEvent {
        /// The start of the line.
        snippet: String,
    },
    /// A field the event must have is missing.
    #[error("{event}: missing field `{field}`")]
    MissingField {
        /// The event.
        event: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field's value is not a number of the expected form.
    #[error("{event}: bad value `{value}` for `{field}`")]
    BadValue {
        /// The event.
        event: &'static str,
        /// The field.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// The line is longer than any ftrace line.
    #[error("line longer than {max} bytes (binary data?)")]
    TooLong {
        /// The limit.
        max: usize,
    },
}

/// Orders a trace may hold: the engine's limit (`Order::LIMIT` + 1); Linux
/// configurations stop well below it.
const MAX_TRACE_ORDERS: u64 = pagealloc::Order::LIMIT.get() as u64 + 1;

/// How much of a bad line an error message quotes.
const SNIPPET_LEN: usize = 80;

/// The start of `bytes` (at most 80 bytes) as printable text, for messages.
pub fn snippet(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(SNIPPET_LEN)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Parses one line (without its newline).
#[inline]
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, LineError> {
    match fast::parse(line) {
        Some(parsed) => Ok(parsed),
        None => parse_line_general(line),
    }
}

/// The common line read in one pass, `None` for any other (which
/// [`parse_line_general`] reads): [`parse_line`] in two steps, for a caller
/// that takes the common line apart without an intermediate `Result`.
#[inline(always)]
pub(crate) fn parse_common_line(line: &[u8]) -> Option<Line<'_>> {
    fast::parse(line)
}

/// [`parse_line`] without its one-pass reader of the common line: the
/// parser for every kind of line, with the error for a bad one. The two
/// agree on every line (the fuzz tests check it); this one is slower.
pub fn parse_line_general(line: &[u8]) -> Result<Line<'_>, LineError> {
    let trimmed = line.trim_ascii_start();
    if trimmed.is_empty() || trimmed[0] == b'#' {
        return Ok(Line::Comment);
    }
    if let Some(nr) = lost_events(trimmed) {
        return Ok(Line::Lost { nr });
    }
    let Some(Parts {
        ts_start,
        timestamp,
        name,
        fields,
    }) = split_event(line)
    else {
        return Err(LineError::NotAnEvent {
            snippet: snippet(trimmed),
        });
    };
    // The leading blanks are gone already (`trimmed`).
    let lead = line.len() - trimmed.len();
    let (task, cpu) = task_and_cpu(&line[lead.min(ts_start)..ts_start]);
    let event = match name {
        b"mm_page_alloc" => parse_alloc(fields)?,
        b"mm_page_free" => {
            let f = Fields::read(fields, free_fields);
            Event::Free {
                pfn: f.pfn(FREE)?,
                order: f.order(FREE, f.order)?,
            }
        }
        b"mm_page_free_batched" => Event::FreeBatched {
            pfn: Fields::read(fields, free_fields).pfn(FREE_BATCHED)?,
        },
        b"mm_page_pcpu_drain" => {
            Fields::read(fields, drain_fields).pfn(PCPU_DRAIN)?;
            Event::PcpuDrain
        }
        b"mm_page_alloc_extfrag" => {
            let f = Fields::read(fields, extfrag_fields);
            Event::Extfrag {
                fragmenting: f.flag(EXTFRAG, "fragmenting", f.fragmenting)?,
                change_ownership: f.flag(EXTFRAG, "change_ownership", f.change_ownership)?,
            }
        }
        _ => Event::Other,
    };
    Ok(Line::Event {
        task,
        cpu,
        timestamp,
        event,
    })
}

/// The task and CPU columns of what precedes the timestamp:
/// `   task-pid   [001] d..3.` (the flags column may be absent, and the
/// `trace` file may add a `(tgid)` column, kept as part of the task).
///
/// Callers pass the prefix from its first non-blank byte on, so only its
/// end needs trimming.
#[inline(always)]
fn task_and_cpu(prefix: &[u8]) -> (&[u8], Option<u16>) {
    // The column is a dozen bytes from the end: a word-at-a-time search
    // beats memchr's set-up on such short runs.
    let Some(open) = last_open_bracket(prefix) else {
        return (prefix.trim_ascii_end(), None);
    };
    let digits = &prefix[open + 1..];
    let close = digits.iter().position(|&b| b == b']');
    let cpu = close
        .and_then(|c| parse_dec(&digits[..c]))
        .and_then(|n| u16::try_from(n).ok());
    match cpu {
        Some(cpu) => (trim_end(&prefix[..open]), Some(cpu)),
        None => (prefix.trim_ascii_end(), None),
    }
}

/// `s.trim_ascii_end()`, the padding spaces before the CPU column skipped
/// eight bytes at a time first.
#[inline(always)]
fn trim_end(s: &[u8]) -> &[u8] {
    const SPACES: u64 = 0x2020_2020_2020_2020;
    let mut end = s.len();
    while end >= 8 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&s[end - 8..end]);
        // The last byte is the most significant: its leading zero bytes
        // are the trailing spaces.
        let other = u64::from_le_bytes(word) ^ SPACES;
        if other != 0 {
            end -= (other.leading_zeros() / 8) as usize;
            break;
        }
        end -= 8;
    }
    s[..end].trim_ascii_end()
}

/// The last `[` in `s`, eight bytes at a time from the end.
#[inline(always)]
fn last_open_bracket(s: &[u8]) -> Option<usize> {
    last_byte(s, b'[')
}

/// The last `byte` in `s`, eight bytes at a time from the end.
#[inline(always)]
fn last_byte(s: &[u8], byte: u8) -> Option<usize> {
    const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_le_bytes([byte; 8]);
    let mut end = s.len();
    while end >= 8 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&s[end - 8..end]);
        let x = u64::from_le_bytes(word) ^ pattern;
        // Exactly the bytes of `x` that are zero (a match) get their high
        // bit.
        let zero = !(((x & LOWS) + LOWS) | x | LOWS);
        if zero != 0 {
            return Some(end - 8 + (7 - zero.leading_zeros() as usize / 8));
        }
        end -= 8;
    }
    s[..end].iter().rposition(|&b| b == byte)
}

const ALLOC: &str = "mm_page_alloc";
const FREE: &str = "mm_page_free";
const FREE_BATCHED: &str = "mm_page_free_batched";
const PCPU_DRAIN: &str = "mm_page_pcpu_drain";
const EXTFRAG: &str = "mm_page_alloc_extfrag";

/// The fields of each event exactly as Linux's `TP_printk` formats write
/// them (include/trace/events/kmem.h), or `None`.
fn alloc_fields(fields: &[u8]) -> Option<Fields<'_>> {
    let mut r = fields;
    let f = Fields {
        page: Some(take_value(&mut r, b"page=")?),
        pfn: Some(take_value(&mut r, b" pfn=")?),
        order: Some(take_value(&mut r, b" order=")?),
        migratetype: Some(take_value(&mut r, b" migratetype=")?),
        gfp: Some(take_value(&mut r, b" gfp_flags=")?),
        ..Fields::default()
    };
    r.is_empty().then_some(f)
}

fn free_fields(fields: &[u8]) -> Option<Fields<'_>> {
    let mut r = fields;
    let f = Fields {
        page: Some(take_value(&mut r, b"page=")?),
        pfn: Some(take_value(&mut r, b" pfn=")?),
        order: Some(take_value(&mut r, b" order=")?),
        ..Fields::default()
    };
    r.is_empty().then_some(f)
}

fn drain_fields(fields: &[u8]) -> Option<Fields<'_>> {
    let mut r = fields;
    let f = Fields {
        page: Some(take_value(&mut r, b"page=")?),
        pfn: Some(take_value(&mut r, b" pfn=")?),
        order: Some(take_value(&mut r, b" order=")?),
        migratetype: Some(take_value(&mut r, b" migratetype=")?),
        ..Fields::default()
    };
    r.is_empty().then_some(f)
}

fn extfrag_fields(fields: &[u8]) -> Option<Fields<'_>> {
    let mut r = fields;
    let page = Some(take_value(&mut r, b"page=")?);
    let pfn = Some(take_value(&mut r, b" pfn=")?);
    take_value(&mut r, b" alloc_order=")?;
    take_value(&mut r, b" fallback_order=")?;
    take_value(&mut r, b" pageblock_order=")?;
    take_value(&mut r, b" alloc_migratetype=")?;
    take_value(&mut r, b" fallback_migratetype=")?;
    let f = Fields {
        page,
        pfn,
        fragmenting: Some(take_value(&mut r, b" fragmenting=")?),
        change_ownership: Some(take_value(&mut r, b" change_ownership=")?),
        ..Fields::default()
    };
    r.is_empty().then_some(f)
}

/// The value after `key` at the start of `rest` (up to the next space),
/// moving `rest` past it.
#[inline(always)]
fn take_value<'a, const N: usize>(rest: &mut &'a [u8], key: &[u8; N]) -> Option<&'a [u8]> {
    let r: &'a [u8] = rest;
    if r.first_chunk::<N>() != Some(key) {
        return None;
    }
    let r = &r[N..];
    let end = find_space(r);
    *rest = &r[end..];
    Some(&r[..end])
}

/// The first space in `s`, or its length: eight bytes at a time.
#[inline]
fn find_space(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const SPACES: u64 = 0x2020_2020_2020_2020;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ SPACES;
        // The lowest byte of `x` that is zero (a space) sets its high bit
        // here; bytes above it may too, never bytes below.
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return i + (zero.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(s.len(), |p| i + p)
}

fn parse_alloc(fields: &[u8]) -> Result<Event<'_>, LineError> {
    let f = Fields::read(fields, alloc_fields);
    let order = f.order(ALLOC, f.order)?;
    let mt_text = f.migratetype.ok_or(LineError::MissingField {
        event: ALLOC,
        field: "migratetype",
    })?;
    let migratetype = match parse_dec(mt_text) {
        Some(n @ 0..=2) => n as u8,
        _ => return Err(bad(ALLOC, "migratetype", mt_text)),
    };
    let gfp = f.gfp.ok_or(LineError::MissingField {
        event: ALLOC,
        field: "gfp_flags",
    })?;
    // Linux traces a failed allocation with a NULL page and pfn 0.
    let null_page = f
        .page
        .is_some_and(|p| p == b"(null)" || p.iter().all(|&b| b == b'0'));
    let pfn = if null_page { None } else { Some(f.pfn(ALLOC)?) };
    Ok(Event::Alloc {
        pfn,
        order,
        migratetype,
        gfp,
    })
}

fn bad(event: &'static str, field: &'static str, value: &[u8]) -> LineError {
    LineError::BadValue {
        event,
        field,
        value: snippet(value),
    }
}

/// The values of the fields the page events use, found in one pass.
#[derive(Default)]
struct Fields<'a> {
    page: Option<&'a [u8]>,
    pfn: Option<&'a [u8]>,
    order: Option<&'a [u8]>,
    migratetype: Option<&'a [u8]>,
    gfp: Option<&'a [u8]>,
    fragmenting: Option<&'a [u8]>,
    change_ownership: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// The fields of `fields`: at once if they are exactly what Linux
    /// writes (`exact`), else by [`Fields::scan`]. Both give the same
    /// values.
    #[inline(always)]
    fn read(fields: &'a [u8], exact: fn(&'a [u8]) -> Option<Fields<'a>>) -> Fields<'a> {
        exact(fields).unwrap_or_else(|| Fields::scan(fields))
    }

    /// Every `key=value` token, in any order; the last of a key counts.
    fn scan(fields: &'a [u8]) -> Fields<'a> {
        let mut f = Fields::default();
        for token in fields.split(|&b| b == b' ') {
            let Some(eq) = memchr(b'=', token) else {
                continue;
            };
            let (key, value) = (&token[..eq], &token[eq + 1..]);
            let slot = match key {
                b"page" => &mut f.page,
                b"pfn" => &mut f.pfn,
                b"order" => &mut f.order,
                b"migratetype" => &mut f.migratetype,
                b"gfp_flags" => &mut f.gfp,
                b"fragmenting" => &mut f.fragmenting,
                b"change_ownership" => &mut f.change_ownership,
                _ => continue,
            };
            *slot = Some(value);
        }
        f
    }

    fn pfn(&self, event: &'static str) -> Result<u64, LineError> {
        let text = self.pfn.ok_or(LineError::MissingField {
            event,
            field: "pfn",
        })?;
        text.strip_prefix(b"0x")
            .and_then(parse_hex)
            .ok_or_else(|| bad(event, "pfn", text))
    }

    fn order(&self, event: &'static str, value: Option<&[u8]>) -> Result<u8, LineError> {
        let text = value.ok_or(LineError::MissingField {
            event,
            field: "order",
        })?;
        match parse_dec(text) {
            Some(n) if n < MAX_TRACE_ORDERS => Ok(n as u8),
            _ => Err(bad(event, "order", text)),
        }
    }

    fn flag(
        &self,
        event: &'static str,
        field: &'static str,
        value: Option<&[u8]>,
    ) -> Result<bool, LineError> {
        match value {
            Some(b"0") => Ok(false),
            Some(b"1") => Ok(true),
            Some(other) => Err(bad(event, field, other)),
            None => Err(LineError::MissingField { event, field }),
        }
    }
}

/// The parts of an event line.
struct Parts<'a> {
    /// Where the timestamp starts (the task and CPU columns are before).
    ts_start: usize,
    timestamp: &'a [u8],
    name: &'a [u8],
    fields: &'a [u8],
}

/// Finds `timestamp: name: fields`.
fn split_event(line: &[u8]) -> Option<Parts<'_>> {
    let mut from = 0;
    while let Some(off) = memchr(b':', &line[from..]) {
        let colon = from + off;
        if line.get(colon + 1) == Some(&b' ') {
            if let Some(ts_start) = timestamp_start(line, colon) {
                let rest = &line[colon + 2..];
                let end = memchr(b':', rest)?;
                let name = &rest[..end];
                // Not an event name: the `digits: ` was inside the task
                // name (`a 1: b-2`, any bytes are a valid comm); go on.
                if !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    let fields = rest[end + 1..].trim_ascii();
                    return Some(Parts {
                        ts_start,
                        timestamp: &line[ts_start..colon],
                        name,
                        fields,
                    });
                }
            }
        }
        from = colon + 1;
    }
    None
}

/// If the bytes before `colon` end with a timestamp token (digits, at most
/// one dot, preceded by a space), where it starts.
fn timestamp_start(line: &[u8], colon: usize) -> Option<usize> {
    let mut i = colon;
    let mut digits = 0;
    let mut dots = 0;
    while i > 0 {
        match line[i - 1] {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            b' ' => break,
            _ => return None,
        }
        i -= 1;
    }
    (i > 0 && digits > 0 && dots <= 1).then_some(i)
}

/// `CPU:N [LOST M EVENTS]`.
fn lost_events(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"CPU:")?;
    let start = memchr::memmem::find(rest, b"[LOST ")? + b"[LOST ".len();
    let tail = &rest[start..];
    let end = memchr(b' ', tail)?;
    tail[end..]
        .starts_with(b" EVENTS]")
        .then(|| parse_dec(&tail[..end]))
        .flatten()
}

/// A decimal number, or `None` if empty, not digits, or too large.
#[inline]
pub fn parse_dec(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in text {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// A hexadecimal number (no prefix), or `None`.
#[inline]
fn parse_hex(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in text {
        let d = HEX_DIGITS[usize::from(b)];
        if d == NOT_HEX {
            return None;
        }
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// Marks a byte that is not a hexadecimal digit in [`HEX_DIGITS`].
const NOT_HEX: u8 = 0xff;

/// The value of each byte as a hexadecimal digit.
static HEX_DIGITS: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The timestamp in seconds, if it parses.
pub fn timestamp_secs(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The timestamp in microseconds (`152.085071` → 152085071), digits past
/// the sixth decimal dropped; `None` if it is not `digits[.digits]` or
/// overflows.
pub fn timestamp_micros(text: &[u8]) -> Option<u64> {
    let (secs, frac) = match memchr(b'.', text) {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    let mut micros = 0u64;
    for i in 0..6 {
        let d = match frac.get(i) {
            Some(b) if b.is_ascii_digit() => u64::from(b - b'0'),
            Some(_) => return None,
            None => 0,
        };
        micros = micros * 10 + d;
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    parse_dec(secs)?.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOC_LINE: &[u8] = b"            bash-3517    [000] .....   152.085071: mm_page_alloc: page=00000000910055ff pfn=0x12ec68 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP";

    #[test]
    fn parses_each_page_event() {
        let Line::Event {
            task,
            cpu,
            timestamp,
            event,
        } = parse_line(ALLOC_LINE).unwrap()
        else {
            panic!("not an event");
        };
        assert_eq!(task, b"bash-3517");
        assert_eq!(cpu, Some(0));
        assert_eq!(timestamp, b"152.085071");
        assert_eq!(timestamp_micros(timestamp), Some(152_085_071));
        assert_eq!(
            event,
            Event::Alloc {
                pfn: Some(0x12ec68),
                order: 0,
                migratetype: 1,
                gfp: b"GFP_HIGHUSER_MOVABLE|__GFP_COMP"
            }
        );
        let free = b"       opt cgu.0-3561    [000] ...2.   152.490698: mm_page_free: page=000000006ff1d7a7 pfn=0x146805 order=3";
        assert!(matches!(
            parse_line(free),
            Ok(Line::Event {
                event: Event::Free {
                    pfn: 0x146805,
                    order: 3
                },
                ..
            })
        ));
        let extfrag = b"   rustc-3609 [001] d..4.   153.138998: mm_page_alloc_extfrag: page=00000000fc72c475 pfn=0x14e800 alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1";
        assert!(matches!(
            parse_line(extfrag),
            Ok(Line::Event {
                event: Event::Extfrag {
                    fragmenting: false,
                    change_ownership: true
                },
                ..
            })
        ));
    }

    #[test]
    fn task_names_with_colons_and_spaces() {
        let line = b"  kworker/u8:1 x:2-32      [001] d..3.   182.368442: mm_page_free_batched: page=00000000655604e5 pfn=0x15c000 order=0";
        assert!(matches!(
            parse_line(line),
            Ok(Line::Event {
                task: b"kworker/u8:1 x:2-32",
                cpu: Some(1),
                event: Event::FreeBatched { pfn: 0x15c000 },
                ..
            })
        ));
        // No flags column; no CPU column at all.
        let bare = b"  a-1 [012] 1.5: mm_page_free: pfn=0x1 order=0";
        assert!(matches!(
            parse_line(bare),
            Ok(Line::Event {
                task: b"a-1",
                cpu: Some(12),
                ..
            })
        ));
        // A task name that looks like a timestamp but is not followed by
        // an event name.
        let odd = b"  a 1: b-2 [000] ..... 1.5: mm_page_free: pfn=0x1 order=0";
        assert!(matches!(
            parse_line(odd),
            Ok(Line::Event {
                task: b"a 1: b-2",
                cpu: Some(0),
                timestamp: b"1.5",
                event: Event::Free { pfn: 1, order: 0 },
            })
        ));
        let no_cpu = b"a-1 1.5: mm_page_free: pfn=0x1 order=0";
        assert!(matches!(
            parse_line(no_cpu),
            Ok(Line::Event {
                task: b"a-1",
                cpu: None,
                ..
            })
        ));
    }

    #[test]
    fn word_searches_find_the_right_byte() {
        for n in 0..40 {
            for at in 0..n {
                let mut v = vec![b'x'; n];
                v[at] = b'[';
                if at > 0 {
                    v[at / 2] = b'[';
                }
                assert_eq!(last_open_bracket(&v), Some(at), "n {n} at {at}");
                let mut w = vec![b'x'; n];
                w[at] = b' ';
                w[n - 1] = b' ';
                assert_eq!(find_space(&w), at, "n {n} at {at}");
            }
            assert_eq!(last_open_bracket(&vec![b'x'; n]), None);
            for spaces in 0..=n {
                let mut t = vec![b'x'; n - spaces];
                t.resize(n, b' ');
                if n > spaces {
                    t[0] = b'\t';
                }
                assert_eq!(trim_end(&t), t.trim_ascii_end(), "n {n} spaces {spaces}");
                let tabs: Vec<u8> = t
                    .iter()
                    .map(|&b| if b == b' ' { b'\t' } else { b })
                    .collect();
                assert_eq!(trim_end(&tabs), tabs.trim_ascii_end());
            }
            assert_eq!(find_space(&vec![b'x'; n]), n);
        }
    }

    #[test]
    fn timestamps_in_microseconds() {
        assert_eq!(timestamp_micros(b"0.000001"), Some(1));
        assert_eq!(timestamp_micros(b"12"), Some(12_000_000));
        assert_eq!(timestamp_micros(b"1.5"), Some(1_500_000));
        assert_eq!(timestamp_micros(b"1.123456789"), Some(1_123_456));
        assert_eq!(timestamp_micros(b"1.2x"), None);
        assert_eq!(timestamp_micros(b".5"), None);
        assert_eq!(timestamp_micros(b"99999999999999999999.0"), None);
    }

    #[test]
    fn comments_lost_events_and_failed_allocations() {
        assert_eq!(parse_line(b"# tracer: nop"), Ok(Line::Comment));
        assert_eq!(parse_line(b"   "), Ok(Line::Comment));
        assert_eq!(
            parse_line(b"CPU:1 [LOST 1234 EVENTS]"),
            Ok(Line::Lost { nr: 1234 })
        );
        let failed = b" a-1 [000] ..... 1.5: mm_page_alloc: page=(null) pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE";
        assert!(matches!(
            parse_line(failed),
            Ok(Line::Event {
                event: Event::Alloc {
                    pfn: None,
                    order: 9,
                    ..
                },
                ..
            })
        ));
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert!(matches!(
            parse_line(b"hello world"),
            Err(LineError::NotAnEvent { .. })
        ));
        assert!(matches!(
            parse_line(b" a-1 [000] ..... 1.5: mm_page_free: page=0 order=0"),
            Err(LineError::MissingField { field: "pfn", .. })
        ));
        assert!(matches!(
            parse_line(b" a-1 [000] ..... 1.5: mm_page_free: pfn=0xZZ order=0"),
            Err(LineError::BadValue { field: "pfn", .. })
        ));
        assert!(matches!(
            parse_line(b" a-1 [000] ..... 1.5: mm_page_alloc: pfn=0x1 order=0 migratetype=7 gfp_flags=GFP_KERNEL"),
            Err(LineError::BadValue { field: "migratetype", .. })
        ));
        assert!(matches!(
            parse_line(
                b" a-1 [000] ..... 1.5: mm_page_free: pfn=0x1 order=99999999999999999999999"
            ),
            Err(LineError::BadValue { field: "order", .. })
        ));
        // Another tracepoint is not an error.
        assert!(matches!(
            parse_line(b" a-1 [000] ..... 1.5: kmalloc: call_site=foo"),
            Ok(Line::Event {
                event: Event::Other,
                ..
            })
        ));
    }
}
