"""Text shared by search and the recommender: the course document, normalisation, analyzers.

Chinese has no spaces between words and we do not want a segmenter dependency (jieba and
its dictionary), so a CJK run is cut into overlapping character n-grams: a bigram matches
most two-character words, and unigrams keep recall for one-character words and typos.
Latin-script text is cut into words (and word bigrams for TF-IDF, padded character
trigrams for fuzzy search).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CourseDoc:
    id: int
    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    language: str = "en"
    creator_id: int | None = None


# CJK ideographs (basic + extension A + compatibility), kana and hangul: scripts written
# without spaces between words.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_NON_WORD = re.compile(r"[\W_]+")

# Only the words that would otherwise dominate short English titles; TF-IDF's idf handles
# the rest.
STOP_WORDS = frozenset(
    "a an and are as at be by for from how in into is it of on or the to with your you".split()  # noqa: SIM905
)


def normalize(text: str) -> str:
    """NFKC (full-width → half-width, compatibility ideographs → unified), case-folded,
    punctuation → single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", text).strip()


def is_cjk(token: str) -> bool:
    return bool(_CJK_RUN.fullmatch(token))


def tokens(text: str) -> list[str]:
    """Latin words and whole CJK runs, from already normalised text."""
    return _TOKEN.findall(text)


def _cjk_grams(run: str, out: list[str]) -> None:
    out.extend(run)
    out.extend(run[i : i + 2] for i in range(len(run) - 1))


def analyze(text: str) -> list[str]:
    """TF-IDF features: word unigrams + bigrams (stop words dropped) and CJK char 1–2-grams.

    Used as a scikit-learn ``analyzer`` callable, so it must be a module-level function
    (picklable) and deterministic.
    """
    out: list[str] = []
    prev: str | None = None
    for tok in tokens(normalize(text)):
        if is_cjk(tok):
            _cjk_grams(tok, out)
            prev = None
            continue
        if tok in STOP_WORDS or (len(tok) < 2 and not tok.isdigit()):
            prev = None
            continue
        out.append(tok)
        if prev is not None:
            out.append(prev + " " + tok)
        prev = tok
    return out


def fuzzy_grams(text: str) -> list[str]:
    """Search prefilter grams from normalised text: padded char trigrams per Latin word
    (so a typo still shares most grams), CJK char 1–2-grams. Duplicates are kept out."""
    seen: dict[str, None] = {}
    for tok in tokens(text):
        if is_cjk(tok):
            for ch in tok:
                seen[ch] = None
            for i in range(len(tok) - 1):
                seen[tok[i : i + 2]] = None
        else:
            padded = f" {tok} "
            for i in range(len(padded) - 2):
                seen[padded[i : i + 3]] = None
    return list(seen)


def doc_text(doc: CourseDoc) -> str:
    """What the recommender reads: the title and tags count twice, the description once."""
    tags = " ".join(doc.tags)
    return f"{doc.title} {doc.title} {tags} {tags} {doc.description}"


def search_text(doc: CourseDoc) -> str:
    """What search matches against: title and tags, normalised."""
    return normalize(" ".join((doc.title, *doc.tags)))
