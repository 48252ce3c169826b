"""Who is on the other end of the guard's socket: the kernel's word (SO_PEERCRED), never the client's."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Literal

Role = Literal["human", "decider", "stranger"]


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(connection: socket.socket) -> Peer:
    raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


def default_deciders(human_uid: int) -> frozenset[int]:
    """Root and the guard's own user decide (reaching either takes the human's sudo), never the human's user."""
    return frozenset({0, os.geteuid()} - {human_uid})


def role_of(peer: Peer, human_uid: int, deciders: frozenset[int]) -> Role:
    """Deciders approve; the human's user (which is the agent's user too) forwards reads and proposes."""
    if peer.uid in deciders:
        return "decider"
    if peer.uid == human_uid:
        return "human"
    return "stranger"
