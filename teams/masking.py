"""The secret filter of every display (the page, the terminal): each event is masked before it is shown.

A model's reply arrives as tokens, and a key can be split over two of them, so each agent's tokens go
through a `StreamMasker` that holds back a possibly unfinished word; what it holds is let out, masked, before
the next event of any other kind (a tool call, the end of the turn), so the page keeps the run's order.
"""

from __future__ import annotations

from config.log import StreamMasker, mask_data
from teams import events as ev


class EventMasker:
    def __init__(self) -> None:
        self._streams: dict[str, StreamMasker] = {}

    def __call__(self, event: ev.Event) -> list[ev.Event]:
        if isinstance(event, ev.Token):
            text = self._streams.setdefault(event.agent, StreamMasker()).feed(event.text)
            return [ev.Token(event.agent, text)] if text else []
        held = [ev.Token(agent, rest) for agent, stream in self._streams.items() if (rest := stream.flush())]
        return [*held, mask_data(event)]
