"""Typed errors with a stable id, so users and logs see the same words."""

from __future__ import annotations


class CallcenterError(Exception):
    """Base of every error the controller raises on purpose."""

    error_id = "callcenter-error"
    http_status = 500


class ConfigError(CallcenterError):
    """A configuration file or value is wrong: says file, line, key and problem."""

    error_id = "invalid-config"
    http_status = 400

    def __init__(self, file: str, key: str, problem: str, line: int | None = None) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        self.line = line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {problem}")


class ProvisioningError(CallcenterError):
    error_id = "provisioning-failed"


class AsteriskError(CallcenterError):
    error_id = "asterisk-failed"
    http_status = 503


class AriError(CallcenterError):
    """ARI answered with an error status, or could not be reached."""

    error_id = "ari-error"
    http_status = 502

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"ARI {method} {path} -> {status}: {message}")


class AriNotFound(AriError):
    error_id = "ari-not-found"
    http_status = 404


class AmiError(CallcenterError):
    error_id = "ami-error"
    http_status = 502


class UserError(CallcenterError):
    """A request about users is wrong (duplicate extension, unknown user...)."""

    error_id = "invalid-user"
    http_status = 400


class ActionRefused(CallcenterError):
    """Something a user asked for cannot be done (wrong state, out of their scope, bad input); the message
    is meant for that user. The HTTP layer shows it with ``http_status`` (400, 403, 404 or 409)."""

    error_id = "panel-action-refused"  # kept from when it lived in the panel: API clients match on it
    http_status = 400

    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class AlreadyRunning(CallcenterError):
    error_id = "already-running"
