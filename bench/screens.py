"""Screenshots of each sandbox portal's claim detail for a denied claim, read by its adapter.

    .venv/bin/python -m bench.screens [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date
from decimal import Decimal
from pathlib import Path

from agent.browser import BrowserPool
from core.claims import ClaimQuery
from core.config import get_settings
from core.credentials import Credentials
from portal_agent.demo import SandboxProcess
from portals import load_adapters


async def shoot(out: Path) -> None:
    with SandboxProcess(size=500) as sb:
        gt = sb.control.get("/control/ground-truth").json()
        members = {m["member_id"]: m for m in gt["members"]}
        orgs = {p["npi"]: p["org_id"] for p in gt["providers"]}
        accounts = sb.control.get("/control/accounts").json()
        pool = BrowserPool(get_settings().browser)
        for key, adapter_cls in sorted(load_adapters().items()):
            c = next(c for c in gt["claims"] if c["portal"] == key and c.get("kind") == "denied"
                     and c["payer_id"] != "KMI")
            a = next(x for x in accounts if x["portal"] == key)
            adapter = adapter_cls()
            s = await pool.session_for(adapter, sb.urls[key])
            await adapter.login(s, Credentials(username=a["username"], password=a["password"],
                                               totp_secret=a["totp_secret"]))
            m = members[c["member_id"]]
            q = ClaimQuery(claim_ref=c["pcn"], payer_key=c["payer_id"], payer_claim_number=c["payer_claim_number"],
                           member_id=c["member_id"], patient_dob=date.fromisoformat(m["dob"]),
                           patient_first_name=m["first_name"], patient_last_name=m["last_name"],
                           dos_from=date.fromisoformat(c["dos_from"]), dos_to=date.fromisoformat(c["dos_to"]),
                           billing_npi=c["billing_npi"], billed=Decimal(c["billed"]),
                           org_external_id=orgs[c["billing_npi"]])
            r = await adapter.claim_status(s, q)
            pages = [p for p in s.context.pages if not p.is_closed()]
            path = out / f"{key}-denied-claim.png"
            await pages[-1].screenshot(path=str(path), full_page=True)
            print(key, r.status_category, [a.carc for ln in r.lines for a in ln.adjustments], path)
            await s.close()
        await pool.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="docs/screenshots")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(out))


if __name__ == "__main__":
    main()
