"""Who ran a `dialer` command, for the audit log (a command has no login of ours)."""

from __future__ import annotations

import getpass
import os


def os_user() -> str:
    """The operating-system login name; `uid N` where there is none (a container run with an
    arbitrary uid and no USER: getpass raises there, and the command must not fail for it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
