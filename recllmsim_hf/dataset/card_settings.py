"""Who a card says the data is by, and how it is loaded: name, title, license, citation, usage.

``recllmsim build --name --pretty-name --license --citation FILE`` sets them; what is not set
comes from the source. The release keeps its own: "RecLLMSim", apache-2.0, the release's
citation. A generated corpus does not claim to be the release: it is titled by its corpus name
("<name>: RecLLMSim-style conversations"), its license is ``unknown`` until ``--license`` says
otherwise, and its citation section cites the corpus (``--citation``) and credits RecLLMSim as the
method's source.

The card's usage snippet sits between two HTML comments (invisible on the Hub), so that
``recllmsim push-to-hub`` can put the real repo id in it (:func:`set_repo_id`); a local build
shows a placeholder that reads naturally, ``your-name/<name>``.

Kept free of heavy imports: ``push-to-hub`` uses it before loading ``datasets``.

Example:
    >>> resolve(CardSettings(), "generated", "my corpus").pretty_name
    'my corpus: RecLLMSim-style conversations'
    >>> set_repo_id(usage_block("recllmsim", "intent"), "alice/recllmsim").count("alice/recllmsim")
    1
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from recllmsim_hf.errors import InputError
from recllmsim_hf.schema import CITATION, LICENSE, PRETTY_NAME

RELEASE_NAME = "recllmsim"
GENERATED_LICENSE = "unknown"
_LICENSE = re.compile(r"[a-z0-9][a-z0-9.+-]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_USAGE_START, _USAGE_END = "<!-- recllmsim:usage -->", "<!-- /recllmsim:usage -->"
_USAGE = re.compile(re.escape(_USAGE_START) + r".*?" + re.escape(_USAGE_END), re.S)
_CONFIG = re.compile(r'load_dataset\("[^"]*", "([^"]+)"\)')


@dataclass(frozen=True)
class CardSettings:
    """What the build's flags set; ``None`` takes the source's default.

    Args:
        name: short name of the dataset (the usage snippet's repo name), e.g. ``my-recllmsim``.
        pretty_name: the card's title.
        license: a Hub license id (``apache-2.0``, ``cc-by-4.0``, ``mit``, ``other``, ...).
        citation: BibTeX of the corpus (the text of ``--citation FILE``).
    """

    name: str | None = None
    pretty_name: str | None = None
    license: str | None = None
    citation: str | None = None

    def __post_init__(self):
        if self.name is not None and not _NAME.fullmatch(self.name):
            raise InputError(
                f"--name: must be letters, digits, '.', '_' or '-' (at most 96), but got {self.name!r}"
            )
        if self.pretty_name is not None and not self.pretty_name.strip():
            raise InputError("--pretty-name: must not be empty, but got ''")
        if self.pretty_name is not None and not self.pretty_name.isprintable():
            raise InputError(
                "--pretty-name: must be one line of printable text (the card's title), "
                f"but got {self.pretty_name!r}"
            )
        if self.license is not None and not _LICENSE.fullmatch(self.license):
            raise InputError(
                "--license: must be a Hub license id in lower case (apache-2.0, mit, cc-by-4.0, other, "
                f"unknown, ...), but got {self.license!r}"
            )

    @classmethod
    def from_options(
        cls, name: str | None, pretty_name: str | None, license: str | None, citation: Path | None
    ) -> CardSettings:
        """The settings of the CLI flags; ``citation`` is a BibTeX file, read here."""
        text = None
        if citation is not None:
            if Path(citation).is_dir():
                raise InputError(f"--citation {citation}: is a folder; pass a BibTeX file")
            if not Path(citation).is_file():
                raise InputError(f"--citation {citation}: no such file; pass a BibTeX file")
            try:
                text = Path(citation).read_bytes().decode("utf-8")
            except UnicodeDecodeError as e:
                where = f"byte {e.object[e.start]:#04x} at offset {e.start}"
                raise InputError(
                    f"--citation {citation}: not UTF-8 text ({where}); pass a BibTeX file"
                ) from None
            if not text.strip():
                raise InputError(f"--citation {citation}: the file is empty; pass a BibTeX file")
            if "```" in text:  # it is shown in a ```bibtex block: a fence would end it early
                raise InputError(f"--citation {citation}: holds ``` (a Markdown fence); pass a BibTeX file")
        return cls(name=name, pretty_name=pretty_name, license=license, citation=text)


@dataclass(frozen=True)
class ResolvedCard:
    name: str
    pretty_name: str
    license: str
    citation: str  # of this dataset, "" when none was given
    method_citation: str  # of RecLLMSim as the method's source, "" for the release itself


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-._")[:96]
    return slug or "recllmsim-corpus"


def _bibtex(text: str) -> str:
    return text.strip() + "\n"


def resolve(settings: CardSettings, kind: str, corpus_name: str) -> ResolvedCard:
    """The card's name, title, license and citations for a source of ``kind`` ("release", ...)."""
    if kind == "release":
        return ResolvedCard(
            name=settings.name or RELEASE_NAME,
            pretty_name=settings.pretty_name or PRETTY_NAME,
            license=settings.license or LICENSE,
            citation=_bibtex(settings.citation or CITATION),
            method_citation="" if settings.citation is None else _bibtex(CITATION),
        )
    return ResolvedCard(
        name=settings.name or _slug(corpus_name),
        pretty_name=settings.pretty_name or f"{corpus_name}: RecLLMSim-style conversations",
        license=settings.license or GENERATED_LICENSE,
        citation=_bibtex(settings.citation) if settings.citation else "",
        method_citation=_bibtex(CITATION),
    )


def usage_block(name: str, config: str, repo_id: str | None = None) -> str:
    """The usage snippet, between its markers; without ``repo_id`` a placeholder repo id."""
    target = repo_id or f"your-name/{name}"
    note = "" if repo_id else "  # this repo's id; a local build: the path of its folder"
    return (
        f"{_USAGE_START}\n```python\nfrom datasets import load_dataset\n\n"
        f'ds = load_dataset("{target}", "{config}"){note}\n```\n{_USAGE_END}'
    )


def set_repo_id(card_text: str, repo_id: str) -> str:
    """``card_text`` with the usage snippet loading ``repo_id`` (unchanged when it has no snippet)."""

    def replace(match: re.Match) -> str:
        config = _CONFIG.search(match.group(0))
        return usage_block("", config.group(1) if config else "default", repo_id)

    return _USAGE.sub(replace, card_text, count=1)
