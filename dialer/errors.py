"""Errors a user can act on. The CLI prints `message` (one line, no traceback) and exits non-zero."""

from __future__ import annotations


class DialerError(Exception):
    """Base class: `error_id` is stable for logs and tests, the message is for people."""

    error_id = "dialer_error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(DialerError):
    error_id = "config_invalid"
    exit_code = 2


class DatabaseUnavailable(DialerError):
    error_id = "database_unavailable"
    exit_code = 3


class AmiUnreachable(DialerError):
    error_id = "ami_unreachable"
    exit_code = 4


class AmiAuthFailed(DialerError):
    error_id = "ami_auth_failed"
    exit_code = 4


class PortInUse(DialerError):
    error_id = "port_in_use"
    exit_code = 5


class AmiActionError(DialerError):
    """Asterisk answered an action with an error, or did not answer in time.

    `definite`: the action certainly did nothing (refused, or never sent because the link was
    down). False after a timeout: it may have been carried out. `refused`: Asterisk answered it
    with an error (its configuration, not the link: the message says what).
    """

    error_id = "ami_action_failed"

    def __init__(self, message: str, *, definite: bool = True, refused: bool = False) -> None:
        super().__init__(message)
        self.definite, self.refused = definite, refused


class ImportFileError(DialerError):
    """A file to import cannot be read as its mapping describes (encoding, header); nothing was stored.

    `message` is English (CLI, logs); `reason` (one of REASONS) and `params` let a page say it in
    its own language (web/messages: import.reason.<reason>, with {param} placeholders).
    """

    error_id = "import_file_invalid"
    exit_code = 7
    REASONS = (
        "cannot_open",
        "empty",
        "header_unreadable",
        "header_encoding",
        "no_columns",
        "no_department",
        "wrong_department",
    )

    def __init__(self, message: str, reason: str = "", **params: str) -> None:
        super().__init__(message)
        assert not reason or reason in self.REASONS, reason
        self.reason, self.params = reason, params
