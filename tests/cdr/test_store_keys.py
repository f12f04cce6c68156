"""The store's row keys: one CDR from cdr_csv and cdr_custom is one row; old stores are rekeyed."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from pbxgate.cdr.store import KEY_VERSION, Store, rowkey
from tests.cdr.fixture_calls import LEGS


def test_the_key_ignores_what_only_one_of_the_two_files_carries() -> None:
    leg = LEGS[2]  # B's second leg: sequence 1, a linkedid
    assert leg.sequence and leg.linkedid
    assert rowkey(leg) == rowkey(replace(leg, sequence=0, linkedid=""))
    assert rowkey(leg) != rowkey(replace(leg, disposition="BUSY"))


def test_an_old_store_is_rekeyed_and_keeps_one_copy_of_each_cdr(tmp_path: Path) -> None:
    db = tmp_path / "cdr.sqlite3"
    store = Store.open_sqlite(db)
    store.insert(LEGS)
    store.engine.dispose()
    # As a store of the previous key version would be after importing both Master.csv files:
    # other keys, and B's first leg twice (once without its sequence and linkedid).
    con = sqlite3.connect(db)
    con.execute("UPDATE cdr SET rowkey = id * 7919")
    con.execute(
        "INSERT INTO cdr (calldate, clid, src, dst, dcontext, channel, dstchannel, lastapp,"
        " lastdata, duration, billsec, disposition, amaflags, accountcode, uniqueid, userfield,"
        " did, recordingfile, cnum, cnam, outbound_cnum, outbound_cnam, dst_cnam, linkedid,"
        ' peeraccount, sequence, answer, "end", rowkey) SELECT calldate, clid, src, dst,'
        " dcontext, channel, dstchannel, lastapp, lastdata, duration, billsec, disposition,"
        " amaflags, accountcode, uniqueid, userfield, did, recordingfile, cnum, cnam,"
        " outbound_cnum, outbound_cnam, dst_cnam, '', peeraccount, 0, answer, \"end\", 1"
        " FROM cdr WHERE id = 2"
    )
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()

    store = Store.open_sqlite(db)
    assert store.count() == len(LEGS)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == KEY_VERSION
    kept = con.execute("SELECT linkedid, sequence FROM cdr WHERE id = 2").fetchone()
    assert kept == (LEGS[1].linkedid, LEGS[1].sequence)  # the copy with more detail won
    keys = {k for (k,) in con.execute("SELECT rowkey FROM cdr")}
    assert keys == {rowkey(leg) for leg in LEGS}
    # and a new import of the same legs adds nothing
    assert store.insert(LEGS).inserted == 0
