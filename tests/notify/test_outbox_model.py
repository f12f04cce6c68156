"""The outbox against a model: any sequence of worker actions loses and doubles nothing."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbxgate.notify.outbox import Outbox

from .conftest import Place
from .helpers import make_event

LEASE = 10.0
RECIPIENTS = [("vk", "1"), ("vk", "chat:2")]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("enqueue"), st.integers(1, 6)),
        st.tuples(st.just("plan"), st.just(0)),
        st.tuples(st.just("claim"), st.integers(1, 5)),
        st.tuples(st.just("sent"), st.integers(0, 20)),
        st.tuples(st.just("retry"), st.integers(0, 20)),
        st.tuples(st.just("dead"), st.integers(0, 20)),
        st.tuples(st.just("tick"), st.integers(1, 15)),
        st.tuples(st.just("crash"), st.just(0)),
        st.tuples(st.just("revive"), st.just(0)),
    ),
    max_size=40,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sequence=ops)
def test_outbox_matches_the_model(place: Place, sequence: list[tuple[str, int]]) -> None:
    """On each backend (a shared outbox's "crash" is its node restarting)."""
    place.empty()
    box = place.open(synchronous="NORMAL")
    box.acquire_worker_lock()  # the one worker: a "crash" then takes its deliveries back
    try:
        run(box, sequence)
    finally:
        place.close()


class Model:
    """What the outbox should hold, updated by the same actions the test applies to it."""

    def __init__(self, box: Outbox) -> None:
        self.box = box
        self.now = 0.0
        self.state: dict[int, str] = {}  # delivery id -> state
        self.lease_until: dict[int, float] = {}
        self.holding: list[int] = []  # claimed by "this worker", in claim order
        self.events: set[int] = set()

    def enqueue(self, n: int) -> None:
        assert self.box.enqueue(make_event(n)) is (n not in self.events)
        self.events.add(n)

    def plan(self, _: int) -> None:
        for ev in self.box.unplanned():
            self.box.plan(ev.event_id, RECIPIENTS, self.now)

    def claim(self, limit: int) -> None:
        for d in self.box.claim(self.now, LEASE, limit):
            # Only pending rows, or in-flight rows whose lease ran out, may be claimed.
            assert self.state.get(d.id, "pending") == "pending" or (
                self.lease_until[d.id] <= self.now
            )
            self.state[d.id] = "in-flight"
            self.lease_until[d.id] = self.now + LEASE
            self.holding.append(d.id)

    def finish(self, op: str, index: int) -> None:
        if not self.holding:
            return
        did = self.holding.pop(index % len(self.holding))
        if op == "sent":
            moved = self.box.mark_sent(did, self.now)
        elif op == "retry":
            moved = self.box.mark_retry(did, self.now, self.now + 5, "later")
        else:
            moved = self.box.mark_dead(did, self.now, "no")
        # A row re-claimed after its lease ran out is still in flight; one that is not, refuses.
        assert moved is (self.state[did] == "in-flight")
        if moved:
            self.state[did] = {"sent": "sent", "retry": "pending", "dead": "dead"}[op]

    def crash(self, _: int) -> None:  # the worker died; its successor releases the orphans
        self.box.release_inflight(self.now)
        self.holding.clear()
        self.state.update({i: "pending" for i, s in self.state.items() if s == "in-flight"})

    def revive(self, _: int) -> None:
        self.box.revive(self.now)
        self.state.update({i: "pending" for i, s in self.state.items() if s == "dead"})

    def apply(self, op: str, arg: int) -> None:
        if op == "tick":
            self.now += arg
        elif op in ("sent", "retry", "dead"):
            self.finish(op, arg)
        else:
            getattr(self, op)(arg)


def run(box: Outbox, sequence: list[tuple[str, int]]) -> None:
    model = Model(box)
    for op, arg in sequence:
        model.apply(op, arg)
        check(box, model.state)


def check(box: Outbox, model: dict[int, str]) -> None:
    statuses = {s.channel: s for s in box.status()}
    planned = len(box._query("SELECT 1 FROM deliveries"))  # every planned row is still there
    if not statuses:
        assert planned == 0
        return
    vk = statuses["vk"]
    assert vk.pending + vk.in_flight + vk.sent + vk.dead == planned
    known = {s: sum(1 for v in model.values() if v == s) for s in ("in-flight", "sent", "dead")}
    assert vk.in_flight == known["in-flight"]
    assert vk.sent == known["sent"]
    assert vk.dead == known["dead"]
