"""Supervisor monitoring: #44 + extension, permission groups, audit (MON-1..3)."""
