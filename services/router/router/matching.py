"""Lead-to-account matching: by email domain first, then by normalised company name.

Domains match exactly, through a parent domain (``eu.acme.com`` is ``acme.com``) or through a
configured alias (``acme.co.uk`` is ``acme.com``). Names are normalised (accents, case,
punctuation, legal suffixes such as Inc, GmbH, S.A.), then looked up exactly, as an acronym
(``IBM`` for International Business Machines) and finally fuzzily with rapidfuzz above a
confidence threshold. Fuzzy candidates are first narrowed by token prefixes, so a lookup among
10,000 accounts stays well under a millisecond.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from rapidfuzz import fuzz, process

LEGAL_SUFFIXES = frozenset(
    [
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "ltd",
        "limited",
        "llc",
        "llp",
        "lp",
        "plc",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "ug",
        "sa",
        "sas",
        "sarl",
        "sl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "asa",
        "aps",
        "kk",
        "pty",
        "pvt",
        "pte",
        "se",
        "group",
        "holding",
        "holdings",
    ]
)
STOP = frozenset({"the", "and", "of", "for"})
_DOTTED = re.compile(r"\b(?:[a-z]\.){2,}")
_PUNCT = re.compile(r"[^\w\s]+")


class AccountRecord(NamedTuple):
    id: str
    name: str
    domains: Sequence[str]
    aliases: Sequence[str]
    owner: str | None


@dataclass(frozen=True)
class AccountMatch:
    account_id: str
    account_name: str
    owner: str | None
    method: str
    confidence: float
    detail: str


def normalise_domain(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    return d.removeprefix("www.")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_tokens(name: str) -> list[str]:
    """Tokens of a company name without accents, punctuation, legal suffixes or a leading 'the'."""
    text = _fold(name).replace("&", " and ")
    text = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), text)  # I.B.M. -> ibm
    tokens = _PUNCT.sub(" ", text).split()
    while len(tokens) > 1 and tokens[-1] in LEGAL_SUFFIXES:
        tokens.pop()
    if len(tokens) > 1 and tokens[0] == "the":
        tokens.pop(0)
    return tokens


def normalise_company(name: str) -> str:
    return " ".join(name_tokens(name))


def acronym(tokens: Sequence[str]) -> str | None:
    words = [t for t in tokens if t not in STOP]
    return "".join(w[0] for w in words) if len(words) >= 2 else None


def _blocks(key: str) -> set[str]:
    return {t[:3] for t in key.split() if len(t) >= 3} | {key[:2]}


class AccountIndex:
    """Indexes over the configured accounts; ``match`` is pure and deterministic."""

    def __init__(
        self,
        accounts: Iterable[AccountRecord],
        *,
        threshold: float = 90,
        domain_aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.accounts: list[AccountRecord] = list(accounts)
        self.threshold = threshold
        self.domain_aliases = dict(domain_aliases or {})
        self.by_domain: dict[str, int] = {}
        self.by_name: dict[str, tuple[int, bool]] = {}
        acronyms: dict[str, set[int]] = defaultdict(set)
        self._keys: list[str] = []
        self._owners: list[int] = []
        self._blocks: dict[str, list[int]] = defaultdict(list)
        for i, account in enumerate(self.accounts):
            for domain in account.domains:
                self.by_domain.setdefault(normalise_domain(domain), i)
            for j, name in enumerate((account.name, *account.aliases)):
                tokens = name_tokens(name)
                key = " ".join(tokens)
                if not key:
                    continue
                self.by_name.setdefault(key, (i, j > 0))
                if (acr := acronym(tokens)) is not None:
                    acronyms[acr].add(i)
                sorted_key = " ".join(sorted(tokens))
                for block in _blocks(sorted_key):
                    self._blocks[block].append(len(self._keys))
                self._keys.append(sorted_key)
                self._owners.append(i)
        self.by_acronym = {a: next(iter(ids)) for a, ids in acronyms.items() if len(ids) == 1}

    def __len__(self) -> int:
        return len(self.accounts)

    def match(
        self, email_domain: str | None, is_free_email: bool, company: str | None
    ) -> AccountMatch | None:
        if email_domain and not is_free_email:
            found = self.match_domain(email_domain)
            if found is not None:
                return found
        return self.match_name(company) if company else None

    def _found(self, index: int, method: str, confidence: float, detail: str) -> AccountMatch:
        a = self.accounts[index]
        return AccountMatch(a.id, a.name, a.owner, method, round(confidence, 1), detail)

    def match_domain(self, email_domain: str) -> AccountMatch | None:
        domain = normalise_domain(email_domain)
        via = self.domain_aliases.get(domain)
        if via is not None and via in self.by_domain:
            return self._found(
                self.by_domain[via],
                "domain_alias",
                100,
                f"email domain {domain} is an alias of {via}",
            )
        labels = domain.split(".")
        for start in range(len(labels) - 1):
            candidate = ".".join(labels[start:])
            if candidate in self.by_domain:
                method = "domain" if start == 0 else "subdomain"
                detail = (
                    f"email domain {domain} is the account's domain"
                    if start == 0
                    else f"email domain {domain} is a subdomain of {candidate}"
                )
                return self._found(self.by_domain[candidate], method, 100, detail)
        return None

    def match_name(self, company: str) -> AccountMatch | None:
        tokens = name_tokens(company)
        key = " ".join(tokens)
        if not key:
            return None
        if key in self.by_name:
            index, is_alias = self.by_name[key]
            method = "alias" if is_alias else "name"
            return self._found(
                index, method, 100, f"company {company!r} is {method} {key!r} once normalised"
            )
        if len(tokens) == 1 and 2 <= len(key) <= 6 and key in self.by_acronym:
            index = self.by_acronym[key]
            return self._found(
                index,
                "acronym",
                95,
                f"company {company!r} is the acronym of {self.accounts[index].name!r}",
            )
        return self._fuzzy(company, " ".join(sorted(tokens)))

    def _fuzzy(self, company: str, sorted_key: str) -> AccountMatch | None:
        if len(sorted_key) < 4:
            return None
        candidates = sorted({i for b in _blocks(sorted_key) for i in self._blocks.get(b, ())})
        if not candidates:
            return None
        best = process.extractOne(
            sorted_key,
            [self._keys[i] for i in candidates],
            scorer=fuzz.ratio,
            score_cutoff=self.threshold,
        )
        if best is None:
            return None
        _, score, position = best
        index = self._owners[candidates[position]]
        return self._found(
            index,
            "fuzzy",
            score,
            f"company {company!r} resembles {self.accounts[index].name!r} "
            f"({score:.0f}% ≥ {self.threshold:.0f}%)",
        )
