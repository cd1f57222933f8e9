"""What `callcenter run` prints once the controller is ready: where to reach it, the users' phones,
the first start's passwords (once), the DIDs, and what to try."""

from __future__ import annotations

from callcenter.config import Settings
from callcenter.users import first_start


def startup_banner(settings: Settings, extensions: list[tuple[str, str]],
                   shown: list[first_start.Account] | None) -> str:
    s = settings
    lines = [
        "",
        "Call centre is running.",
        f"  SIP (UDP):   {s.sip.bind}:{s.sip.port}  (register a softphone with user = extension)",
        f"  Panel:       http://{s.web.bind}:{s.web.port}/   health: /health   metrics: /metrics",
    ]
    if s.ftps.enabled:
        lines.append(f"  FTPS:        {s.ftps.bind}:{s.ftps.port}  (explicit TLS, admin logins; CDRs, QueueCalls, "
                     f"Recordings from {s.files_dir})")
    lines += first_start.banner(s.var_dir, extensions, shown)
    lines += [f"  DIDs:        {did} -> {route.name} ({route.route})" for did, route in s.dids.items()]
    lines.append(f"  Try: call {next(iter(s.dids), '1000')} from 2001, or 2002 from 2001. "
                 "Stop with Ctrl-C.")
    return "\n".join(lines)

