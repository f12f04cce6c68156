"""Virtual gateway and virtual forwarder state machines as ``(state, input) -> state`` tables.

Theory of operation. GLBP has no published specification; its gateway state machine is modelled
on HSRP's (RFC 2281 §5), which the letter-coded ``debug glbp`` events mirror (REF §3 [inferred]).
Only two event letters are seen in real IOS output (JTD): ``g/Active timer expired`` and
``k/Hello rcvd from higher pri Active router``; the other letters here follow the same order and
are this project's choice. A pair missing from a table is a bug in the caller: :func:`apply_vg`
and :func:`apply_vf` raise :class:`GlbpStateError` naming the state and the input.

REF = ``shared/reference/glbp.md``; JTD = jtdub.com "lan switching layer 3 redundancy".
"""

from __future__ import annotations

import enum

from pbxgate.glbp.engine.errors import GlbpStateError


class VgState(enum.Enum):
    """Virtual gateway states; the values are the Hello TLV state codes (REF §2)."""

    DISABLED = 0x01  # ANSA enum only, never seen on the wire [REF: unverified]
    INIT = 0x02
    LISTEN = 0x04
    SPEAK = 0x08
    STANDBY = 0x10
    ACTIVE = 0x20

    @property
    def label(self) -> str:
        return self.name.capitalize()


class VgInput(enum.Enum):
    """What happened; the value is the ``debug glbp`` letter and text."""

    ENABLE = "a/Virtual IP configured or learnt"
    INTERFACE_UP = "b/Interface up"
    INTERFACE_DOWN = "c/Interface down"
    DISABLE = "d/Group disabled"
    SPEAK_TIMER_EXPIRED = "e/Speak timer expired"
    STANDBY_TIMER_EXPIRED = "f/Standby timer expired"
    ACTIVE_TIMER_EXPIRED = "g/Active timer expired"  # JTD
    HIGHER_PRI_SPEAK = "h/Hello rcvd from higher pri Speak or Standby router"
    LOWER_PRI_ACTIVE = "i/Hello rcvd from lower pri Active router"
    PREEMPT = "j/Preemption delay expired"
    HIGHER_PRI_ACTIVE = "k/Hello rcvd from higher pri Active router"  # JTD
    LOWER_PRI_STANDBY = "l/Hello rcvd from lower pri Standby router"

    @property
    def text(self) -> str:
        return self.value


_S = VgState
_I = VgInput

# Self-transitions are listed too: a pair absent from the table is an illegal input.
VG_TABLE: dict[tuple[VgState, VgInput], VgState] = {
    (_S.DISABLED, _I.ENABLE): _S.INIT,
    (_S.DISABLED, _I.DISABLE): _S.DISABLED,
    (_S.DISABLED, _I.INTERFACE_DOWN): _S.DISABLED,
    (_S.INIT, _I.INTERFACE_UP): _S.LISTEN,
    (_S.INIT, _I.INTERFACE_DOWN): _S.INIT,
    (_S.INIT, _I.DISABLE): _S.DISABLED,
    # Listen: no Active (or no Standby) heard within the hold time -> try for a role.
    (_S.LISTEN, _I.ACTIVE_TIMER_EXPIRED): _S.SPEAK,
    (_S.LISTEN, _I.STANDBY_TIMER_EXPIRED): _S.SPEAK,
    (_S.LISTEN, _I.HIGHER_PRI_SPEAK): _S.LISTEN,
    (_S.LISTEN, _I.LOWER_PRI_ACTIVE): _S.LISTEN,
    (_S.LISTEN, _I.HIGHER_PRI_ACTIVE): _S.LISTEN,
    # REF §3: a preempting router sends Speak hellos before it becomes Active.
    (_S.LISTEN, _I.PREEMPT): _S.SPEAK,
    (_S.LISTEN, _I.LOWER_PRI_STANDBY): _S.SPEAK,  # HSRP: the better Listen router speaks up
    (_S.LISTEN, _I.INTERFACE_DOWN): _S.INIT,
    (_S.LISTEN, _I.DISABLE): _S.DISABLED,
    # Speak: a candidate for Standby/Active; after one hold time of speaking it takes the role.
    (_S.SPEAK, _I.SPEAK_TIMER_EXPIRED): _S.STANDBY,
    (_S.SPEAK, _I.ACTIVE_TIMER_EXPIRED): _S.ACTIVE,
    (_S.SPEAK, _I.STANDBY_TIMER_EXPIRED): _S.SPEAK,
    (_S.SPEAK, _I.HIGHER_PRI_SPEAK): _S.LISTEN,
    (_S.SPEAK, _I.LOWER_PRI_ACTIVE): _S.SPEAK,
    (_S.SPEAK, _I.HIGHER_PRI_ACTIVE): _S.SPEAK,
    (_S.SPEAK, _I.PREEMPT): _S.ACTIVE,
    (_S.SPEAK, _I.LOWER_PRI_STANDBY): _S.SPEAK,
    (_S.SPEAK, _I.INTERFACE_DOWN): _S.INIT,
    (_S.SPEAK, _I.DISABLE): _S.DISABLED,
    # Standby: takes over when the Active's hold time runs out (JTD: "g/Active timer expired").
    (_S.STANDBY, _I.ACTIVE_TIMER_EXPIRED): _S.ACTIVE,
    (_S.STANDBY, _I.HIGHER_PRI_SPEAK): _S.LISTEN,
    (_S.STANDBY, _I.LOWER_PRI_ACTIVE): _S.STANDBY,
    (_S.STANDBY, _I.HIGHER_PRI_ACTIVE): _S.STANDBY,
    (_S.STANDBY, _I.PREEMPT): _S.ACTIVE,
    (_S.STANDBY, _I.LOWER_PRI_STANDBY): _S.STANDBY,
    (_S.STANDBY, _I.INTERFACE_DOWN): _S.INIT,
    (_S.STANDBY, _I.DISABLE): _S.DISABLED,
    # Active: yields to a better Active (JTD: "k/Hello rcvd from higher pri Active router").
    (_S.ACTIVE, _I.HIGHER_PRI_ACTIVE): _S.SPEAK,
    (_S.ACTIVE, _I.LOWER_PRI_ACTIVE): _S.ACTIVE,
    (_S.ACTIVE, _I.HIGHER_PRI_SPEAK): _S.ACTIVE,
    (_S.ACTIVE, _I.LOWER_PRI_STANDBY): _S.ACTIVE,
    (_S.ACTIVE, _I.INTERFACE_DOWN): _S.INIT,
    (_S.ACTIVE, _I.DISABLE): _S.DISABLED,
}


def apply_vg(state: VgState, event: VgInput) -> VgState:
    """The gateway state after ``event`` in ``state``; an illegal pair raises GlbpStateError."""
    try:
        return VG_TABLE[(state, event)]
    except KeyError:
        raise GlbpStateError("virtual gateway", state.label, event.name) from None


class VfState(enum.Enum):
    """Virtual forwarder states; Listen and Active are the Request/Response TLV codes (REF §2)."""

    DISABLED = 0x01
    INIT = 0x02
    LISTEN = 0x04
    ACTIVE = 0x20

    @property
    def label(self) -> str:
        return self.name.capitalize()


class VfInput(enum.Enum):
    """Forwarder events; the value is the ``debug glbp`` text."""

    ASSIGNED = "a/Forwarder assigned by the AVG"
    LEARNT = "b/Forwarder learnt from a hello"
    INTERFACE_UP = "c/Interface up"
    INTERFACE_DOWN = "d/Interface down"
    ACTIVE_TIMER_EXPIRED = "e/Active timer expired"
    HIGHER_PRI_ACTIVE = "f/Hello rcvd from higher pri Active router"
    LOWER_PRI_ACTIVE = "g/Hello rcvd from lower pri Active router"
    PREEMPT = "h/Preemption delay expired"
    WEIGHTING_LOW = "i/Weighting below lower threshold"
    TIMEOUT = "j/Forwarder timeout expired"
    DISABLE = "k/Group disabled"

    @property
    def text(self) -> str:
        return self.value


_F = VfState
_V = VfInput

VF_TABLE: dict[tuple[VfState, VfInput], VfState] = {
    (_F.DISABLED, _V.ASSIGNED): _F.INIT,
    (_F.DISABLED, _V.LEARNT): _F.INIT,
    (_F.DISABLED, _V.DISABLE): _F.DISABLED,
    (_F.DISABLED, _V.TIMEOUT): _F.DISABLED,
    (_F.INIT, _V.ASSIGNED): _F.ACTIVE,  # the owner forwards at once (REF §3: primary VF)
    (_F.INIT, _V.LEARNT): _F.LISTEN,  # others are secondary for that vMAC
    (_F.INIT, _V.INTERFACE_UP): _F.LISTEN,
    (_F.INIT, _V.INTERFACE_DOWN): _F.INIT,
    (_F.INIT, _V.TIMEOUT): _F.DISABLED,
    (_F.INIT, _V.DISABLE): _F.DISABLED,
    (_F.LISTEN, _V.ACTIVE_TIMER_EXPIRED): _F.ACTIVE,  # secondary takeover after the hold time
    (_F.LISTEN, _V.PREEMPT): _F.ACTIVE,  # owner takes its vMAC back (forwarder preempt)
    (_F.LISTEN, _V.ASSIGNED): _F.LISTEN,  # owner back while a secondary forwards: wait, preempt
    (_F.LISTEN, _V.LEARNT): _F.LISTEN,
    (_F.LISTEN, _V.HIGHER_PRI_ACTIVE): _F.LISTEN,
    (_F.LISTEN, _V.LOWER_PRI_ACTIVE): _F.LISTEN,
    (_F.LISTEN, _V.WEIGHTING_LOW): _F.LISTEN,
    (_F.LISTEN, _V.TIMEOUT): _F.DISABLED,
    (_F.LISTEN, _V.INTERFACE_DOWN): _F.INIT,
    (_F.LISTEN, _V.DISABLE): _F.DISABLED,
    (_F.ACTIVE, _V.HIGHER_PRI_ACTIVE): _F.LISTEN,
    (_F.ACTIVE, _V.LOWER_PRI_ACTIVE): _F.ACTIVE,
    (_F.ACTIVE, _V.ASSIGNED): _F.ACTIVE,
    (_F.ACTIVE, _V.LEARNT): _F.ACTIVE,
    (_F.ACTIVE, _V.WEIGHTING_LOW): _F.LISTEN,  # below lower: give the vMAC up (REF §3)
    (_F.ACTIVE, _V.TIMEOUT): _F.DISABLED,
    (_F.ACTIVE, _V.INTERFACE_DOWN): _F.INIT,
    (_F.ACTIVE, _V.DISABLE): _F.DISABLED,
}


def apply_vf(state: VfState, event: VfInput) -> VfState:
    """The forwarder state after ``event`` in ``state``; an illegal pair raises GlbpStateError."""
    try:
        return VF_TABLE[(state, event)]
    except KeyError:
        raise GlbpStateError("virtual forwarder", state.label, event.name) from None


__all__ = [
    "VF_TABLE",
    "VG_TABLE",
    "VfInput",
    "VfState",
    "VgInput",
    "VgState",
    "apply_vf",
    "apply_vg",
]
