//! The function symbols of an ELF object (`.symtab`, else `.dynsym`), read from its file, so the
//! census can tell a return address in a language runtime (libc, Go's standard library) from one
//! in the program's own code. A minimal reader of 64-bit little-endian ELF: the section headers,
//! the program headers (to map a file offset to an address) and the symbol tables.

/// One object's functions, sorted by address (none for a file that is not an ELF object).
#[derive(Default)]
pub struct Symbols {
    funcs: Vec<(u64, u64, String)>,
    /// The PT_LOAD segments: (file offset, address, size in the file).
    loads: Vec<(u64, u64, u64)>,
    /// A Go program (its runtime's entry point is there).
    go: bool,
}

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?).into())
}
fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?).into())
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

const SHT_SYMTAB: u64 = 2;
const SHT_DYNSYM: u64 = 11;
const STT_FUNC: u8 = 2;
const PT_LOAD: u64 = 1;

impl Symbols {
    /// The object at `path`; None when it is not a 64-bit little-endian ELF file.
    pub fn read(path: &str) -> Option<Symbols> {
        let b = std::fs::read(path).ok()?;
        Symbols::parse(&b)
    }

    pub fn parse(b: &[u8]) -> Option<Symbols> {
        // ELFCLASS64, ELFDATA2LSB.
        if b.get(..6)? != b"\x7fELF\x02\x01" {
            return None;
        }
        let (phoff, phentsize, phnum) = (u64_at(b, 0x20)?, u16_at(b, 0x36)?, u16_at(b, 0x38)?);
        let (shoff, shentsize, shnum) = (u64_at(b, 0x28)?, u16_at(b, 0x3a)?, u16_at(b, 0x3c)?);
        let mut loads = Vec::new();
        for i in 0..phnum {
            let ph = usize::try_from(phoff + i * phentsize).ok()?;
            if u32_at(b, ph)? == PT_LOAD {
                loads.push((
                    u64_at(b, ph + 8)?,
                    u64_at(b, ph + 0x10)?,
                    u64_at(b, ph + 0x20)?,
                ));
            }
        }
        let section = |i: u64| -> Option<(u64, usize, usize, u64, u64)> {
            let sh = usize::try_from(shoff + i * shentsize).ok()?;
            Some((
                u32_at(b, sh + 4)?,
                usize::try_from(u64_at(b, sh + 0x18)?).ok()?,
                usize::try_from(u64_at(b, sh + 0x20)?).ok()?,
                u32_at(b, sh + 0x28)?,
                u64_at(b, sh + 0x38)?,
            ))
        };
        let tables: Vec<_> = (0..shnum).filter_map(section).collect();
        // The full table when the object has one; a stripped object keeps only its exports.
        let table = tables
            .iter()
            .find(|t| t.0 == SHT_SYMTAB)
            .or_else(|| tables.iter().find(|t| t.0 == SHT_DYNSYM))?;
        let (_, off, size, link, entsize) = *table;
        let (_, str_off, str_size, _, _) = section(link)?;
        let strings = b.get(str_off..str_off.checked_add(str_size)?)?;
        let entsize = usize::try_from(entsize).ok().filter(|&e| e >= 24)?;
        let mut funcs = Vec::new();
        for sym in b.get(off..off.checked_add(size)?)?.chunks_exact(entsize) {
            let (name, info, value, len) =
                (u32_at(sym, 0)?, sym[4], u64_at(sym, 8)?, u64_at(sym, 16)?);
            if info & 0xf != STT_FUNC || value == 0 {
                continue;
            }
            let name = strings.get(usize::try_from(name).ok()?..)?;
            let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            let name = String::from_utf8_lossy(&name[..end]).into_owned();
            funcs.push((value, len.max(1), name));
        }
        funcs.sort();
        let go = funcs.iter().any(|f| f.2 == "runtime.main");
        Some(Symbols { funcs, loads, go })
    }

    /// The function holding the byte at `offset` of the object's file.
    pub fn at_offset(&self, offset: u64) -> Option<&str> {
        let &(file, addr, _) = self
            .loads
            .iter()
            .find(|(file, _, size)| (*file..file + size).contains(&offset))?;
        let addr = offset - file + addr;
        let i = self.funcs.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, len, name) = &self.funcs[i];
        (addr < start + len).then_some(name.as_str())
    }

    /// Every function's name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.funcs.iter().map(|f| f.2.as_str())
    }

    /// Whether the object is a Go program.
    pub fn is_go(&self) -> bool {
        self.go
    }
}

/// Whether `name` is a function of a language runtime rather than of the program: in a Go
/// program, a package of the standard library (whose import path's first element has no dot,
/// `main` aside); in C, C++ and Rust, names reserved to the implementation (`_IO_file_write`,
/// `__libc_recv`), the C++ and Rust standard libraries' mangled names, and the C library's
/// functions (`libc`: the names the system's libc.so exports: fwrite, printf...).
pub fn is_runtime(name: &str, go: bool, libc: &std::collections::HashSet<String>) -> bool {
    if go {
        let package = name.split(['(', '*']).next().unwrap_or(name);
        let path = package.rsplit_once('/').map_or("", |(p, _)| p);
        let first = if path.is_empty() {
            package.split('.').next().unwrap_or("")
        } else {
            path.split('/').next().unwrap_or("")
        };
        return first != "main" && !first.contains('.');
    }
    const STD: &[&str] = &[
        // `S` first is one of the standard library's abbreviations (St std::, So ostream...).
        "_ZNS",
        "_ZNKS",
        "_ZS",
        "_ZN9__gnu_cxx",
        "_ZNK9__gnu_cxx",
        "_ZN10__cxxabiv1",
        "_ZN3std",
        "_ZN4core",
        "_ZN5alloc",
    ];
    if name.starts_with("_Z") {
        return STD.iter().any(|p| name.starts_with(p));
    }
    name.starts_with('_') || libc.contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn go_standard_packages_are_the_runtime_and_main_is_not() {
        let none = HashSet::new();
        for std in [
            "syscall.Syscall",
            "internal/poll.(*FD).Write",
            "os.(*File).Write",
            "net/http.(*Client).Do",
            "runtime.goexit",
        ] {
            assert!(is_runtime(std, true, &none), "{std}");
        }
        for own in ["main.main", "main.(*conf).load", "github.com/a/b.(*C).Open"] {
            assert!(!is_runtime(own, true, &none), "{own}");
        }
    }

    #[test]
    fn reserved_names_and_libc_exports_are_the_c_runtime() {
        let libc: HashSet<String> = ["fwrite".to_string()].into();
        for rt in [
            "__libc_write",
            "_IO_new_file_write",
            "fwrite",
            "_ZNSo5writeEPKcl",
        ] {
            assert!(is_runtime(rt, false, &libc), "{rt}");
        }
        for own in ["main", "write_all", "_Z8write_alli"] {
            assert!(!is_runtime(own, false, &libc), "{own}");
        }
    }

    #[test]
    fn our_own_executable_names_its_functions() {
        let exe = std::env::current_exe().unwrap();
        let syms = Symbols::read(&exe.to_string_lossy()).expect("an ELF file");
        assert!(!syms.is_go());
        assert!(!syms.funcs.is_empty());
    }
}
