#!/usr/bin/env python3
"""What a power loss would keep on ext4 (docs/kernel-facts.md F10-F13), as far as a loop mount
can show it. Run as root in an empty directory:

    truncate -s 64M img && mkfs.ext4 -q img && mkdir mnt && mount -o loop,commit=60 img mnt
    python3 ext4_crash_states.py && umount mnt

Each `snap` copies the image while mounted (what the loop device has written so far), replays
the copy's journal with e2fsck and reads it with debugfs: the device's state at that instant. It
cannot show a drive's volatile cache losing writes. commit=60 keeps the periodic commit out of
the way, so what is kept is what the syncs forced.
"""
import os
import subprocess

HERE = os.getcwd()
M = os.path.join(HERE, "mnt")


def snap(tag):
    img = os.path.join(HERE, f"{tag}.img")
    subprocess.run(["cp", "--sparse=always", os.path.join(HERE, "img"), img], check=True)
    subprocess.run(["e2fsck", "-fy", img], capture_output=True)
    return img


def cat(img, path):
    st = subprocess.run(["debugfs", "-R", f"stat {path}", img], capture_output=True)
    if b"Inode:" not in st.stdout:
        return None
    return subprocess.run(["debugfs", "-R", f"cat {path}", img], capture_output=True).stdout


def w(p, data, flags=os.O_WRONLY | os.O_CREAT | os.O_APPEND):
    fd = os.open(p, flags, 0o644)
    os.write(fd, data)
    return fd


os.makedirs(f"{M}/d", exist_ok=True)
os.sync()
# F11: a new log fsynced after records 10 and 20, then 4 more: 2000 bytes kept.
fd = os.open(f"{M}/d/log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for n in range(1, 25):
    os.write(fd, (f"record {n:02d}".ljust(99, ".") + "\n").encode())
    if n in (10, 20):
        os.fsync(fd)
print("F11 log size:", len(cat(snap("log"), "/d/log") or b""))
# F10: another file's fsync commits an earlier create, not its data.
fa = w(f"{M}/d/a", b"aaaa")
fb = w(f"{M}/d/b", b"bbbb")
os.fsync(fb)
print("F10 a:", cat(snap("commit"), "/d/a"))
# F12: rename over an existing file, before and after another file's fsync.
fc = w(f"{M}/d/config", b"old\n")
os.fsync(fc)
os.close(fc)
dfd = os.open(f"{M}/d", os.O_RDONLY)
os.fsync(dfd)
t = w(f"{M}/d/config.tmp", b"new\n")
os.close(t)
os.rename(f"{M}/d/config.tmp", f"{M}/d/config")
print("F12 before a commit:", cat(snap("rename0"), "/d/config"))
os.write(fb, b"x")
os.fsync(fb)
print("F12 after a commit:", cat(snap("rename1"), "/d/config"))
t = w(f"{M}/d/fresh.tmp", b"new\n")
os.close(t)
os.rename(f"{M}/d/fresh.tmp", f"{M}/d/fresh")
os.write(fb, b"x")
os.fsync(fb)
print("F12 rename to a new name, after a commit:", cat(snap("fresh"), "/d/fresh"))
# F13: truncate to zero, rewrite, close, another file's fsync.
fz = w(f"{M}/d/z", b"old\n")
os.fsync(fz)
os.close(fz)
fz = os.open(f"{M}/d/z", os.O_WRONLY | os.O_TRUNC)
os.write(fz, b"new\n")
os.close(fz)
os.write(fb, b"x")
os.fsync(fb)
print("F13 truncated and rewritten:", cat(snap("trunc"), "/d/z"))
# F11: an unsynced overwrite of allocated blocks, after another file's fsync.
fo = w(f"{M}/d/o", b"0123456789", os.O_WRONLY | os.O_CREAT)
os.fsync(fo)
os.pwrite(fo, b"XXXX", 0)
os.write(fb, b"x")
os.fsync(fb)
print("F11 overwrite:", cat(snap("overwrite"), "/d/o"))
