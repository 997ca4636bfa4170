"""Invoices and credit notes as PDF, from their immutable snapshot (DESIGN §1 S12, STYLE rule 5).

:func:`render_document_pdf` draws exactly what the snapshot says — it computes nothing but the tax
summary per rate (sums of the lines' own tax) — in English or French: labels through gettext, dates
and amounts in the reader's locale (``11 mars 2026``, ``1 790,14 €``). The font is DejaVu Sans, kept
in ``fonts/`` with its license, so accents, ``€`` and French no-break spaces render everywhere.

The output depends only on the snapshot and the language: the PDF's creation date is the document's
issue instant, so rendering twice gives the same bytes.

Snapshot shape (amounts are integer minor units, instants ISO 8601 UTC strings)::

    {"kind": "invoice" | "credit_note", "number", "issued_at", "due_at" | None,
     "refers_to" | None, "currency",
     "seller": {"name", "address", "country", "vat_number"}, "buyer": {...same...},
     "lines": [{"description", "period_start", "period_end", "quantity", "unit_amount", "ratio",
                "amount", "tax_rate_bp", "tax"}],
     "subtotal", "tax", "total", "credit_applied", "amount_paid", "amount_due",
     "tax_rule": "domestic" | "eu_consumer" | "reverse_charge" | "outside_eu",
     "mention" | None, "status": "paid" | "open" | "void"}

Read at render time beside the snapshot (:func:`prorata.billing.receipts.document_pdf_snapshot`),
all optional: each line's ``plan_code``, ``plan_name`` and ``cycle_code`` (the line text is then
written in the document's language, else the stored English ``description`` is printed);
``payments`` (``[{"method": "card" | "bank_transfer", "brand", "last4", "reference", "at",
"amount"}]``) and ``credit_settled`` (``[{"amount", "at", "credit_note"}]``: credit created
after issue that paid part of it, already counted in ``credit_applied``); for a credit note
``credit_applied_to`` (``[{"number", "amount"}]``), ``refunded`` and ``kept_as_credit``;
``time_zone`` (IANA, the zone dates are shown in; UTC by default). The operator's logo (``PRORATA_SELLER_LOGO``, a PNG or JPEG path) and legal footer
(``PRORATA_SELLER_LEGAL_FOOTER``) come from settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext, pgettext
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from prorata.common.clock import instant_from_json
from prorata.notifications.formatting import format_day, format_money
from prorata_core.money import Money
from prorata_core.tax import REVERSE_CHARGE_MENTION

#: The core's English mention, translated on the document (its text is the msgid).
gettext_noop("Reverse charge: VAT to be accounted for by the recipient "
             "(Article 196, Council Directive 2006/112/EC)")
DAY = 86_400

FONTS = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVuSans"

INK = (31, 41, 51)
MUTED = (97, 110, 124)
RULE = (210, 218, 226)
ACCENT = (36, 59, 83)
HEADING_FILL = (240, 244, 248)
STATUS_COLOURS = {"paid": (25, 135, 84), "open": (180, 83, 9), "void": (120, 120, 120)}

MARGIN = 18
WIDTH = 210 - 2 * MARGIN


def render_document_pdf(snapshot: Mapping[str, Any], language: str) -> bytes:
    """The PDF of an issued invoice or credit note, in ``language`` (``"en"`` or ``"fr"``)."""
    with translation.override(language):
        document = _Document(snapshot, language)
        document.draw()
        return bytes(document.output())


class _Document(FPDF):
    def __init__(self, snapshot: Mapping[str, Any], language: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.snapshot = snapshot
        self.language = language
        self.currency = str(snapshot["currency"])
        self.is_invoice = snapshot["kind"] == "invoice"
        try:
            self.zone: tzinfo = ZoneInfo(str(snapshot.get("time_zone") or "UTC"))
        except (ValueError, ZoneInfoNotFoundError):
            self.zone = UTC
        self.doc_title = _("Invoice") if self.is_invoice else _("Credit note")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=22)
        self.add_font(FONT, "", FONTS / "DejaVuSans.ttf")
        self.add_font(FONT, "B", FONTS / "DejaVuSans-Bold.ttf")
        issued = _instant(snapshot["issued_at"])
        self.set_creation_date(issued)
        self.set_title(f"{self.doc_title} {snapshot['number']}")
        self.set_author(str(snapshot["seller"]["name"]))
        self.set_creator("Prorata")
        self.set_lang(language)
        self.alias_nb_pages()

    # -- pieces -----------------------------------------------------------------------------

    def draw(self) -> None:
        self.add_page()
        self._header_block()
        self._parties()
        self._lines()
        self._totals()
        self._notes()

    def footer(self) -> None:
        self.set_y(-14)
        self._font(8, colour=MUTED)
        seller = self.snapshot["seller"]
        parts = [str(seller["name"])]
        if seller.get("vat_number"):
            parts.append(_("VAT number: %(number)s") % {"number": seller["vat_number"]})
        parts.append(f"{self.doc_title} {self.snapshot['number']}")
        self.cell(WIDTH * 0.8, 5, "  ·  ".join(parts))
        self.cell(WIDTH * 0.2, 5, _("Page %(page)s of %(pages)s")
                  % {"page": self.page_no(), "pages": "{nb}"}, align="R")

    def _header_block(self) -> None:
        snapshot = self.snapshot
        top = self.get_y()
        logo = getattr(settings, "PRORATA_SELLER_LOGO", "")
        if logo and Path(logo).is_file():
            self.image(str(logo), x=MARGIN, y=top, h=14)
            self.set_xy(MARGIN, top + 16)
        self._font(15, bold=True, colour=ACCENT)
        self.multi_cell(WIDTH * 0.5, 7, str(snapshot["seller"]["name"]),
                        new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        left_bottom = self.get_y()

        right = MARGIN + WIDTH * 0.5
        self.set_xy(right, top)
        self._font(20, bold=True)
        self.cell(WIDTH * 0.5, 9, self.doc_title.upper(), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
        self._font(10, bold=True)
        self.cell(WIDTH * 0.5, 6, _("No. %(number)s") % {"number": snapshot["number"]},
                  align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
        self._font(9, colour=MUTED)
        facts = [_("Issue date: %(date)s") % {"date": self._day(snapshot["issued_at"])}]
        if snapshot.get("due_at"):
            facts.append(_("Due date: %(date)s") % {"date": self._day(snapshot["due_at"])})
        if snapshot.get("refers_to"):
            facts.append(_("Corrects invoice %(number)s") % {"number": snapshot["refers_to"]})
        # The periods' boundaries are instants: the zone their days are read in is named.
        facts.append(_("Dates in the %(zone)s time zone") % {"zone": str(self.zone)})
        for fact in facts:
            self.cell(WIDTH * 0.5, 5, fact, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
        status = self._status_label()
        if status:
            self.ln(1.5)
            colour = STATUS_COLOURS.get(str(snapshot.get("status")), MUTED)
            self._font(9, bold=True, colour=colour)
            self.set_draw_color(*colour)
            width = self.get_string_width(status) + 8
            self.set_x(MARGIN + WIDTH - width)
            self.cell(width, 6.5, status, border=1, align="C", new_x=XPos.LMARGIN,
                      new_y=YPos.NEXT)
        self.set_y(max(self.get_y(), left_bottom) + 8)
        self._rule()

    def _parties(self) -> None:
        top = self.get_y() + 5
        column = (WIDTH - 10) / 2
        bottoms = []
        for index, (label, party) in enumerate(
            ((pgettext("document party", "From"), self.snapshot["seller"]),
             (_("Bill to"), self.snapshot["buyer"]))
        ):
            x = MARGIN + index * (column + 10)
            self.set_xy(x, top)
            self._font(8, bold=True, colour=MUTED)
            self.cell(column, 5, label.upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
            self._font(10.5, bold=True)
            self.multi_cell(column, 5.5, str(party["name"]), new_x=XPos.LEFT, new_y=YPos.NEXT)
            self._font(9.5)
            lines = [line.strip() for line in str(party.get("address") or "").splitlines()]
            lines = [line for line in lines if line]
            country = self._country(str(party.get("country") or ""))
            if country and not (lines and self._names_country(lines[-1], party)):
                lines.append(country)  # once: an address may end with the country already
            text = "\n".join(lines)
            if text:
                self.multi_cell(column, 5, text, new_x=XPos.LEFT, new_y=YPos.NEXT)
            if party.get("vat_number"):
                self._font(9, colour=MUTED)
                self.cell(column, 5, _("VAT number: %(number)s") % {"number": party["vat_number"]},
                          new_x=XPos.LEFT, new_y=YPos.NEXT)
            if party.get("email"):
                self._font(9, colour=MUTED)
                self.cell(column, 5, str(party["email"]), new_x=XPos.LEFT, new_y=YPos.NEXT)
            bottoms.append(self.get_y())
        self.set_y(max(bottoms) + 8)

    def _lines(self) -> None:
        self._font(9)
        self.set_draw_color(*RULE)
        headings = FontFace(emphasis="BOLD", color=ACCENT, fill_color=HEADING_FILL)
        with self.table(
            col_widths=(74, 12, 28, 16, 44),
            text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
            borders_layout="HORIZONTAL_LINES",
            headings_style=headings,
            line_height=4.8,
            padding=(2, 1.5, 2, 1.5),
            width=WIDTH,
        ) as table:
            heading = table.row()
            for label in (_("Description"), _("Qty"), _("Unit price"), _("VAT"),
                          _("Amount excl. VAT")):
                heading.cell(label)
            for line in self.snapshot["lines"]:
                row = table.row()
                row.cell(self._line_text(line))
                row.cell(str(line["quantity"]))
                row.cell(self._money(line["unit_amount"]))
                row.cell(self._rate(int(line["tax_rate_bp"])))
                row.cell(self._money(line["amount"]))

    def _totals(self) -> None:
        snapshot = self.snapshot
        rows: list[tuple[str, int, bool]] = [(_("Subtotal excl. VAT"), snapshot["subtotal"], False)]
        by_rate: dict[int, int] = {}
        for line in snapshot["lines"]:
            rate = int(line["tax_rate_bp"])
            by_rate[rate] = by_rate.get(rate, 0) + int(line["tax"])
        if len(by_rate) == 1 and sum(by_rate.values()) == snapshot["tax"]:
            [(rate, _amount)] = by_rate.items()
            rows.append((_("VAT %(rate)s") % {"rate": self._rate(rate)}, snapshot["tax"], False))
        else:
            rows += [(_("VAT %(rate)s") % {"rate": self._rate(rate)}, tax, False)
                     for rate, tax in sorted(by_rate.items())]
        rows.append((_("Total incl. VAT"), snapshot["total"], True))
        if self.is_invoice:
            if snapshot.get("credit_applied"):
                rows.append((_("Credit applied"), -int(snapshot["credit_applied"]), False))
            if snapshot.get("amount_paid"):
                rows.append((_("Amount paid"), -int(snapshot["amount_paid"]), False))
            rows.append((_("Amount due"), snapshot["amount_due"], True))
        self.ln(4)
        if self.get_y() + 6.5 * len(rows) > self.page_break_trigger:
            self.add_page()  # the totals stay together
        label_width, value_width = 52, 34
        x = MARGIN + WIDTH - label_width - value_width
        for label, amount, strong in rows:
            if strong:
                self.set_draw_color(*RULE)
                self.line(x, self.get_y(), MARGIN + WIDTH, self.get_y())
            self.set_x(x)
            self._font(10 if strong else 9.5, bold=strong, colour=INK if strong else MUTED)
            self.cell(label_width, 6.5, label, new_x=XPos.RIGHT, new_y=YPos.TOP)
            self._font(10 if strong else 9.5, bold=strong)
            self.cell(value_width, 6.5, self._money(amount), align="R", new_x=XPos.LMARGIN,
                      new_y=YPos.NEXT)

    def _notes(self) -> None:
        notes = [*self._payment_notes(), *self._tax_notes(), *self._credit_notes()]
        if not notes:
            return
        self.ln(8)
        self._font(9, colour=MUTED)
        for note in notes:
            self.multi_cell(WIDTH, 4.8, note, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(1)
        legal = getattr(settings, "PRORATA_SELLER_LEGAL_FOOTER", "")
        if legal:
            self.ln(3)
            self._font(8, colour=MUTED)
            self.multi_cell(WIDTH, 4.2, str(legal), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _payment_notes(self) -> list[str]:
        """How and when an invoice was paid: card brand and last four, bank transfer, credit."""
        if not self.is_invoice:
            return []
        notes = []
        for payment in self.snapshot.get("payments") or []:
            values = {"amount": self._money(int(payment["amount"])),
                      "date": self._day(str(payment["at"]))}
            if payment.get("method") == "bank_transfer":
                text = _("%(amount)s paid by bank transfer on %(date)s.") % values
                if payment.get("reference"):
                    text += " " + _("Reference: %(reference)s.") % {
                        "reference": payment["reference"]}
            elif payment.get("last4"):
                text = _("%(amount)s paid by card (%(brand)s ending in %(last4)s) on "
                         "%(date)s.") % {**values, "last4": payment["last4"],
                                         "brand": str(payment.get("brand") or "").capitalize()}
            else:
                text = _("%(amount)s paid by card on %(date)s.") % values
            notes.append(text)
        settled = self.snapshot.get("credit_settled") or []
        at_issue = int(self.snapshot.get("credit_applied") or 0) - sum(
            int(row["amount"]) for row in settled)
        if at_issue > 0:
            notes.append(_("%(amount)s paid from your account's credit on %(date)s.") % {
                "amount": self._money(at_issue),
                "date": self._day(str(self.snapshot["issued_at"]))})
        for row in settled:  # credit created after the invoice was issued (billing.credit)
            values = {"amount": self._money(int(row["amount"])), "date": self._day(str(row["at"])),
                      "number": row.get("credit_note") or ""}
            notes.append(
                _("%(amount)s paid from your account's credit (credit note %(number)s) on "
                  "%(date)s.") % values if values["number"] else
                _("%(amount)s paid from your account's credit on %(date)s.") % values)
        return notes

    def _tax_notes(self) -> list[str]:
        rule = self.snapshot.get("tax_rule")
        mention = self.snapshot.get("mention")
        if rule == "reverse_charge":
            return [_(str(mention or REVERSE_CHARGE_MENTION))]
        if rule == "outside_eu":
            return [_("VAT not applicable: the customer is established outside the European "
                      "Union, where the service is supplied (Articles 44 and 59, Council "
                      "Directive 2006/112/EC).")]
        return [_(str(mention))] if mention else []

    def _credit_notes(self) -> list[str]:
        """Where a credit note's amount went: an invoice, a refund, or the account's credit."""
        if self.is_invoice or not self.snapshot.get("refers_to"):
            return []
        notes = [_("This credit note corrects invoice %(number)s.")
                 % {"number": self.snapshot["refers_to"]}]
        for applied in self.snapshot.get("credit_applied_to") or []:
            notes.append(_("%(amount)s applied to invoice %(number)s.") % {
                "amount": self._money(int(applied["amount"])), "number": applied["number"]})
        if self.snapshot.get("refunded"):
            notes.append(_("%(amount)s refunded.") % {
                "amount": self._money(int(self.snapshot["refunded"]))})
        kept = self.snapshot.get("kept_as_credit")
        if kept is None and "credit_applied_to" not in self.snapshot:
            kept = -int(self.snapshot["total"])
        if kept:
            notes.append(_("%(amount)s kept as account credit, used first on your next "
                           "payment.") % {"amount": self._money(int(kept))})
        return notes

    # -- helpers ----------------------------------------------------------------------------

    def _font(self, size: float, *, bold: bool = False, colour: tuple[int, int, int] = INK) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.set_text_color(*colour)

    def _rule(self) -> None:
        self.set_draw_color(*RULE)
        self.line(MARGIN, self.get_y(), MARGIN + WIDTH, self.get_y())

    def _money(self, minor_units: int) -> str:
        return format_money(Money(int(minor_units), self.currency), self.language)

    def _day(self, text: str) -> str:
        return format_day(_instant(text), self.language, self.zone)

    def _rate(self, basis_points: int) -> str:
        """2000 → ``20%`` (en) / ``20 %`` (fr); 550 → ``5.5%`` / ``5,5 %``."""
        number = format_decimal(Decimal(basis_points).scaleb(-2), format="#,##0.##",
                                locale=self._locale())
        return _("%(rate)s%%") % {"rate": number}

    def _line_text(self, line: Mapping[str, Any]) -> str:
        parts = [self._line_title(line)]
        if line.get("period_start") and line.get("period_end"):
            parts.append(_("%(start)s to %(end)s") % {
                "start": self._day(line["period_start"]), "end": self._day(line["period_end"])
            })
        proration = self._proration(line)
        if proration:
            parts.append(proration)
        return "\n".join(parts)

    def _line_title(self, line: Mapping[str, Any]) -> str:
        """The line in the document's language: ``Lite, monthly, 5 licenses`` / ``Temps non
        utilisé de Lite, mensuel, 5 licences``; the stored English text when the plan is unknown."""
        if not line.get("plan_name"):
            return str(line["description"])
        quantity = int(line["quantity"])
        values = {
            "plan": line["plan_name"], "cycle": _cycle(str(line.get("cycle_code") or "")),
            "licenses": ngettext("%(count)s license", "%(count)s licenses", quantity)
            % {"count": quantity},
        }
        if line.get("kind") == "credit":
            return _("Unused time of %(plan)s, %(cycle)s, %(licenses)s") % values
        return _("%(plan)s, %(cycle)s, %(licenses)s") % values

    def _proration(self, line: Mapping[str, Any]) -> str:
        """The exact share of the period a prorated line bills: ``275 of 365 days`` when both are
        whole days, else in seconds. The whole period is the line's own [start, end) over its
        ratio, exactly (the ratio is the unused share, in seconds)."""
        ratio = str(line.get("ratio") or "1")
        numerator, _sep, denominator = ratio.partition("/")
        try:
            share = Fraction(int(numerator), int(denominator or 1))
        except (ValueError, ZeroDivisionError):
            return ""
        if share in (0, 1):
            return ""
        if not (line.get("period_start") and line.get("period_end")):
            return _("Prorated: %(ratio)s of the period") % {"ratio": ratio}
        part = int((_instant(line["period_end"]) - _instant(line["period_start"])).total_seconds())
        whole = part / share
        if whole.denominator != 1:
            return _("Prorated: %(ratio)s of the period") % {"ratio": ratio}
        total = int(whole)
        if part % DAY == 0 and total % DAY == 0:
            return ngettext("Prorated: %(part)s of %(whole)s day",
                            "Prorated: %(part)s of %(whole)s days", total // DAY) % {
                "part": self._count(part // DAY), "whole": self._count(total // DAY)}
        return ngettext("Prorated: %(part)s of %(whole)s second",
                        "Prorated: %(part)s of %(whole)s seconds", total) % {
            "part": self._count(part), "whole": self._count(total)}

    def _count(self, value: int) -> str:
        return format_decimal(value, locale=self._locale())

    def _status_label(self) -> str:
        status = self.snapshot.get("status")
        if status == "void":
            return _("Void").upper()
        if not self.is_invoice:
            return ""
        if status == "paid":
            return _("Paid").upper()
        if status == "open":
            return _("Payment due").upper()
        return ""

    def _names_country(self, text: str, party: Mapping[str, Any]) -> bool:
        code = str(party.get("country") or "").upper()
        names = {code.casefold(), self._country(code).casefold(),
                 str(Locale.parse("en").territories.get(code, code)).casefold()}
        return text.strip().casefold() in names

    def _country(self, code: str) -> str:
        return str(self._locale().territories.get(code.upper(), code)) if code else ""

    def _locale(self) -> Locale:
        try:
            return Locale.parse(self.language.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            return Locale.parse("en")


def _instant(text: str) -> datetime:
    return instant_from_json(text)


def _cycle(code: str) -> str:
    labels = {"monthly": pgettext("billing period", "monthly"),
              "quarterly": pgettext("billing period", "quarterly"),
              "annual": pgettext("billing period", "annual")}
    return labels.get(code, code.replace("_", " "))
