"""The outbound dialer: contact lists, calling rules, pacing."""
