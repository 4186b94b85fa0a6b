"""A stopped run logs no traceback: the errors a stop causes by design are kept at DEBUG.

Stopping a run aborts its model call (models.client.RunAborted) and shuts AutoGen's runtime queue; AutoGen's
runtime logs each agent's aborted handler with `logger.error(..., exc_info=True)` ("Error processing publish
message for coder_..."), then the GroupChatError it broadcasts, which the other agents' containers do not
handle ("Unhandled message in agent container"), then QueueShutDown. All expected on a stop: they are kept
at DEBUG, without the traceback. Any other error of an agent is still logged as AutoGen logs it.

`teams.runner.Run` installs the filter on its abort path (`quiet_expected_stop_errors()`, once per process),
so a Stop in the UI, a cancelled batch, a timeout or Ctrl-C on the CLI are all quiet alike.
"""

from __future__ import annotations

import logging

from loguru import logger

_EXPECTED_ON_STOP = ("RunAborted", "CancelledError", "QueueShutDown")


def _expected_on_stop(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if type(exc).__name__ in _EXPECTED_ON_STOP:
            return True
        if isinstance(exc, ValueError) and "Unhandled message in agent container" in str(exc) and "GroupChatError" in str(exc):
            return True  # the echo of an agent's error; that error itself is logged on its own
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class StopNoiseFilter(logging.Filter):
    """On AutoGen's runtime logger: the errors a stop causes by design become one DEBUG line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and _expected_on_stop(exc):
            logger.debug("expected on a stop: {}: {}", record.getMessage(), f"{type(exc).__name__}: {exc}")
            return False
        return True


def quiet_expected_stop_errors() -> None:
    runtime = logging.getLogger("autogen_core")
    if not any(isinstance(f, StopNoiseFilter) for f in runtime.filters):
        runtime.addFilter(StopNoiseFilter())
