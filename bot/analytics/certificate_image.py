"""The certificate picture: a PNG drawn with matplotlib (Agg, object API, no pyplot),
with the same packaged Noto Sans CJK font as the charts, so Chinese names render.
Rendering takes tens of milliseconds: callers run it off the event loop."""

from __future__ import annotations

import asyncio
import io
import unicodedata
from dataclasses import dataclass

from bot.analytics.charts import FONT_FAMILIES, register_font


@dataclass(frozen=True, slots=True)
class CertificateTexts:
    """The words on the picture, in the learner's language (the caller translates)."""

    heading: str = "Certificate of completion"
    awarded: str = "awarded to"
    for_course: str = "for completing the course"
    by_creator: str = "by {creator}"
    issued: str = "Issued {date} · Serial {serial}"
    verify: str = "Verify: {link}"


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    learner: str
    course: str
    creator: str
    date: str
    serial: str
    link: str


def render_certificate(facts: CertificateFacts, texts: CertificateTexts | None = None) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    register_font()
    texts = texts or CertificateTexts()
    fig = Figure(figsize=(12, 8.5), dpi=100)
    FigureCanvasAgg(fig)
    with matplotlib.rc_context({"font.family": FONT_FAMILIES}):
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.add_patch(Rectangle((0, 0), 1, 1, color="#fbf8ef"))
        for inset, width in ((0.03, 3.0), (0.045, 1.0)):
            ax.add_patch(
                Rectangle(
                    (inset, inset), 1 - 2 * inset, 1 - 2 * inset,
                    fill=False, edgecolor="#8a6d2f", linewidth=width,
                )
            )  # fmt: skip
        lines = [
            (0.83, texts.heading, 30, "normal", "#3b2f14"),
            (0.70, texts.awarded, 14, "normal", "#555555"),
            (0.61, _fit(facts.learner, 36), 34, "normal", "#1f3b6f"),
            (0.49, texts.for_course, 14, "normal", "#555555"),
            (0.41, _fit(facts.course, 52), 24, "normal", "#3b2f14"),
            (0.34, texts.by_creator.format(creator=_fit(facts.creator, 48)), 15, "normal",
             "#333333"),
            (0.17, texts.issued.format(date=facts.date, serial=facts.serial), 12, "normal",
             "#555555"),
            (0.12, texts.verify.format(link=facts.link), 10, "normal", "#777777"),
        ]  # fmt: skip
        for y, text, size, weight, color in lines:
            ax.text(0.5, y, text, ha="center", va="center", fontsize=size, fontweight=weight,
                    color=color)  # fmt: skip
        out = io.BytesIO()
        fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _fit(text: str, limit: int) -> str:
    """Cut to `limit` half-width units (a CJK character is two), so a line stays on the
    picture whatever the script."""
    used = 0
    for i, char in enumerate(text):
        used += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if used > limit:
            return text[:i].rstrip() + "…"
    return text


async def render_async(facts: CertificateFacts, texts: CertificateTexts | None = None) -> bytes:
    return await asyncio.to_thread(render_certificate, facts, texts)
