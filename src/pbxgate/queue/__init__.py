"""Call-centre queues from Asterisk's queue_log."""
