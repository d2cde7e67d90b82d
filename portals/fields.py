"""Typing into a portal's form without echoing the value.

`Locator.fill(value)` is what a person typing does, but Playwright's driver prints the call with its value
in its debug channel (DEBUG=pw:api): a password, a TOTP code, a member id, a date of birth. `enter` sets the
value the way fill does (the field cleared, the value set through the element's own setter, `input` and
`change` events the page's script listens to) with the value passed as an argument of an evaluate, which
the channel does not print. Used for every secret and every PHI field; plain fields (a payer name in a
combobox) still use fill.
"""

from __future__ import annotations

from playwright.async_api import Locator

_SET_VALUE = """(el, value) => {
  el.focus();
  const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, "value").set.call(el, value);
  el.dispatchEvent(new Event("input", {bubbles: true}));
  el.dispatchEvent(new Event("change", {bubbles: true}));
}"""


async def enter(field: Locator, value: str) -> None:
    """fill(value) without the value in any driver log line (see the module's docstring)."""
    await field.fill("")  # Playwright's actionability checks (visible, enabled, editable) and a clear field
    await field.evaluate(_SET_VALUE, value)
