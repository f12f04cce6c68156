"""Defaults of the direction rule, apart so that the settings can name them."""

# What callers with no number show as: nothing, or a word the network or the trunk puts there
# (Asterisk's chan_pjsip "anonymous", carriers' "Restricted", "Unknown", "Unavailable"...).
WITHHELD = ("anonymous", "restricted", "unknown", "unavailable", "private", "withheld",
            "blocked", "unknown caller")  # fmt: skip
# Contexts where calls from outside run: FreePBX's inbound routes and what they lead to, and
# Asterisk's own sample names.
INBOUND_CONTEXTS = ("from-trunk", "from-pstn", "from-pstn-e164-us", "from-pstn-toheader",
                    "from-did-direct", "ext-did", "ext-did-0001", "ext-did-0002", "ext-group",
                    "ext-queues", "from-queue", "ivr-*", "app-announcement-*", "timeconditions",
                    "from-external", "incoming", "inbound", "from-sip-external")  # fmt: skip

__all__ = ["INBOUND_CONTEXTS", "WITHHELD"]
