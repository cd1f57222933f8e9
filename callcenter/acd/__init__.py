"""ACD: queues, agents and the delivery of calls to them (ACD-1..7, TEL-3, TEL-4)."""
