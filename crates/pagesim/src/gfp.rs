//! GFP flag strings, as ftrace prints them (`show_gfp_flags` in
//! include/trace/events/mmflags.h), turned into the engine's [`AllocFlags`].
//!
//! The kernel prints the composite names it can (`GFP_HIGHUSER_MOVABLE`),
//! then the single bits left over (`__GFP_ZERO`), joined by `|`. What matters
//! to the page allocator is: the zone (`GFP_DMA`, `GFP_DMA32`, highmem), the
//! migratetype (`__GFP_MOVABLE`, `__GFP_RECLAIMABLE`), whether the caller may
//! enter direct reclaim (if not, Linux treats it as non-blocking: more of the
//! reserves, `ALLOC_NON_BLOCK`), `__GFP_HIGH`, `__GFP_NOMEMALLOC`,
//! `__GFP_MEMALLOC`, `__GFP_THISNODE` and `__GFP_NOWARN`. The rest (zeroing,
//! compound pages, accounting, I/O and FS permission) does not change where a
//! page comes from.

use pagealloc::AllocFlags;

/// What one flag name contributes.
#[derive(Clone, Copy)]
struct FlagMeaning {
    flags: AllocFlags,
    /// The name includes `__GFP_DIRECT_RECLAIM`.
    direct_reclaim: bool,
}

const fn meaning(flags: AllocFlags, direct_reclaim: bool) -> FlagMeaning {
    FlagMeaning {
        flags,
        direct_reclaim,
    }
}

/// The composite and single-bit names of Linux 6.x, with what each means to
/// the allocator. Names not listed are refused in strict mode (scenario
/// files) and ignored in lenient mode (traces from other kernels).
const NAMES: &[(&str, FlagMeaning)] = &[
    (
        "GFP_TRANSHUGE",
        meaning(
            AllocFlags::HIGHUSER_MOVABLE
                .union(AllocFlags::NO_MEMALLOC)
                .union(AllocFlags::NO_WARN),
            true,
        ),
    ),
    (
        "GFP_TRANSHUGE_LIGHT",
        meaning(
            AllocFlags::HIGHUSER_MOVABLE
                .union(AllocFlags::NO_MEMALLOC)
                .union(AllocFlags::NO_WARN),
            false,
        ),
    ),
    (
        "GFP_HIGHUSER_MOVABLE",
        meaning(AllocFlags::HIGHUSER_MOVABLE, true),
    ),
    ("GFP_HIGHUSER", meaning(AllocFlags::HIGHMEM, true)),
    ("GFP_USER", meaning(AllocFlags::KERNEL, true)),
    ("GFP_KERNEL_ACCOUNT", meaning(AllocFlags::KERNEL, true)),
    ("GFP_KERNEL", meaning(AllocFlags::KERNEL, true)),
    ("GFP_NOFS", meaning(AllocFlags::KERNEL, true)),
    ("GFP_NOIO", meaning(AllocFlags::KERNEL, true)),
    ("GFP_ATOMIC", meaning(AllocFlags::HIGH, false)),
    ("GFP_NOWAIT", meaning(AllocFlags::KERNEL, false)),
    ("GFP_DMA", meaning(AllocFlags::DMA, false)),
    ("__GFP_DMA", meaning(AllocFlags::DMA, false)),
    ("GFP_DMA32", meaning(AllocFlags::DMA32, false)),
    ("__GFP_DMA32", meaning(AllocFlags::DMA32, false)),
    ("__GFP_HIGHMEM", meaning(AllocFlags::HIGHMEM, false)),
    ("__GFP_HIGH", meaning(AllocFlags::HIGH, false)),
    ("__GFP_MOVABLE", meaning(AllocFlags::MOVABLE, false)),
    ("__GFP_RECLAIMABLE", meaning(AllocFlags::RECLAIMABLE, false)),
    ("__GFP_NOWARN", meaning(AllocFlags::NO_WARN, false)),
    ("__GFP_NOMEMALLOC", meaning(AllocFlags::NO_MEMALLOC, false)),
    ("__GFP_MEMALLOC", meaning(AllocFlags::NO_WATERMARKS, false)),
    ("__GFP_THISNODE", meaning(AllocFlags::THIS_NODE, false)),
    ("__GFP_RECLAIM", meaning(AllocFlags::KERNEL, true)),
    ("__GFP_DIRECT_RECLAIM", meaning(AllocFlags::KERNEL, true)),
    ("__GFP_KSWAPD_RECLAIM", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_IO", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_FS", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_ZERO", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_COMP", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_NOFAIL", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_NORETRY", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_RETRY_MAYFAIL", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_HARDWALL", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_ACCOUNT", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_WRITE", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_NOLOCKDEP", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_ZEROTAGS", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_SKIP_ZERO", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_SKIP_KASAN", meaning(AllocFlags::KERNEL, false)),
    ("__GFP_NO_OBJ_EXT", meaning(AllocFlags::KERNEL, false)),
    ("none", meaning(AllocFlags::KERNEL, false)),
    // Not Linux: the engine's `NO_FALLBACK` has no GFP bit (Linux's
    // ALLOC_NOFRAGMENT is internal), so emitted traces name it this way.
    (PAGESIM_NO_FALLBACK, meaning(AllocFlags::NO_FALLBACK, false)),
];

/// pagesim's own name for [`AllocFlags::NO_FALLBACK`], which has no Linux
/// GFP bit.
pub const PAGESIM_NO_FALLBACK: &str = "PAGESIM_NO_FALLBACK";

/// How unknown flag names are treated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Strictness {
    /// Unknown names are an error (scenario files: a typo must not pass).
    Strict,
    /// Unknown names and raw hex remainders are ignored (traces: a newer
    /// kernel may print bits this table does not know).
    Lenient,
}

/// An unknown GFP flag name.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("unknown GFP flag `{0}`")]
pub struct UnknownGfpFlag(pub String);

/// The allocation flags for a `gfp_flags=` value such as
/// `GFP_HIGHUSER_MOVABLE|__GFP_ZERO`. A request that may not enter direct
/// reclaim gets [`AllocFlags::ATOMIC`], as Linux's `gfp_to_alloc_flags`
/// gives it `ALLOC_NON_BLOCK`.
pub fn parse_gfp(text: &[u8], strictness: Strictness) -> Result<AllocFlags, UnknownGfpFlag> {
    let mut flags = AllocFlags::empty();
    let mut direct_reclaim = false;
    for name in text.split(|&b| b == b'|') {
        let name = name.trim_ascii();
        if name.is_empty() {
            continue;
        }
        match NAMES.iter().find(|(n, _)| n.as_bytes() == name) {
            Some((_, m)) => {
                flags |= m.flags;
                direct_reclaim |= m.direct_reclaim;
            }
            None if strictness == Strictness::Lenient || name.starts_with(b"0x") => {}
            None => return Err(UnknownGfpFlag(String::from_utf8_lossy(name).into_owned())),
        }
    }
    if !direct_reclaim {
        flags |= AllocFlags::ATOMIC;
    }
    Ok(flags)
}

/// The `gfp_flags=` text for `flags`, as ftrace would print it: a composite
/// name first (`GFP_KERNEL`, `GFP_HIGHUSER_MOVABLE`, `GFP_ATOMIC`,
/// `GFP_NOWAIT`), then single bits. [`parse_gfp`] maps it back to exactly
/// `flags`: the composite says whether the caller may enter direct
/// reclaim, which is what [`AllocFlags::ATOMIC`] stands for.
pub fn linux_gfp_text(flags: AllocFlags) -> String {
    /// Moves `bits` from `rest` to `names` as `name` if all are set.
    fn take(
        rest: &mut AllocFlags,
        names: &mut Vec<&'static str>,
        bits: AllocFlags,
        name: &'static str,
    ) -> bool {
        let all = rest.contains(bits);
        if all {
            *rest -= bits;
            names.push(name);
        }
        all
    }
    let mut rest = flags - AllocFlags::ATOMIC;
    let mut names: Vec<&'static str> = Vec::new();
    let n = &mut names;
    if flags.contains(AllocFlags::ATOMIC) {
        if !take(&mut rest, n, AllocFlags::HIGH, "GFP_ATOMIC") {
            n.push("GFP_NOWAIT");
        }
    } else if !take(
        &mut rest,
        n,
        AllocFlags::HIGHUSER_MOVABLE,
        "GFP_HIGHUSER_MOVABLE",
    ) && !take(&mut rest, n, AllocFlags::HIGHMEM, "GFP_HIGHUSER")
    {
        n.push("GFP_KERNEL");
    }
    for (bit, name) in [
        (AllocFlags::DMA, "GFP_DMA"),
        (AllocFlags::DMA32, "GFP_DMA32"),
        (AllocFlags::HIGHMEM, "__GFP_HIGHMEM"),
        (AllocFlags::HIGH, "__GFP_HIGH"),
        (AllocFlags::MOVABLE, "__GFP_MOVABLE"),
        (AllocFlags::RECLAIMABLE, "__GFP_RECLAIMABLE"),
        (AllocFlags::NO_WARN, "__GFP_NOWARN"),
        (AllocFlags::NO_WATERMARKS, "__GFP_MEMALLOC"),
        (AllocFlags::NO_MEMALLOC, "__GFP_NOMEMALLOC"),
        (AllocFlags::THIS_NODE, "__GFP_THISNODE"),
        (AllocFlags::NO_FALLBACK, PAGESIM_NO_FALLBACK),
    ] {
        take(&mut rest, n, bit, name);
    }
    debug_assert!(rest.is_empty(), "a flag without a name: {rest:?}");
    names.join("|")
}

/// A GFP-like name for flags, for reports: the composite Linux name when the
/// flags are one of the common ones.
pub fn describe(flags: AllocFlags) -> String {
    let base = flags - AllocFlags::NO_WARN;
    let known = [
        (AllocFlags::KERNEL, "GFP_KERNEL"),
        (AllocFlags::HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
        (AllocFlags::RECLAIMABLE, "GFP_KERNEL|__GFP_RECLAIMABLE"),
        (AllocFlags::MOVABLE, "GFP_KERNEL|__GFP_MOVABLE"),
        (AllocFlags::GFP_ATOMIC | AllocFlags::ATOMIC, "GFP_ATOMIC"),
        (AllocFlags::ATOMIC, "GFP_NOWAIT"),
    ];
    known
        .iter()
        .find(|(f, _)| *f == base)
        .map_or_else(|| format!("{flags:?}"), |(_, n)| (*n).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagealloc::{MigrateType, ZoneType};

    fn p(s: &str) -> AllocFlags {
        parse_gfp(s.as_bytes(), Strictness::Strict).unwrap()
    }

    #[test]
    fn trace_flag_strings_map_like_linux() {
        let f = p("GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP");
        assert_eq!(f.migratetype(), MigrateType::Movable);
        assert!(!f.contains(AllocFlags::ATOMIC));
        assert_eq!(f.highest_zone(), ZoneType::Movable);
        let f = p("GFP_NOWAIT");
        assert!(f.contains(AllocFlags::ATOMIC));
        assert_eq!(f.migratetype(), MigrateType::Unmovable);
        let f = p("GFP_ATOMIC|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC");
        assert!(f.contains(AllocFlags::ATOMIC | AllocFlags::HIGH | AllocFlags::NO_MEMALLOC));
        let f = p("GFP_NOFS|__GFP_RECLAIMABLE|__GFP_NOWARN");
        assert_eq!(f.migratetype(), MigrateType::Reclaimable);
        assert_eq!(p("GFP_KERNEL|GFP_DMA32").highest_zone(), ZoneType::Dma32);
        assert_eq!(p("GFP_DMA").highest_zone(), ZoneType::Dma);
        assert_eq!(p("GFP_KERNEL").highest_zone(), ZoneType::Normal);
    }

    #[test]
    fn rendered_flags_parse_back_to_the_same_flags() {
        for bits in 0..=AllocFlags::all().bits() {
            let Some(f) = AllocFlags::from_bits(bits) else {
                continue;
            };
            let text = linux_gfp_text(f);
            assert_eq!(p(&text), f, "{f:?} -> {text}");
        }
        assert_eq!(linux_gfp_text(AllocFlags::KERNEL), "GFP_KERNEL");
        assert_eq!(
            linux_gfp_text(AllocFlags::HIGHUSER_MOVABLE),
            "GFP_HIGHUSER_MOVABLE"
        );
        assert_eq!(
            linux_gfp_text(AllocFlags::GFP_ATOMIC | AllocFlags::NO_WARN),
            "GFP_ATOMIC|__GFP_NOWARN"
        );
        assert_eq!(
            linux_gfp_text(AllocFlags::ATOMIC | AllocFlags::RECLAIMABLE),
            "GFP_NOWAIT|__GFP_RECLAIMABLE"
        );
        assert_eq!(linux_gfp_text(AllocFlags::DMA32), "GFP_KERNEL|GFP_DMA32");
    }

    #[test]
    fn unknown_names_depend_on_strictness() {
        assert_eq!(
            parse_gfp(b"GFP_KERNEL|__GFP_BOGUS", Strictness::Strict),
            Err(UnknownGfpFlag("__GFP_BOGUS".into()))
        );
        assert_eq!(
            parse_gfp(b"GFP_KERNEL|__GFP_BOGUS|0x4000", Strictness::Lenient),
            Ok(AllocFlags::KERNEL)
        );
        assert_eq!(describe(p("GFP_KERNEL")), "GFP_KERNEL");
    }
}
