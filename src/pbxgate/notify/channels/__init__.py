"""Notification channels: VK, Telegram, e-mail (SMTP) and a generic JSON webhook."""

from pbxgate.notify.channels.base import Channel, Dead, Message, Outcome, Retry, Sent

__all__ = ["Channel", "Dead", "Message", "Outcome", "Retry", "Sent"]
