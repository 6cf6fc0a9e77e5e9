"""A local token estimate for servers whose replies carry no ``usage``.

Rule (a documented contract): a text counts ``ceil(len(text.encode("utf-8")) / 3)`` tokens,
and a prompt counts its whole request body that way (every message, the schema, the field
names). Three bytes per token is more than every common tokenizer spends on English (about
four characters per token) and about right for Chinese (three bytes per character, about one
token each), so the estimate errs on the side of charging too much: ``--budget-usd`` still stops
a run in time. The runner warns once per endpoint that it is estimating.

Example:
    >>> estimate("Hello there!"), estimate("谢谢，再见。"), estimate("")
    (4, 6, 0)
"""

from __future__ import annotations

BYTES_PER_TOKEN = 3


def estimate(text: str | bytes) -> int:
    """Tokens of ``text`` by the rule above (0 for an empty text)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return -(-len(data) // BYTES_PER_TOKEN)
