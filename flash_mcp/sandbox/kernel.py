"""Linux primitives for the sandbox, through ctypes (stdlib only: the supervisor imports this alone).

Landlock (syscalls 444-446 on every architecture), unshare(2), mount(2), prctl(2), capset(2).
"""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine, 126)
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

# Filesystem rights, by ABI version (landlock.h).
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_V1 = (1 << 13) - 1  # EXECUTE … MAKE_SYM
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ_ONLY = EXECUTE | READ_FILE | READ_DIR
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 1, 24, 28, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
# SECBIT_NOROOT, _LOCKED, NO_SETUID_FIXUP, _LOCKED, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE, _LOCKED
SECURE_BITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    result = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    return max(0, int(result))


def fs_rights(abi: int) -> int:
    """Every filesystem right this ABI knows (all of them are handled, so none is implicitly allowed)."""
    rights = _FS_V1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def landlock_restrict(
    read_only: list[str], read_write: list[str], listed: list[str], *, abi: int, deny_tcp: bool
) -> None:
    """Allow only these trees (read-only, read-write); everything else on the filesystem is denied.

    Also: no TCP bind/connect when `deny_tcp` (ABI 4), no signals or abstract unix sockets outside
    the sandbox (ABI 6). Requires no_new_privs (set here). Irreversible for this process and its children.
    """
    handled = fs_rights(abi)
    net = NET_BIND_TCP | NET_CONNECT_TCP if deny_tcp and abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    size = 24 if abi >= 6 else 16
    attr = ctypes.create_string_buffer(struct.pack("<QQQ", handled, net, scoped)[:size], size)
    ruleset = _check(_libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(size), 0), "landlock ruleset")
    try:
        for paths, rights in ((listed, READ_DIR), (read_only, READ_ONLY), (read_write, handled)):
            for path in paths:
                _add_rule(ruleset, path, rights & handled)
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(_libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _add_rule(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # an absent optional path (e.g. /lib64) grants nothing
    try:
        # Paths arrive resolved: one that resolves elsewhere now was swapped for a symlink since (a
        # running trainer racing an evaluation of its checkpoint); grant nothing rather than its target.
        if os.readlink(f"/proc/self/fd/{fd}") != path:
            raise OSError(f"landlock {path}: changed into a symlink while being granted")
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        rule = ctypes.create_string_buffer(struct.pack("<Qi", rights, fd), 12)
        _check(_libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, rule, 0), f"landlock {path}")
    finally:
        os.close(fd)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def map_root(uid: int, gid: int) -> None:
    """After unshare(CLONE_NEWUSER): be root in the new namespace, `uid` outside it."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    result = _libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data))
    _check(result, f"mount {target}")


def set_pdeathsig(signum: int) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0), "pdeathsig")


def drop_capabilities() -> None:
    """No capability now or after exec, even as (namespace) root: bounding set, securebits, capset."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 and ctypes.get_errno() == 22:  # EINVAL: past the last cap
            break
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _check(_libc.prctl(PR_SET_SECUREBITS, SECURE_BITS, 0, 0, 0), "securebits")
    header = ctypes.create_string_buffer(struct.pack("<Ii", 0x20080522, 0), 8)
    data = ctypes.create_string_buffer(24)
    _check(_libc.syscall(SYS_CAPSET, header, data), "capset")


# seccomp: no unix sockets by path (Landlock does not cover connect(2) on a socket file), no io_uring
# (which could open sockets behind the filter), no kernel keyrings, no foreign-ABI syscalls.
# Everything else is allowed.
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}  # audit arch, socket(2)
# add_key, request_key, keyctl: the kernel keyrings (the server's session keyring is inherited and,
# as root mapped to root, readable: keys a human's login put there would reach agent code).
_KEYRING_CALLS = {"x86_64": (248, 249, 250), "aarch64": (217, 218, 219)}
SYS_IO_URING_SETUP, AF_UNIX = 425, 1
RET_ALLOW, RET_KILL, RET_EACCES = 0x7FFF0000, 0x80000000, 0x00050000 | 13


def seccomp_available() -> bool:
    return os.uname().machine in _ARCH


def seccomp_no_unix_sockets() -> None:
    """Install the filter (no_new_privs must be set): socket(AF_UNIX, …), io_uring and the keyring calls
    fail with EACCES.

    socketpair(2) stays allowed: a connected pair reaches nothing outside the process tree.
    """
    arch, sys_socket = _ARCH[os.uname().machine]
    denied = (SYS_IO_URING_SETUP, *_KEYRING_CALLS[os.uname().machine])
    program = [
        (0x20, 0, 0, 4),  # A = seccomp_data.arch
        (0x15, 1, 0, arch),  # native ABI → 3
        (0x06, 0, 0, RET_KILL),
        (0x20, 0, 0, 0),  # A = seccomp_data.nr
        (0x35, 0, 1, 0x40000000),  # x32 syscall numbers → EACCES
        (0x06, 0, 0, RET_EACCES),
        *[op for nr in denied for op in ((0x15, 0, 1, nr), (0x06, 0, 0, RET_EACCES))],
        (0x15, 0, 3, sys_socket),
        (0x20, 0, 0, 16),  # A = args[0] (domain), low 32 bits
        (0x15, 0, 1, AF_UNIX),
        (0x06, 0, 0, RET_EACCES),
        (0x06, 0, 0, RET_ALLOW),
    ]
    filters = ctypes.create_string_buffer(b"".join(struct.pack("<HBBI", *op) for op in program))
    fprog = ctypes.create_string_buffer(struct.pack("<HxxxxxxQ", len(program), ctypes.addressof(filters)))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0), "seccomp")
