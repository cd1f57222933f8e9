"""Outgoing webhooks (docs/webhooks.md): endpoints admins manage, a durable outbox written in the caller's
transaction, and a background sender that signs and delivers in order per endpoint with retries."""
