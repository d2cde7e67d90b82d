"""The naive baseline: the claim-status script a competent engineer writes on day one.

Plain Playwright (sync API) and pyotp; no portal-agent code. For each claim, sequentially: a fresh browser
context, log in through the portal's real screens (cookie banner, password, MFA method picker + TOTP,
announcements/terms, organization picker, as they come), search the claim (payer claim number when known,
else member + date of service as the portal's form wants), open the detail, read status label, claim
number, billed, paid and the line reasons (codes or text), close the context. Every resource is loaded
(nothing blocked); waits are on locators. One Chromium for the run.

    python -m bench.naive INPUT.json OUTPUT.json

INPUT: {"executable_path": "/usr/bin/chromium-headless-shell" | null,
        "portals": {"<portal>": {"url", "username", "password", "totp_secret"}},
        "org": {"id": "ORG1", "name": "...", "state": "Franklin"},
        "claims": [{"claim_id", "pcn", "portal", "payer_id", "payer_name", "payer_claim_number" | null,
                    "member_id", "dob", "dos_from", "dos_to", "billing_npi", "alt_form": bool}]}
OUTPUT: {"logins": N, "results": [{"claim_id", "portal", "ok", "seconds", "error", "status_label",
         "claim_number", "billed", "paid", "member_id", "lines": [{"line", "reasons": [...]}]}]}
Errors are recorded per claim (type + first line of the message), never fatal. The output file holds PHI
(member ids) exactly like the input: it stays in the benchmark's temp directory.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import date

import pyotp
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

TIMEOUT_MS = 30_000


def mdy(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%m/%d/%Y")


def totp(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def visible_now(locator, timeout: int = 1500) -> bool:
    try:
        locator.first.wait_for(state="visible", timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - not shown: the screen did not come
        return False


# ---------------------------------------------------------------- clearinghouse (Meridian Exchange)
def ch_mfa(page: Page, secret: str) -> None:
    page.get_by_label("Authenticator app").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Verification code").fill(totp(secret))
    page.get_by_role("button", name="Verify").click()


def ch_login(page: Page, p: dict, org: dict) -> None:
    page.goto(p["url"] + "/login")
    if visible_now(page.get_by_role("button", name="Accept all cookies"), 3000):
        page.get_by_role("button", name="Accept all cookies").click()
    page.get_by_label("User ID").fill(p["username"])
    page.get_by_label("Password").fill(p["password"])
    page.get_by_role("button", name="Log in").click()
    mfa = page.get_by_label("Authenticator app")
    announcements = page.get_by_role("heading", name="Announcements and terms of use")
    remind = page.get_by_role("button", name="Remind me later")
    state = page.get_by_role("combobox", name="State")
    expect(mfa.or_(announcements).or_(remind).or_(state).first).to_be_visible()
    if mfa.is_visible():
        ch_mfa(page, p["totp_secret"])
        expect(announcements.or_(remind).or_(state).first).to_be_visible()
    if remind.is_visible():
        remind.click()
        expect(announcements.or_(state).first).to_be_visible()
    if announcements.is_visible():
        page.get_by_role("button", name="Continue").click()
    state.fill(org["state"][:3])
    page.get_by_role("option", name=org["state"], exact=True).click()
    page.get_by_role("combobox", name="Organization").fill(org["name"][:4])
    page.get_by_role("option", name=org["name"], exact=True).click()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("iframe#newBodyFrame")).to_be_attached()


def ch_lookup(page: Page, p: dict, org: dict, c: dict) -> dict:
    page.goto(f"{p['url']}/app?appUrl=/apps/claim-status&orgId={org['id']}&payerId={c['payer_id']}")
    frame = page.frame_locator("#newBodyFrame")
    expect(frame.locator("main.app")).to_be_visible()
    if c["payer_claim_number"]:
        frame.get_by_role("tab", name="Claim number search").click()
        frame.get_by_label("Payer claim number").fill(c["payer_claim_number"])
    elif c["alt_form"]:
        frame.get_by_label("Subscriber ID").fill(c["member_id"])
        box = frame.get_by_label("Patient is subscriber")
        if not box.is_checked():
            box.check()
        frame.get_by_label("Subscriber date of birth").fill(mdy(c["dob"]))
        frame.get_by_label("Service from date").fill(mdy(c["dos_from"]))
        frame.get_by_label("Service to date").fill(mdy(c["dos_to"]))
        frame.get_by_label("Provider NPI").fill(c["billing_npi"])
    else:
        frame.get_by_label("Member ID").fill(c["member_id"])
        frame.get_by_label("Service from date").fill(mdy(c["dos_from"]))
        frame.get_by_label("Service to date").fill(mdy(c["dos_to"]))
        frame.get_by_label("Billing provider NPI").fill(c["billing_npi"])
    frame.get_by_role("button", name="Submit").click()
    row = frame.locator("table.claims-table tbody tr", has_text=c["pcn"])
    expect(row).to_have_count(1)
    row.locator("a.claim-link").click()
    modal = frame.get_by_role("dialog", name="Claim detail")
    expect(modal.locator("section.card.card-ready")).to_have_count(5)

    def field(name: str, scope=modal) -> str | None:
        loc = scope.locator(f"[data-field={name}]")
        return loc.first.inner_text().strip() if loc.count() else None

    out = {"status_label": field("status_label"), "claim_number": field("payer_claim_number"),
           "member_id": field("member_id"), "pcn": field("pcn"),
           "billed": field("billed", modal.locator("[data-card=payment]")),
           "paid": field("paid", modal.locator("[data-card=payment]")), "lines": []}
    for acc in modal.locator(".line-acc").all():
        acc.locator(".acc-toggle").click()
        reasons = [" ".join(r.locator("td").all_inner_texts()) for r in acc.locator("tr.adj").all()]
        rarcs = acc.locator("[data-field=rarcs]")
        if rarcs.count() and rarcs.inner_text().strip() != "None":
            reasons.append("RARC " + rarcs.inner_text().strip())
        out["lines"].append({"line": acc.get_attribute("data-line"), "reasons": reasons})
    remit_link = modal.get_by_role("link", name="View remittance")
    if remit_link.count():  # this payer prints its reasons only in the remittance viewer (new tab)
        with page.expect_popup() as pop:
            remit_link.click()
        remit = pop.value
        heading = remit.get_by_role("heading", name="Remits")
        mfa = remit.get_by_label("Authenticator app")
        none = remit.get_by_text("We did not find remittance data for this claim.")
        expect(heading.or_(mfa).or_(none).first).to_be_visible()
        if mfa.is_visible():
            ch_mfa(remit, p["totp_secret"])
            expect(heading.or_(none).first).to_be_visible()
        by_line: dict[str, list[str]] = {}
        for r in remit.locator("table.adjustments-table tbody tr").all():
            cells = [x.strip() for x in r.locator("td").all_inner_texts()]
            by_line.setdefault(cells[0], []).append(" ".join(cells[2:6]))
        for ln in out["lines"]:
            ln["reasons"] = by_line.get(ln["line"], [])
        remit.close()
    return out


# ---------------------------------------------------------------- commercial (Northstar SPA)
def co_login(page: Page, p: dict, org: dict) -> None:
    page.goto(p["url"] + "/")
    page.get_by_label("Username").fill(p["username"])
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password").fill(p["password"])
    page.get_by_role("button", name="Sign in").click()
    claims = page.get_by_role("heading", name="Claim Status")
    ack = page.get_by_role("button", name="I acknowledge")
    skip = page.get_by_role("button", name="Skip for now")
    mfa = page.get_by_role("button", name="Authenticator app")
    expect(mfa.or_(ack).or_(skip).or_(claims).first).to_be_visible()
    if mfa.is_visible():
        mfa.click()
        page.get_by_label("Enter the 6-digit code from your authenticator app").fill(totp(p["totp_secret"]))
        page.get_by_role("button", name="Verify").click()
        expect(ack.or_(skip).or_(claims).first).to_be_visible()
    if skip.is_visible():
        skip.click()
        expect(ack.or_(claims).first).to_be_visible()
    if ack.is_visible():
        ack.click()
    expect(claims).to_be_visible()


def fact(scope, label: str) -> str | None:
    dd = scope.locator("dt", has_text=re.compile(f"^{re.escape(label)}$")).locator("xpath=following-sibling::dd[1]")
    return dd.first.inner_text().strip() if dd.count() else None


def co_lookup(page: Page, p: dict, org: dict, c: dict) -> dict:
    if c["payer_claim_number"]:
        page.get_by_role("tab", name="Claim number").click()
        page.get_by_label("Claim number").fill(c["payer_claim_number"])
    else:
        page.get_by_role("tab", name="Member ID & date of birth").click()
        page.get_by_label("Member ID").fill(c["member_id"])
        page.get_by_label("Date of birth").fill(mdy(c["dob"]))
        page.get_by_label("First date of service").fill(mdy(c["dos_from"]))
        page.get_by_label("Last date of service").fill(mdy(c["dos_to"]))
    page.get_by_role("button", name="Search", exact=True).click()
    title = page.locator(".detail-title")
    rows = page.locator("table.claims-results tr.claim-row")
    expect(title.or_(rows).first).to_be_visible()
    if not title.is_visible():  # several claims listed: open ours (by patient account number)
        rows.filter(has_text=c["pcn"]).get_by_role("link").click()
    ov = page.locator(".claim-overview")
    expect(ov).to_be_visible()
    expect(ov).not_to_have_attribute("aria-busy", "true")
    out = {"status_label": fact(ov, "Claim status"), "claim_number": fact(ov, "Claim number"),
           "member_id": fact(ov, "Member ID"), "billed": fact(ov, "Billed amount"),
           "paid": fact(ov, "Paid amount"), "pcn": fact(ov, "Patient account number"), "lines": []}
    card = page.locator(".claim-lines")
    expect(card).not_to_have_attribute("aria-busy", "true")
    headers = card.locator("button.accordion-header")
    for i in range(headers.count()):
        hdr = headers.nth(i)
        hdr.click()
        panel = page.locator(f"[id='{hdr.get_attribute('aria-controls')}']")
        more = panel.get_by_role("button", name="View more")
        while more.count():
            more.first.click()
        reasons = [" | ".join(r.locator("td").all_inner_texts()) for r in panel.locator("tr.adjustment").all()]
        reasons += panel.locator(".remark-text").all_inner_texts()
        out["lines"].append({"line": str(i + 1), "reasons": reasons})
    return out


# ---------------------------------------------------------------- medicaid (MMIS)
M = "#ctl00_ContentPlaceHolder1_"


def md_login(page: Page, p: dict, org: dict) -> None:
    page.goto(p["url"] + "/Login.aspx")
    page.fill(M + "txtUserName", p["username"])
    page.fill(M + "txtPassword", p["password"])
    page.check(M + "chkTermsOfUse")
    page.click(M + "btnLogin")
    page.wait_for_load_state()
    if re.search(r"/TermsOfUse\.aspx", page.url):
        page.click(M + "btnAccept")
        page.wait_for_load_state()
    if re.search(r"/PasswordExpiry\.aspx", page.url):
        page.get_by_role("button", name="Remind Me Later").click()
    expect(page).to_have_url(re.compile(r"/Home\.aspx$"))


def md_lookup(page: Page, p: dict, org: dict, c: dict) -> dict:
    page.goto(p["url"] + "/Claims/Inquiry.aspx")
    if c["payer_claim_number"]:
        page.fill(M + "txtICN", c["payer_claim_number"])
    else:
        page.fill(M + "txtRecipientId", c["member_id"])
        page.fill(M + "txtDOSFrom", mdy(c["dos_from"]))
        page.fill(M + "txtDOSTo", mdy(c["dos_to"]))
    page.click(M + "btnSubmit")
    expect(page.locator(M + "lblSubmitted")).to_contain_text("Inquiry submitted, reference number")
    ref = page.locator(M + "lblReference").inner_text().strip()
    link = page.locator(f"a[href='/Claims/Response.aspx?ref={ref}']")
    deadline = time.monotonic() + 30
    while True:  # press Refresh on the Response List until the response is COMPLETE
        page.goto(p["url"] + "/Claims/ResponseList.aspx")
        if link.count() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(1000)
    link.click()
    row = page.locator(M + "gvClaims tr", has_text=c["pcn"])
    expect(row).to_have_count(1)
    row.locator("a").first.click()
    expect(page.locator(M + "lblStatus")).to_be_visible()

    def lbl(name: str) -> str:
        return page.locator(M + name).inner_text().strip()

    out = {"status_label": lbl("lblStatus"), "claim_number": lbl("lblICN"), "member_id": lbl("lblRecipientId"),
           "billed": lbl("lblBilled"), "paid": lbl("lblPaid"), "pcn": None, "lines": []}
    for i, r in enumerate(page.locator(M + "gvServiceLines > tbody > tr[id]").all()):
        eobs = [" ".join(x.strip() for x in e.locator("td").all_inner_texts())
                for e in r.locator("table.EOBTable tr").all()]
        out["lines"].append({"line": str(i + 1), "reasons": eobs})
    return out


PORTALS = {"clearinghouse": (ch_login, ch_lookup), "commercial": (co_login, co_lookup),
           "medicaid": (md_login, md_lookup)}


def check_claim(ctx: BrowserContext, portal: dict, org: dict, c: dict) -> dict:
    login, lookup = PORTALS[c["portal"]]
    page = ctx.new_page()
    login(page, portal, org)
    return lookup(page, portal, org, c)


def main(argv: list[str]) -> int:
    src, dst = argv[1], argv[2]
    with open(src) as f:
        spec = json.load(f)
    results, logins = [], 0
    with sync_playwright() as pw:
        kw = {"headless": True}
        if spec.get("executable_path"):
            kw["executable_path"] = spec["executable_path"]
        browser = pw.chromium.launch(**kw)
        for c in spec["claims"]:
            t0 = time.monotonic()
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            ctx.set_default_timeout(TIMEOUT_MS)
            rec = {"claim_id": c["claim_id"], "portal": c["portal"], "ok": False, "error": None}
            try:
                logins += 1
                rec.update(check_claim(ctx, spec["portals"][c["portal"]], spec["org"], c))
                rec["ok"] = True
            except Exception as e:  # noqa: BLE001 - recorded per claim, the run goes on
                msg = str(e).strip().splitlines()
                rec["error"] = f"{type(e).__name__}: {msg[0][:200] if msg else ''}"
            finally:
                ctx.close()
            rec["seconds"] = round(time.monotonic() - t0, 3)
            results.append(rec)
            print(f"naive {c['portal']:13} {c['claim_id']} {'ok ' if rec['ok'] else 'ERR'} {rec['seconds']:.1f}s",
                  flush=True)
        browser.close()
    with open(dst, "w") as f:
        json.dump({"logins": logins, "results": results}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
