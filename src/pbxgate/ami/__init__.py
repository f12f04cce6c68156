"""Asterisk Manager Interface: the protocol (sans-I/O), an asyncio client that logs in, runs
actions and follows events with reconnection, and a tracker that turns events into live calls."""
