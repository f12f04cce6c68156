"""MAC addresses and interface names as IOS prints them.

Virtual MAC (REF §2 [confirmed: Wireshark packet-glbp.c]): ``0007.b4`` + 6 zero bits + the 10-bit
group + the forwarder number, so group 1020, forwarder 1 is ``0007.b403.fc01``.
"""

from __future__ import annotations

import re

VMAC_PREFIX = 0x0007B4
GROUP_BITS = 10
MAX_FORWARDERS = 4  # up to 4 virtual MACs per group (REF summary)

_HEX = re.compile(r"[0-9a-fA-F]")

# IOS abbreviations used by "show glbp brief" and "debug glbp" (Et0/0, Fa0/0, Gi0/1).
_SHORT = {
    "ethernet": "Et",
    "fastethernet": "Fa",
    "gigabitethernet": "Gi",
    "tengigabitethernet": "Te",
    "vlan": "Vl",
    "port-channel": "Po",
}


def virtual_mac(group: int, forwarder: int) -> str:
    """The vMAC of ``forwarder`` (1-4) in ``group`` (0-1023), in IOS dotted form."""
    value = (VMAC_PREFIX << 24) | ((group & 0x3FF) << 8) | (forwarder & 0xFF)
    return mac_from_int(value)


def mac_from_int(value: int) -> str:
    text = f"{value:012x}"
    return f"{text[0:4]}.{text[4:8]}.{text[8:12]}"


def normalize_mac(text: str) -> str:
    """``aa:bb:cc:00:20:00``, ``aabb.cc00.2000`` or ``aabbcc002000`` -> ``aabb.cc00.2000``."""
    digits = "".join(_HEX.findall(text))
    if len(digits) != 12 or len(re.sub(r"[0-9a-fA-F:.\-]", "", text)):
        raise ValueError(f"{text!r} is not a MAC address")
    return mac_from_int(int(digits, 16))


def mac_bytes(mac: str) -> bytes:
    return int(normalize_mac(mac).replace(".", ""), 16).to_bytes(6, "big")


def mac_from_bytes(data: bytes) -> str:
    return mac_from_int(int.from_bytes(data, "big"))


def short_interface(name: str) -> str:
    """``Ethernet0/0`` -> ``Et0/0`` (IOS short form)."""
    match = re.match(r"([A-Za-z-]+)(.*)", name)
    if not match:
        return name
    word, rest = match.groups()
    short = _SHORT.get(word.lower())
    return f"{short}{rest}" if short else name


__all__ = [
    "MAX_FORWARDERS",
    "mac_bytes",
    "mac_from_bytes",
    "mac_from_int",
    "normalize_mac",
    "short_interface",
    "virtual_mac",
]
