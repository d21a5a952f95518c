"""Write the yearly report to disk: the HTML page and, when WeasyPrint is installed, its PDF twin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg

from geo_monitor.report.build import ReportData, build_report
from geo_monitor.report.public import build_public_report
from geo_monitor.report.render import render_html, write_pdf
from geo_monitor.settings import Settings


@dataclass
class Written:
    """What was written: the HTML page, the PDF (None without WeasyPrint) and whether anything changed."""

    html: Path
    pdf: Path | None
    changed: bool
    data: ReportData


def report_html(conn: psycopg.Connection, year: int, *, public: bool = False, lang: str = "fr",
                settings: Settings | None = None, progress: Callable[[str], None] | None = None,
                today: date | None = None) -> tuple[str, ReportData]:
    """Build one edition of the year's report and return (HTML, its data)."""
    build = build_public_report if public else build_report
    data = build(conn, year, settings=settings, progress=progress, today=today)
    return render_html(data, lang=lang, generated=today), data


def write_report(conn: psycopg.Connection, year: int, out: Path, *, public: bool = False, lang: str = "fr",
                 pdf: bool = True, settings: Settings | None = None,
                 progress: Callable[[str], None] | None = None, today: date | None = None) -> Written:
    """Write the report to ``out`` (and ``out`` with .pdf); a page equal to the one on disk is left untouched."""
    html, data = report_html(conn, year, public=public, lang=lang, settings=settings, progress=progress, today=today)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    changed = not out.exists() or out.read_text(encoding="utf-8") != html
    if changed:
        out.write_text(html, encoding="utf-8")
    pdf_path = out.with_suffix(".pdf")
    made = False
    if pdf and (changed or not pdf_path.exists()):
        if progress:
            progress("PDF")
        made = write_pdf(html, pdf_path)
    return Written(out, pdf_path if (made or pdf_path.exists()) and pdf else None, changed, data)
