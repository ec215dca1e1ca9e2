"""The report's two pages, as text: a ``Page`` (title, summary, sections of paragraphs, notes,
tables and figures) written as markdown and as HTML (numbers right-aligned, verdicts coloured,
long text wrapping, figures in a grid), and the HTML page's style; and tables as plain text for
the terminal. What the pages say is ``report.py``'s."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from .plots import SHARPNESS

EMPTY = "–"  # a cell with nothing to show (not recorded, not applicable); not counted as text


def md_text(s: str) -> str:
    """Text for report.md shown as the HTML page shows it: what markdown would read as markup in a
    study's words (a ``<b>`` tag, an entity, a backslash escape, ``*`` or ``_`` emphasis, a link,
    and at a line's start a heading, a quote, a list, a rule) escaped, outside `code`, which stays
    code; "<=" stays as written."""
    parts = re.split(r"(`[^`\n]+`)", s)
    for i in range(0, len(parts), 2):  # (the odd ones are code spans)
        t = re.sub(r"&(?=#?\w+;)", "&amp;", parts[i])
        t = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", t)
        t = re.sub(r"\\(?=[!-/:-@[-`{-~])|\*|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|\[(?=[^\]]*\]\()",
                   lambda m: "\\" + m[0], t)
        parts[i] = t
    s = "".join(parts)
    s = re.sub(r"(?m)^(\s*)(#{1,6}|[+-])(?=\s|$)|^(\s*)(>|\[(?=[^\]]*\]:)|[-=](?=[-=\s]*$))",
               lambda m: (m[1] or m[3] or "") + "\\" + (m[2] or m[4]), s)
    return re.sub(r"(?m)^(\s*\d+)([.)])(?=\s|$)", r"\1\\\2", s)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """Verdicts confirmed or refuted in bold, the others in italics (lighter, as on the page)."""
    def cell(c: str, i: int) -> str:
        if header[i] == "verdict" and c:
            return f"**{c}**" if c in ("confirmed", "refuted") else f"*{c}*"
        return md_text(c).replace("|", "/")
    lines = ["| " + " | ".join(map(md_text, header)) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(c, i) for i, c in enumerate(r)) + " |" for r in rows]
    return "\n".join(lines)


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, for a terminal."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in [header, *rows])


_NUMBER = r"[-+]?\d[\d,]*(\.\d+)?( ?%| pts| s)?"
_FIGURE = re.compile(rf"\[?{_NUMBER}(( ± |, | / ){_NUMBER})?\]?( \(k=\d+\))?")


def is_number(cell: str) -> bool:
    """A figure: "0.0123", "+4.5 %", "12.3 ± 0.4", "[-1.0 %, +2.0 %]", "3,242,081" (not "2.13.0")."""
    return bool(_FIGURE.fullmatch(cell))


def text(s: str) -> str:
    """Text for the HTML page: escaped, `code` as code, and a number kept on one line with its
    unit or its ± (no line breaks inside "83.90 ± 0.11 %")."""
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(s, quote=False))
    return re.sub(r"(?<=\d) (?=%|pts\b|±)|(?<=±) (?=\d)", "\u00a0", s)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    """Numeric columns right-aligned with tabular figures; a verdict column coloured by its verdict;
    long text wraps (anywhere, in a path) while short cells and figures stay on one line. On a
    narrow screen each row is a card of its cells, each named by its column (``data-label``); a row
    whose first cell is empty goes on its row above (a claim's second part), and joins its card."""
    numeric = [sum(map(is_number, col)) * 2 >= sum(c != EMPTY for c in col) for col in zip(*rows)] \
        if rows else [False] * len(header)

    def cell(c: str, i: int) -> str:
        cls = ["num"] * numeric[i] + (["nw"] if is_number(c) or len(c) <= 32 else ["long"])
        if header[i] == "verdict" and c:
            cls.append(c.split(" (")[0].replace(" ", "-"))
        return f"<td class='{' '.join(cls)}' data-label='{html.escape(header[i])}'>{text(c)}</td>" if c else "<td></td>"

    head = "".join(f"<th{' class=num' if numeric[i] else ''}>{text(h)}</th>" for i, h in enumerate(header))
    body = "".join(("<tr>" if r[0] else "<tr class=more>") + "".join(cell(c, i) for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


STYLE = """*{box-sizing:border-box}body{font-family:system-ui,sans-serif;max-width:1400px;margin:0 auto;
padding:1em;line-height:1.45;color:#222;overflow-wrap:break-word}h1{font-size:1.5em;margin:.2em 0 .6em}
h2{margin-top:1.6em;border-bottom:1px solid #ddd}h3{margin:1.2em 0 .4em}
.summary{background:#f6f8fa;border-left:4px solid #2a7ae2;padding:.6em 1em;margin:0 0 1em}
nav ul{columns:3 12em;margin:.3em 0;padding-left:1.2em}.note{font-size:13px;color:#555}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:.6em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.num{text-align:right;font-variant-numeric:tabular-nums}.nw{white-space:nowrap}
.long{min-width:10em;overflow-wrap:anywhere}code{font-size:.95em}
.confirmed{color:#176f2c;font-weight:700}.refuted{color:#b3261e;font-weight:700}
.inconclusive,.not-tested{color:#5f6368}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,420px),1fr));gap:1.2em 1.5em}
.grid .wide{grid-column:1/-1}figure{margin:0;min-width:0}img{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#444;margin-top:.3em}
@media (max-width:700px){.scroll table,.scroll tbody,.scroll tr,.scroll td{display:block}.scroll thead{display:none}
.scroll tr{border:1px solid #ccc;margin:.5em 0;padding:.2em 0}.scroll td{border:0;padding:1px 7px;text-align:left}
.scroll td:empty{display:none}.scroll tr.more{margin-top:-.5em;border-top:1px dashed #ccc}
.scroll td::before{content:attr(data-label) ": ";font-weight:600;color:#555}
.nw{white-space:normal}.long{min-width:0}}
@media print{body{max-width:none;padding:0}.scroll{overflow:visible}table{font-size:7pt;width:100%}
td,th{padding:1px 2px}.nw{white-space:normal}.long{min-width:0}tr,figure{break-inside:avoid}}"""



# ------------------------------------------------------------------ the pages

@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Note:
    """A note under a table: what it shows, and how to read it."""
    text: str


@dataclass
class Figures:
    """Figures side by side, under a heading of their own if given: (file in the figures folder, caption);
    those in ``wide`` each take a row of their own, as ``wide_figure`` does."""
    files: list[tuple[str, str]]
    heading: str = ""
    wide: list[str] = field(default_factory=list)


@dataclass
class Section:
    """A section of the page: its anchor, its name (its heading, and its entry in the contents)
    and its parts in order (a paragraph as a str, a ``Note``, a ``Table``, ``Figures``)."""
    anchor: str
    name: str
    parts: list = field(default_factory=list)


@dataclass
class Page:
    title: str
    summary: str
    sections: list[Section]


def markdown_page(page: Page, figures: Path) -> str:
    """report.md: the figures linked from the folder ``figures`` beside the page, as <img> tags
    that give their size on the page (markdown's own images show a figure at its pixels' size,
    twice that: ``shown_size``)."""
    def figure(file: str, caption: str) -> str:
        width, height = shown_size((figures / file).read_bytes())
        tag = f'<img src="{figures.name}/{file}" width={width} height={height} alt="{html.escape(caption)}">'
        return f"{tag}\n\n*{md_text(caption)}*"

    md = [f"# {md_text(page.title)}", "**Summary.** " + md_text(page.summary),
          "**Contents:** " + " · ".join(f"[{s.name}](#{s.anchor})" for s in page.sections)]
    for s in page.sections:
        md += [f'<a id="{s.anchor}"></a>', f"## {s.name}"]
        for part in s.parts:
            if isinstance(part, Table):
                md.append(md_table(part.header, part.rows))
            elif isinstance(part, Figures):
                md += [f"### {part.heading}"] * bool(part.heading)
                md += [figure(f, c) for f, c in part.files]
            else:
                md.append(md_text(part.text if isinstance(part, Note) else part))
    return "\n\n".join(md) + "\n"


def html_page(page: Page, figures: Path, self_contained: bool = False) -> str:
    """report.html: the figures linked from the folder ``figures`` beside the page, or embedded
    (data: URIs) to send the page alone; a figure much wider than tall, or one its ``Figures`` names
    wide, spans the page. A linked figure opens at full size (a phone shrinks it past reading)."""
    def figure(file: str, caption: str, own_row: bool) -> str:
        data = (figures / file).read_bytes()
        src = "data:image/png;base64," + base64.b64encode(data).decode() if self_contained else f"{figures.name}/{file}"
        width, height = shown_size(data)
        wide = " class=wide" if own_row or wide_figure(width, height) else ""
        img = f'<img src="{src}" width={width} height={height} alt="{html.escape(caption)}">'
        if not self_contained:  # (a browser opens no data: URI from a link)
            img = f'<a href="{src}">{img}</a>'
        return f"<figure{wide}>{img}<figcaption>{text(caption)}</figcaption></figure>"

    def part(p) -> str:
        if isinstance(p, Table):
            return html_table(p.header, p.rows)
        if isinstance(p, Figures):
            heading = f"<h3>{text(p.heading)}</h3>" if p.heading else ""
            return heading + "<div class=grid>" + "".join(figure(f, c, f in p.wide) for f, c in p.files) + "</div>"
        return f"<p class=note>{text(p.text)}</p>" if isinstance(p, Note) else f"<p>{text(p)}</p>"

    title = html.escape(page.title)
    body = [f"<header><h1>{title}</h1>", f"<p class=summary><b>Summary.</b> {text(page.summary)}</p>",
            "<nav><b>Contents</b><ul>" + "".join(f'<li><a href="#{s.anchor}">{text(s.name)}</a></li>'
                                                for s in page.sections) + "</ul></nav></header>"]
    body += [f"<section id={s.anchor}><h2>{text(s.name)}</h2>{''.join(map(part, s.parts))}"
             "</section>" for s in page.sections]
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from a PNG's header."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def shown_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a figure (``plots.save``'s PNG) on the page, for its <img> tag: its
    pixels over ``plots.SHARPNESS``, the pixels it was drawn with for each one shown."""
    return tuple(round(n / SHARPNESS) for n in png_size(data))


def wide_figure(width: int, height: int) -> bool:
    """A row of images (much wider than tall, and large), which the page lets span its width."""
    return width > 1.6 * height and width > 800
