//! `[[disk]]`: a disk that fills, as a state shared by every process of a run. Files whose path
//! matches the glob count against the capacity; bytes in use start at what they already hold and
//! follow what the kernel allocates for them (`st_blocks`) as they are written, truncated,
//! allocated and unlinked. A write that crosses the capacity is short, cut at a block boundary as
//! ext4 cuts it, and every write after it fails with ENOSPC until space is freed
//! (`docs/kernel-facts.md` F1). This module is the model: what fits, in pure arithmetic.

use crate::glob::Glob;

/// Disks a policy may declare (their counters live in the control page).
pub const MAX_DISKS: usize = 8;

/// The filesystem block: allocation (and a short write's end) is in whole blocks.
pub const BLOCK: u64 = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    pub name: String,
    pub path: Glob,
    /// Bytes the disk holds.
    pub capacity: u64,
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// How much of a write of `len` bytes at `offset`, to a file of `size` bytes, fits in `free`
/// bytes: the blocks past the file's end it needs must come out of `free`. Writes inside the
/// file need nothing (its blocks are there); a write that needs more than is free is cut where
/// the free blocks end, and gets 0 (ENOSPC) if that is before it starts.
pub fn write_fits(offset: u64, len: u64, size: u64, free: u64) -> u64 {
    let end = offset.saturating_add(len);
    let allocated = round_up(size);
    let need = round_up(end).saturating_sub(allocated);
    if need <= free {
        return len;
    }
    let limit = allocated + free / BLOCK * BLOCK;
    limit.saturating_sub(offset).min(len)
}

/// The range a fallocate of `mode` asks space for: mode 0 and KEEP_SIZE allocate; punching,
/// collapsing and zeroing ranges need no new space (None: like a truncation, only accounted
/// after). Both backends ask it.
pub fn allocates(mode: i32, offset: i64, len: i64) -> Option<(u64, u64)> {
    (mode & !libc::FALLOC_FL_KEEP_SIZE == 0).then_some((offset.max(0) as u64, len.max(0) as u64))
}

/// The blocks a fallocate of `[offset, offset + len)` needs past the file's end (holes inside are
/// not known without SEEK_HOLE, and are rare in files being filled).
pub fn allocate_needs(offset: u64, len: u64, size: u64) -> u64 {
    round_up(offset.saturating_add(len)).saturating_sub(round_up(size))
}

/// Bytes in use on a disk now: the blocks allocated to the regular files under the glob's fixed
/// prefix that it matches. The one function of the engine that reads the filesystem, called once
/// per run by chaos-ctl (and by the shim when no chaos-ctl made a page).
pub fn bytes_in_use(path: &Glob) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let pattern = path.0.as_bytes();
    let fixed = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'['))
        .unwrap_or(pattern.len());
    let base = match pattern[..fixed].iter().rposition(|b| *b == b'/') {
        Some(0) => "/".to_string(),
        Some(i) => String::from_utf8_lossy(&pattern[..i]).into_owned(),
        None => return 0,
    };
    let mut total = 0;
    let mut stack = vec![std::path::PathBuf::from(base)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            let p = entry.path();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() && path.matches(p.as_os_str().as_encoded_bytes()) {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_fit_until_the_free_blocks_end_then_nothing_does() {
        // 8 KB free, an empty file: a 4 KB write fits, a 12 KB one is cut at 8 KB.
        assert_eq!(write_fits(0, 4096, 0, 8192), 4096);
        assert_eq!(write_fits(0, 12288, 0, 8192), 8192);
        // Appending 100 bytes into the last block's slack needs no new block.
        assert_eq!(write_fits(100, 100, 100, 0), 100);
        // Past it with nothing free: ENOSPC (0), as ext4's write_begin fails.
        assert_eq!(write_fits(4096, 100, 4096, 0), 0);
        // A short write ends on a block boundary (kernel-facts F1: the 8th write's end).
        let got = write_fits(1000, 10_000, 1000, 4096);
        assert_eq!((1000 + got) % BLOCK, 0);
        assert_eq!(got, 8192 - 1000);
    }

    #[test]
    fn overwrites_need_no_space() {
        assert_eq!(write_fits(0, 4096, 1 << 20, 0), 4096);
    }

    #[test]
    fn only_plain_and_keep_size_fallocates_ask_for_space() {
        assert_eq!(allocates(0, 0, 8192), Some((0, 8192)));
        assert_eq!(allocates(1, 4096, 10), Some((4096, 10)));
        assert_eq!(allocates(1 | 2, 0, 4096), None, "punch hole");
        assert_eq!(allocates(0x10, 0, 4096), None, "zero range");
    }

    #[test]
    fn allocation_counts_whole_blocks_past_the_end() {
        assert_eq!(allocate_needs(0, 1, 0), 4096);
        assert_eq!(allocate_needs(0, 4096, 4096), 0);
        assert_eq!(allocate_needs(4096, 8192, 4096), 8192);
    }

    #[test]
    fn bytes_in_use_sums_the_matching_files() {
        let dir = std::env::temp_dir().join(format!("chaos-disk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.db"), vec![1u8; 10_000]).unwrap();
        std::fs::write(dir.join("sub/b.db"), vec![1u8; 5000]).unwrap();
        std::fs::write(dir.join("c.txt"), vec![1u8; 5000]).unwrap();
        let glob = Glob(format!("{}/*.db", dir.display()));
        let used = bytes_in_use(&glob);
        std::fs::remove_dir_all(&dir).unwrap();
        // 10,000 bytes take 3 blocks, 5,000 take 2 (whatever the filesystem, at least that).
        assert!((5 * 4096..8 * 4096).contains(&used), "{used}");
    }
}
