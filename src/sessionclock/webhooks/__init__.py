"""Outgoing webhooks: signed deliveries of what happened to a platform's sessions."""
