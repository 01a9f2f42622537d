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
_NON_WORD = re.compile(r"[\W_]+")
# One match per CJK run (group 1) or per word of any other script (group 2).
_SPLIT = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")

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


def _features(text: str, out: list[str], word_bigrams: bool) -> None:
    prev = ""
    for cjk, word in _SPLIT.findall(unicodedata.normalize("NFKC", text).casefold()):
        if cjk:
            out.extend(cjk)
            out.extend([cjk[i : i + 2] for i in range(len(cjk) - 1)])
            prev = ""
        elif word in STOP_WORDS or (len(word) < 2 and not word.isdigit()):
            prev = ""
        else:
            out.append(word)
            if word_bigrams and prev:
                out.append(f"{prev} {word}")
            prev = word


def analyze(text: str, word_bigrams: bool = True) -> list[str]:
    """TF-IDF features: words (stop words dropped), optionally word bigrams, and CJK
    char 1–2-grams (always: a Chinese word is mostly two characters)."""
    out: list[str] = []
    _features(text, out, word_bigrams)
    return out


def doc_features(doc: CourseDoc) -> list[str]:
    """The recommender's analyzer over a whole course: title and tags count twice and
    get word bigrams; the description counts once, words only — description bigrams
    multiply the feature count (memory, request cost) for little gain."""
    head: list[str] = []
    # One pass over title and tags (a word bigram may span the seam: harmless).
    _features(" ".join((doc.title, *doc.tags)), head, True)
    out = head + head
    _features(doc.description, out, False)
    return out


def fuzzy_grams(text: str, query: bool = False) -> list[str]:
    """Search prefilter grams from normalised text: padded char trigrams per Latin word
    (so a typo still shares most grams), CJK char 1–2-grams. No duplicates.

    The index also gets each word's first letter (" b"), which a query uses only for a
    one-letter last word: what inline mode sees while the learner is still typing."""
    grams: list[str] = []
    parts = _SPLIT.findall(text)
    for n, (cjk, word) in enumerate(parts, 1):
        if cjk:
            grams += cjk
            grams += [cjk[i : i + 2] for i in range(len(cjk) - 1)]
            continue
        padded = f" {word} "
        if not query or (len(word) == 1 and n == len(parts)):
            grams.append(padded[:2])
        grams += [padded[i : i + 3] for i in range(len(padded) - 2)]
    return list(dict.fromkeys(grams))


def search_text(doc: CourseDoc) -> str:
    """What search matches against: title and tags, normalised, each word once (tags often
    repeat the title, and rapidfuzz's WRatio marks long texts down)."""
    words = normalize(" ".join((doc.title, *doc.tags))).split()
    return " ".join(dict.fromkeys(words))
