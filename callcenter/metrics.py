"""Prometheus metrics, served at /metrics. Defined once per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ARI_EVENTS = Counter("callcenter_ari_events_total", "ARI events received", ["type"])
ARI_RECONNECTS = Counter("callcenter_ari_reconnects_total", "ARI websocket (re)connections")
ARI_REQUESTS = Histogram("callcenter_ari_request_seconds", "ARI REST request latency", ["method"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
ARI_CONNECTED = Gauge("callcenter_ari_connected", "1 while the ARI event websocket is up")
AMI_CONNECTED = Gauge("callcenter_ami_connected", "1 while logged in to AMI")
AMI_EVENTS = Counter("callcenter_ami_events_total", "AMI events handled", ["event"])
STASIS_CALLS = Counter("callcenter_stasis_calls_total", "Channels that entered the Stasis app", ["kind"])
STASIS_ACTIVE = Gauge("callcenter_stasis_active_channels", "Channels now in the Stasis app")
CEL_EVENTS = Counter("callcenter_cel_events_total", "Channel events read from Asterisk's event log")
CDR_WRITTEN = Counter("callcenter_cdr_written_total", "CDRs written", ["disposition"])
LEDGER_ERRORS = Counter("callcenter_ledger_errors_total", "Failed attempts to store call events")
IVR_KEY_TO_PROMPT = Histogram(
    "callcenter_ivr_key_to_prompt_seconds", "From a caller's key to the start of the next prompt",
    buckets=(0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5))
IVR_CALLS = Counter("callcenter_ivr_calls_total", "Calls through the IVR by outcome", ["outcome"])
ACD_CALLS = Counter("callcenter_acd_calls_total", "Queue calls by queue and what became of them", ["queue", "event"])
ACD_ATTEMPTS = Counter("callcenter_acd_ring_attempts_total", "Offers to agent phones by outcome", ["outcome"])
ACD_AGENT_STATES = Counter("callcenter_acd_agent_state_changes_total", "Agent state changes by new state", ["state"])
ACD_ANNOUNCEMENTS = Counter("callcenter_acd_announcements_total", "Position announcements played")
ACD_WAIT = Histogram("callcenter_acd_wait_seconds", "Queue wait of answered calls",
                     buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600))
ACD_OFFER_DELAY = Histogram(
    "callcenter_acd_offer_delay_seconds", "From an agent becoming free (or a call arriving) to the ring request",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1))
