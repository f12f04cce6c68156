"""The gateway and forwarder tables: every (state, input) pair is either a row or an error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxgate.glbp.engine import (
    GlbpStateError,
    VfInput,
    VfState,
    VgInput,
    VgState,
    apply_vf,
    apply_vg,
)
from pbxgate.glbp.engine.states import VF_TABLE, VG_TABLE


@given(st.sampled_from(VgState), st.sampled_from(VgInput))
def test_every_gateway_pair_is_a_row_or_a_named_error(state: VgState, event: VgInput) -> None:
    if (state, event) in VG_TABLE:
        assert apply_vg(state, event) is VG_TABLE[(state, event)]
    else:
        with pytest.raises(GlbpStateError) as info:
            apply_vg(state, event)
        assert state.label in str(info.value)
        assert event.name in str(info.value)


@given(st.sampled_from(VfState), st.sampled_from(VfInput))
def test_every_forwarder_pair_is_a_row_or_a_named_error(state: VfState, event: VfInput) -> None:
    if (state, event) in VF_TABLE:
        assert apply_vf(state, event) is VF_TABLE[(state, event)]
    else:
        with pytest.raises(GlbpStateError) as info:
            apply_vf(state, event)
        assert state.label in str(info.value)
        assert event.name in str(info.value)


@given(st.lists(st.sampled_from(VgInput), max_size=40))
def test_any_legal_walk_stays_in_known_states(inputs: list[VgInput]) -> None:
    state = VgState.DISABLED
    for event in inputs:
        if (state, event) in VG_TABLE:
            state = apply_vg(state, event)
    assert state in VgState


def test_tables_cover_the_documented_transitions() -> None:
    # JTD: "Standby: g/Active timer expired" then "%GLBP-6-STATECHANGE: ... Standby -> Active"
    assert apply_vg(VgState.STANDBY, VgInput.ACTIVE_TIMER_EXPIRED) is VgState.ACTIVE
    assert VgInput.ACTIVE_TIMER_EXPIRED.text.startswith("g/")
    assert VgInput.HIGHER_PRI_ACTIVE.text == "k/Hello rcvd from higher pri Active router"
    assert apply_vf(VfState.LISTEN, VfInput.ACTIVE_TIMER_EXPIRED) is VfState.ACTIVE
    # Nothing brings a disabled gateway straight to Active.
    assert not any(s is VgState.DISABLED and t is VgState.ACTIVE for (s, _), t in VG_TABLE.items())
    # The Hello TLV state codes (REF §2).
    assert [s.value for s in (VgState.LISTEN, VgState.SPEAK, VgState.STANDBY, VgState.ACTIVE)] == [
        4,
        8,
        16,
        32,
    ]
