"""A socket whose concurrent exchanges go to the kernel together (group
commit): a thread that calls ``exchange`` while another thread's exchange
is in the kernel queues its requests; when that exchange returns, one of
the waiting threads sends every queued list as one pipelined exchange (one
``sendmsg`` per window of requests, their ACKs read together) and hands
each caller its own replies, in its own order.

The kernel handles the messages of one send in order and answers each by
its sequence number, so a caller gets exactly the replies it would get
alone; requests of different callers are independent (a caller's own
requests still run in its order, and after the requests it sent before).
Used by ``Handle(combine=True)``: many threads sharing one handle (a
resident daemon serving concurrent requests) pay one round trip per burst
instead of one each, and keep no socket per thread.
"""
from __future__ import annotations

import errno as _errno
import threading
from typing import List, Optional, Sequence

from ._core import RCVBUF, Reply, Request, Socket
from ._groupcommit import GroupCommit
from .errors import ExchangeError, error_for


class _Submission:
    """One caller's requests (from its thread), and what became of them."""

    def __init__(self, requests: Sequence[Request], into: Optional[list]):
        self.requests, self.into = requests, into
        self.thread = threading.get_ident()
        self.replies: List[Optional[Reply]] = []
        self.error: Optional[BaseException] = None


class CombiningSocket(Socket):
    """A ``Socket`` (same arguments) whose concurrent ``exchange`` calls are
    combined into one pipelined exchange; see the module documentation.
    ``dump`` is not combined (a dump's parts are read by its caller)."""

    def __init__(self, netns_fd: int = -1, timeout: float = 5.0, home_fd: int = -1,
                 rcvbuf: int = RCVBUF):
        super().__init__(netns_fd, timeout, home_fd, rcvbuf)
        self._group = GroupCommit(self._send_group)

    def exchange(self, requests: Sequence[Request],
                 into: Optional[list] = None) -> List[Reply]:
        """As ``Socket.exchange``; the requests may travel with other
        threads' in one exchange.  ``into`` receives this caller's replies
        once its exchange has returned."""
        self._check_usable(requests)
        mine = _Submission(requests, into)
        self._group.submit(mine)
        if mine.into is not None:
            mine.into.extend(r for r in mine.replies if r is not None)
        if mine.error is not None:
            raise mine.error
        return [r for r in mine.replies if r is not None]     # all there: no error was raised

    def _send_group(self, batch: List[_Submission]) -> None:
        """GroupCommit's run: sent by the thread of one of them."""
        me = threading.get_ident()
        self._send_together(batch, next(s for s in batch if s.thread == me))

    def _send_together(self, batch: List[_Submission], leader: _Submission) -> None:
        """Every submission of ``batch`` sent in one exchange; each marked
        done with its replies, or with its own error: a lost exchange is an
        ExchangeError for each caller with a request of unknown fate (about
        its own requests); an exception raised in the sending thread
        (KeyboardInterrupt...) is raised there as it is, and is an
        ExchangeError for the others."""
        combined = [r for s in batch for r in s.requests]
        replies: list = []
        error: Optional[BaseException] = None
        try:
            with self._lock:
                self._check_usable(combined)            # closed while we waited?
                self._exchange_all(combined, replies)
        except ExchangeError as e:
            error, replies = e, e.replies
        except BaseException as e:                      # noqa: BLE001 - each caller gets its share
            error, replies = e, replies + [None] * (len(combined) - len(replies))
        start = 0
        for s in batch:
            end = start + len(s.requests)
            s.replies = replies[start:end]
            if error is not None and (None in s.replies or not isinstance(error, ExchangeError)):
                own = s is leader and not isinstance(error, ExchangeError)
                s.error = error if own else _share(error, s, start)
            start = end


def _share(error: BaseException, s: _Submission, offset: int) -> BaseException:
    """The failure of a combined exchange as seen by submission ``s`` (its
    requests from ``offset`` on in the combined list): an ExchangeError
    naming its first request whose fate is unknown, with its replies."""
    if not isinstance(error, ExchangeError):
        if not s.requests:
            return error
        first = s.requests[0]
        return error_for(getattr(error, "errno", None) or _errno.EIO, first.operation,
                         first.arguments, first.interface,
                         detail=f"the exchange it shared with other threads failed: "
                                f"{type(error).__name__}: {error}",
                         cls=ExchangeError, replies=s.replies, sent=0)
    pending = next(i for i, r in enumerate(s.replies) if r is None)
    first = s.requests[pending]
    sent = max(0, min(len(s.requests), error.sent - offset))
    return error_for(error.errno or _errno.EIO, first.operation, first.arguments, first.interface,
                     error.ext_ack, detail=error.detail, cls=ExchangeError,
                     replies=s.replies, sent=sent)
