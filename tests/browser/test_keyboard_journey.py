"""In Chromium, the main journey by keyboard alone (issue 16, "Accessibility"): only Tab, Shift+Tab,
Enter, Space, arrow keys and typed text — no click, no ``fill``, no ``check``.

Acme (DESIGN example 1's start) on 2026-04-01: sign in → My account → Options → Modify subscription
→ Pro chosen with an arrow key (the order summary refreshes) → Checkout → Modify order returns to
the choice → Checkout → My account → Cart → the item's Modify returns to it → Checkout → a new card
typed in → Place order → the confirmation → My account → Options → Cancel renewal → its
confirmation with a reason → renewal cancelled.

Every element that takes the focus on the way must be on screen and show that it has it (an
outline or shadow of its own, or of the card a hidden radio button stands for): a focus that cannot
be seen is as lost as a focus that cannot be reached.
"""

from __future__ import annotations

import re

import pytest

from prorata.catalog.services import catalog_load_demo
from prorata.subscriptions.models import Subscription, SubscriptionEvent
from prorata_core.periods import utc
from tests.app.web.billing_support import acme_world

pytestmark = pytest.mark.browser

#: Whether the focused element is on screen and shows its focus; a reason when it does not.
FOCUS_CHECK = """() => {
  const el = document.activeElement;
  // past the page's last element the focus goes to the browser's own controls, then comes back
  if (!el || el === document.body) return "";
  const shown = (node) => {
    const style = getComputedStyle(node);
    return (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
      || style.boxShadow !== "none";
  };
  // a radio button drawn as a card (opacity 0) shows its focus on the card that follows it
  const hidden = parseFloat(getComputedStyle(el).opacity) === 0;
  const face = hidden && el.nextElementSibling ? el.nextElementSibling : el;
  const box = face.getBoundingClientRect();
  const what = `${el.tagName.toLowerCase()} "${(el.textContent || el.name || el.id).trim().slice(0, 40)}"`;
  if (box.width === 0 || box.height === 0) return `${what} has no size`;
  if (box.bottom < 0 || box.top > innerHeight || box.right < 0 || box.left > innerWidth)
    return `${what} is off screen`;
  if (!shown(face)) return `${what} shows no focus`;
  return "";
}"""


class Keyboard:
    """The keyboard, and the checks made at each focus it moves."""

    def __init__(self, page) -> None:
        self.page = page
        self.stops = 0

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)

    def tab_to(self, predicate: str, *, limit: int = 80, back: bool = False) -> None:
        """Press Tab (``back``: Shift+Tab) until the focused element satisfies the JS
        ``predicate`` of ``el``; every element focused on the way must show its focus."""
        for _ in range(limit):
            self.press("Shift+Tab" if back else "Tab")
            problem = self.page.evaluate(FOCUS_CHECK)
            assert not problem, f"{problem} (on {self.page.url})"
            self.stops += 1
            if self.page.evaluate(
                    f"() => {{ const el = document.activeElement; return !!({predicate}); }}"):
                return
        raise AssertionError(f"Tab never reached {predicate} on {self.page.url}")


def text(value: str) -> str:
    return f"el.textContent.replace(/\\s+/g, ' ').trim() === {value!r}"


def label(value: str) -> str:
    return f"el.labels && el.labels[0] && el.labels[0].textContent.trim() === {value!r}"


def test_the_main_journey_by_keyboard_alone(page, clock, screenshots):
    from playwright.sync_api import expect

    catalog_load_demo()
    acme = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    keys = Keyboard(page)
    heading = page.get_by_role("heading", level=1)

    # sign in
    page.goto("/accounts/login/")
    assert page.evaluate(f"() => {{ const el = document.activeElement; return {label('Email')}; }}")
    keys.type("alice@acme.example")  # the e-mail field has the focus when the page opens
    keys.tab_to(label("Password"))
    keys.type("pw")
    keys.press("Enter")
    expect(page).to_have_url(re.compile(rf"/billing/{acme.account.pk}/$"))
    expect(heading).to_have_text("My account")

    # My account → Options → Modify subscription
    keys.tab_to("el.tagName === 'SUMMARY'")
    keys.press("Enter")
    expect(page.get_by_role("link", name="Modify subscription")).to_be_visible()
    keys.tab_to(text("Modify subscription"))
    keys.press("Enter")
    expect(heading).to_have_text("Modify subscription")

    # the plans are one radio group: Tab enters it on the current plan, an arrow moves to Pro
    keys.tab_to("el.name === 'plan'")
    assert page.evaluate("() => document.activeElement.value") == "standard"
    keys.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.value") == "pro"
    summary = page.locator("#order-summary")
    expect(summary).to_contain_text("$2,985.86")
    expect(summary).to_contain_text("-$1,790.14")
    screenshots.take(page, "k1-summary")
    keys.tab_to(text("Checkout"))
    keys.press("Enter")
    expect(heading).to_have_text("Checkout")

    # Modify order returns to the choice
    keys.tab_to(text("Modify order"))
    keys.press("Enter")
    expect(heading).to_have_text("Modify subscription")
    expect(page.locator("input[name=plan][value=pro]")).to_be_checked()
    keys.tab_to(text("Checkout"))
    keys.press("Enter")
    expect(heading).to_have_text("Checkout")

    # the cart holds it too (My account → Cart), and its Modify returns to it
    keys.tab_to(text("Acme Corp"), back=True)
    keys.press("Enter")
    expect(heading).to_have_text("My account")
    keys.tab_to("el.getAttribute('href') && el.getAttribute('href').endsWith('/cart/')")
    keys.press("Enter")
    expect(heading).to_have_text("Cart")
    screenshots.take(page, "k2-cart")
    keys.tab_to(text("Modify Webinar"))
    keys.press("Enter")
    expect(heading).to_have_text("Modify subscription")
    expect(page.locator("input[name=plan][value=pro]")).to_be_checked()
    expect(summary).to_contain_text("$2,985.86")
    keys.tab_to(text("Checkout"))
    keys.press("Enter")
    expect(heading).to_have_text("Checkout")

    # a new card, typed in; Space selects its radio button
    keys.tab_to("el.type === 'radio' && el.name === 'payment_method'")
    for _ in range(4):
        if page.evaluate("() => document.activeElement.labels[0].textContent.trim()") == (
                "A new card"):
            break
        keys.press("ArrowDown")
    keys.press("Space")
    expect(page.get_by_label("A new card")).to_be_checked()
    # the card goes into the payment gateway's own form, a frame: Tab enters it at the number
    keys.tab_to("el.tagName === 'IFRAME' && el.title === 'Card details'")
    card = page.frame_locator("iframe.card-frame")
    expect(card.get_by_label("Card number")).to_be_focused()
    # the frame's own field shows its focus (the page's check cannot look into the frame)
    frame = next(f for f in page.frames if "/sandbox-gateway/v1/card-form" in f.url)
    assert frame.evaluate("() => { const s = getComputedStyle(document.activeElement); "
                          "return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0; }")
    keys.type("4242 4242 4242 4242")
    keys.press("Tab")
    expect(card.get_by_label("Expiry (MM/YY)")).to_be_focused()
    keys.type("12/30")
    keys.press("Tab")
    expect(card.get_by_label("Security code")).to_be_focused()
    keys.type("123")
    screenshots.take(page, "k3-checkout")
    keys.tab_to(text("Place order"))
    keys.press("Enter")
    expect(heading).to_have_text("Thank you: your order is complete")
    expect(page.locator("main")).to_contain_text(re.compile(r"Amount paid\s*\$2,985\.86"))
    subscription = Subscription.objects.get(account=acme.account)
    assert (subscription.plan.code, subscription.period_end) == ("pro", utc(2027, 4, 1))
    screenshots.take(page, "k4-confirmation")

    # back to My account → Options → Cancel renewal → confirmed with a reason
    keys.tab_to(text("Back to My account"))
    keys.press("Enter")
    expect(heading).to_have_text("My account")
    keys.tab_to("el.tagName === 'SUMMARY'")
    keys.press("Space")
    keys.tab_to(text("Cancel renewal"))
    keys.press("Enter")
    expect(heading).to_have_text("Cancel renewal")
    keys.tab_to(label("Why are you leaving? (optional)"))
    keys.type("Too many features")
    keys.tab_to("el.tagName === 'BUTTON' && " + text("Cancel renewal"))
    screenshots.take(page, "k5-cancel-renewal")
    keys.press("Enter")
    expect(page.locator(".product-card")).to_contain_text("Renewal cancelled")
    subscription.refresh_from_db()
    assert subscription.auto_renew is False
    assert SubscriptionEvent.objects.filter(subscription=subscription,
                                            after__reason="Too many features").exists()
    assert keys.stops > 10
