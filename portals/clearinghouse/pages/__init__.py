"""Page objects of Meridian Exchange, one module per part of the portal: `screens` (what every screen
shares: paths, landing checks, redirects, comboboxes), `signin` (login to the shell), `tool` (the Claim
Status tool and its detail modal), `remit` (the remittance viewer). Locators are built once, intent methods
return raw strings; portals/clearinghouse/results.py says what they mean."""
